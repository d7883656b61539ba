# Copyright 2026 sdm-policy-ros maintainers
# SPDX-License-Identifier: MIT
"""Sim-in-the-loop evaluation over ROS 2 (`sdm sim-eval`): the core side, without rclpy.

    result = run_sim_eval("runs/sdm/checkpoints/latest", "button-press-v3", episodes=10,
                          seeds=(0,), out="results/sdm_ros.json")

`run_sim_eval` starts `python -m sdm_policy_ros.launch_runner sim_eval sim:=mujoco ...` as a
subprocess: the sim bridge (`sim_bridge_node`, lockstep; MetaWorld on MuJoCo, or a served
registry task such as obstacle-2d), the policy node (`policy_node`, robot metaworld_sim or the
task's profile, sim time, one action per observation) and the evaluation driver
(`sim_eval_driver`), all real ROS 2 processes. The driver runs the same protocol as `sdm eval`:
for each seed s the policy's sampler noise is seeded with s, and episode i of seed s is reset
with `episode_seed(s, i, EVAL_STREAM)`; every predicted action of a chunk is executed, an
episode succeeds at the task's first success flag and fails at `max_episode_steps` (or, on
obstacle-2d, at a collision). Lockstep
stepping makes the observation sequence the same as in-process, so both evaluations of one
checkpoint measure the same thing (`test/ros/test_sim_eval_driver.py` compares them).

`sim_eval_result` turns the driver's episode records into the `sdm eval` result keys
(success_rate, episodes, seeds, sampler, steps, latency_ms {p50, p99}, control_hz, per_seed,
...), with the same meanings: latency_ms is the policy's own inference time per call
(ActionChunk.inference_time), control_hz = 1000 / policy ms per executed action. Added keys
measure the ROS loop: `achieved_control_hz` (= `loop_hz`: simulation steps per wall second,
the rate the whole ROS loop sustained), `chunk_latency_ms` (observation published -> action
chunk received, measured in the driver), `command_latency_ms` (observation published ->
command received, measured in the bridge), `held_steps` (steps the robot held for want of a
command), `backend` and `noise` (what the policy node ran, read from its parameters) and, with
the onnxruntime backend, `onnx_model` (the exported file, its sha256 and its verified difference
from PyTorch).

Backends: `backend="onnxruntime"` runs the policy node on the graph `sdm export` wrote into the
checkpoint directory (the node never imports torch). `onnx_model_for` finds that export and
checks that it runs the sampler the evaluation asks for, or, when the directory holds none, makes
it with `export_policy` (what `sdm export --out CKPT_DIR/policy.onnx` does, verified against
PyTorch) so that a torch checkpoint can be evaluated on either backend with one command.
"""

from __future__ import annotations

import importlib.util
import os
import signal
import subprocess
import sys
import threading
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from sdm_policy_core.eval.rollout import EpisodeResult, summarize
from sdm_policy_core.keys import NOISE_SOURCES, RUNTIME_BACKENDS

LAUNCH_MODULE = "sdm_policy_ros.launch_runner"  # started as a subprocess, never imported here
PROGRESS_PREFIX = "[sim-eval]"  # lines of the driver that `sdm sim-eval` shows on the terminal
EXPORT_NAME = "policy.onnx"  # what onnx_model_for writes into a checkpoint directory


class SimEvalError(RuntimeError):
    """The ROS evaluation could not run; the message says what failed and where the log is."""


def _stats_ms(values_s: Sequence[float]) -> dict[str, float]:
    """p50 / p99 / mean [ms] and count of durations given in seconds."""
    if not values_s:
        return {"p50": 0.0, "p99": 0.0, "mean": 0.0, "n": 0}
    a = 1e3 * np.asarray(values_s, dtype=np.float64)
    return {
        "p50": float(np.percentile(a, 50)),
        "p99": float(np.percentile(a, 99)),
        "mean": float(a.mean()),
        "n": int(a.size),
    }


def checkpoint_meta(checkpoint: str | Path) -> dict[str, Any]:
    """Read kind, horizons and point count of a checkpoint from its config.json.

    {} if unreadable; the keys `sdm eval` reports about the policy.
    """
    import json

    try:
        config = json.loads((Path(checkpoint) / "config.json").read_text())
        model, cloud = config.get("model", {}), config["obs"].get("point_cloud_shape")
        return {
            "kind": config.get("kind", ""),
            "n_obs_steps": int(model["n_obs_steps"]),
            "n_action_steps": int(model["n_action_steps"]),
            "horizon": int(model["horizon"]),
            "num_points": int(cloud[0]) if cloud else 0,
        }
    except (OSError, ValueError, KeyError, TypeError):
        return {}


def sim_eval_result(meta: Mapping[str, Any], records: Sequence[Mapping[str, Any]]) -> dict:
    """Build the `sdm sim-eval` result from the driver's episode records.

    meta: task, checkpoint, policy_id, sampler, steps, seeds, episodes (per seed), plus any
        settings to keep (step_mode, control_rate_hz, max_episode_steps, ...).
    records: one dict per episode: seed, index, reset_seed, success, length, reward,
        latencies_s (inference time per policy call [s]), chunk_delays_s [s],
        command_latencies_ms [ms], held_steps, wall_s [s], end_reason, episode_id.
    """
    episodes = [
        EpisodeResult(
            seed=int(r["seed"]),
            index=int(r["index"]),
            reset_seed=int(r["reset_seed"]),
            success=bool(r["success"]),
            length=int(r["length"]),
            reward=float(r.get("reward", 0.0)),
            policy_calls=len(r.get("latencies_s", [])),
            latencies_s=[float(t) for t in r.get("latencies_s", [])],
        )
        for r in records
    ]
    seeds = [int(s) for s in meta["seeds"]]
    steps_total = sum(e.length for e in episodes)
    wall_total = sum(float(r.get("wall_s", 0.0)) for r in records)
    achieved = steps_total / wall_total if wall_total > 0 else 0.0
    result: dict[str, Any] = {
        "task": meta["task"],
        "checkpoint": str(meta.get("checkpoint", "")),
        "policy_id": meta.get("policy_id", ""),
        "sampler": meta.get("sampler", ""),
        "steps": int(meta.get("steps", 0)),
        **summarize(episodes, seeds, int(meta["episodes"])),
        "transport": "ros2",
        "sim": meta.get("sim", "mujoco"),
        "achieved_control_hz": achieved,
        "loop_hz": achieved,
        "chunk_latency_ms": _stats_ms([t for r in records for t in r.get("chunk_delays_s", [])]),
        "command_latency_ms": _stats_ms(
            [1e-3 * t for r in records for t in r.get("command_latencies_ms", [])]
        ),
        "held_steps": int(sum(int(r.get("held_steps", 0)) for r in records)),
        "policy_latencies_ms": [1e3 * t for e in episodes for t in e.latencies_s],
        "wall_time_s": float(meta.get("wall_time_s", wall_total)),
    }
    keep = ("kind", "n_obs_steps", "n_action_steps", "horizon", "num_points", "threads")
    keep += ("step_mode", "control_rate_hz", "max_episode_steps", "backend", "noise")
    result["device"] = "cpu"
    for key in keep:
        if key in meta:
            result[key] = meta[key]
    result["episode_results"] = [
        {
            k: v
            for k, v in r.items()
            if k not in ("latencies_s", "chunk_delays_s", "command_latencies_ms")
        }
        for r in records
    ]
    return result


def ros_available() -> list[str]:
    """Modules sim-eval needs that are not importable (empty when ROS 2 is ready)."""
    return [m for m in ("rclpy", "sdm_msgs", "sdm_policy_ros") if not importlib.util.find_spec(m)]


def onnx_model_for(
    checkpoint: str | Path,
    sampler: str | None = None,
    steps: int | None = None,
    progress: bool = False,
) -> dict[str, Any]:
    """Find (or export) the model the onnxruntime policy node loads from `checkpoint`.

    The exported model the onnxruntime policy node loads from checkpoint directory
    `checkpoint`: the one .onnx in it, checked (sidecar, sha256, the checkpoint's observations,
    horizons and kind: onnx_runtime.read_onnx_model, as the node checks it) and running the
    sampler `sdm eval` would pick for `sampler` / `steps` (DiffusionConfig.sampler_for).

    When the directory holds no .onnx, it is exported there as EXPORT_NAME with
    sdm_policy_core.export.export_policy (a teacher as DDIM K unrolled). An existing export is
    never replaced: the user's file may be what they deploy. Raises ValueError saying what to
    fix: a sampler no graph holds (ddpm, a teacher's naive one-step call), an export of another
    sampler or step count, several .onnx files, no export and no way to make one (torch not
    importable, the directory not writable). Returns path, sha256, sampler, steps,
    quantization, max_abs_diff (exported graph vs PyTorch, from the sidecar) and exported (made
    by this call).
    """
    import json

    from sdm_policy_core.config import DiffusionConfig, from_dict
    from sdm_policy_core.onnx_runtime import EXPORT_HINT, read_onnx_model

    directory = Path(checkpoint)
    try:
        config = json.loads((directory / "config.json").read_text())
        kind = str(config.get("kind", ""))
        diffusion = from_dict(DiffusionConfig, config.get("diffusion", {}), "diffusion")
    except (OSError, ValueError, TypeError) as err:  # ConfigError is a ValueError
        raise ValueError(f"{directory} is not a readable checkpoint directory: {err}") from None
    want, want_steps = diffusion.sampler_for(kind, sampler, steps)
    if (
        want == "ddpm"
        or (want == "one-step" and kind != "sdm")
        or (kind == "sdm" and want != "one-step")
    ):
        raise ValueError(
            f"the onnxruntime backend runs a sampler exported into the graph: an SDM "
            f"checkpoint's one-step generator or a teacher's DDIM K; {kind or 'this'} "
            f"checkpoint with sampler {want} has none (use --backend torch)"
        )
    exported = False
    if not any(directory.glob("*.onnx")):
        if not os.access(directory, os.W_OK):
            raise ValueError(
                f"{directory} holds no exported .onnx model and is not writable; {EXPORT_HINT} "
                "(on a writable copy of the checkpoint)"
            )
        try:
            from sdm_policy_core.export import ExportError, export_policy
        except ImportError as err:  # a robot-side install: onnxruntime without torch
            raise ValueError(
                f"{directory} holds no exported .onnx model and torch, which exports it, is not "
                f"importable here ({err}); {EXPORT_HINT}"
            ) from None
        if progress:
            print(
                f"{PROGRESS_PREFIX} exporting {directory} to {directory / EXPORT_NAME} for the "
                f"onnxruntime backend ({want} x{want_steps}, sdm export)",
                flush=True,
            )
        try:
            export_policy(
                directory,
                directory / EXPORT_NAME,
                "onnx",
                steps=None if kind == "sdm" else want_steps,
            )
        except ExportError as err:
            raise ValueError(
                f"cannot export {directory} for the onnxruntime backend: {err}"
            ) from None
        exported = True
    model = read_onnx_model(directory)  # OnnxModelError (a ValueError) says what differs
    meta = model.metadata
    have, have_steps = str(meta["sampler"]), int(meta["steps"])
    if have != want or (want != "one-step" and have_steps != want_steps):
        raise ValueError(
            f"{model.path} runs {have} x{have_steps} (its sampler is inside the graph), not "
            f"{want} x{want_steps}; evaluate with --sampler {have} --steps {have_steps}, or "
            f"export again: sdm export --checkpoint {directory} --format onnx --steps "
            f"{want_steps} --out {model.path}"
        )
    return {
        "path": str(model.path),
        "sha256": str(meta["sha256"]),
        "sampler": have,
        "steps": have_steps,
        "quantization": meta.get("quantization"),
        "max_abs_diff": meta.get("max_abs_diff"),
        "exported": exported,
    }


def sim_eval_command(
    checkpoint: str | Path,
    task: str,
    episodes: int,
    seeds: Sequence[int],
    result: str | Path,
    sampler: str | None = None,
    steps: int | None = None,
    max_episode_steps: int = 0,
    control_rate_hz: float = 10.0,
    step_mode: str = "lockstep",
    command_timeout_s: float = 5.0,
    threads: int = 2,
    backend: str = "torch",
    noise: str = "torch",
) -> list[str]:
    """Build the launch-runner command line of one sim-in-the-loop evaluation.

    sim:=mujoco, the embedded sim bridge. max_episode_steps 0: the task's own (MetaWorld 200,
    obstacle-2d 60). backend, noise: the policy node's `backend` and `sampler_noise`
    (RUNTIME_BACKENDS, NOISE_SOURCES).
    """
    args = {
        "sim": "mujoco",
        "checkpoint": os.path.abspath(checkpoint),
        "task": task,
        "episodes": int(episodes),
        "seeds": ",".join(str(int(s)) for s in seeds),
        "result": os.path.abspath(result),
        "max_episode_steps": int(max_episode_steps),
        "control_rate_hz": float(control_rate_hz),
        "step_mode": step_mode,
        "command_timeout_s": float(command_timeout_s),
        "threads": int(threads),
        "backend": backend,
        "noise": noise,
    }
    if sampler:
        args["sampler"] = sampler
    if steps:
        args["steps"] = int(steps)
    return [sys.executable, "-m", LAUNCH_MODULE, "sim_eval"] + [
        f"{k}:={v}" for k, v in args.items()
    ]


def run_sim_eval(
    checkpoint: str | Path,
    task: str,
    episodes: int,
    seeds: Sequence[int],
    out: str | Path,
    sampler: str | None = None,
    steps: int | None = None,
    max_episode_steps: int = 0,
    control_rate_hz: float = 10.0,
    step_mode: str = "lockstep",
    command_timeout_s: float = 5.0,
    threads: int = 2,
    timeout_s: float | None = None,
    log: str | Path | None = None,
    domain_id: int | None = None,
    progress: bool = True,
    backend: str = "torch",
    noise: str = "torch",
) -> dict[str, Any]:
    """Run the ROS 2 evaluation as real processes; returns the result the driver wrote to `out`.

    log: file for every process's output (default: `out` with suffix .log). Progress lines of
    the driver are echoed to stdout when `progress`. backend: the policy node's runtime,
    "torch" or "onnxruntime" (the checkpoint's export, made first when missing:
    onnx_model_for); noise: the torch backend's initial noise, "torch" or "numpy" (the stream
    onnxruntime draws from: with it both backends run the same episodes). Raises ValueError
    for a bad backend, noise or export (before any process starts), SimEvalError (with the
    log's tail) when a process fails or `timeout_s` [s] passes.
    """
    import json

    if backend not in RUNTIME_BACKENDS:
        raise ValueError(f"backend must be one of {list(RUNTIME_BACKENDS)}, got {backend!r}")
    if noise not in NOISE_SOURCES:
        raise ValueError(f"noise must be one of {list(NOISE_SOURCES)}, got {noise!r}")
    missing = ros_available()
    if missing:
        raise SimEvalError(
            f"sdm sim-eval needs ROS 2 ({', '.join(missing)} not importable): run "
            "scripts/setup.sh and `source scripts/env.sh`"
        )
    onnx_model = (
        onnx_model_for(checkpoint, sampler, steps, progress=progress)
        if backend == "onnxruntime"
        else None
    )
    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    if out.exists():
        out.unlink()  # never report a previous run's result
    log_path = Path(log) if log else out.with_suffix(".log")
    cmd = sim_eval_command(
        checkpoint,
        task,
        episodes,
        seeds,
        out,
        sampler,
        steps,
        max_episode_steps,
        control_rate_hz,
        step_mode,
        command_timeout_s,
        threads,
        backend,
        noise,
    )
    env = {
        **os.environ,
        "ROS_AUTOMATIC_DISCOVERY_RANGE": "LOCALHOST",  # DDS traffic stays on this machine
        "ROS_LOCALHOST_ONLY": "1",
        "PYTHONUNBUFFERED": "1",
    }
    if domain_id is not None:
        env["ROS_DOMAIN_ID"] = str(int(domain_id))
    with log_path.open("w") as log_file:
        log_file.write(" ".join(cmd) + "\n")
        proc = subprocess.Popen(
            cmd,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
            env=env,
            start_new_session=True,
        )
        timed_out = threading.Event()

        def on_timeout() -> None:
            timed_out.set()
            _stop(proc)

        watchdog = threading.Timer(timeout_s, on_timeout) if timeout_s else None
        if watchdog is not None:
            watchdog.daemon = True
            watchdog.start()
        try:
            for line in proc.stdout:  # ends when every process of the launch has exited
                log_file.write(line)
                log_file.flush()
                if progress and line.startswith(PROGRESS_PREFIX):
                    print(line.rstrip(), flush=True)
            code = proc.wait()
        except BaseException:
            _stop(proc)
            raise
        finally:
            if watchdog is not None:
                watchdog.cancel()
    if timed_out.is_set():
        raise SimEvalError(f"sim-eval ran past its timeout of {timeout_s} s; log {log_path}")
    if code != 0 or not out.is_file():
        tail = "".join(log_path.read_text(errors="replace").splitlines(True)[-25:])
        raise SimEvalError(f"sim-eval processes failed (exit {code}); log {log_path}:\n{tail}")
    result = json.loads(out.read_text())
    if result.get("backend") != backend:  # what the node reported running, not what was asked
        raise SimEvalError(
            f"the policy node ran backend {result.get('backend')!r}, not {backend!r}; "
            f"log {log_path}"
        )
    if onnx_model is not None:
        result["onnx_model"] = onnx_model
    return result


def _stop(proc: subprocess.Popen) -> None:
    """SIGINT the launch runner (it forwards to its nodes), then SIGKILL its process group."""
    if proc.poll() is None:
        proc.send_signal(signal.SIGINT)
        try:
            proc.wait(20)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait(5)
