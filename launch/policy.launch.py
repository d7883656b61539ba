# Copyright 2026 sdm-policy-ros maintainers
# SPDX-License-Identifier: MIT
"""ros2 launch sdm_policy_ros policy.launch.py checkpoint:=... robot:=...

Starts the policy node (`sdm_policy_node`). Thin over sdm_policy_ros.launch_spec, which the
tests start as real processes where `launch` is not installed
(`python -m sdm_policy_ros.launch_runner policy ...`).
"""

from sdm_policy_ros.launch_actions import launch_description
from sdm_policy_ros.launch_spec import POLICY_ARGUMENTS, policy_nodes


def generate_launch_description():
    return launch_description(POLICY_ARGUMENTS, policy_nodes)
