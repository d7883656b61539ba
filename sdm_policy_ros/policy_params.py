# Copyright 2026 sdm-policy-ros maintainers
# SPDX-License-Identifier: MIT
"""policy_node's parameters as one dataclass, and what `robot` and `sensor_qos` name.

policy_node's parameters: the deployment settings of the core (DeploymentConfig) and the
node's own, as one dataclass declared through `sdm_policy_ros.params`; what `robot` and
`sensor_qos` name.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from rclpy.qos import QoSProfile, ReliabilityPolicy, qos_profile_sensor_data

from sdm_policy_core.config import ConfigError, DeploymentConfig
from sdm_policy_ros.extrinsics import TRANSFORM_SOURCES
from sdm_policy_ros.params import parameter

AUTOSTART = ("auto", "unconfigured", "inactive", "active")
SENSOR_QOS = {  # sensor_qos -> the QoS of the sensor subscriptions
    "sensor_data": qos_profile_sensor_data,
    "reliable": QoSProfile(depth=10, reliability=ReliabilityPolicy.RELIABLE),
}


def profile_directory() -> Path | None:
    """Return the installed package's config/robots, where `robot` names are looked up.

    config/robots of the installed package, where `robot` names are looked up (None: the
    core's source-tree default).
    """
    try:
        from ament_index_python.packages import get_package_share_directory

        share = Path(get_package_share_directory("sdm_policy_ros")) / "config" / "robots"
        return share if share.is_dir() else None
    except Exception:  # not installed with colcon: use the source tree
        return None


@dataclass
class PolicyNodeParameters(DeploymentConfig):
    robot: str = parameter(
        "generic_7dof", "robot profile: a name in config/robots or a YAML path", read_only=True
    )
    checkpoint: str = parameter(
        "",
        "checkpoint directory that configure loads (with autostart auto: at start); empty: "
        "load later with ~/load_checkpoint",
        read_only=True,
    )
    autostart: str = parameter(
        "auto",
        "lifecycle state reached at start: auto (inactive when checkpoint is set, else "
        "unconfigured), unconfigured, inactive (loaded, no commands) or active (commands as soon "
        "as fresh data arrive: only where the robot may move at once)",
        read_only=True,
        choices=AUTOSTART,
    )
    sampler_seed: int = parameter(
        0,
        "seed of the sampler's noise generator; applied at every checkpoint load and whenever "
        "this parameter is set (sim-eval sets it per evaluation seed, as sdm eval does)",
    )
    observation_sync_s: float = parameter(
        0.0,
        "[s] trigger: observation: wait up to this long (wall time) for a joint state stamped at "
        "or after the cloud before acting, so that cloud and state of one step form the "
        "observation; 0: act on the newest state at once",
    )
    transform_source: str = parameter(
        "auto",
        "where clouds are placed in the base frame: tf (tf2_ros lookups at each cloud's stamp), "
        "profile (the robot profile's camera mount), auto (tf when tf2_ros is importable, else "
        "profile)",
        read_only=True,
        choices=TRANSFORM_SOURCES,
    )
    sensor_qos: str = parameter(
        "sensor_data",
        "QoS of the sensor subscriptions: sensor_data (best effort, depth 5: real sensors) or "
        "reliable (depth 10: lockstep simulators, where a lost message stalls the loop)",
        read_only=True,
        choices=tuple(SENSOR_QOS),
    )

    def __post_init__(self) -> None:
        super().__post_init__()
        if not self.observation_sync_s >= 0:
            raise ConfigError(
                f"observation_sync_s must be >= 0 (0: act at once), got {self.observation_sync_s}"
            )
