# Copyright 2026 sdm-policy-ros maintainers
# SPDX-License-Identifier: MIT
"""`sim_eval_driver`: the `sdm eval` or `sdm demos` protocol over ROS 2 against a sim bridge.

`sim_eval_driver`: runs the `sdm eval` protocol over ROS 2 against a sim bridge and a policy
node, and writes the result JSON (`sim_eval_driver` node; started by sim_eval.launch.py and
`sdm sim-eval`). With `mode: demos` it runs `sdm demos`' protocol against a bridge driven by a
teleoperator while a recorder writes the bag (sim_record.launch.py).

For each seed s: set the policy's `sampler_seed` to s (the noise generator, as `sdm eval` seeds
it); for each episode i: disable and re-enable the policy (clears its observation history and
plan), reset the bridge with task and seed `episode_seed(s, i, EVAL_STREAM)` (the placements
`sdm eval` uses), wait for the bridge's episode_status to say done, and ask `~/report_success`
for the outcome. Meanwhile it records every ActionChunk (inference_time; delay from the
observation's arrival, matched by stamp through `joint_states`, to the chunk's arrival).
Episodes are attributed by simulation time: a chunk belongs to the episode whose stamps
contain its observation's stamp.

Parameters: task, episodes (per seed), seeds (int array), result (JSON path; empty: print
only), bridge (node name, default sim_bridge), policy (default sdm_policy_node),
startup_timeout_s, episode_timeout_s (a stuck episode is ended and counted as failed), plus
settings copied into the result (step_mode, control_rate_hz, max_episode_steps, threads,
checkpoint); the policy's `backend` and `sampler_noise` are read from the policy node and
recorded as `backend` and `noise`. Progress lines start with "[sim-eval]". Exit code 0 when
every episode ran, 1 when the bridge or policy never came up, 2 on bad parameters.

mode demos: `episodes` successful demonstrations are wanted; attempt k is reset with
`episode_seed(seeds[0], k, DEMO_STREAM)` (the placements `sdm demos` tries), kept when it
succeeded on `min_success_steps` steps (run the bridge with stop_on_success of that count),
up to max(2 N, N + 10) attempts. It waits for a joint_commands publisher (the teleoperator) and
for the node `recorder` (default bag_recorder; empty: none) to subscribe `points` first. The
result JSON lists the kept and discarded episodes (episode_id, reset_seed, length); exit code 1
when fewer than `episodes` were kept.
"""

from __future__ import annotations

import json
import os
import sys
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from rclpy.executors import MultiThreadedExecutor
from rclpy.node import Node
from rclpy.parameter import Parameter, parameter_value_to_python
from rclpy.parameter_client import AsyncParameterClient
from rclpy.qos import QoSDurabilityPolicy, QoSProfile, ReliabilityPolicy
from sdm_msgs.msg import ActionChunk, EpisodeStatus, PolicyStatus
from sdm_msgs.srv import ResetEpisode
from sensor_msgs.msg import JointState
from std_srvs.srv import SetBool, Trigger

from sdm_policy_core.config import ConfigError
from sdm_policy_core.conversions import stamp_to_nanoseconds
from sdm_policy_core.keys import (
    TOPIC_EPISODE_STATUS,
    TOPIC_JOINT_COMMANDS,
    TOPIC_JOINT_STATES,
    TOPIC_POINTS,
)
from sdm_policy_ros.params import declare_dataclass_parameters, parameter
from sdm_policy_ros.process import run_node

NODE_NAME = "sim_eval_driver"
PROGRESS = "[sim-eval]"
RELIABLE = QoSProfile(depth=100, reliability=ReliabilityPolicy.RELIABLE)
LATCHED = QoSProfile(
    depth=10,
    reliability=ReliabilityPolicy.RELIABLE,
    durability=QoSDurabilityPolicy.TRANSIENT_LOCAL,
)


class DriverError(RuntimeError):
    """The evaluation cannot go on (a peer is missing or refused)."""


@dataclass
class SimEvalParameters:
    """The driver's parameters, declared by sdm_policy_ros.params.

    sdm sim-eval and sim_eval.launch.py set them.
    """

    task: str = parameter("button-press-v3", "task of the episodes (the bridge resets to it)")
    episodes: int = parameter(10, "episodes per evaluation seed (demos: demonstrations kept)")
    seeds: tuple[int, ...] = parameter([0], "evaluation seeds (sdm eval's episode seeds)")
    result: str = parameter("", "path of the result JSON (sdm eval's keys); empty: none")
    bridge: str = parameter("sim_bridge", "name of the sim bridge node")
    policy: str = parameter("sdm_policy_node", "name of the policy node")
    startup_timeout_s: float = parameter(180.0, "[s] wait for the bridge and the policy node")
    episode_timeout_s: float = parameter(600.0, "[s] wall time of one episode at most")
    checkpoint: str = parameter("", "the policy's checkpoint (recorded in the result)")
    step_mode: str = parameter("lockstep", "the bridge's step mode (recorded in the result)")
    control_rate_hz: float = parameter(10.0, "[Hz] the control rate (recorded in the result)")
    max_episode_steps: int = parameter(
        0, "episode length recorded when the bridge reports none; 0: the task's own"
    )
    threads: int = parameter(2, "the policy's inference threads (recorded in the result)")
    mode: str = parameter(
        "eval",
        "eval: evaluate the policy; demos: record expert demonstrations",
        choices=("eval", "demos"),
    )
    min_success_steps: int = parameter(5, "demos: success steps an episode needs to be kept")
    recorder: str = parameter("bag_recorder", "demos: name of the bag recorder node")

    def __post_init__(self) -> None:
        if self.episodes < 1 or not self.seeds or min(self.seeds) < 0:
            raise ConfigError(
                f"episodes must be >= 1 and seeds non-negative integers, got "
                f"{self.episodes} and {list(self.seeds)}"
            )


class SimEvalDriver(Node):
    """Service calls from the main thread; subscriptions on an executor thread."""

    def __init__(self) -> None:
        super().__init__(NODE_NAME)
        self.p = declare_dataclass_parameters(self, SimEvalParameters)
        self.seeds, self.mode = list(self.p.seeds), self.p.mode
        bridge, policy = self.p.bridge, self.p.policy
        self._reset = self.create_client(ResetEpisode, f"{bridge}/reset_episode")
        self._report = self.create_client(Trigger, f"{bridge}/report_success")
        self._end = self.create_client(Trigger, f"{bridge}/end_episode")
        self._enable = self.create_client(SetBool, f"{policy}/enable")
        self._params = AsyncParameterClient(self, policy)
        self._lock = threading.Lock()
        self._status: dict[int, EpisodeStatus] = {}  # episode_id -> newest status
        self._first_stamp: dict[int, int] = {}  # episode_id -> stamp [ns] of its first status
        self._policy_status: PolicyStatus | None = None
        self._previous_end = 0  # [ns] sim time at the end of the previous episode
        self._max_steps = 0  # episode length the bridge reported
        self._obs_arrival: dict[int, float] = {}  # observation stamp [ns] -> arrival (monotonic)
        self._chunks: list[tuple[int, float, float, str, int, str]] = []
        self.create_subscription(EpisodeStatus, TOPIC_EPISODE_STATUS, self._on_status, LATCHED)
        self.create_subscription(ActionChunk, "action_chunk", self._on_chunk, RELIABLE)
        self.create_subscription(JointState, TOPIC_JOINT_STATES, self._on_joints, RELIABLE)
        self.create_subscription(PolicyStatus, "status", self._on_policy_status, 10)

    # -- subscriptions ---------------------------------------------------------------------------
    def _on_status(self, msg: EpisodeStatus) -> None:
        with self._lock:
            self._status[msg.episode_id] = msg
            if msg.step == 0:
                self._first_stamp.setdefault(
                    msg.episode_id, stamp_to_nanoseconds(msg.header.stamp)
                )

    def _on_joints(self, msg: JointState) -> None:
        with self._lock:
            # setdefault: a resent observation (same stamp) keeps its first arrival
            self._obs_arrival.setdefault(stamp_to_nanoseconds(msg.header.stamp), time.monotonic())
            if len(self._obs_arrival) > 5000:  # bounded: keep the newest half
                for key in sorted(self._obs_arrival)[:2500]:
                    del self._obs_arrival[key]

    def _on_chunk(self, msg: ActionChunk) -> None:
        arrival = time.monotonic()
        stamp = stamp_to_nanoseconds(msg.header.stamp)
        with self._lock:
            seen = self._obs_arrival.get(stamp)
            delay = arrival - seen if seen is not None else float("nan")
            self._chunks.append(
                (stamp, float(msg.inference_time), delay, msg.sampler, msg.steps, msg.policy_id)
            )

    def _on_policy_status(self, msg: PolicyStatus) -> None:
        self._policy_status = msg

    # -- synchronous helpers (main thread) -------------------------------------------------------
    def _call(self, client, request, timeout: float = 30.0):
        if not client.wait_for_service(timeout_sec=timeout):
            raise DriverError(f"service {client.srv_name} is not available")
        future = client.call_async(request)
        done = threading.Event()
        future.add_done_callback(lambda _f: done.set())
        if not done.wait(timeout):
            raise DriverError(f"service {client.srv_name} did not answer within {timeout} s")
        return future.result()

    def _set_policy_enabled(self, enabled: bool) -> None:
        response = self._call(self._enable, SetBool.Request(data=enabled))
        if not response.success:
            raise DriverError(f"policy refused ~/enable({enabled}): {response.message}")

    def _set_sampler_seed(self, seed: int) -> None:
        future = self._params.set_parameters([Parameter("sampler_seed", value=int(seed))])
        done = threading.Event()
        future.add_done_callback(lambda _f: done.set())
        if not done.wait(30.0) or not future.result().results[0].successful:
            raise DriverError(f"could not set the policy's sampler_seed to {seed}")

    def _policy_runtime(self) -> tuple[str, str]:
        """Read the backend and noise the policy node runs from its parameters.

        (backend, noise) the policy node runs, from its parameters: the result records what
        ran, not what the launch asked for. The onnxruntime backend always draws numpy noise.
        """
        names = ["backend", "sampler_noise"]
        future = self._params.get_parameters(names)
        done = threading.Event()
        future.add_done_callback(lambda _f: done.set())
        if not done.wait(30.0) or future.result() is None:
            raise DriverError(f"could not read {names} of {self.p.policy}")
        backend, noise = (str(parameter_value_to_python(v)) for v in future.result().values)
        return backend, "numpy" if backend == "onnxruntime" else noise

    def wait_for_peers(self) -> None:
        """Wait for the bridge, then the policy (eval) or teleoperator and recorder (demos).

        Bridge services, then (eval) policy services and a loaded checkpoint, or (demos) a
        teleoperator publishing joint_commands and the recorder, within startup_timeout_s.
        """
        deadline = time.monotonic() + self.p.startup_timeout_s
        if self.mode == "demos":
            for client in (self._reset, self._report, self._end):
                if not client.wait_for_service(timeout_sec=max(deadline - time.monotonic(), 0.1)):
                    raise DriverError(f"{client.srv_name} did not appear: is the bridge running?")
            recorder = self.p.recorder
            while time.monotonic() < deadline:
                subscribers = {
                    i.node_name for i in self.get_subscriptions_info_by_topic(TOPIC_POINTS)
                }
                if self.count_publishers(TOPIC_JOINT_COMMANDS) and (
                    not recorder or recorder in subscribers
                ):
                    time.sleep(0.5)  # matching follows discovery
                    return
                time.sleep(0.1)
            raise DriverError(f"no teleoperator on joint_commands or no {recorder} on points")
        for client in (self._reset, self._report, self._end, self._enable):
            left = max(deadline - time.monotonic(), 0.1)
            if not client.wait_for_service(timeout_sec=left):
                raise DriverError(f"{client.srv_name} did not appear: is the node running?")
        if not self._params.wait_for_services(timeout_sec=max(deadline - time.monotonic(), 0.1)):
            raise DriverError(f"parameter services of {self.p.policy} did not appear")
        while time.monotonic() < deadline:
            status = self._policy_status
            if status is not None and status.policy_id:
                break
            time.sleep(0.1)
        else:
            raise DriverError(f"{self.p.policy} reports no loaded checkpoint")
        # The first observation must not be lost: wait until the policy's subscription and
        # publisher are in the graph (discovery), then give the matching a moment.
        while time.monotonic() < deadline:
            if self.count_subscribers(TOPIC_POINTS) >= 1 and self.count_publishers(
                TOPIC_JOINT_COMMANDS
            ):
                time.sleep(0.5)
                return
            time.sleep(0.1)
        raise DriverError("the policy node does not subscribe `points` / publish joint_commands")

    # -- the protocol ----------------------------------------------------------------------------
    def run_episode(self, seed: int, index: int, reset_seed: int) -> dict[str, Any]:
        """One episode: policy re-enabled, bridge reset, wait for done, collect the outcome."""
        if self.mode == "eval":
            self._set_policy_enabled(False)
            self._set_policy_enabled(True)  # a fresh history and plan
        start = time.monotonic()
        response = self._call(
            self._reset, ResetEpisode.Request(task=self.p.task, seed=int(reset_seed))
        )
        if not response.success:
            raise DriverError(f"bridge refused the reset: {response.message}")
        episode_id = response.episode_id
        deadline = start + self.p.episode_timeout_s
        timed_out = False
        while True:
            with self._lock:
                status = self._status.get(episode_id)
            if status is not None and status.done:
                break
            if time.monotonic() > deadline:
                self._call(self._end, Trigger.Request())
                timed_out = True
                break
            time.sleep(0.005)
        if self.mode == "eval":
            self._set_policy_enabled(False)
        report = json.loads(self._call(self._report, Trigger.Request()).message)
        self._max_steps = int(report.get("max_steps", 0))  # the bridge's (0: the task's own)
        time.sleep(0.05)  # chunks published just before the end are still on their way
        with self._lock:
            first = self._first_stamp.get(episode_id, self._previous_end + 1)
            last = stamp_to_nanoseconds(self._status[episode_id].header.stamp)
            chunks = [c for c in self._chunks if first <= c[0] <= last]
        self._previous_end = last
        if report.get("episode_id") != episode_id:
            raise DriverError(
                f"bridge reported episode {report.get('episode_id')}, not {episode_id}"
            )
        return {
            "seed": seed,
            "index": index,
            "reset_seed": int(reset_seed),
            "episode_id": episode_id,
            "success": bool(report["success"]),
            "length": int(report["step"]),
            "reward": float(report["reward"]),
            "end_reason": "timeout" if timed_out else report["end_reason"],
            "success_steps": int(report["success_steps"]),
            "held_steps": int(report["held_steps"]),
            "commanded_steps": int(report["commanded_steps"]),
            "wall_s": float(report["wall_s"]),
            "achieved_hz": float(report["achieved_hz"]),
            "policy_calls": len(chunks),
            "latencies_s": [c[1] for c in chunks],
            "chunk_delays_s": [c[2] for c in chunks if c[2] == c[2]],  # NaN: unmatched stamp
            "command_latencies_ms": report.get("command_latencies_ms", []),
        }

    def run_demos(self) -> dict[str, Any]:
        """Run `sdm demos`' rule through ROS until `episodes` demonstrations succeeded.

        `sdm demos`' rule through ROS: episodes with reset seeds
        `episode_seed(seed, attempt, DEMO_STREAM)` until `episodes` succeeded on at least
        `min_success_steps` steps (give up after max(2 N, N + 10) attempts).
        """
        from sdm_policy_core.sim.demos import DEMO_STREAM, episode_seed

        start = time.monotonic()
        self.wait_for_peers()
        wanted, seed = self.p.episodes, self.seeds[0]
        max_attempts = max(2 * wanted, wanted + 10)
        kept: list[dict[str, Any]] = []
        discarded: list[dict[str, Any]] = []
        while len(kept) < wanted and len(kept) + len(discarded) < max_attempts:
            attempt = len(kept) + len(discarded)
            record = self.run_episode(seed, attempt, episode_seed(seed, attempt, DEMO_STREAM))
            summary = {k: record[k] for k in ("episode_id", "reset_seed", "length", "success")}
            ok = record["success_steps"] >= self.p.min_success_steps
            (kept if ok else discarded).append(summary)
            print(
                f"{PROGRESS} demo {len(kept)}/{wanted} (attempt {attempt + 1}): "
                f"{'kept' if ok else 'discarded'}, {record['length']} steps, "
                f"{record['achieved_hz']:.1f} Hz",
                flush=True,
            )
        return {
            "mode": "demos",
            "task": self.p.task,
            "seed": seed,
            "episodes": len(kept),
            "requested": wanted,
            "attempts": len(kept) + len(discarded),
            "kept": kept,
            "discarded": discarded,
            "steps": sum(k["length"] for k in kept),
            "wall_time_s": time.monotonic() - start,
        }

    def run(self) -> dict[str, Any]:
        from sdm_policy_core.eval.sim_in_loop import checkpoint_meta, sim_eval_result
        from sdm_policy_core.sim.demos import EVAL_STREAM, episode_seed
        from sdm_policy_core.sim.episode import METAWORLD, served_task

        if self.mode == "demos":
            return self.run_demos()
        family = served_task(self.p.task)[1]
        start = time.monotonic()
        self.wait_for_peers()
        backend, noise = self._policy_runtime()
        n, total = self.p.episodes, self.p.episodes * len(self.seeds)
        records: list[dict[str, Any]] = []
        for s in self.seeds:
            self._set_sampler_seed(s)
            for i in range(n):
                record = self.run_episode(s, i, episode_seed(s, i, EVAL_STREAM))
                records.append(record)
                rate = sum(r["success"] for r in records) / len(records)
                print(
                    f"{PROGRESS} episode {len(records)}/{total} seed {s}: "
                    f"{'success' if record['success'] else 'failure'} after {record['length']} "
                    f"steps ({record['end_reason']}, {record['held_steps']} held, "
                    f"{record['achieved_hz']:.1f} Hz); success so far {rate:.2f}",
                    flush=True,
                )
        with self._lock:
            chunks = list(self._chunks)
        if chunks:
            sampler, steps, policy_id = chunks[-1][3], chunks[-1][4], chunks[-1][5]
        else:
            status = self._policy_status
            sampler, steps, policy_id = "", 0, status.policy_id if status else ""
        meta = {
            "task": self.p.task,
            "checkpoint": self.p.checkpoint,
            "policy_id": policy_id,
            "sampler": sampler,
            "steps": steps,
            "seeds": self.seeds,
            "episodes": n,
            "wall_time_s": time.monotonic() - start,
            "step_mode": self.p.step_mode,
            "control_rate_hz": self.p.control_rate_hz,
            "max_episode_steps": self._max_steps or self.p.max_episode_steps,
            "threads": self.p.threads,
            "backend": backend,
            "noise": noise,
            "sim": "mujoco" if family == METAWORLD else family,
            **(checkpoint_meta(self.p.checkpoint) if self.p.checkpoint else {}),
        }
        return sim_eval_result(meta, records)


def _write_json(result: dict[str, Any], path: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(json.dumps(result, indent=2) + "\n")
    os.replace(tmp, path)


def _drive(node: SimEvalDriver, executor, _stop) -> int:
    """Spin the executor in a thread while this (main) thread drives the episodes."""
    spinner = threading.Thread(target=executor.spin, daemon=True)
    spinner.start()
    try:
        result = node.run()
        if node.mode == "demos":
            print(
                f"{PROGRESS} recorded {result['episodes']}/{result['requested']} demos "
                f"({result['steps']} steps) in {result['attempts']} attempts",
                flush=True,
            )
            code = 0 if result["episodes"] == result["requested"] else 1
        else:
            lat = result["latency_ms"]
            print(
                f"{PROGRESS} {result['task']} {result['sampler']}({result['steps']}): success "
                f"{result['success_rate']:.3f} over {result['episodes_total']} episodes, "
                f"latency p50 {lat['p50']:.1f} ms p99 {lat['p99']:.1f} ms, achieved "
                f"{result['achieved_control_hz']:.1f} Hz",
                flush=True,
            )
            code = 0
        if node.p.result:
            _write_json(result, Path(node.p.result))
    except DriverError as err:
        print(f"[{NODE_NAME}] error: {err}", file=sys.stderr, flush=True)
        code = 1
    finally:
        executor.shutdown(timeout_sec=1.0)  # a spin thread left running aborts the process
        spinner.join(timeout=5)
    return code


def main(args: list[str] | None = None) -> int:
    # A signal interrupts the drive where it waits: status 128 + signal, no result written.
    return run_node(
        NODE_NAME,
        SimEvalDriver,
        args=args,
        run=_drive,
        executor_factory=lambda: MultiThreadedExecutor(num_threads=2),
        interrupt_run=True,
    )


if __name__ == "__main__":
    sys.exit(main())
