# Copyright 2026 sdm-policy-ros maintainers
# SPDX-License-Identifier: MIT
"""The inputs of a deployed policy, without ROS: sensor messages -> the controller's arrays.

`SensorInputs.receive(controller, topic, msg, ...)` decodes a message (sensor_msgs/PointCloud2
`points`, Image `image`, JointState `joint_states`, geometry_msgs/PoseStamped `ee_pose`; any
object with their fields) with the core's conversions, assembles agent_pos from joint states and
the end-effector pose (in the profile's state_names order) and hands it to the controller. A
malformed message (truncated data, NaN/Inf, missing joints, a zero stamp, a cloud with no finite
point or in a frame that cannot be placed) is counted by the controller, logged (throttled) and
dropped, never acted on. `Trigger` tells the control loop when a new observation arrived.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from typing import Any

import numpy as np

from sdm_policy_core.control import PolicyController
from sdm_policy_core.conversions import (
    ConversionError,
    image_to_rgb,
    joint_state_to_array,
    pointcloud2_to_array,
    pose_to_vector,
    stamp_to_seconds,
)
from sdm_policy_core.keys import (
    IMAGE,
    TOPIC_EE_POSE,
    TOPIC_IMAGE,
    TOPIC_JOINT_STATES,
    TOPIC_POINTS,
)
from sdm_policy_core.robot import RobotProfile, StateAssembler

WARNING_PERIOD_S = 2.0  # at most one rejection warning per this many seconds


class Trigger:
    """What the loop waits for with `trigger: observation`.

    The newest observation's stamp and the newest joint state's (fed by the session's inputs).
    """

    def __init__(self) -> None:
        self.wake = threading.Event()
        self.stamp = -1.0  # [s] the newest observation
        self.acted = -1.0  # [s] the observation of the last step that commanded
        self._state_stamp = -1.0
        self._state_arrived = threading.Condition()

    def observation(self, stamp: float) -> None:
        self.stamp = stamp
        self.wake.set()

    def state(self, stamp: float) -> None:
        with self._state_arrived:
            self._state_stamp = stamp
            self._state_arrived.notify_all()

    def wait_for_state(self, stamp: float, timeout: float) -> None:
        """Wait up to `timeout` s for a joint state stamped at or after `stamp`."""
        with self._state_arrived:
            self._state_arrived.wait_for(lambda: self._state_stamp >= stamp, timeout)

    def restart(self) -> None:
        """Forget the stamps seen (activation, re-enable, reset: sim time may restart)."""
        with self._state_arrived:
            self._state_stamp = -1.0
        self.acted = -1.0


class SensorInputs:
    """Decode sensor messages and assemble the state; see the module docstring.

    `cloud_to_base(frame_id, stamp)`: the 4x4 transform of a cloud's frame into the base frame
    (raises ConversionError for a frame it cannot place); None: the controller's (the
    profile's camera mount).
    """

    def __init__(
        self,
        profile: RobotProfile,
        log: Any,
        cloud_to_base: Callable[[str, Any], np.ndarray] | None = None,
    ) -> None:
        self.log, self.cloud_to_base = log, cloud_to_base
        self.assembler = StateAssembler(profile)
        self.trigger = Trigger()
        # Wall time of the newest accepted observation: with sim time or observation triggers
        # no step runs when the data stop, so the session's status reports it.
        self.last_observation_wall: float | None = None
        # (stamp, received, delivered) of the newest observation: perf_counter times of its
        # message reaching receive() and its arrays the controller (deploy.timing)
        self.last_observation_times: tuple[float, float, float] | None = None
        self._received = 0.0
        self._last_warning = 0.0
        self._inputs = {  # topic -> (wanted, counted as, decode, deliver)
            TOPIC_POINTS: (lambda c: c.uses_cloud, "cloud", self._decode_cloud, self._on_cloud),
            TOPIC_IMAGE: (lambda c: c.uses_image, IMAGE, self._decode_image, self._on_image),
            TOPIC_JOINT_STATES: (
                lambda c: self.assembler.needs_joints,
                "state",
                self._decode_joints,
                self._on_joints,
            ),
            TOPIC_EE_POSE: (
                lambda c: self.assembler.needs_pose,
                "state",
                self._decode_pose,
                self._on_pose,
            ),
        }

    def receive(
        self, controller: PolicyController, topic: str, msg: Any, observation_trigger: bool
    ) -> None:
        """Hand a message of `topic` (points, image, joint_states or ee_pose) to `controller`.

        Ignored when the controller's model needs none. `observation_trigger`: a new
        observation wakes the control loop (`trigger: observation`).
        """
        self._received = time.perf_counter()
        wanted, what, decode, deliver = self._inputs[topic]
        if not wanted(controller):
            return
        try:
            stamp = stamp_to_seconds(msg.header.stamp)
            if stamp <= 0:
                raise ConversionError("header.stamp is zero")
            value = decode(controller, msg)
        except (ConversionError, ValueError) as err:
            controller.reject(what, str(err))
            self._throttled_warning(f"rejected {type(msg).__name__}: {err}")
            return
        observed = deliver(controller, value, stamp)
        if observed is not None and observation_trigger:
            self.trigger.observation(observed)

    def _decode_cloud(self, controller, msg) -> tuple[np.ndarray, np.ndarray | None]:
        to_base = None
        if self.cloud_to_base is not None:
            to_base = self.cloud_to_base(msg.header.frame_id, msg.header.stamp)
        points = pointcloud2_to_array(msg, channels=controller.channels)
        points = points[np.isfinite(points).all(axis=1)]
        if len(points) == 0:
            raise ConversionError("no finite points")
        return points, to_base

    def _decode_image(self, controller, msg) -> np.ndarray:
        return image_to_rgb(msg)

    def _decode_joints(self, controller, msg) -> np.ndarray:
        return joint_state_to_array(msg, self.assembler.joint_names)

    def _decode_pose(self, controller, msg) -> np.ndarray:
        return pose_to_vector(msg)

    # deliver: hand a decoded message on; the stamp of the new observation it makes, if any
    def _on_cloud(self, controller, value, stamp: float) -> float:
        points, to_base = value
        controller.update_cloud(points, stamp, to_base)
        return self._observation(stamp)

    def _on_image(self, controller, rgb: np.ndarray, stamp: float) -> None:
        controller.update_image(rgb, stamp)
        self.last_observation_wall = time.monotonic()  # (the loop is woken by clouds only)

    def _on_joints(self, controller, positions: np.ndarray, stamp: float) -> float | None:
        self.assembler.update_joints(positions, stamp)
        return self._forward_state(controller)

    def _on_pose(self, controller, vector: np.ndarray, stamp: float) -> float | None:
        self.assembler.update_pose(vector, stamp)
        return self._forward_state(controller)

    def _forward_state(self, controller) -> float | None:
        assembled = self.assembler.assemble()
        if assembled is None:  # a source of agent_pos has not arrived yet
            return None
        controller.update_state(*assembled)
        self.trigger.state(assembled[1])
        if controller.uses_cloud or controller.uses_image:
            return None
        return self._observation(assembled[1])  # a state-only policy: the state is its observation

    def _observation(self, stamp: float) -> float:
        self.last_observation_wall = time.monotonic()
        self.last_observation_times = (stamp, self._received, time.perf_counter())
        return stamp

    def _throttled_warning(self, text: str) -> None:
        now = time.monotonic()
        if now - self._last_warning > WARNING_PERIOD_S:
            self._last_warning = now
            self.log.warning(text)
