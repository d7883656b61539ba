# Copyright 2026 sdm-policy-ros maintainers
# SPDX-License-Identifier: MIT
"""`sdm bench node`: end-to-end latency of the ROS 2 policy node (cloud stamp -> command).

Starts, as real processes, the policy node (one-step SDM student, then its DDIM-10 teacher) and
a robot peer that streams 1024-point clouds + joint states at 30 Hz and records the node's
action chunks and commands. The core only orchestrates processes; it never imports ROS.

With several backends (`torch`, `onnxruntime`: the node's `backend` parameter; the checkpoints
are exported to ONNX into their directories first) each runs in the same way, one after the
other, and each run also reports the node's start: process start -> node ready (its log says
"started"), -> first command at the peer; and its resident memory (VmRSS sampled while it runs,
VmHWM at the end). `quantize=("int8",)` adds a variant, "onnxruntime:int8": the onnxruntime node
on the dynamic int8 export (`sdm export --quantize int8`, a file of its own outside the
checkpoint directory). Each run names the model file the node logged loading; with torch among
the backends, `vs_torch` gives every other variant's memory and latency p50 over torch's.

Where the time goes: each run reports `pipeline`, the node's own breakdown of its newest
planned steps (`sdm_policy_core.deploy.timing`: transport, decode, queueing, preprocess,
inference, control, build, publish; p50 / p99 / mean [ms], logged by the node at close), and
`isolated_call_ms`, the same model's call alone in this process right after the node stopped
(the same backend, threads and call rate, no ROS): `over_isolated_p50_ms`, latency p50 minus
its p50, and `over_inference_p50_ms`, minus the node's own inference p50 (under load the two
calls differ; the second is the pipeline's time alone).
"""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import yaml

from sdm_policy_core.bench.latency import _observations, make_checkpoints, percentile
from sdm_policy_core.keys import RUNTIME_BACKENDS, TOPIC_JOINT_COMMANDS

JOINTS = ["j1", "j2", "j3", "j4"]


def _node_command() -> list[str]:
    root = Path(__file__).resolve().parents[2]
    exe = root / "install" / "sdm_policy_ros" / "lib" / "sdm_policy_ros" / "policy_node"
    return [str(exe)] if exe.is_file() else [sys.executable, "-m", "sdm_policy_ros.policy_node"]


def _memory_mb(pid: int) -> dict[str, float]:
    """VmRSS and VmHWM of a process [MB] (empty when it is gone)."""
    try:
        lines = Path(f"/proc/{pid}/status").read_text().splitlines()
    except OSError:
        return {}
    return {
        ln.split(":")[0]: int(ln.split()[1]) / 1024.0
        for ln in lines
        if ln.startswith(("VmRSS:", "VmHWM:"))
    }


# The node's own log stamps its lines: "[INFO] [<wall seconds>] [policy_node]: started ...".
LOG_FORMAT = "[{severity}] [{time}] [{name}]: {message}"
_STARTED = re.compile(r"^\[\w+\] \[(?P<time>\d+(?:\.\d+)?)\] \[[^\]]*\]: started ", re.M)
_LOADING = re.compile(r"\]: loading (?P<path>\S+) \((?P<backend>\w+)\)$", re.M)


_PIPELINE = re.compile(
    r"\]: pipeline latency of the last \d+ planned steps \[ms\]: (?P<json>\{.*\})$", re.M
)


def _pipeline(log_text: str) -> dict[str, Any] | None:
    """Parse the breakdown the node logged at close (None: planned nothing, or did not close)."""
    match = _PIPELINE.search(log_text)
    return json.loads(match.group("json")) if match else None


def _isolated_call_ms(
    model: Path, backend: str, sampler: str, threads: int, rate: float, calls: int = 60
) -> dict[str, float]:
    """Measure p50 / p99 [ms] of the policy's call alone, paced as in the node.

    p50 / p99 [ms] of the policy's call alone (runtime.infer after a new observation: the
    inference_time the node reports), in this process, `threads` threads, one call per 1/rate
    s as in the node (back to back, torch's threads compete with the machine's other work).
    """
    from sdm_policy_core.config import DeploymentConfig
    from sdm_policy_core.deploy.session import load_runtime

    config = DeploymentConfig(backend=backend, torch_threads=threads)
    runtime = load_runtime(str(model), config, sampler, 10, 0)
    observations, times = _observations(runtime.spec), []
    next_call = time.monotonic()
    for k in range(calls + 5):
        next_call += 1.0 / rate
        runtime.push(next(observations))
        chunk = runtime.infer()
        if k >= 5:  # warm-up calls untimed
            times.append(chunk.inference_time)
        time.sleep(max(0.0, next_call - time.monotonic()))
    return {"p50": percentile(times, 50) * 1e3, "p99": percentile(times, 99) * 1e3}


def _ready_wall(log_text: str) -> float | None:
    """Return the wall time at which the node logged "started" (None until it has).

    The node's own stamp, so the figure does not depend on how often the bench reads the log.
    """
    match = _STARTED.search(log_text)
    return float(match.group("time")) if match else None


def _maps_torch(pid: int) -> bool:
    """Whether the process has torch's shared library mapped (it imported torch)."""
    try:
        return "libtorch" in Path(f"/proc/{pid}/maps").read_text()
    except OSError:
        return False


def _run_one(
    checkpoint: Path,
    sampler: str,
    robot: Path,
    points: int,
    rate: float,
    duration: float,
    threads: int,
    log_dir: Path,
    backend: str = "torch",
    variant: str | None = None,
) -> dict[str, Any]:
    env = {
        **os.environ,
        "ROS_AUTOMATIC_DISCOVERY_RANGE": "LOCALHOST",
        "ROS_LOCALHOST_ONLY": "1",
        "RCUTILS_CONSOLE_OUTPUT_FORMAT": LOG_FORMAT,
    }
    variant = variant or backend
    log_path = log_dir / f"node_{variant.replace(':', '_')}_{sampler}.log"
    node_log = log_path.open("w")
    params = {
        "backend": backend,
        "checkpoint": checkpoint,
        "robot": robot,
        "sampler": sampler,
        "ddim_steps": 10,
        "trigger": "observation",
        "control_rate_hz": rate,
        "torch_threads": threads,
        "stale_age_s": 0.5,
    }
    ros_args = ["--ros-args"]
    for key, value in params.items():
        ros_args += ["-p", f"{key}:={value}"]
    started = time.time()
    node = subprocess.Popen(
        [*_node_command(), *ros_args],
        stdout=node_log,
        stderr=subprocess.STDOUT,
        env=env,
        start_new_session=True,
    )
    ready_s, rss, peak, torch_mapped = None, [], 0.0, False
    try:
        peer = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "sdm_policy_ros.bench_peer",
                "--points",
                str(points),
                "--rate",
                str(rate),
                "--duration",
                str(duration),
                "--joints",
                ",".join(JOINTS),
            ],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            env=env,
        )
        deadline = time.monotonic() + duration + 180
        while peer.poll() is None and time.monotonic() < deadline:
            if ready_s is None and (ready_wall := _ready_wall(log_path.read_text())):
                ready_s = ready_wall - started
            memory = _memory_mb(node.pid)
            rss.append(memory.get("VmRSS", 0.0))
            peak = max(peak, memory.get("VmHWM", 0.0))
            if ready_s is not None and not torch_mapped:  # torch's library in the process
                torch_mapped = _maps_torch(node.pid)
            time.sleep(0.02 if ready_s is None else 0.5)
        if peer.poll() is None:
            peer.kill()
        peer_out, peer_err = peer.communicate()
    finally:
        node.send_signal(signal.SIGINT)
        try:
            node.wait(15)
        except subprocess.TimeoutExpired:
            os.killpg(node.pid, signal.SIGKILL)
        node_log.close()
    lines = [ln for ln in peer_out.splitlines() if ln.startswith("RESULT ")]
    if not lines:
        raise RuntimeError(
            f"bench peer failed: {peer_err[-2000:]}\nnode log: {log_path.read_text()[-2000:]}"
        )
    result = json.loads(lines[-1][len("RESULT ") :])
    first = result.pop("first_command_wall", None)
    loading = _LOADING.search(log_path.read_text())  # what the node itself says it loaded
    model = Path(loading.group("path")) if loading else None
    if model is not None and model.is_dir() and backend == "onnxruntime":
        model = model / "policy.onnx"
    result.update(
        backend=backend,
        model=model.name if model is not None else None,
        model_mb=model.stat().st_size / 2**20 if model is not None and model.is_file() else None,
        ready_s=ready_s,
        first_command_s=first - started if first is not None else None,
        rss_mb=max(rss) if rss else None,
        peak_rss_mb=peak or None,
        torch_mapped=torch_mapped,
        pipeline=_pipeline(log_path.read_text()),
        isolated_call_ms=_isolated_call_ms(checkpoint, backend, sampler, threads, rate),
    )
    if result["latency_ms"]["p50"] is not None:
        result["over_isolated_p50_ms"] = (
            result["latency_ms"]["p50"] - result["isolated_call_ms"]["p50"]
        )
        if result["pipeline"]:  # the same over the call inside the node
            inference = result["pipeline"]["stages_ms"]["inference"]["p50"]
            result["over_inference_p50_ms"] = result["latency_ms"]["p50"] - inference
    return result


def _vs_torch(backends: dict[str, dict[str, dict[str, Any]]]) -> dict[str, Any]:
    """Every variant's resident memory and latency p50 over torch's, per policy."""
    torch_runs = backends["torch"]
    return {
        key: {
            name: {
                "rss": r["rss_mb"] / torch_runs[name]["rss_mb"],
                "latency_p50": r["latency_ms"]["p50"] / torch_runs[name]["latency_ms"]["p50"],
            }
            for name, r in runs.items()
        }
        for key, runs in backends.items()
        if key != "torch"
    }


def run_node_bench(
    checkpoint: Path | None = None,
    points: int = 1024,
    rate: float = 30.0,
    duration: float = 10.0,
    threads: int = 2,
    backends: tuple[str, ...] = ("torch",),
    preset: str = "cpu_small",
    quantize: tuple[str, ...] = (),
) -> dict[str, Any]:
    """Run the node benchmark and return the JSON of `sdm bench node`.

    Per policy (one_step, teacher) latency_ms {p50, p99} and rate_hz, measured in one run on
    this machine (the first backend's at the top level; every backend's and quantised
    variant's under `backends`, with ready_s, first_command_s, rss_mb, peak_rss_mb, model,
    model_mb; `vs_torch` with torch among them).
    """
    from sdm_policy_core.export import QUANTIZATIONS, export_policy

    unknown = [b for b in backends if b not in RUNTIME_BACKENDS]
    if unknown or not backends:
        raise ValueError(f"backends must be among {list(RUNTIME_BACKENDS)}, got {list(backends)}")
    if any(q not in QUANTIZATIONS for q in quantize) or (
        quantize and "onnxruntime" not in backends
    ):
        raise ValueError(
            f"quantize must be among {list(QUANTIZATIONS)}, with the onnxruntime backend; got "
            f"{list(quantize)}"
        )
    with tempfile.TemporaryDirectory(prefix="sdm-bench-node-") as tmp:
        tmp_path = Path(tmp)
        robot = tmp_path / "bench_arm.yaml"
        robot.write_text(
            yaml.safe_dump(
                {
                    "description": "4-joint benchmark arm",
                    "state_names": JOINTS,
                    "action_names": JOINTS,
                    "action_kind": "raw",
                    "output": TOPIC_JOINT_COMMANDS,
                    "lower": [-1.0] * 4,
                    "upper": [1.0] * 4,
                    "camera": {"frame_id": "camera"},  # the frame bench_peer stamps clouds with
                }
            )
        )
        if checkpoint is None:
            teacher, student, params = make_checkpoints(
                preset, tmp_path, points, state_dim=4, action_dim=4
            )
            result: dict[str, Any] = {"preset": preset, "denoiser_params": params}
        else:
            teacher, student = None, Path(checkpoint)
            result = {"checkpoint": str(checkpoint)}
        result.update(
            points=points,
            cloud_rate_hz=rate,
            duration_s=duration,
            threads=threads,
            trigger="observation",
            started=time.strftime("%Y-%m-%dT%H:%M:%S"),
        )
        if "onnxruntime" in backends and checkpoint is None:  # a given one: export it first
            export_policy(student, student / "policy.onnx", "onnx")
            export_policy(teacher, teacher / "policy.onnx", "onnx", steps=10)  # ddim_steps
        # (result key, backend, {policy: model}) of each node run; a quantised export is a file
        # of its own beside the checkpoint directories (no config.json beside it)
        policies = {"one_step": (student, "one-step", None)}
        if teacher is not None:
            policies["teacher"] = (teacher, "ddim", 10)  # its DDIM steps, as ddim_steps
        variants = [(b, b, {k: ckpt for k, (ckpt, *_) in policies.items()}) for b in backends]
        for q in quantize:
            models = {
                key: export_policy(
                    ckpt, tmp_path / f"{ckpt.name}.{q}.onnx", "onnx", steps=steps, quantize=q
                ).path
                for key, (ckpt, _, steps) in policies.items()
            }
            variants.append((f"onnxruntime:{q}", "onnxruntime", models))
        result["backends"] = {}
        for key, backend, models in variants:
            runs = {}
            for name, model in models.items():
                sampler = policies[name][1]
                runs[name] = _run_one(
                    model, sampler, robot, points, rate, duration, threads, tmp_path, backend, key
                )
            if "teacher" in runs:
                runs["teacher"]["sampler"] = "ddim10"
            result["backends"][key] = runs
        result.update(result["backends"][backends[0]])
        if "torch" in backends:
            result["vs_torch"] = _vs_torch(result["backends"])
    return result
