# Copyright 2026 sdm-policy-ros maintainers
# SPDX-License-Identifier: MIT
"""`sdm bench`: reproducible benchmarks that write JSON (see BENCHMARKS.md).

sdm bench latency [--preset P | --checkpoint CKPT_DIR [--teacher TEACHER_DIR]] [--idle-ms MS]
                  [--evict-mb MB] --out RESULT.json
sdm bench bag2zarr [BAG_DIR] --out RESULT.json   (makes its own bag of 10k-point clouds)
sdm bench backends [--backend torch onnxruntime] [--preset cpu_small simple_dp3] --out RESULT.json
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path

from sdm_policy_core.config import PRESETS
from sdm_policy_core.keys import RUNTIME_BACKENDS


def _write(result: dict, out: Path) -> None:
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = out.with_name(out.name + ".tmp")
    tmp.write_text(json.dumps(result, indent=2) + "\n")
    os.replace(tmp, out)


def _latency(args: argparse.Namespace) -> int:
    from sdm_policy_core.bench.latency import run_latency
    from sdm_policy_core.checkpoint import CheckpointError

    try:
        result = run_latency(
            preset=args.preset,
            checkpoint=args.checkpoint,
            teacher=args.teacher,
            threads=args.threads,
            budget_s=args.budget,
            num_points=args.num_points,
            device=args.device,
            idle_ms=args.idle_ms,
            evict_mb=args.evict_mb,
            parts=args.parts,
        )
    except (CheckpointError, RuntimeError, ValueError) as err:
        print(f"sdm bench latency: error: {err}", file=sys.stderr)
        return 2
    _write(result, args.out)
    for key in ("one_step", "ddim10", "ddpm100"):
        if key in result:
            r = result[key]
            print(f"{key:>9}: p50 {r['p50_ms']:8.2f} ms  p99 {r['p99_ms']:8.2f} ms  (n={r['n']})")
            if "network_p50_ms" in r:
                print(
                    f"{'':>9}  encoder {r['encode_p50_ms']:.2f} ms, one network call "
                    f"{r['network_p50_ms']:.2f} ms (p50, each timed alone)"
                )
    if "speedup_vs_ddim10" in result:
        print(
            f"one-step is {result['speedup_vs_ddim10']:.1f}x faster than DDIM-10"
            + (f" (idle {args.idle_ms:g} ms before each call)" if args.idle_ms else "")
            + (f" ({args.evict_mb:g} MB rewritten before each call)" if args.evict_mb else "")
            + f"; peak RSS {result['peak_rss_mb']:.0f} MB -> {args.out}"
        )
    return 0


def _node(args: argparse.Namespace) -> int:
    from sdm_policy_core.bench.node import run_node_bench

    try:
        result = run_node_bench(
            args.checkpoint,
            points=args.points,
            rate=args.rate,
            duration=args.duration,
            threads=args.threads,
            backends=tuple(args.backend),
            preset=args.preset,
            quantize=tuple(args.quantize),
        )
    except (RuntimeError, OSError, ValueError) as err:
        print(f"sdm bench node: error: {err}", file=sys.stderr)
        return 2
    _write(result, args.out)
    for backend, runs in result["backends"].items():
        for key, r in runs.items():
            lat = r["latency_ms"]
            ready, first = r["ready_s"], r["first_command_s"]
            print(
                f"{backend:>11} {key:>9}: latency p50 {lat['p50']:.1f} ms  p99 {lat['p99']:.1f} "
                f"ms  rate {r['rate_hz']:.1f} Hz  ({r['chunks']} chunks); ready "
                f"{ready if ready is None else f'{ready:.2f}'} s, first command "
                f"{first if first is None else f'{first:.2f}'} s, RSS {r['rss_mb']:.0f} MB"
            )
            iso = r["isolated_call_ms"]
            print(f"{'':>22} isolated call p50 {iso['p50']:.1f} ms  p99 {iso['p99']:.1f} ms")
            if r["pipeline"]:  # the node's own breakdown of its planned steps
                rows = {**r["pipeline"]["stages_ms"], "total": r["pipeline"]["total_ms"]}
                print(
                    f"{'':>22} node pipeline p50/p99 ms: "
                    + ", ".join(f"{k} {v['p50']:.1f}/{v['p99']:.1f}" for k, v in rows.items())
                )
    for variant, runs in result.get("vs_torch", {}).items():
        for key, ratio in runs.items():
            print(
                f"{variant} {key} / torch: resident memory {ratio['rss']:.3f}, latency p50 "
                f"{ratio['latency_p50']:.2f}"
            )
    return 0


def _bag2zarr(args: argparse.Namespace) -> int:
    from sdm_policy_core.bench.bag2zarr import run_bag2zarr_bench

    try:
        result = run_bag2zarr_bench(
            bag=args.bag,
            config=args.config,
            clouds=args.clouds,
            points=args.points,
            num_points=args.num_points,
            workers=args.workers,
            storage=args.storage,
            tf=args.tf,
            image_size=args.images,
        )
    except (RuntimeError, OSError, ValueError) as err:
        print(f"sdm bench bag2zarr: error: {err}", file=sys.stderr)
        return 2
    _write(result, args.out)
    print(
        f"{result['clouds']} clouds ({result['points_per_cloud']} points -> "
        f"{result['num_points']}): {result['clouds_per_s']:.0f} clouds/s, peak RSS "
        f"{result['peak_rss_mb']:.0f} MB (converter + {result['workers']} workers), "
        f"{result['messages']} messages -> {args.out}"
    )
    for who, stages in (result.get("stages_s") or {}).items():
        print(f"  {who} s: " + ", ".join(f"{name} {s:.2f}" for name, s in stages.items()))
    return 0


def _image_size(text: str) -> tuple[int, int]:
    """'640x480' -> (640, 480)."""
    try:
        width, height = (int(v) for v in text.lower().split("x"))
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"image size must be WxH, e.g. 320x240: {text!r}"
        ) from None
    if width <= 0 or height <= 0:
        raise argparse.ArgumentTypeError(f"image size must be positive: {text!r}")
    return width, height


def _backends(args: argparse.Namespace) -> int:
    from sdm_policy_core.bench.backends import run_backends

    try:
        result = run_backends(
            presets=tuple(args.preset),
            backends=tuple(args.backend),
            threads=args.threads,
            repeats=args.repeats,
            steps=args.steps,
            rate_hz=args.rate,
            optimizations=tuple(args.optimization),
            quantize=tuple(args.quantize),
        )
    except (RuntimeError, ValueError) as err:
        print(f"sdm bench backends: error: {err}", file=sys.stderr)
        return 2
    _write(result, args.out)
    for preset in args.preset:
        for backend, r in result[preset].items():
            if not isinstance(r, dict) or "step_ms" not in r:
                continue
            print(
                f"{preset:>10} {backend:>20}: ready {r['cold_start_s']['median']:.2f} s, "
                f"RSS {r['rss_mb']:.0f} MB, step p50 {r['step_ms']['p50']:.2f} ms "
                f"p99 {r['step_ms']['p99']:.2f} ms (n={r['n']}), torch imported: "
                f"{r['torch_loaded']}"
            )
    print(f"-> {args.out}")
    return 0


def add_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "bench",
        help="benchmarks (latency, ...)",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    bench = p.add_subparsers(dest="bench", metavar="BENCHMARK", required=True)
    lat = bench.add_parser(
        "latency",
        help="per-chunk latency: one-step vs DDIM-10 vs DDPM-100 (an SDM checkpoint against "
        "its teacher with --checkpoint SDM --teacher TEACHER)",
    )
    src = lat.add_mutually_exclusive_group()
    src.add_argument(
        "--preset",
        choices=sorted(PRESETS),
        help="random-weight model of this preset (default cpu_small)",
    )
    src.add_argument(
        "--checkpoint",
        type=Path,
        help="time this checkpoint instead (an SDM checkpoint alone: one-step only)",
    )
    lat.add_argument(
        "--teacher",
        type=Path,
        help="with --checkpoint SDM_DIR: its teacher checkpoint; one run times the student's "
        "one-step and the teacher's DDIM-10 / DDPM-100 and reports the speedups (same "
        "observation spec and horizon required)",
    )
    lat.add_argument("--threads", type=int, default=2, help="torch CPU threads (default 2)")
    lat.add_argument(
        "--budget",
        type=float,
        default=60.0,
        help="seconds of timed calls per sampler at most (default 60)",
    )
    lat.add_argument("--num-points", type=int, default=512, help="cloud size (default 512)")
    lat.add_argument("--device", default="cpu", help="cpu (default) or cuda[:N]")
    lat.add_argument(
        "--idle-ms",
        type=float,
        default=0.0,
        help="pause before every timed call, as a control loop has between ticks "
        "(default 0: back to back)",
    )
    lat.add_argument(
        "--evict-mb",
        type=float,
        default=0.0,
        help="rewrite this many MB before every timed call, as the simulator's or drivers' "
        "work between ticks does to the CPU caches (default 0)",
    )
    lat.add_argument(
        "--parts",
        action="store_true",
        help="also time the encoder and one network call alone (where a call's time goes)",
    )
    lat.add_argument("--out", type=Path, required=True, help="result JSON")
    lat.set_defaults(func=_latency)
    node = bench.add_parser("node", help="ROS node latency: cloud stamp -> command, and rate")
    node.add_argument(
        "--checkpoint",
        type=Path,
        help="an SDM checkpoint (default: cpu_small "
        "student and teacher with random weights, both measured)",
    )
    node.add_argument("--points", type=int, default=1024, help="points per cloud (1024)")
    node.add_argument("--rate", type=float, default=30.0, help="cloud rate in Hz (30)")
    node.add_argument("--duration", type=float, default=10.0, help="seconds measured (10)")
    node.add_argument("--threads", type=int, default=2, help="inference threads of the node")
    node.add_argument(
        "--backend",
        nargs="+",
        choices=RUNTIME_BACKENDS,
        default=["torch"],
        help="node backends, measured one after the other (default torch); onnxruntime runs "
        "the exported model (made here for the generated checkpoints)",
    )
    node.add_argument(
        "--preset",
        choices=sorted(PRESETS),
        default="cpu_small",
        help="random-weight checkpoints of this preset when no --checkpoint (cpu_small)",
    )
    node.add_argument(
        "--quantize",
        nargs="+",
        choices=("int8",),
        default=[],
        help="also run the onnxruntime node on the dynamic int8 export (sdm export --quantize "
        "int8, written outside the checkpoint) as onnxruntime:int8",
    )
    node.add_argument("--out", type=Path, required=True, help="result JSON")
    node.set_defaults(func=_node)
    back = bench.add_parser(
        "backends",
        help="torch vs onnxruntime runtime: cold start, resident memory, step latency",
    )
    back.add_argument(
        "--backend",
        nargs="+",
        choices=RUNTIME_BACKENDS,
        default=list(RUNTIME_BACKENDS),
        help="runtimes to measure (default both)",
    )
    back.add_argument(
        "--preset",
        nargs="+",
        choices=sorted(PRESETS),
        default=["cpu_small", "simple_dp3"],
        help="random-weight SDM students of these presets (default cpu_small simple_dp3)",
    )
    back.add_argument("--threads", type=int, default=2, help="inference threads (default 2)")
    back.add_argument("--repeats", type=int, default=3, help="fresh processes per backend (3)")
    back.add_argument("--steps", type=int, default=300, help="timed steps per process (300)")
    back.add_argument("--rate", type=float, default=30.0, help="control rate in Hz (30)")
    back.add_argument(
        "--optimization",
        nargs="+",
        choices=("disable", "basic", "extended", "all"),
        default=["all"],
        help="onnxruntime graph optimisation levels to run (default all)",
    )
    back.add_argument(
        "--quantize",
        nargs="+",
        choices=("int8",),
        default=[],
        help="also run the dynamic int8 export (sdm export --quantize int8) as onnxruntime:int8",
    )
    back.add_argument("--out", type=Path, required=True, help="result JSON")
    back.set_defaults(func=_backends)
    b2z = bench.add_parser("bag2zarr", help="bag -> zarr conversion: clouds/s and peak memory")
    b2z.add_argument(
        "bag", nargs="?", type=Path, help="rosbag2 bag (default: generate one of 10k-pt clouds)"
    )
    b2z.add_argument("--config", type=Path, help="bag2zarr config for BAG (default: built-in)")
    b2z.add_argument("--clouds", type=int, default=3000, help="clouds in a generated bag (3000)")
    b2z.add_argument("--points", type=int, default=10_000, help="points per generated cloud")
    b2z.add_argument("--num-points", type=int, default=1024, help="FPS target points (1024)")
    b2z.add_argument("--workers", type=int, default=2, help="decoding processes (2)")
    b2z.add_argument("--storage", choices=("mcap", "sqlite3"), default="mcap", help="bag storage")
    b2z.add_argument(
        "--tf",
        action="store_true",
        help="generated bag: camera on a moving wrist (/tf at 100 Hz + /tf_static), clouds "
        "converted into base_link at their own stamps",
    )
    b2z.add_argument(
        "--images",
        type=_image_size,
        metavar="WxH",
        help="generated bag: a jpeg CompressedImage of WxH per cloud, decoded into data/img",
    )
    b2z.add_argument("--out", type=Path, required=True, help="result JSON")
    b2z.set_defaults(func=_bag2zarr)
