# Copyright 2026 sdm-policy-ros maintainers
# SPDX-License-Identifier: MIT
"""Torch vs onnxruntime policy runtimes side by side: cold start, resident memory, latency.

For each preset a random-weight SDM student is saved as a checkpoint (`latency.make_checkpoints`;
latency and memory do not depend on the weights) and exported to ONNX into its directory. Each
backend then runs in a fresh Python process, as a robot's node would start:

- cold start: parent's process start -> the child reports its runtime ready (interpreter start,
  imports, model load and the warm-up call), with the child's own import / load split;
- resident memory (VmRSS) when ready and after the timed steps, and the peak (VmHWM);
- `runtime.step(observation)` (validation, history, normalisation, the network, noise) timed
  at a paced control rate (default 30 Hz), p50 / p99;
- whether torch was imported by the process (must be false for onnxruntime).

Runs alternate between the backends (torch, onnxruntime, torch, ...) so that other load on the
machine falls on both alike. `optimizations`: onnxruntime's graph optimisation levels to run
(each level but "all" is reported as "onnxruntime:LEVEL"). `quantize=("int8",)` adds the
dynamic int8 export (`sdm export --quantize int8`) at level "all" as "onnxruntime:int8".
"""

from __future__ import annotations

import json
import platform
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np

from sdm_policy_core.bench.latency import make_checkpoints, percentile
from sdm_policy_core.export import QUANTIZATIONS, export_policy
from sdm_policy_core.keys import RUNTIME_BACKENDS

# One run of one backend. argv: backend, checkpoint dir, threads, steps, rate_hz, onnxruntime's
# optimisation level. Prints one JSON line when ready, one when done.
CHILD = r"""
import json, sys, time
start = time.perf_counter()
backend, path = sys.argv[1], sys.argv[2]
threads, steps, rate = int(sys.argv[3]), int(sys.argv[4]), float(sys.argv[5])

def memory():
    out = {}
    for line in open("/proc/self/status"):
        if line.startswith(("VmRSS:", "VmHWM:")):
            out[line.split(":")[0]] = int(line.split()[1]) / 1024.0
    return out

import numpy as np
if backend == "torch":
    from sdm_policy_core.runtime import PolicyRuntime as Runtime
else:
    from sdm_policy_core.onnx_runtime import OnnxPolicyRuntime as Runtime
imported = time.perf_counter()
options = {} if backend == "torch" else {"optimization": sys.argv[6]}
runtime = Runtime(path, threads=threads, seed=0, **options)
ready = time.perf_counter()
mem = memory()
print(json.dumps({"event": "ready", "import_s": imported - start, "load_s": ready - imported,
                  "rss_ready_mb": mem["VmRSS"]}), flush=True)
rng = np.random.default_rng(0)
shapes = runtime.expected_shapes()
observations = [{k: rng.uniform(-0.5, 0.5, s).astype(np.float32) for k, s in shapes.items()}
                for _ in range(16)]
times = []
period = 1.0 / rate
next_tick = time.perf_counter()
for i in range(steps):
    next_tick += period
    t0 = time.perf_counter()
    runtime.step(observations[i % len(observations)])
    times.append(time.perf_counter() - t0)
    time.sleep(max(0.0, next_tick - time.perf_counter()))
mem = memory()
print(json.dumps({"event": "done", "step_s": times, "rss_mb": mem["VmRSS"],
                  "peak_rss_mb": mem["VmHWM"],
                  "torch_loaded": any(m.split(".")[0] == "torch" for m in sys.modules)}),
      flush=True)
"""


def run_child(
    backend: str,
    checkpoint: Path,
    threads: int,
    steps: int,
    rate_hz: float,
    timeout: float,
    optimization: str = "all",
) -> dict[str, Any]:
    """One fresh process of `backend` on `checkpoint`: its two reports and the cold start [s]."""
    start = time.perf_counter()
    args = [backend, str(checkpoint), str(threads), str(steps), str(rate_hz), optimization]
    proc = subprocess.Popen(
        [sys.executable, "-c", CHILD, *args],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        ready_line = proc.stdout.readline()
        cold_start = time.perf_counter() - start
        rest, err = proc.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.communicate()
        raise RuntimeError(f"{backend} run on {checkpoint} took over {timeout:.0f} s") from None
    if proc.returncode != 0 or not ready_line:
        last = (err.strip().splitlines() or ["no output"])[-1]
        raise RuntimeError(f"{backend} run on {checkpoint} failed: {last}")
    ready = json.loads(ready_line)
    done = json.loads(rest.strip().splitlines()[-1])
    return {"cold_start_s": cold_start, **ready, **done}


def _summary(runs: list[dict[str, Any]]) -> dict[str, Any]:
    steps_ms = [t * 1e3 for run in runs for t in run["step_s"]]
    cold = [run["cold_start_s"] for run in runs]
    return {
        "cold_start_s": {"median": float(np.median(cold)), "runs": cold},
        "import_s": float(np.median([r["import_s"] for r in runs])),
        "load_s": float(np.median([r["load_s"] for r in runs])),
        "rss_ready_mb": float(np.median([r["rss_ready_mb"] for r in runs])),
        "rss_mb": float(np.median([r["rss_mb"] for r in runs])),
        "peak_rss_mb": float(max(r["peak_rss_mb"] for r in runs)),
        "step_ms": {"p50": percentile(steps_ms, 50), "p99": percentile(steps_ms, 99)},
        "n": len(steps_ms),
        "torch_loaded": any(r["torch_loaded"] for r in runs),
    }


def run_backends(
    presets: tuple[str, ...] = ("cpu_small", "simple_dp3"),
    backends: tuple[str, ...] = RUNTIME_BACKENDS,
    threads: int = 2,
    repeats: int = 3,
    steps: int = 300,
    rate_hz: float = 30.0,
    num_points: int = 512,
    workdir: Path | None = None,
    optimizations: tuple[str, ...] = ("all",),
    quantize: tuple[str, ...] = (),
) -> dict[str, Any]:
    """Benchmark each backend of each preset; return summaries and onnxruntime / torch ratios.

    {preset: {backend: summary}, ...} plus the ratios onnxruntime / torch; see the module
    docstring. Checkpoints and exports go to `workdir` (default: a temporary directory).
    """
    unknown = [b for b in backends if b not in RUNTIME_BACKENDS]
    if unknown or not backends:
        raise ValueError(f"backends must be among {list(RUNTIME_BACKENDS)}, got {list(backends)}")
    from sdm_policy_core.onnx_runtime import OPTIMIZATION_LEVELS

    if not optimizations or any(o not in OPTIMIZATION_LEVELS for o in optimizations):
        raise ValueError(
            f"optimizations must be among {list(OPTIMIZATION_LEVELS)}, got {list(optimizations)}"
        )
    if any(q not in QUANTIZATIONS for q in quantize) or (
        quantize and "onnxruntime" not in backends
    ):
        raise ValueError(
            f"quantize must be among {list(QUANTIZATIONS)}, with the onnxruntime backend; got "
            f"{list(quantize)}"
        )
    # (result key, backend, optimisation level, quantisation) of each kind of run
    variants = [("torch", "torch", "all", None)] if "torch" in backends else []
    if "onnxruntime" in backends:
        variants += [
            ("onnxruntime" if o == "all" else f"onnxruntime:{o}", "onnxruntime", o, None)
            for o in optimizations
        ]
        variants += [(f"onnxruntime:{q}", "onnxruntime", "all", q) for q in quantize]
    if repeats < 1 or steps < 1 or rate_hz <= 0:
        raise ValueError(
            f"need repeats >= 1, steps >= 1, rate > 0; got {repeats}, {steps}, {rate_hz}"
        )
    result: dict[str, Any] = {
        "backends": list(backends),
        "onnxruntime_optimizations": list(optimizations),
        "quantize": list(quantize),
        "threads": threads,
        "repeats": repeats,
        "steps_per_run": steps,
        "rate_hz": rate_hz,
        "num_points": num_points,
        "python": platform.python_version(),
        "machine": platform.machine(),
    }
    with tempfile.TemporaryDirectory(prefix="sdm_bench_backends_") as tmp:
        root = Path(workdir) if workdir is not None else Path(tmp)
        for preset in presets:
            _, sdm_dir, params = make_checkpoints(preset, root / preset, num_points=num_points)
            exported = export_policy(sdm_dir, sdm_dir / "policy.onnx", "onnx")
            quantized = {  # a file of its own beside the checkpoint directory
                q: export_policy(sdm_dir, sdm_dir.parent / f"policy.{q}.onnx", "onnx", quantize=q)
                for q in quantize
            }
            runs: dict[str, list[dict[str, Any]]] = {key: [] for key, *_ in variants}
            timeout = 300.0 + 10 * steps / rate_hz  # a loaded machine is slow
            for _ in range(repeats):
                for key, backend, level, q in variants:
                    model = sdm_dir if q is None else quantized[q].path
                    runs[key].append(
                        run_child(backend, model, threads, steps, rate_hz, timeout, level)
                    )
            entry: dict[str, Any] = {
                "denoiser_parameters": params,
                "onnx_mb": exported.path.stat().st_size / 2**20,
                "export_max_abs_diff": exported.max_abs_diff,
            }
            for q, export in quantized.items():
                key = f"{q}_max_abs_diff_normalized"
                entry[f"{q}_onnx_mb"] = export.path.stat().st_size / 2**20
                entry[key] = export.metadata[key]
            entry.update({key: _summary(runs[key]) for key in runs})
            if {"torch", "onnxruntime"} <= set(runs):
                t, o = entry["torch"], entry["onnxruntime"]
                entry["onnxruntime_vs_torch"] = {
                    "cold_start": o["cold_start_s"]["median"] / t["cold_start_s"]["median"],
                    "rss": o["rss_mb"] / t["rss_mb"],
                    "step_p50": o["step_ms"]["p50"] / t["step_ms"]["p50"],
                }
            result[preset] = entry
    return result
