# Copyright 2026 sdm-policy-ros maintainers
# SPDX-License-Identifier: MIT
"""The robot profiles the project ships load, and the Franka ones keep the manufacturer's limits.

A profile is what stands between a policy's output and a real arm's joints: every file in
config/robots must load through the strict loader (a typo there fails at configure, on the
robot), and the Panda joint limits written in the Franka profiles must equal the ones Franka
publishes (franka_description's fer/joint_limits.yaml, read in place from ../shared/external).
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest
import yaml

from sdm_policy_core.robot import available_profiles, load_robot_profile, robot_profile_dir
from test.conftest import REPO

FER_LIMITS = (
    REPO.parent
    / "shared"
    / "external"
    / "frankaemika_franka_description"
    / "robots"
    / "fer"
    / "joint_limits.yaml"
)
PANDA_JOINT = re.compile(r"panda_joint([1-7])$")


def test_every_shipped_profile_loads_and_is_consistent():
    names = available_profiles()
    assert {"franka", "generic_7dof", "obstacle_2d"} <= set(names), names
    assert len(names) == len(list(robot_profile_dir().glob("*.yaml")))
    for name in names:
        profile = load_robot_profile(name)
        assert profile.name == name
        assert len(set(profile.state_names)) == len(profile.state_names), name
        assert len(set(profile.action_names)) == len(profile.action_names), name
        assert set(profile.untracked) <= set(profile.action_names), name


@pytest.mark.skipif(not FER_LIMITS.is_file(), reason=f"{FER_LIMITS} absent (../shared/external)")
def test_franka_profiles_keep_the_published_panda_joint_limits():
    published = yaml.safe_load(Path(FER_LIMITS).read_text())
    checked = 0
    for name in available_profiles():
        profile = load_robot_profile(name)
        for joint, lower, upper in zip(
            profile.action_names, profile.lower, profile.upper, strict=True
        ):
            match = PANDA_JOINT.search(joint)
            if match is None:
                continue
            limit = published[f"joint{match.group(1)}"]["limit"]
            assert (lower, upper) == (limit["lower"], limit["upper"]), (name, joint)
            checked += 1
    assert checked >= 14  # franka and isaac_franka, 7 joints each
