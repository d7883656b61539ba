"""`sdm bench node`: end-to-end latency of the ROS 2 policy node (cloud stamp -> command).

Starts, as real processes, the policy node (one-step SDM student, then its DDIM-10 teacher) and
a robot peer that streams 1024-point clouds + joint states at 30 Hz and records the node's
action chunks and commands. The core only orchestrates processes; it never imports ROS.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import yaml

from sdm_policy_core.bench.latency import make_checkpoints

JOINTS = ["j1", "j2", "j3", "j4"]


def _node_command() -> list[str]:
    root = Path(__file__).resolve().parents[2]
    exe = root / "install" / "sdm_policy_ros" / "lib" / "sdm_policy_ros" / "policy_node"
    return [str(exe)] if exe.is_file() else [sys.executable, "-m", "sdm_policy_ros.policy_node"]


def _run_one(
    checkpoint: Path,
    sampler: str,
    robot: Path,
    points: int,
    rate: float,
    duration: float,
    threads: int,
    log_dir: Path,
) -> dict[str, Any]:
    env = {**os.environ, "ROS_AUTOMATIC_DISCOVERY_RANGE": "LOCALHOST", "ROS_LOCALHOST_ONLY": "1"}
    node_log = (log_dir / f"node_{sampler}.log").open("w")
    params = {
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
    node = subprocess.Popen(
        [*_node_command(), *ros_args],
        stdout=node_log,
        stderr=subprocess.STDOUT,
        env=env,
        start_new_session=True,
    )
    try:
        peer = subprocess.run(
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
            capture_output=True,
            text=True,
            env=env,
            timeout=duration + 180,
        )
    finally:
        node.send_signal(signal.SIGINT)
        try:
            node.wait(15)
        except subprocess.TimeoutExpired:
            os.killpg(node.pid, signal.SIGKILL)
        node_log.close()
    lines = [ln for ln in peer.stdout.splitlines() if ln.startswith("RESULT ")]
    if not lines:
        raise RuntimeError(
            f"bench peer failed: {peer.stderr[-2000:]}\nnode log: "
            f"{(log_dir / f'node_{sampler}.log').read_text()[-2000:]}"
        )
    return json.loads(lines[-1][len("RESULT ") :])


def run_node_bench(
    checkpoint: Path | None = None,
    points: int = 1024,
    rate: float = 30.0,
    duration: float = 10.0,
    threads: int = 2,
) -> dict[str, Any]:
    """The JSON of `sdm bench node`: per policy (one_step, teacher) latency_ms {p50, p99} and
    rate_hz, measured in one run on this machine."""
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
                    "output": "joint_commands",
                    "lower": [-1.0] * 4,
                    "upper": [1.0] * 4,
                    "camera": {"frame_id": "camera"},  # the frame bench_peer stamps clouds with
                }
            )
        )
        if checkpoint is None:
            teacher, student, params = make_checkpoints(
                "cpu_small", tmp_path, points, state_dim=4, action_dim=4
            )
            result: dict[str, Any] = {"preset": "cpu_small", "denoiser_params": params}
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
        result["one_step"] = _run_one(
            student, "one-step", robot, points, rate, duration, threads, tmp_path
        )
        if teacher is not None:
            result["teacher"] = _run_one(
                teacher, "ddim", robot, points, rate, duration, threads, tmp_path
            )
            result["teacher"]["sampler"] = "ddim10"
    return result
