# Copyright 2026 sdm-policy-ros maintainers
# SPDX-License-Identifier: MIT
"""`sdm doctor` tells a user what works and exits non-zero, with a fix, when a piece is missing."""

from __future__ import annotations

import json
import os
import subprocess
import sys

from test.conftest import REPO

SDM = [sys.executable, "-m", "sdm_policy_core.cli"]


def _doctor(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess:
    return subprocess.run(
        [*SDM, "doctor", *args],
        capture_output=True,
        text=True,
        cwd=REPO,
        env=env or dict(os.environ),
        timeout=180,
    )


def test_doctor_core_only_reports_torch_and_disk():
    proc = _doctor("--core-only", "--json")
    report = json.loads(proc.stdout)
    names = {c["name"]: c for c in report["checks"]}
    assert {"python", "torch", "core packages", "free disk", "MuJoCo rendering"} <= set(names)
    assert "ROS 2 rclpy + RMW" not in names
    assert "threads" in names["torch"]["detail"]
    assert proc.returncode == (0 if report["ok"] else 1)


def test_doctor_fails_with_a_fix_when_sdm_msgs_is_missing():
    env = dict(os.environ)
    # Drop the colcon install space: rclpy (in the venv) still imports, sdm_msgs does not.
    env["PYTHONPATH"] = os.pathsep.join(
        p for p in env.get("PYTHONPATH", "").split(os.pathsep) if "/install/" not in p
    )
    proc = _doctor(env=env)
    assert proc.returncode == 1
    line = next(ln for ln in proc.stdout.splitlines() if "sdm_msgs" in ln and "FAIL" in ln)
    assert line
    assert "fix: build it: scripts/setup.sh" in proc.stdout
    assert "required check(s) failed" in proc.stdout
