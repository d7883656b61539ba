# Copyright 2026 sdm-policy-ros maintainers
# SPDX-License-Identifier: MIT
"""Small MetaWorld datasets and checkpoints shared by the simulator and evaluation tests."""

from __future__ import annotations

from pathlib import Path

import pytest

from test.conftest import TINY


@pytest.fixture(scope="session")
def demos_dataset(tmp_path_factory) -> Path:
    """2 scripted button-press episodes of 100 steps, 128-point clouds, via `sdm demos`."""
    from sdm_policy_core.cli import main as sdm

    out = tmp_path_factory.mktemp("demos") / "button_press.zarr"
    code = sdm(
        [
            "demos",
            "--task",
            "button-press-v3",
            "--episodes",
            "2",
            "--out",
            str(out),
            "--num-points",
            "128",
            "--max-episode-steps",
            "100",
            "--no-progress",
        ]
    )
    assert code == 0
    return out


@pytest.fixture(scope="session")
def tiny_checkpoint(demos_dataset, tmp_path_factory) -> Path:
    """Train a teacher for 5 steps on the demos (checkpoints/latest)."""
    from sdm_policy_core.cli import main as sdm

    out = tmp_path_factory.mktemp("teacher")
    args = ["train", "--dataset", str(demos_dataset), "--out", str(out), "--no-progress"]
    code = sdm([*args, *TINY])
    assert code == 0
    return out / "checkpoints" / "latest"
