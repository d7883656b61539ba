# Copyright 2026 sdm-policy-ros maintainers
# SPDX-License-Identifier: MIT
"""Files an evaluation writes: the JSON result, a PNG plot and an optional video."""

from __future__ import annotations

import json
import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np


def write_json(result: dict[str, Any], path: Path) -> Path:
    """Write `result` as indented JSON, atomically (temp file + rename)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(json.dumps(result, indent=2) + "\n")
    os.replace(tmp, path)
    return path


def plot_result(result: dict[str, Any], latencies_ms: Sequence[float], path: Path) -> Path:
    """PNG with success rate per seed (bars) and the histogram of per-call policy latency."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, (ax1, ax2) = plt.subplots(1, 2, figsize=(9, 3.4))
    per_seed = result["per_seed"]
    ax1.bar([str(p["seed"]) for p in per_seed], [p["success_rate"] for p in per_seed])
    ax1.axhline(result["success_rate"], color="k", ls="--", lw=1, label="mean")
    ax1.set_ylim(0, 1.05)
    ax1.set_xlabel("seed")
    ax1.set_ylabel("success rate")
    ax1.set_title(f"{result['task']}: {result['success_rate']:.2f} ({result['episodes']} ep/seed)")
    ax1.legend(loc="lower right")
    if latencies_ms:
        ax2.hist(latencies_ms, bins=min(40, max(5, len(latencies_ms) // 5)))
    lat = result["latency_ms"]
    ax2.set_xlabel("policy latency per call (ms)")
    ax2.set_ylabel("calls")
    ax2.set_title(
        f"{result['sampler']} ({result['steps']} steps): p50 {lat['p50']:.1f} / "
        f"p99 {lat['p99']:.1f} ms"
    )
    fig.tight_layout()
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=100)
    plt.close(fig)
    return path


def write_video(frames: Sequence[np.ndarray], path: Path, fps: int = 20) -> Path:
    """Write RGB frames (H, W, 3) uint8 as a video; returns the path written.

    `.gif` is written by imageio (Pillow). `.mp4` uses imageio's ffmpeg or PyAV plugin when one
    is installed, else OpenCV's mp4v encoder; when neither can encode, an animated GIF is written
    next to the requested path (same name, `.gif`) and its path returned.
    """
    import imageio.v3 as iio

    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    if not frames:
        raise ValueError("no frames to write")
    stack = np.stack([np.asarray(f, dtype=np.uint8) for f in frames])
    if path.suffix.lower() == ".gif":
        iio.imwrite(path, stack, duration=1000 / fps, loop=0)
        return path
    try:
        iio.imwrite(path, stack, fps=fps)
        return path
    except Exception:  # no ffmpeg / pyav plugin for imageio
        pass
    try:
        import cv2

        h, w = stack.shape[1:3]
        writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"mp4v"), fps, (w, h))
        if writer.isOpened():
            for frame in stack:
                writer.write(cv2.cvtColor(frame, cv2.COLOR_RGB2BGR))
            writer.release()
            if path.exists() and path.stat().st_size > 0:
                return path
    except ImportError:
        pass
    gif = path.with_suffix(".gif")
    iio.imwrite(gif, stack, duration=1000 / fps, loop=0)
    return gif
