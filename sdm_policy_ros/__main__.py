# Copyright 2026 sdm-policy-ros maintainers
# SPDX-License-Identifier: MIT
"""`python -m sdm_policy_ros EXECUTABLE [--ros-args ...]`: an executable without colcon."""

from __future__ import annotations

import sys

from sdm_policy_ros.executables import MODULES
from sdm_policy_ros.process import run_executable

if len(sys.argv) < 2 or sys.argv[1] not in MODULES:
    print(
        f"usage: python -m sdm_policy_ros {{{','.join(MODULES)}}} [--ros-args ...]",
        file=sys.stderr,
    )
    sys.exit(2)
sys.exit(run_executable(MODULES[sys.argv[1]], [sys.argv[0], *sys.argv[2:]]))
