# Copyright 2026 sdm-policy-ros maintainers
# SPDX-License-Identifier: MIT
"""Per-action-chunk latency at batch 1: one-step vs DDIM-10 vs DDPM-100 on the same network.

Without a checkpoint, a teacher of the requested preset is built with random weights (latency
does not depend on the weights) and its SDM student is derived from it, both saved as real
checkpoints and timed through `PolicyRuntime.step` — the exact call a robot makes (observation
validation, history, normalisation, sampling, unnormalisation). A trained SDM checkpoint is timed
against its trained teacher in one run when the teacher is given too (`--teacher`).
"""

from __future__ import annotations

import dataclasses
import platform
import resource
import statistics
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import torch

from sdm_policy_core.checkpoint import checkpoint_config, prefixed_state_dict, save_checkpoint
from sdm_policy_core.config import load_config
from sdm_policy_core.keys import ACTION, AGENT_POS, IMAGE, POINT_CLOUD
from sdm_policy_core.models import count_parameters
from sdm_policy_core.policies import DiffusionPolicy, SdmPolicy
from sdm_policy_core.runtime import PolicyRuntime
from sdm_policy_core.training.distributed import resolve_device

# sampler key -> (sampler, steps, at most this many timed calls)
SAMPLERS = {
    "one_step": ("one-step", 1, 200),
    "ddim10": ("ddim", 10, 50),
    "ddpm100": ("ddpm", 100, 10),
}


def make_checkpoints(
    preset: str,
    out: Path,
    num_points: int = 512,
    state_dim: int = 9,
    action_dim: int = 4,
    seed: int = 0,
) -> tuple[Path, Path, int]:
    """Write a random-weight teacher of `preset` and its SDM student as checkpoints in `out`."""
    cfg = load_config(
        overrides=[
            f"model.preset={preset}",
            f"obs.point_cloud_shape=[{num_points}, 3]",
            f"obs.state_dim={state_dim}",
            f"obs.action_dim={action_dim}",
        ]
    )
    torch.manual_seed(seed)
    teacher = DiffusionPolicy(cfg)
    rng = np.random.default_rng(seed)
    teacher.normalizer.fit(
        {
            ACTION: rng.uniform(-1, 1, (256, action_dim)),
            AGENT_POS: rng.uniform(-1, 1, (256, state_dim)),
        }
    )
    teacher_dir, sdm_dir = out / "teacher", out / "sdm"
    save_checkpoint(
        teacher_dir,
        checkpoint_config(cfg, "teacher", 0),
        prefixed_state_dict(
            {
                "encoder": teacher.encoder,
                "denoiser": teacher.denoiser,
                "normalizer": teacher.normalizer,
            }
        ),
    )
    student = SdmPolicy(cfg, teacher)
    save_checkpoint(
        sdm_dir,
        checkpoint_config(cfg, "sdm", 0),
        prefixed_state_dict(
            {
                "encoder": student.encoder,
                "generator": student.generator,
                "normalizer": student.normalizer,
            }
        ),
    )
    return teacher_dir, sdm_dir, count_parameters(teacher.denoiser)


def _time_calls(
    call: Callable[[Any], Any],
    inputs,
    max_calls: int,
    budget_s: float,
    warmup: int = 2,
    idle_s: float = 0.0,
    evict: np.ndarray | None = None,
) -> list[float]:
    """Time up to `max_calls` calls `call(next(inputs))`, each after cache eviction and a pause.

    Times of up to `max_calls` calls `call(next(inputs))` (at least one; `budget_s` of call
    time at most), each after rewriting every cache line of `evict` (untimed) and an idle pause
    of `idle_s`; the next input is drawn before the pause, untimed.
    """
    for _ in range(warmup):
        call(next(inputs))
    times: list[float] = []
    while len(times) < max_calls and (not times or sum(times) < budget_s):
        arg = next(inputs)
        if evict is not None:  # what a simulator, renderer or camera driver does to the caches
            np.add(evict, 1.0, out=evict)
        if idle_s:
            time.sleep(idle_s)
        t0 = time.perf_counter()
        call(arg)
        times.append(time.perf_counter() - t0)
    return times


def _time_parts(
    runtime: PolicyRuntime, obs_stream, max_calls: int, budget_s: float, **timing: Any
) -> dict[str, float]:
    """Measure the p50 [ms] of the encoder and of one network call, each timed alone.

    p50 [ms] of the two parts of a policy call, each timed alone under the same pauses and
    cache eviction as the whole calls: `encode_p50_ms` (normalisation + observation encoder)
    and `network_p50_ms` (one call of the network the sampler calls per step: a teacher's
    denoiser, a student's one-step generator). A DDIM-K call is about encode + K network calls
    + the sampler's own arithmetic.
    """
    policy, device = runtime.policy, next(runtime.policy.parameters()).device

    def batches():  # each a new observation pushed into the runtime's history, as in a call
        while True:
            runtime.push(next(obs_stream))
            yield runtime.model_inputs()

    def synced(fn):
        def call(arg):
            out = fn(arg)
            if device.type == "cuda":
                torch.cuda.synchronize(device)
            return out

        return call

    with torch.inference_mode():
        cond = policy.encode(next(batches()))
        x = torch.randn(1, *policy.action_shape, device=device)
        if runtime.kind == "sdm":
            network = synced(lambda z: policy.generator(z, cond))
        else:
            t = torch.full((1,), policy.schedule.num_train_timesteps - 1, device=device)
            network = synced(lambda z: policy.denoiser(z, t, cond))
        encode = _time_calls(synced(policy.encode), batches(), max_calls, budget_s, **timing)
        noise = iter(lambda: x, None)  # the same input every call
        calls = _time_calls(network, noise, max_calls, budget_s, **timing)
    return {
        "encode_p50_ms": percentile(encode, 50) * 1e3,
        "network_p50_ms": percentile(calls, 50) * 1e3,
    }


def _observations(spec, seed: int = 0):
    """Random observations of the spec's keys: a cloud and an image where it has them."""
    rng = np.random.default_rng(seed)
    while True:
        obs = {AGENT_POS: rng.uniform(-1, 1, spec.state_dim).astype(np.float32)}
        if spec.point_cloud_shape is not None:
            obs[POINT_CLOUD] = rng.uniform(-0.5, 0.5, spec.point_cloud_shape).astype(np.float32)
        if spec.image_shape is not None:
            c, h, w = spec.image_shape
            obs[IMAGE] = rng.integers(0, 256, (h, w, c), dtype=np.uint8)
        yield obs


def check_pair(student: Any, teacher: Any) -> None:
    """Raise ValueError naming what differs when a student and a teacher runtime do not match.

    Both must observe the same observation spec (`runtime.spec`: cloud, image, state and action
    sizes) and plan chunks of the same horizon, so that one observation stream feeds both and
    their chunk latencies compare the same work.
    """
    differs = [
        f"obs.{f.name} {getattr(student.spec, f.name)} (student) vs "
        f"{getattr(teacher.spec, f.name)} (teacher)"
        for f in dataclasses.fields(student.spec)
        if getattr(student.spec, f.name) != getattr(teacher.spec, f.name)
    ]
    if student.horizon != teacher.horizon:
        differs.append(f"horizon {student.horizon} (student) vs {teacher.horizon} (teacher)")
    if differs:
        raise ValueError(
            f"teacher {teacher.path} does not match student {student.path}: " + "; ".join(differs)
        )


def percentile(values: list[float], q: float) -> float:
    return float(np.percentile(np.asarray(values), q))


def run_latency(
    preset: str | None = None,
    checkpoint: Path | None = None,
    threads: int = 2,
    budget_s: float = 60.0,
    num_points: int = 512,
    samplers: tuple[str, ...] = tuple(SAMPLERS),
    device: str = "cpu",
    idle_ms: float = 0.0,
    evict_mb: float = 0.0,
    parts: bool = False,
    teacher: Path | None = None,
) -> dict[str, Any]:
    """Run the latency benchmark and return the JSON of `sdm bench latency`.

    Keys: one_step/ddim10/ddpm100 {p50_ms, p99_ms, n, policy}, speedup_vs_ddim10,
    speedup_vs_ddpm100, preset, checkpoint, teacher_checkpoint, threads, idle_ms, peak_rss_mb, ...

    preset: random-weight models of this preset when no `checkpoint` is given (default
    cpu_small).
    checkpoint: time this checkpoint instead of random-weight models of `preset`: a teacher's
    samplers all run on it; an SDM checkpoint alone times one_step only.
    teacher: with `checkpoint` naming an SDM checkpoint, its teacher checkpoint: one_step runs
    on the student and ddim10 / ddpm100 on the teacher in this one run, so the speedups come
    from one process on one machine. Both must have the same observation spec and horizon
    (`check_pair`); ValueError otherwise, and when `checkpoint` is missing or not an SDM
    checkpoint, or `teacher` is one, or `preset` is given too.

    idle_ms: a pause before every timed call, as a control loop has between ticks while the
    robot or simulator runs (0: calls back to back, caches and threads warm).
    evict_mb: before every timed call, rewrite a buffer of this many MB (untimed), as the
    simulator's or the drivers' work between ticks does to the CPU caches (0: none). The
    buffer is this process's memory, so it counts in peak_rss_mb.
    parts: also time the encoder and one network call alone (`_time_parts`), per sampler.
    """
    if teacher is not None and preset is not None:
        raise ValueError(
            "--teacher cannot be used with --preset: it times the SDM checkpoint given by "
            "--checkpoint against that teacher (a preset already times a random-weight student "
            "and teacher)"
        )
    if teacher is not None and checkpoint is None:
        raise ValueError(
            "--teacher needs --checkpoint: it times the SDM checkpoint given by --checkpoint "
            "against that teacher"
        )
    if not (0.0 <= idle_ms <= 10_000.0):
        raise ValueError(f"idle_ms must be in [0, 10000], got {idle_ms}")
    if not (0.0 <= evict_mb <= 4096.0):
        raise ValueError(f"evict_mb must be in [0, 4096], got {evict_mb}")
    evict = np.zeros(int(evict_mb * 2**20) // 8) if evict_mb else None
    timing = {"idle_s": idle_ms / 1000.0, "evict": evict}
    parts_of: dict[str, dict[str, float]] = {}  # per policy: DDIM and DDPM share the network
    device = str(resolve_device(device))  # clear error when CUDA is asked for but absent
    torch.set_num_threads(threads)
    result: dict[str, Any] = {
        "threads": threads,
        "machine": platform.processor() or platform.machine(),
        "torch": torch.__version__,
        "budget_s_per_sampler": budget_s,
        "idle_ms": idle_ms,
        "evict_mb": evict_mb,
        "device": device,
    }
    if device.startswith("cuda"):
        result["machine"] = torch.cuda.get_device_name(torch.device(device))
    teacher_rt: PolicyRuntime | None  # ddim10 / ddpm100 (and one_step without a student)
    student: PolicyRuntime | None  # one_step
    with tempfile.TemporaryDirectory(prefix="sdm-bench-") as tmp:
        if checkpoint is None:
            preset = preset or "cpu_small"
            teacher_dir, sdm_dir, params = make_checkpoints(preset, Path(tmp), num_points)
            result.update(
                preset=preset, denoiser_params=params, checkpoint=None, teacher_checkpoint=None
            )
            teacher_rt = PolicyRuntime(teacher_dir, threads=threads, device=device)
            student = PolicyRuntime(sdm_dir, threads=threads, device=device)
        else:
            result.update(
                preset=None,
                checkpoint=str(checkpoint),
                teacher_checkpoint=None if teacher is None else str(teacher),
            )
            student = PolicyRuntime(Path(checkpoint), threads=threads, device=device)
            teacher_rt = None
            if student.kind != "sdm":
                if teacher is not None:
                    raise ValueError(
                        f"--checkpoint must be an SDM checkpoint when --teacher is given; "
                        f"{checkpoint} is a {student.kind!r} checkpoint"
                    )
                teacher_rt, student = student, None
            elif teacher is not None:
                teacher_rt = PolicyRuntime(Path(teacher), threads=threads, device=device)
                if teacher_rt.kind == "sdm":
                    raise ValueError(
                        f"--teacher must be a teacher checkpoint; {teacher} is an SDM checkpoint"
                    )
                check_pair(student, teacher_rt)
        spec = (teacher_rt or student).spec
        result["obs"] = {
            "point_cloud_shape": list(spec.point_cloud_shape or []) or None,
            "state_dim": spec.state_dim,
            "action_dim": spec.action_dim,
        }
        result["horizon"] = (teacher_rt or student).horizon
        for key in samplers:
            sampler, steps, max_calls = SAMPLERS[key]
            runtime = student if sampler == "one-step" and student else teacher_rt
            if runtime is None:
                continue
            runtime.set_sampler(sampler, steps)
            runtime.reset()
            times = _time_calls(
                runtime.step,
                _observations(spec),
                max_calls,
                budget_s,
                warmup=1 if steps >= 50 else 2,
                **timing,
            )
            assert next(runtime.policy.parameters()).device.type == torch.device(device).type
            result[key] = {
                "p50_ms": percentile(times, 50) * 1e3,
                "p99_ms": percentile(times, 99) * 1e3,
                "mean_ms": statistics.fmean(times) * 1e3,
                "n": len(times),
                "policy": runtime.kind,
            }
            if parts:
                if runtime.kind not in parts_of:
                    parts_of[runtime.kind] = _time_parts(
                        runtime, _observations(spec, 1), 200, budget_s / 4, **timing
                    )
                result[key].update(parts_of[runtime.kind])
    if "one_step" in result and "ddim10" in result:
        result["speedup_vs_ddim10"] = result["ddim10"]["p50_ms"] / result["one_step"]["p50_ms"]
    if "one_step" in result and "ddpm100" in result:
        result["speedup_vs_ddpm100"] = result["ddpm100"]["p50_ms"] / result["one_step"]["p50_ms"]
    result["peak_rss_mb"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    if device.startswith("cuda"):
        result["peak_cuda_mb"] = torch.cuda.max_memory_allocated(torch.device(device)) / 2**20
    return result
