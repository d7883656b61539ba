"""`sdm bench bag2zarr`: throughput and peak memory of the bag -> zarr conversion.

    sdm bench bag2zarr [BAG_DIR] --out RESULT.json [--clouds 3000] [--points 10000]

Without BAG_DIR it writes its own mcap bag (in a temp directory): 10k-point clouds at 30 Hz,
7-DoF joint states at 100 Hz and commands at 30 Hz. The conversion (FPS to 1024 points, two
decoding workers) runs as a real `sdm bag2zarr` process; its whole process tree's resident
memory is sampled every 20 ms. Result keys: clouds_per_s (clouds decoded per second of
conversion), peak_rss_mb (the tree: converter + workers), messages, and more. Memory must not
grow with the bag: `rss_mb_by_quarter` is the peak in each quarter of the run.
Target (issue 6): >= 300 clouds/s and < 1 GB for a bag of any length, on 2 CPU cores.
"""

from __future__ import annotations

import contextlib
import json
import os
import platform
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np
import psutil
import yaml

from sdm_policy_core.data.bag_writer import BagWriter

TARGET_CLOUDS_PER_S = 300.0
TARGET_PEAK_RSS_MB = 1024.0
JOINTS = [f"joint{i}" for i in range(1, 8)]


def write_benchmark_bag(
    path: str | Path,
    clouds: int = 3000,
    points: int = 10_000,
    rate_hz: float = 30.0,
    storage: str = "mcap",
    seed: int = 0,
) -> dict[str, Any]:
    """A bag of `clouds` random clouds of `points` points at rate_hz, joint states at 100 Hz
    and commands after every cloud. Returns what it wrote."""
    rng = np.random.default_rng(seed)
    start, period = 1_700_000_000 * 10**9, round(1e9 / rate_hz)
    state_period = 10_000_000  # 100 Hz
    base = rng.normal(size=(points, 3)).astype(np.float32)
    next_state = start
    with BagWriter(path, storage=storage) as bag:
        for k in range(clouds):
            t = start + k * period
            while next_state <= t + period // 2:
                q = np.sin(next_state / 1e9 + np.arange(7))
                bag.write_joint_state("/joint_states", next_state, JOINTS, q)
                next_state += state_period
            jitter = rng.normal(scale=0.01, size=(points, 3)).astype(np.float32)
            bag.write_cloud("/points", t, base + jitter, frame_id="camera")
            bag.write_float64_array("/joint_commands", t + period // 3, np.full(7, k * 1e-3))
    size = sum(f.stat().st_size for f in Path(path).rglob("*") if f.is_file())
    return {"clouds": clouds, "points_per_cloud": points, "bag_mb": round(size / 2**20, 1)}


def benchmark_config(num_points: int, workers: int) -> dict[str, Any]:
    """The conversion the benchmark times: one sample per cloud, FPS to num_points."""
    return {
        "clock": {"topic": "points"},
        "point_cloud": {"topic": "points", "num_points": num_points, "tolerance_s": 0.0},
        "state": {"topic": "joint_states", "joint_names": JOINTS, "tolerance_s": 0.01},
        "action": {"topic": "joint_commands", "align": "next", "tolerance_s": 0.05},
        "workers": workers,
    }


def _tree_rss(proc: psutil.Process) -> tuple[int, int]:
    """(resident bytes of proc and all its descendants, of proc alone)."""
    try:
        main = proc.memory_info().rss
        children = proc.children(recursive=True)
    except psutil.NoSuchProcess:
        return 0, 0
    total = main
    for child in children:
        with contextlib.suppress(psutil.NoSuchProcess):  # a worker may just have exited
            total += child.memory_info().rss
    return total, main


def run_bag2zarr_bench(
    bag: str | Path | None = None,
    config: str | Path | None = None,
    clouds: int = 3000,
    points: int = 10_000,
    num_points: int = 1024,
    workers: int = 2,
    storage: str = "mcap",
) -> dict[str, Any]:
    """Convert `bag` (or a generated one) in a child `sdm bag2zarr` process; returns the
    result dict (see module docstring)."""
    load_before = os.getloadavg()[0]
    with tempfile.TemporaryDirectory(prefix="sdm-bench-bag2zarr-") as tmp_name:
        tmp = Path(tmp_name)
        info: dict[str, Any] = {}
        if bag is None:
            bag = tmp / "bench_bag"
            started = time.perf_counter()
            info = write_benchmark_bag(bag, clouds, points, storage=storage)
            info["bag_write_s"] = round(time.perf_counter() - started, 2)
        if config is None:
            config = tmp / "bench.yaml"
            Path(config).write_text(yaml.safe_dump(benchmark_config(num_points, workers)))
        summary_path = tmp / "summary.json"
        command = [
            sys.executable,
            "-m",
            "sdm_policy_core.cli",
            "bag2zarr",
            str(bag),
            "--out",
            str(tmp / "out.zarr"),
            "--config",
            str(config),
            "--no-progress",
            "--workers",
            str(workers),
            "--summary-json",
            str(summary_path),
        ]
        samples: list[tuple[float, int, int]] = []
        started = time.perf_counter()
        proc = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
        watched = psutil.Process(proc.pid)
        while proc.poll() is None:
            total, main = _tree_rss(watched)
            if total:
                samples.append((time.perf_counter() - started, total, main))
            time.sleep(0.02)
        output = proc.stdout.read().decode(errors="replace") if proc.stdout else ""
        process_wall = time.perf_counter() - started
        if proc.returncode != 0:
            raise RuntimeError(f"sdm bag2zarr failed ({proc.returncode}):\n{output[-3000:]}")
        summary = json.loads(summary_path.read_text())
    peak_total = max((s[1] for s in samples), default=0)
    peak_main = max((s[2] for s in samples), default=0)
    quarters = []
    for q in range(4):
        lo, hi = q * process_wall / 4, (q + 1) * process_wall / 4
        window = [s[1] for s in samples if lo <= s[0] < hi]
        quarters.append(round(max(window) / 2**20, 1) if window else None)
    clouds_per_s = float(summary["clouds_per_s"])
    peak_mb = round(peak_total / 2**20, 1)
    return {
        "clouds_per_s": clouds_per_s,
        "peak_rss_mb": peak_mb,
        "messages": int(summary["messages_total"]),
        "messages_per_topic": summary["messages"],
        "clouds": int(summary["clouds_decoded"]),
        "samples_written": int(summary["samples_written"]),
        "samples_dropped": summary["samples_dropped"],
        "points_per_cloud": info.get("points_per_cloud"),
        "num_points": num_points,
        "workers": workers,
        "storage": storage if info else None,
        "bag_mb": info.get("bag_mb"),
        "bag_write_s": info.get("bag_write_s"),
        "conversion_wall_s": summary["wall_s"],
        "process_wall_s": round(process_wall, 2),
        "peak_rss_main_mb": round(peak_main / 2**20, 1),
        "rss_mb_by_quarter": quarters,
        "target": {"clouds_per_s": TARGET_CLOUDS_PER_S, "peak_rss_mb": TARGET_PEAK_RSS_MB},
        "meets_target": clouds_per_s >= TARGET_CLOUDS_PER_S and peak_mb < TARGET_PEAK_RSS_MB,
        "cpu_count": os.cpu_count(),
        "load_avg_1m_before": round(load_before, 2),
        "machine": platform.platform(),
        "python": platform.python_version(),
        "converter_output": output[-2000:],
    }
