"""A signal while a node starts ends the process within START_GRACE_S even when the main
thread cannot act on it: here a library that swallows the interruption and waits (as a long
C call or an over-eager `except BaseException` would). Real rclpy, a real process, a real
signal."""

from __future__ import annotations

import signal
import subprocess
import sys
import time

import pytest

from sdm_policy_ros.process import START_GRACE_S
from test.conftest import REPO

SCRIPT = r"""
import sys, time
from sdm_policy_ros.process import run_node

def build():
    try:
        print("building", flush=True)  # inside the try: the signal can only land in it
        time.sleep(60)
    except BaseException:  # a library that makes the interruption something it waits out
        time.sleep(60)
    raise SystemExit("unreachable: the watchdog ends the process first")

sys.exit(run_node("stuck_node", build))
"""


@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGTERM])
def test_a_signal_while_building_ends_the_process_despite_a_library_that_waits(sig):
    proc = subprocess.Popen(
        [sys.executable, "-c", SCRIPT],
        cwd=REPO,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    try:
        assert proc.stdout.readline().strip() == "building"
        signalled = time.monotonic()
        proc.send_signal(sig)
        out, _ = proc.communicate(timeout=START_GRACE_S + 20)
        took = time.monotonic() - signalled
    finally:
        proc.kill()
    assert proc.returncode == 0, out  # a node stopped while it is built ends with 0
    assert "Traceback" not in out and "unreachable" not in out, out
    assert START_GRACE_S - 0.5 < took < START_GRACE_S + 10, took  # the watchdog, not the wait
