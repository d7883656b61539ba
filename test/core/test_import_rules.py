# Copyright 2026 sdm-policy-ros maintainers
# SPDX-License-Identifier: MIT
"""The layers' import rules (issue 22), checked by the source and by what an interpreter loads.

The layers' import rules (issue 22): training stands below evaluation, and the message
conversions a robot-side process needs load neither torch nor rclpy. Checked two ways: by the
source (lazy imports inside functions count) and by what a fresh interpreter loads.
"""

from __future__ import annotations

from test.conftest import REPO
from test.core.conftest import imports_of, loaded_after

CORE = REPO / "sdm_policy_core"


def test_training_never_imports_evaluation():
    offenders = {
        str(path.relative_to(REPO)): sorted(
            m for m in imports_of(path) if m.startswith("sdm_policy_core.eval")
        )
        for path in (CORE / "training").rglob("*.py")
    }
    assert {k: v for k, v in offenders.items() if v} == {}
    loaded = loaded_after("sdm_policy_core.training.trainer")
    assert [m for m in loaded if m.startswith("sdm_policy_core.eval")] == []


def test_the_core_never_imports_ros():
    ros = ("rclpy", "rosbag2_py", "launch", "sensor_msgs", "geometry_msgs", "sdm_msgs")
    offenders = {
        str(path.relative_to(REPO)): sorted(m for m in imports_of(path) if m.split(".")[0] in ros)
        for path in CORE.rglob("*.py")
    }
    assert {k: v for k, v in offenders.items() if v} == {}


def test_conversions_load_neither_torch_nor_rclpy():
    for module in (
        "sdm_policy_core.conversions",
        "sdm_policy_core.message_decoding",
        "sdm_policy_core.data.bag2zarr",
    ):
        heavy = [m for m in loaded_after(module) if m.split(".")[0] in ("torch", "rclpy")]
        assert heavy == [], f"{module} loads {heavy[:3]}"
