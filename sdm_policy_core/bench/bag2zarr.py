# Copyright 2026 sdm-policy-ros maintainers
# SPDX-License-Identifier: MIT
"""`sdm bench bag2zarr`: throughput and peak memory of the bag -> zarr conversion.

    sdm bench bag2zarr [BAG_DIR] --out RESULT.json [--clouds 3000] [--points 10000]
                       [--tf] [--images WxH]

Without BAG_DIR it writes its own mcap bag (in a temp directory): 10k-point clouds at 30 Hz,
7-DoF joint states at 100 Hz and commands at 30 Hz; with --tf the camera sits on a moving
wrist (/tf base_link <- wrist_link at 100 Hz, stamps between the clouds', so every cloud is
interpolated; /tf_static wrist_link <- camera) and the clouds go to base_link; with --images a
jpeg sensor_msgs/CompressedImage of WxH pixels comes with every cloud and is decoded (resized
to 96x96) into data/img. The conversion (FPS to 1024 points, two decoding workers) runs as a
real `sdm bag2zarr` process; its whole process tree's resident memory is sampled every 20 ms.
Result keys: clouds_per_s (clouds decoded per second of conversion), peak_rss_mb (the tree:
converter + workers), messages, stages_s (seconds per stage of the converter, and of the
workers summed over them: see `data.bag2zarr.summary`), and more. Memory must not grow with
the bag: `rss_mb_by_quarter` is the peak in each quarter of the run.
Targets: issue 6, >= 300 clouds/s and < 1 GB for a bag of any length, on 2 CPU cores; issue 20,
>= 500 clouds/s with --tf --images.
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
from sdm_policy_core.keys import TOPIC_JOINT_COMMANDS, TOPIC_JOINT_STATES, TOPIC_POINTS

TARGET_CLOUDS_PER_S = 300.0
TARGET_PEAK_RSS_MB = 1024.0
JOINTS = [f"joint{i}" for i in range(1, 8)]
TF_RATE_HZ = 100.0
IMAGE_OUT = (96, 96)  # data/img size of the --images conversion (width, height)
WRIST_CAMERA = ([0.05, 0.0, -0.02], [0.7071068, -0.7071068, 0.0, 0.0])  # translation, xyzw


def _wrist_pose(t_s: float) -> tuple[list[float], list[float]]:
    """base_link <- wrist_link at t_s: sweeping 0.4 m along y and turning about z (xyzw)."""
    yaw = 0.5 * np.sin(t_s)
    return [0.4, 0.2 * np.sin(0.5 * t_s), 0.5], [0.0, 0.0, np.sin(yaw / 2), np.cos(yaw / 2)]


def _jpeg_frames(size: tuple[int, int], count: int, seed: int) -> list[bytes]:
    """`count` jpeg frames (quality 90) of a textured scene at size (width, height)."""
    import cv2

    width, height = size
    rng = np.random.default_rng(seed)
    y, x = np.mgrid[0:height, 0:width].astype(np.float32)
    frames = []
    for k in range(count):
        image = np.stack([x * 255 / width, y * 255 / height, (x + y + 20 * k) % 256], -1)
        image += rng.normal(scale=8.0, size=image.shape)
        ok, data = cv2.imencode(".jpg", np.clip(image, 0, 255).astype(np.uint8), [1, 90])
        if not ok:
            raise RuntimeError("OpenCV could not encode a jpeg frame")
        frames.append(data.tobytes())
    return frames


def write_benchmark_bag(
    path: str | Path,
    clouds: int = 3000,
    points: int = 10_000,
    rate_hz: float = 30.0,
    storage: str = "mcap",
    seed: int = 0,
    tf: bool = False,
    image_size: tuple[int, int] | None = None,
) -> dict[str, Any]:
    """Write a synthetic bag of random clouds, joint states and commands; return what it wrote.

    A bag of `clouds` random clouds of `points` points at rate_hz, joint states at 100 Hz
    and commands after every cloud; with `tf` a moving wrist camera's /tf and /tf_static, with
    `image_size` (width, height) a jpeg CompressedImage per cloud. Returns what it wrote.
    """
    rng = np.random.default_rng(seed)
    start, period = 1_700_000_000 * 10**9, round(1e9 / rate_hz)
    state_period = 10_000_000  # 100 Hz
    tf_period = round(1e9 / TF_RATE_HZ)
    base = rng.normal(size=(points, 3)).astype(np.float32)
    frames = _jpeg_frames(image_size, 8, seed) if image_size else []
    next_state = start
    next_tf = start - 3_000_000  # 3 ms before the first cloud: clouds fall between samples
    with BagWriter(path, storage=storage) as bag:
        if tf:
            bag.write_transform(
                "/tf_static", start - period, "wrist_link", "camera", *WRIST_CAMERA
            )
        for k in range(clouds):
            t = start + k * period
            while next_state <= t + period // 2:
                q = np.sin(next_state / 1e9 + np.arange(7))
                bag.write_joint_state("/joint_states", next_state, JOINTS, q)
                next_state += state_period
            while tf and next_tf <= t + period // 2:
                pose = _wrist_pose((next_tf - start) / 1e9)
                bag.write_transform("/tf", next_tf, "base_link", "wrist_link", *pose)
                next_tf += tf_period
            jitter = rng.normal(scale=0.01, size=(points, 3)).astype(np.float32)
            bag.write_cloud("/points", t, base + jitter, frame_id="camera")
            if frames:
                fmt = "rgb8; jpeg compressed bgr8"
                bag.write_compressed_image("/image/compressed", t, frames[k % len(frames)], fmt)
            bag.write_float64_array("/joint_commands", t + period // 3, np.full(7, k * 1e-3))
    size = sum(f.stat().st_size for f in Path(path).rglob("*") if f.is_file())
    return {
        "clouds": clouds,
        "points_per_cloud": points,
        "tf": tf,
        "image_size": list(image_size) if image_size else None,
        "bag_mb": round(size / 2**20, 1),
    }


def benchmark_config(
    num_points: int, workers: int, tf: bool = False, images: bool = False
) -> dict[str, Any]:
    """Build the bag2zarr config of the conversion the benchmark times.

    The conversion the benchmark times: one sample per cloud, FPS to num_points; with `tf`
    into base_link through /tf_static + /tf, with `images` the jpeg images too.
    """
    cfg: dict[str, Any] = {
        "clock": {"topic": TOPIC_POINTS},
        "point_cloud": {"topic": TOPIC_POINTS, "num_points": num_points, "tolerance_s": 0.0},
        "state": {"topic": TOPIC_JOINT_STATES, "joint_names": JOINTS, "tolerance_s": 0.01},
        "action": {"topic": TOPIC_JOINT_COMMANDS, "align": "next", "tolerance_s": 0.05},
        "workers": workers,
    }
    if tf:
        cfg["point_cloud"]["target_frame"] = "base_link"
    if images:
        width, height = IMAGE_OUT
        cfg["image"] = {"topic": "/image/compressed", "width": width, "height": height}
    return cfg


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
    tf: bool = False,
    image_size: tuple[int, int] | None = None,
) -> dict[str, Any]:
    """Convert `bag` (or a generated one) in a child `sdm bag2zarr` process.

    Convert `bag` (or a generated one, with a moving camera's /tf when `tf`, jpeg images
    of image_size (width, height) when given) in a child `sdm bag2zarr` process; returns the
    result dict (see module docstring).
    """
    load_before = os.getloadavg()[0]
    with tempfile.TemporaryDirectory(prefix="sdm-bench-bag2zarr-") as tmp_name:
        tmp = Path(tmp_name)
        info: dict[str, Any] = {}
        if bag is None:
            bag = tmp / "bench_bag"
            started = time.perf_counter()
            info = write_benchmark_bag(
                bag, clouds, points, storage=storage, tf=tf, image_size=image_size
            )
            info["bag_write_s"] = round(time.perf_counter() - started, 2)
        if config is None:
            config = tmp / "bench.yaml"
            cfg = benchmark_config(num_points, workers, tf=tf, images=image_size is not None)
            Path(config).write_text(yaml.safe_dump(cfg))
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
        "tf": info.get("tf"),
        "image_size": info.get("image_size"),
        "stages_s": summary.get("stages_s"),
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
