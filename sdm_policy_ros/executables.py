# Copyright 2026 sdm-policy-ros maintainers
# SPDX-License-Identifier: MIT
"""The ROS executables of this package, light enough to handle a signal at once.

The ROS executables of this package (bin/<name>, installed by setup.py into
lib/sdm_policy_ros), light enough to handle a signal at once.

Each function installs the process's SIGINT/SIGTERM handlers (sdm_policy_ros.process) *before*
importing its node module, whose imports (torch, rclpy, MuJoCo) take seconds: a signal then
ends the process with 130/143 and no traceback. Only the standard library is imported here.

Without colcon: `python -m sdm_policy_ros EXECUTABLE [--ros-args ...]` (__main__.py).
"""

from __future__ import annotations

import sys

from sdm_policy_ros.process import run_executable

# executable name -> the module whose main(args) it runs
MODULES = {
    "policy_node": "sdm_policy_ros.policy_node",
    "sim_bridge_node": "sdm_policy_ros.sim_bridge_node",
    "expert_teleop_node": "sdm_policy_ros.expert_teleop_node",
    "bag_recorder": "sdm_policy_ros.bag_recorder",
    "sim_eval_driver": "sdm_policy_ros.sim_eval_driver",
}


def _entry(name: str):
    def main() -> int:
        return run_executable(MODULES[name], sys.argv)

    main.__name__ = name
    main.__doc__ = f"The `{name}` executable."
    return main


policy_node = _entry("policy_node")
sim_bridge_node = _entry("sim_bridge_node")
expert_teleop_node = _entry("expert_teleop_node")
bag_recorder = _entry("bag_recorder")
sim_eval_driver = _entry("sim_eval_driver")
