# Copyright 2026 sdm-policy-ros maintainers
# SPDX-License-Identifier: MIT
"""A real process built on sdm_policy_ros.process whose start misbehaves the ways libraries do.

    python test/ros/starting_peer.py swallow        # build catches every interruption, works on
    python test/ros/starting_peer.py blocked        # the signal lands on another thread while the
                                                    # main thread sits in one long C call
    python test/ros/starting_peer.py importing      # swallows it before rclpy is initialised
    python test/ros/starting_peer.py slow-close     # runs; its close() takes longer than the grace

Each prints a line when it reaches the phase the test signals in; see test_process.py.
"""

from __future__ import annotations

import contextlib
import signal
import sys
import time

from sdm_policy_ros.process import START_GRACE_S, process_signals, run_node

WORK_S = 60.0  # far longer than any bound the test allows


def _stubborn_work() -> None:
    """Do what a library that catches BaseException (or retries on EINTR forever) amounts to."""
    deadline = time.monotonic() + WORK_S
    while time.monotonic() < deadline:
        with contextlib.suppress(BaseException):  # the misbehaviour under test
            time.sleep(0.05)


def main(mode: str) -> int:
    signals = process_signals()
    if mode == "importing":
        print("importing", flush=True)
        _stubborn_work()
        return 0

    def build():
        if mode == "swallow":
            print("building", flush=True)
            _stubborn_work()
        elif mode == "blocked":
            # The main thread blocks the signals, so the kernel hands them to another thread
            # (here the watchdog's; in a node, a DDS or torch thread) and CPython's handler waits
            # for a main thread that sleeps in C for a minute.
            signal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGINT, signal.SIGTERM})
            print("building", flush=True)
            time.sleep(WORK_S)
        from rclpy.node import Node

        class SlowClose(Node):
            def start(self) -> None:  # run_node calls it once the node spins
                print("running", flush=True)

            def close(self) -> None:
                print("closing", flush=True)
                time.sleep(1.5 * START_GRACE_S)
                print("closed", flush=True)

        return SlowClose("starting_peer")

    status = run_node("starting_peer", build)
    assert signals.requested.is_set()
    return status


if __name__ == "__main__":
    sys.exit(main(sys.argv[1]))
