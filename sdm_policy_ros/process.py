# Copyright 2026 sdm-policy-ros maintainers
# SPDX-License-Identifier: MIT
"""How every executable of this package starts and stops: one shutdown path for all of them.

A SIGINT or SIGTERM can arrive in any phase of a process's life, and each phase ends cleanly:

- **importing** (torch, rclpy, the simulator: seconds on a small computer) — the process ends at
  once with the conventional status 128 + signal (130 for SIGINT, 143 for SIGTERM) and no
  traceback. This is why executables start from `sdm_policy_ros.executables` (stdlib imports
  only), which installs the handlers *before* importing the node module.
- **building** (rclpy initialised; declaring parameters, loading a checkpoint) — the signal
  interrupts construction where it is (`Shutdown` raised in the main thread); the partial node is
  dropped, the context shut down, status 0.
- **running** — the signal only sets `ProcessSignals.requested`; the spin loop returns within
  `SPIN_PERIOD_S`, then the node's own `close()` stops its threads and timers, the executor is
  shut down and the node destroyed *before* the context goes (no publisher ever outlives its
  context), status 0.
- **closing** — further signals are noted and ignored; every wait in closing is bounded.

The starting phases (importing, building) are bounded as well: if the process has not reached
running `START_GRACE_S` after the signal (a library swallowed the `Shutdown`, or the signal went to
a DDS thread while the main thread sat in one long C call), a watchdog woken through
`signal.set_wakeup_fd` ends it with the status of its phase and one line on stderr.

rclpy's own signal handlers are not installed (`SignalHandlerOptions.NO`): they shut the context
down under a node that is still being built (a traceback from `declare_parameter`) or running
(a timer publishing into an invalid context), which is the race this module removes.
"""

from __future__ import annotations

import contextlib
import importlib
import os
import signal
import sys
import threading
import time
from collections.abc import Callable, Iterator
from typing import Any

SPIN_PERIOD_S = 0.1  # the longest a running node takes to notice a signal
START_GRACE_S = 3.0  # a process signalled while it starts is gone within this, whatever it does
HANDLED = (signal.SIGINT, signal.SIGTERM)


class Shutdown(BaseException):
    """Raised in the main thread by the first signal that arrives while a process starts."""

    def __init__(self, signum: int) -> None:
        super().__init__(f"signal {signal.Signals(signum).name}")
        self.signum = signum


class ProcessSignals:
    """SIGINT/SIGTERM handling of one process (see the module docstring for the phases)."""

    def __init__(self, grace_s: float = START_GRACE_S) -> None:
        self.requested = threading.Event()
        self.signum: int | None = None
        self._interrupt = True  # raise Shutdown in the main thread (starting phases)
        self.grace_s = grace_s
        self.starting = True  # until the node runs: the watchdog may end the process
        self.rclpy_up = False  # a forced end reports 0 from here on, 128 + signal before

    def install(self) -> ProcessSignals:
        """Take SIGINT and SIGTERM, then start the watchdog (a signal may already interrupt it)."""
        for signum in HANDLED:
            signal.signal(signum, self._handle)
        self._start_watchdog()
        return self

    def _start_watchdog(self) -> None:
        """Bound the starting phases even where the Python handler cannot act in time.

        CPython runs a Python signal handler in the main thread, between two bytecodes. A
        process-directed signal is often delivered to another thread (DDS, torch's pools), and
        the main thread may sit in one long C call (a torch import that is deferred, a load) or
        in library code that swallows the `Shutdown` it raised. The C-level handler, though,
        writes the signal number to the wakeup fd from whichever thread took the signal, at
        once; this thread waits on it and, if the process is still starting `grace_s` later,
        ends it. Nothing is lost: a starting node has commanded nothing. Running and closing
        phases are never cut short (a recorder may be flushing a bag).
        """
        if threading.current_thread() is not threading.main_thread():
            return  # set_wakeup_fd is main-thread only; such an embedder handles signals itself
        read_fd, write_fd = os.pipe()
        os.set_blocking(write_fd, False)
        signal.set_wakeup_fd(write_fd, warn_on_full_buffer=False)
        threading.Thread(
            target=self._watch, args=(read_fd,), name="sdm-start-watchdog", daemon=True
        ).start()

    def _watch(self, read_fd: int) -> None:
        while True:
            data = os.read(read_fd, 64)  # blocks until a handled signal arrives
            if not data:
                return
            if not self.starting:
                return  # running: the spin loop sees `requested`; no watchdog from here on
            signum = self.signum or data[0]
            deadline = time.monotonic() + self.grace_s
            while self.starting and time.monotonic() < deadline:
                time.sleep(0.02)
            if self.starting:
                status = 0 if self.rclpy_up else 128 + signum
                name = signal.Signals(signum).name
                print(
                    f"[sdm] {name}: still starting {self.grace_s:g} s later, ending the "
                    f"process (status {status})",
                    file=sys.stderr,
                    flush=True,
                )
                os._exit(status)

    def _handle(self, signum: int, _frame: Any) -> None:
        first = not self.requested.is_set()
        if first:
            self.signum = signum
        self.requested.set()
        if first and self._interrupt:
            self._interrupt = False  # one interruption only: the clean-up runs undisturbed
            raise Shutdown(signum)

    @contextlib.contextmanager
    def deferred(self) -> Iterator[None]:
        """Inside, a signal only sets `requested`; on leaving, the first one raises Shutdown.

        For code where an exception raised by the handler cannot unwind: C++ that calls back
        into Python (torch's import, through pybind11) aborts the process (std::terminate,
        status -6) when the handler raises inside the callback.
        """
        was, self._interrupt = self._interrupt, False
        try:
            yield
        finally:
            self._interrupt = was and not self.requested.is_set()
        if was and self.requested.is_set():
            raise Shutdown(self.signum or signal.SIGINT)

    def defer(self) -> None:
        """From now on a signal only sets `requested` (running and closing phases)."""
        self._interrupt = False

    @property
    def exit_status(self) -> int:
        """128 + the signal that ended the process before rclpy started (0 if none)."""
        return 128 + self.signum if self.signum is not None else 0


_SIGNALS: ProcessSignals | None = None


def process_signals() -> ProcessSignals:
    """Return this process's handlers, installed on first use (idempotent)."""
    global _SIGNALS
    if _SIGNALS is None:
        _SIGNALS = ProcessSignals()  # known before install: a signal may raise during it
        _SIGNALS.install()
    return _SIGNALS


def signals_deferred() -> contextlib.AbstractContextManager[None]:
    """Defer signals with this process's handlers, if any are installed.

    `ProcessSignals.deferred` of this process's handlers; nothing where none are installed
    (a node built inside another program, such as a test, keeps that program's handling).
    """
    return _SIGNALS.deferred() if _SIGNALS is not None else contextlib.nullcontext()


def run_executable(module: str, args: list[str] | None = None) -> int:
    """Install the handlers, import `module` (interruptible) and return its `main(args)`."""
    try:
        process_signals()  # the first signal may raise Shutdown as soon as a handler is in
        main = importlib.import_module(module).main
    except BaseException:
        # Shutdown itself, or what a library made of it when it landed inside its code
        if _SIGNALS is not None and _SIGNALS.requested.is_set():
            return _SIGNALS.exit_status
        raise
    return int(main(args) or 0)


def run_node(
    name: str,
    build: Callable[[], Any],
    *,
    args: list[str] | None = None,
    startup_errors: tuple[type[BaseException], ...] = (ValueError,),
    run: Callable[[Any, Any, threading.Event], int] | None = None,
    executor_factory: Callable[[], Any] | None = None,
    interrupt_run: bool = False,
) -> int:
    """Initialise rclpy, build the node, spin it until a signal (or `run` returns), close.

    build(): the node (a rclpy Node; an optional `start()` is called once it is added to the
    executor, an optional `close()` before it is destroyed: stop threads and timers there).
    startup_errors: exceptions of `build` that mean bad configuration: one line on stderr,
    status 2. run(node, executor, stop_event) -> status replaces the default loop (spin the
    executor in SPIN_PERIOD_S slices until the event is set or rclpy stops). interrupt_run: a
    signal raises `Shutdown` inside `run` as well (a client such as sim_eval_driver, whose `run`
    waits in plain Python) and the status is 128 + signal: the job did not finish. Returns the
    status.
    """
    signals = process_signals()
    try:
        import rclpy
        from rclpy.executors import ExternalShutdownException, SingleThreadedExecutor
        from rclpy.signals import SignalHandlerOptions

        rclpy.init(args=args, signal_handler_options=SignalHandlerOptions.NO)
        signals.rclpy_up = True
    except BaseException:
        if signals.requested.is_set():
            return signals.exit_status
        raise
    node = executor = None
    status = 0
    running = False
    try:
        try:
            node = build()
        except BaseException as err:
            signals.defer()
            if signals.requested.is_set():
                # Shutdown, or what a library made of it when it landed inside its code (an
                # interrupted checkpoint read reports a corrupt file): the signal ends it.
                return 0
            if isinstance(err, startup_errors):
                print(f"[{name}] cannot start: {err}", file=sys.stderr, flush=True)
                return 2
            raise
        if not interrupt_run:
            signals.defer()
        if signals.requested.is_set():
            return 0
        running = True
        signals.starting = False
        executor = (executor_factory or SingleThreadedExecutor)()
        executor.add_node(node)
        if hasattr(node, "start"):
            node.start()
        if run is not None:
            status = int(run(node, executor, signals.requested) or 0)
        else:
            while rclpy.ok() and not signals.requested.is_set():
                executor.spin_once(timeout_sec=SPIN_PERIOD_S)
    except BaseException as err:
        if not (signals.requested.is_set() or isinstance(err, ExternalShutdownException)):
            raise
        status = signals.exit_status if running and interrupt_run else 0
    finally:
        signals.defer()
        if node is not None and hasattr(node, "close"):
            node.close()
        if executor is not None:
            executor.shutdown(timeout_sec=1.0)
        if node is not None:
            node.destroy_node()
        rclpy.try_shutdown()
    return status
