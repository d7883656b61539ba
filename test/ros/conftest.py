# Copyright 2026 sdm-policy-ros maintainers
# SPDX-License-Identifier: MIT
"""ROS tests need rclpy and the built sdm_msgs.

ROS tests need rclpy and the built sdm_msgs. The README's test command always provides them
(SDM_REQUIRE_ROS=1 turns their absence into a failure); a pip-only checkout skips them.
"""

from __future__ import annotations

import os

from test.conftest import ROS_MISSING, ros_collect_ignore

collect_ignore_glob = ros_collect_ignore()


def pytest_report_header(config) -> str:
    if ROS_MISSING:
        return f"ROS tests skipped: {', '.join(ROS_MISSING)} not importable"
    return f"ROS tests: ROS_DOMAIN_ID={os.environ.get('ROS_DOMAIN_ID')}, discovery LOCALHOST"
