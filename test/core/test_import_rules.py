# Copyright 2026 sdm-policy-ros maintainers
# SPDX-License-Identifier: MIT
"""The layers' import rules (issue 22), checked by the source and by what an interpreter loads.

The layers' import rules (issue 22): training stands below evaluation, and the message
conversions a robot-side process needs load neither torch nor rclpy. Checked two ways: by the
source (lazy imports inside functions count) and by what a fresh interpreter loads.
"""

from __future__ import annotations

import ast
import json
import subprocess
import sys
from pathlib import Path

from test.conftest import REPO

CORE = REPO / "sdm_policy_core"


def _imports(path: Path) -> set[str]:
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


def _loaded_after(module: str) -> list[str]:
    code = f"import json, sys, {module}; print(json.dumps(sorted(sys.modules)))"
    out = subprocess.run(
        [sys.executable, "-c", code], cwd=REPO, capture_output=True, text=True, check=True
    )
    return json.loads(out.stdout)


def test_training_never_imports_evaluation():
    offenders = {
        str(path.relative_to(REPO)): sorted(
            m for m in _imports(path) if m.startswith("sdm_policy_core.eval")
        )
        for path in (CORE / "training").rglob("*.py")
    }
    assert {k: v for k, v in offenders.items() if v} == {}
    loaded = _loaded_after("sdm_policy_core.training.trainer")
    assert [m for m in loaded if m.startswith("sdm_policy_core.eval")] == []


def test_the_core_never_imports_ros():
    ros = ("rclpy", "rosbag2_py", "launch", "sensor_msgs", "geometry_msgs", "sdm_msgs")
    offenders = {
        str(path.relative_to(REPO)): sorted(m for m in _imports(path) if m.split(".")[0] in ros)
        for path in CORE.rglob("*.py")
    }
    assert {k: v for k, v in offenders.items() if v} == {}


def test_conversions_load_neither_torch_nor_rclpy():
    for module in (
        "sdm_policy_core.conversions",
        "sdm_policy_core.message_decoding",
        "sdm_policy_core.data.bag2zarr",
    ):
        heavy = [m for m in _loaded_after(module) if m.split(".")[0] in ("torch", "rclpy")]
        assert heavy == [], f"{module} loads {heavy[:3]}"
