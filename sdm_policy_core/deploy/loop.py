# Copyright 2026 sdm-policy-ros maintainers
# SPDX-License-Identifier: MIT
"""The control thread of a deployed policy, without ROS.

`trigger: timer`: a step every 1/control_rate_hz s on the steady clock (a late step is not
repeated). `trigger: observation` (simulators): a step per new observation (a cloud; a
state-only policy's joint state), after the joint state of the same stamp when
`observation_sync_s` > 0 (clouds and states travel on separate topics). An observation already
acted on is not acted on again when it comes back with the same stamp: a lockstep simulator
resends its observation until a command arrives.

The step runs in this thread of its own, outside any executor. Measured with 1024-point clouds
at 30 Hz on 2 cores: with the step inside a ROS MultiThreadedExecutor, a DDIM-10 chunk took
1-5 s (executor threads competing with the inference for the GIL and the cores); this way it
takes ~75 ms, the one-step chunk ~9 ms (`sdm bench node`).

Each step that planned from a new observation records its stages (`deploy.timing`) in
`session.timing`: the loop's perf_counter stamps around the step, the build and the send.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from sdm_policy_core.control import TickResult

if TYPE_CHECKING:
    from sdm_policy_core.deploy.session import ControlSession


class ControlLoop:
    """Runs `session.step(now())` and hands the resulting messages to `send`.

    Each result becomes messages with `build`, handed to `send` (see the module docstring).
    `sync_s()`: the current observation_sync_s.
    """

    def __init__(
        self,
        session: ControlSession,
        now: Callable[[], float],
        build: Callable[[TickResult], list[Any]],
        send: Callable[[list[Any]], None],
        sync_s: Callable[[], float] = lambda: 0.0,
    ) -> None:
        self.session, self.now, self.sync_s = session, now, sync_s
        self.build, self.send = build, send
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="sdm_control", daemon=True)

    def start(self) -> None:
        self._thread.start()

    def stop(self, timeout: float = 5.0) -> None:
        """Stop the thread (before the publishers go with the node)."""
        self._stop.set()
        self.session.trigger.wake.set()
        if self._thread.is_alive():
            self._thread.join(timeout=timeout)

    def _run(self) -> None:
        trigger = self.session.trigger
        next_time = time.monotonic()
        while not self._stop.is_set():
            config = self.session.config
            if config.trigger == "observation":
                if not trigger.wake.wait(timeout=0.1):
                    continue
                trigger.wake.clear()
                if self._stop.is_set():
                    break
                stamp = trigger.stamp
                if stamp == trigger.acted:
                    continue  # a cloud already acted on, again (a lockstep simulator resends)
                sync_s = self.sync_s()
                if sync_s > 0 and self.session.assembler.needs_joints:
                    trigger.wait_for_state(stamp, sync_s)
            else:
                next_time += 1.0 / config.control_rate_hz
                delay = next_time - time.monotonic()
                if delay > 0:
                    if self._stop.wait(delay):
                        break
                else:
                    next_time = time.monotonic()  # fell behind: no burst of late steps
            try:
                if self._step() and config.trigger == "observation":
                    trigger.acted = stamp
            except Exception as err:  # the loop must survive anything a step raises
                self.session.fail(err)

    def _step(self) -> bool:
        """One step; True when it published a command."""
        observed = self.session.inputs.last_observation_times
        started = time.perf_counter()
        now = self.now()
        result = self.session.step(now)
        if result is None or self._stop.is_set():
            return False  # closing: the publishers are about to go with the node
        stepped = time.perf_counter()
        messages = self.build(result)
        built = time.perf_counter()
        self.send(messages)
        if result.chunk is not None and observed is not None and observed[0] == result.obs_stamp:
            stamp, received, delivered = observed
            preprocess = self.session.last_preprocess_time()
            inference = result.chunk.inference_time
            self.session.timing.record(
                transport=now - stamp - (started - received),  # on the node's clock
                decode=delivered - received,
                queueing=started - delivered,
                preprocess=preprocess,
                inference=inference,
                control=stepped - started - preprocess - inference,
                build=built - stepped,
                publish=time.perf_counter() - built,
            )
        if result.command is None:
            return False
        self.session.commanded()
        return True
