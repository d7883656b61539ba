"""`policy_node`: the SDM / diffusion policy as a ROS 2 node (`sdm_policy_node`).

Contract (../ARCHITECTURE.md): publishes `status` (sdm_msgs/PolicyStatus) and `/diagnostics`;
serves `~/enable` (std_srvs/SetBool) and `~/reset` (std_srvs/Trigger). The node starts disabled
and refuses to enable before a model is loaded. Deployment parameters are the fields of
`sdm_policy_core.config.DeploymentConfig` (see config/policy.yaml); invalid values stop the node
at start-up and are rejected at run time, with a message naming the value.

    policy_node --ros-args --params-file config/policy.yaml -p sdm_policy_node:sampler:=ddim
"""

from __future__ import annotations

import json
import sys
import threading

import rclpy
from diagnostic_msgs.msg import DiagnosticArray, DiagnosticStatus, KeyValue
from rclpy.callback_groups import MutuallyExclusiveCallbackGroup
from rclpy.executors import ExternalShutdownException, MultiThreadedExecutor
from rclpy.node import Node
from rclpy.parameter import Parameter
from sdm_msgs.msg import PolicyStatus
from std_srvs.srv import SetBool, Trigger

from sdm_policy_core.config import ConfigError, DeploymentConfig, to_dict
from sdm_policy_ros.params import (
    dataclass_from_parameters,
    declare_dataclass_parameters,
    validating_callback,
)

NODE_NAME = "sdm_policy_node"

_STATE_NAMES = {
    PolicyStatus.STATE_NO_CHECKPOINT: "no checkpoint",
    PolicyStatus.STATE_DISABLED: "disabled",
    PolicyStatus.STATE_WAITING_FOR_DATA: "waiting for data",
    PolicyStatus.STATE_RUNNING: "running",
    PolicyStatus.STATE_HOLDING: "holding",
    PolicyStatus.STATE_FAULT: "fault",
}


class PolicyNode(Node):
    """Runs a policy runtime from sdm_policy_core on the robot's sensor streams."""

    def __init__(self) -> None:
        super().__init__(NODE_NAME)
        self.config: DeploymentConfig = declare_dataclass_parameters(self, DeploymentConfig)
        self.add_on_set_parameters_callback(validating_callback(self, DeploymentConfig))
        self.add_post_set_parameters_callback(self._on_parameters_set)

        self._lock = threading.Lock()
        self._enabled = False
        self._policy_id = ""
        self._state = PolicyStatus.STATE_NO_CHECKPOINT
        self._message = "no checkpoint loaded"

        services = MutuallyExclusiveCallbackGroup()
        self._status_pub = self.create_publisher(PolicyStatus, "status", 10)
        self._diag_pub = self.create_publisher(DiagnosticArray, "/diagnostics", 10)
        self.create_service(SetBool, "~/enable", self._on_enable, callback_group=services)
        self.create_service(Trigger, "~/reset", self._on_reset, callback_group=services)
        self._status_timer = self.create_timer(
            1.0 / self.config.status_rate_hz, self._publish_status
        )
        self.get_logger().info(
            "started disabled with parameters " + json.dumps(to_dict(self.config), sort_keys=True)
        )

    # -- parameters -------------------------------------------------------------------------
    def _on_parameters_set(self, params: list[Parameter]) -> None:
        self.config = dataclass_from_parameters(self, DeploymentConfig)
        if any(p.name == "status_rate_hz" for p in params):
            self._status_timer.cancel()
            self.destroy_timer(self._status_timer)
            self._status_timer = self.create_timer(
                1.0 / self.config.status_rate_hz, self._publish_status
            )

    # -- services ---------------------------------------------------------------------------
    def _on_enable(self, request: SetBool.Request, response: SetBool.Response):
        with self._lock:
            if request.data and not self._policy_id:
                response.success = False
                response.message = (
                    "cannot enable: no checkpoint loaded; load one first "
                    "(~/load_checkpoint or the checkpoint parameter)"
                )
            else:
                self._enabled = bool(request.data)
                response.success = True
                response.message = "enabled" if self._enabled else "disabled"
        self.get_logger().info(f"~/enable({request.data}): {response.message}")
        return response

    def _on_reset(self, request: Trigger.Request, response: Trigger.Response):
        response.success = True
        response.message = "observation history cleared"
        return response

    # -- status -----------------------------------------------------------------------------
    def _publish_status(self) -> None:
        now = self.get_clock().now().to_msg()
        with self._lock:
            msg = PolicyStatus()
            msg.header.stamp = now
            msg.state = self._state
            msg.enabled = self._enabled
            msg.policy_id = self._policy_id
            msg.observation_age = -1.0
            msg.message = self._message
        self._status_pub.publish(msg)

        diag = DiagnosticArray()
        diag.header.stamp = now
        level = (
            DiagnosticStatus.OK
            if msg.state == PolicyStatus.STATE_RUNNING
            else DiagnosticStatus.WARN
        )
        diag.status.append(
            DiagnosticStatus(
                level=level,
                name=f"{self.get_fully_qualified_name()}: policy",
                message=f"{_STATE_NAMES[msg.state]}: {msg.message}",
                hardware_id=msg.policy_id,
                values=[
                    KeyValue(key="enabled", value=str(msg.enabled)),
                    KeyValue(key="sampler", value=self.config.sampler),
                    KeyValue(key="control_rate_hz", value=f"{self.config.control_rate_hz:g}"),
                ],
            )
        )
        self._diag_pub.publish(diag)


def main(args: list[str] | None = None) -> int:
    rclpy.init(args=args)
    try:
        node = PolicyNode()
    except ConfigError as err:
        print(f"[{NODE_NAME}] invalid parameter: {err}", file=sys.stderr)
        rclpy.try_shutdown()
        return 2
    executor = MultiThreadedExecutor(num_threads=3)
    executor.add_node(node)
    try:
        executor.spin()
    except (KeyboardInterrupt, ExternalShutdownException):
        pass
    finally:
        executor.shutdown()
        node.destroy_node()
        rclpy.try_shutdown()
    return 0


if __name__ == "__main__":
    sys.exit(main())
