# Copyright 2026 sdm-policy-ros maintainers
# SPDX-License-Identifier: MIT
"""`expert_teleop_node`: MetaWorld's scripted expert teleoperating the sim bridge.

`expert_teleop_node`: MetaWorld's scripted expert as a teleoperator of the sim bridge
(`expert_teleop`).

It drives `sim_bridge_node` the way a human with a space mouse would: it watches the robot and
publishes `joint_commands` (std_msgs/Float64MultiArray: dx, dy, dz, grip in [-1, 1]), one per
observed step. What it watches is the simulator's full state, which a scripted expert needs
(object and goal poses, not just a point cloud): the bridge's `~/expert_observation`
(std_msgs/Float64MultiArray, MetaWorld's (39,) state vector; layout.dim[0].label names the
task, so the right expert is used even right after a task switch). Record the bridge's topics
while it drives (bag_recorder) and the bag holds demonstrations.

Subscribes `sim_bridge/expert_observation` (remap it when the bridge has another name or
namespace); publishes `joint_commands`. Logs `connected: ...` once a bridge is matched both
ways (its observations reach the node and its commands reach a subscriber).

Parameters: `noise_std` (Gaussian noise added to the expert's action before clipping; 0 = the
clean expert), `seed` (of that noise).

    expert_teleop_node --ros-args -p noise_std:=0.0
"""

from __future__ import annotations

import sys

import numpy as np
from rcl_interfaces.msg import ParameterDescriptor
from rclpy.node import Node
from rclpy.qos import QoSProfile, ReliabilityPolicy
from std_msgs.msg import Float64MultiArray

from sdm_policy_core.keys import TOPIC_JOINT_COMMANDS
from sdm_policy_core.sim.episode import FULL_STATE_DIM
from sdm_policy_core.sim.experts import ScriptedExpert
from sdm_policy_core.sim.metaworld_env import UnknownTaskError
from sdm_policy_ros.process import run_node

NODE_NAME = "expert_teleop"
RELIABLE = QoSProfile(depth=10, reliability=ReliabilityPolicy.RELIABLE)


class ExpertTeleopNode(Node):
    """Publishes the scripted expert's action for every expert observation of the bridge."""

    def __init__(self) -> None:
        super().__init__(NODE_NAME)
        self.declare_parameter(
            "noise_std",
            0.0,
            ParameterDescriptor(
                description="std of Gaussian noise added to each action (0: clean expert)",
                dynamic_typing=True,
            ),
        )
        self.declare_parameter(
            "seed", 0, ParameterDescriptor(description="seed of the action noise")
        )
        self.noise_std = float(self.get_parameter("noise_std").value)
        if self.noise_std < 0:
            raise ValueError(f"noise_std must be >= 0, got {self.noise_std}")
        self._rng = np.random.default_rng(int(self.get_parameter("seed").value))
        import metaworld.policies  # noqa: F401  (~1 s: not on the first observation's path)

        self._experts: dict[str, ScriptedExpert] = {}
        self.commands = 0
        self._pub = self.create_publisher(Float64MultiArray, TOPIC_JOINT_COMMANDS, RELIABLE)
        self._sub = self.create_subscription(
            Float64MultiArray, "sim_bridge/expert_observation", self._on_observation, RELIABLE
        )
        self.get_logger().info(
            f"teleoperating with MetaWorld's scripted experts (noise_std {self.noise_std})"
        )
        # Say once when both directions are matched (DDS discovery can take seconds on a busy
        # machine): until then the bridge's observations or our commands are not delivered.
        self._matched_timer = self.create_timer(0.1, self._report_matched)

    def _report_matched(self) -> None:
        observers, commanded = self._sub.get_publisher_count(), self._pub.get_subscription_count()
        if observers and commanded:
            self.get_logger().info(
                f"connected: {observers} expert_observation publisher(s), "
                f"{commanded} joint_commands subscriber(s)"
            )
            self.destroy_timer(self._matched_timer)

    def _expert(self, task: str) -> ScriptedExpert | None:
        if task not in self._experts:
            try:
                self._experts[task] = ScriptedExpert(task)
            except (UnknownTaskError, ValueError) as err:
                self.get_logger().error(f"no scripted expert for {task!r}: {err}")
                return None
        return self._experts[task]

    def _on_observation(self, msg: Float64MultiArray) -> None:
        state = np.asarray(msg.data, dtype=np.float64)
        task = msg.layout.dim[0].label if msg.layout.dim else ""
        if state.shape != (FULL_STATE_DIM,) or not task:
            self.get_logger().warning(
                f"ignored expert observation: need {FULL_STATE_DIM} values and the task in "
                f"layout.dim[0].label, got {state.shape} and {task!r}",
                throttle_duration_sec=2.0,
            )
            return
        expert = self._expert(task)
        if expert is None:
            return
        action = expert.act_on_state(state).astype(np.float64)
        if self.noise_std:
            action = np.clip(action + self._rng.normal(0, self.noise_std, 4), -1.0, 1.0)
        self._pub.publish(Float64MultiArray(data=action.tolist()))
        self.commands += 1


def main(args: list[str] | None = None) -> int:
    return run_node(NODE_NAME, ExpertTeleopNode, args=args)


if __name__ == "__main__":
    sys.exit(main())
