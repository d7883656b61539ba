# Copyright 2026 sdm-policy-ros maintainers
# SPDX-License-Identifier: MIT
"""Fixtures of the core tests (test/core/...): MetaWorld demos, a tiny teacher, one torch thread.

Also the 4-joint test arm that the controller and ONNX runtime tests command (`arm_profile`),
and the import-rule helpers of test_import_rules and test_key_vocabulary (`imports_of`,
`loaded_after`).

The fixtures shared by every level live in test/conftest.py; these are the core level's own.
"""

from __future__ import annotations

import ast
import json
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
import torch

from sdm_policy_core.robot import RobotProfile
from test.conftest import REPO, TINY


def arm_profile() -> RobotProfile:
    """Return a new 4-joint position-controlled test arm: limits ±0.3, at most 0.02 a tick."""
    joints = ("j1", "j2", "j3", "j4")
    return RobotProfile(
        name="test_arm",
        state_names=joints,
        action_names=joints,
        action_kind="joint_position",
        output="joint_trajectory",
        lower=(-0.3,) * 4,
        upper=(0.3,) * 4,
        max_step=0.02,
    )


def imports_of(path: Path) -> set[str]:
    """Every module a file imports, anywhere in it (relative imports resolved)."""
    package = ".".join(path.relative_to(REPO).with_suffix("").parts[:-1])
    found = set()
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            found |= {alias.name for alias in node.names}
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                parts = package.split(".")
                base = ".".join(parts[: len(parts) - node.level + 1] + ([base] if base else []))
            found |= {base} | {f"{base}.{alias.name}" for alias in node.names}
    return found


def loaded_after(module: str) -> list[str]:
    """Every module a fresh interpreter has loaded after importing `module`."""
    code = f"import json, sys, {module}; print(json.dumps(sorted(sys.modules)))"
    out = subprocess.run(
        [sys.executable, "-c", code], cwd=REPO, capture_output=True, text=True, check=True
    )
    return json.loads(out.stdout)


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


@pytest.fixture(scope="module")
def one_torch_thread() -> Iterator[None]:
    """Run torch on one thread for a module (exact, reproducible reference outputs)."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)
