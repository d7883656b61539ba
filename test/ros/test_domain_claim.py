# Copyright 2026 sdm-policy-ros maintainers
# SPDX-License-Identifier: MIT
"""Parallel test runs on one machine never share a ROS domain (test/conftest.py claims one)."""

from __future__ import annotations

import os
import subprocess
import sys

from test.conftest import REPO

CLAIM = "import os, test.conftest; print(os.environ['ROS_DOMAIN_ID'], flush=True); input()"


def test_concurrent_runs_claim_different_domains():
    # The same order of domains for all three: a pick without the lock would give one domain.
    env = {k: v for k, v in os.environ.items() if k != "ROS_DOMAIN_ID"}
    env["SDM_TEST_DOMAIN_ORDER_SEED"] = "7"
    runs = [
        subprocess.Popen(
            [sys.executable, "-c", CLAIM],
            cwd=REPO,
            env=env,
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
        )
        for _ in range(3)
    ]
    try:
        domains = [run.stdout.readline().strip() for run in runs]  # all three alive now
    finally:
        for run in runs:
            run.communicate("\n", timeout=30)
    assert all(d.isdigit() and 10 <= int(d) <= 99 for d in domains), domains
    held = os.environ["ROS_DOMAIN_ID"]  # this run's own, claimed (or set) before them
    assert len({*domains, held}) == 4, f"runs shared a domain: {domains} and this run's {held}"
