# Copyright 2026 sdm-policy-ros maintainers
# SPDX-License-Identifier: MIT
"""`sdm bench latency` runs on a bare checkout and writes the contract's JSON keys."""

from __future__ import annotations

import json
import time
from types import SimpleNamespace

import numpy as np
import pytest
import torch

from sdm_policy_core.bench.latency import (
    _observations,
    _time_calls,
    _time_parts,
    check_pair,
    make_checkpoints,
)
from sdm_policy_core.cli import main as sdm


def test_bench_latency_writes_the_contract(tmp_path):
    out = tmp_path / "latency.json"
    code = sdm(
        [
            "bench",
            "latency",
            "--preset",
            "cpu_small",
            "--budget",
            "0.2",
            "--threads",
            "1",
            "--num-points",
            "64",
            "--out",
            str(out),
        ]
    )
    assert code == 0
    result = json.loads(out.read_text())
    for key in ("one_step", "ddim10", "ddpm100"):
        assert result[key]["p50_ms"] > 0 and result[key]["p99_ms"] >= result[key]["p50_ms"]
        assert result[key]["n"] >= 1
    assert result["one_step"]["policy"] == "sdm" and result["ddim10"]["policy"] == "teacher"
    assert result["speedup_vs_ddim10"] == (
        result["ddim10"]["p50_ms"] / result["one_step"]["p50_ms"]
    )
    assert result["preset"] == "cpu_small" and result["threads"] == 1
    assert result["device"] == "cpu"
    assert result["peak_rss_mb"] > 50


def test_bench_latency_reports_a_bad_checkpoint(tmp_path, capsys):
    code = sdm(
        [
            "bench",
            "latency",
            "--checkpoint",
            str(tmp_path / "nope"),
            "--out",
            str(tmp_path / "x.json"),
        ]
    )
    assert code == 2
    assert "does not exist" in capsys.readouterr().err


def test_bench_latency_device_is_used_and_checked(tmp_path, capsys):
    if torch.cuda.is_available():
        pytest.skip("this machine has CUDA: the missing-CUDA error cannot be shown here")
    code = sdm(
        [
            "bench",
            "latency",
            "--device",
            "cuda",
            "--budget",
            "0.1",
            "--out",
            str(tmp_path / "x.json"),
        ]
    )
    assert code == 2
    assert "sees no CUDA device" in capsys.readouterr().err
    assert not (tmp_path / "x.json").exists()


def test_bench_latency_pauses_before_each_call_when_asked(tmp_path, capsys):
    out = tmp_path / "idle.json"
    args = ["bench", "latency", "--budget", "0.02", "--threads", "1", "--num-points", "64"]
    start = time.perf_counter()
    assert sdm([*args, "--idle-ms", "40", "--out", str(out)]) == 0
    elapsed = time.perf_counter() - start
    result = json.loads(out.read_text())
    assert result["idle_ms"] == 40.0
    calls = sum(result[k]["n"] for k in ("one_step", "ddim10", "ddpm100"))
    assert elapsed >= 0.040 * calls  # every timed call waited first
    assert "idle 40 ms before each call" in capsys.readouterr().out
    assert sdm([*args, "--idle-ms", "-1", "--out", str(tmp_path / "bad.json")]) == 2
    assert "idle_ms must be in [0, 10000]" in capsys.readouterr().err
    assert not (tmp_path / "bad.json").exists()


def test_bench_latency_rewrites_a_buffer_before_each_call_when_asked(tmp_path, capsys):
    out = tmp_path / "evict.json"
    args = ["bench", "latency", "--budget", "0.02", "--threads", "1", "--num-points", "64"]
    assert sdm([*args, "--evict-mb", "8", "--out", str(out)]) == 0
    assert json.loads(out.read_text())["evict_mb"] == 8.0
    assert "8 MB rewritten before each call" in capsys.readouterr().out
    assert sdm([*args, "--evict-mb", "-1", "--out", str(tmp_path / "bad.json")]) == 2
    assert "evict_mb must be in [0, 4096]" in capsys.readouterr().err


def test_every_timed_call_follows_a_rewrite_of_the_whole_buffer():
    class Runtime:  # counts calls; the timing loop is what is under test
        calls = 0

        def step(self, observation):
            self.calls += 1

    buffer = np.zeros(4096)
    runtime = Runtime()
    times = _time_calls(runtime.step, iter(range(100)), max_calls=5, budget_s=10.0, evict=buffer)
    assert len(times) == 5 and runtime.calls == 2 + 5  # 2 untimed warm-up calls
    assert (buffer == 5).all()  # every element rewritten once per timed call, not per warm-up


def test_parts_time_the_encoder_and_the_network_the_sampler_calls(tmp_path):
    from sdm_policy_core.runtime import PolicyRuntime

    teacher_dir, sdm_dir, _ = make_checkpoints("cpu_small", tmp_path, num_points=64)
    for path, network in ((teacher_dir, "denoiser"), (sdm_dir, "generator")):
        runtime = PolicyRuntime(path, threads=1)
        counts = {"encoder": 0, network: 0}
        for name in counts:

            def count(*_, name=name, counts=counts):
                counts[name] += 1

            getattr(runtime.policy, name).register_forward_hook(count)
        parts = _time_parts(runtime, _observations(runtime.spec), max_calls=3, budget_s=10.0)
        assert parts["encode_p50_ms"] > 0 and parts["network_p50_ms"] > 0
        # encoder: 1 call for the condition + 2 warm-up + 3 timed; network: 2 + 3
        assert counts == {"encoder": 6, network: 5}


def test_bench_latency_parts_are_in_the_json_only_when_asked(tmp_path, capsys):
    args = ["bench", "latency", "--budget", "0.02", "--threads", "1", "--num-points", "64"]
    assert sdm([*args, "--out", str(tmp_path / "plain.json")]) == 0
    assert "network_p50_ms" not in json.loads((tmp_path / "plain.json").read_text())["ddim10"]
    assert sdm([*args, "--parts", "--out", str(tmp_path / "parts.json")]) == 0
    result = json.loads((tmp_path / "parts.json").read_text())
    for key in ("one_step", "ddim10", "ddpm100"):
        assert result[key]["encode_p50_ms"] > 0 and result[key]["network_p50_ms"] > 0
    assert "encoder" in capsys.readouterr().out


def _latency(*args: str, out) -> int:
    """Run `sdm bench latency` with a tiny budget on one thread."""
    common = ["--budget", "0.02", "--threads", "1"]
    return sdm(["bench", "latency", *common, *args, "--out", str(out)])


def test_bench_latency_times_a_student_against_its_teacher_in_one_run(
    sdm_ckpt, teacher_ckpt, tmp_path, capsys
):
    out = tmp_path / "pair.json"
    assert _latency("--checkpoint", str(sdm_ckpt), "--teacher", str(teacher_ckpt), out=out) == 0
    result = json.loads(out.read_text())
    assert result["one_step"]["policy"] == "sdm"
    assert result["ddim10"]["policy"] == result["ddpm100"]["policy"] == "teacher"
    assert result["speedup_vs_ddim10"] == (
        result["ddim10"]["p50_ms"] / result["one_step"]["p50_ms"]
    )
    assert result["speedup_vs_ddpm100"] == (
        result["ddpm100"]["p50_ms"] / result["one_step"]["p50_ms"]
    )
    assert result["checkpoint"] == str(sdm_ckpt)
    assert result["teacher_checkpoint"] == str(teacher_ckpt)
    assert "faster than DDIM-10" in capsys.readouterr().out
    # without --teacher an SDM checkpoint times its one-step call alone, as before
    alone = tmp_path / "alone.json"
    assert _latency("--checkpoint", str(sdm_ckpt), out=alone) == 0
    result = json.loads(alone.read_text())
    assert "ddim10" not in result and "speedup_vs_ddim10" not in result
    assert result["teacher_checkpoint"] is None


def test_bench_latency_refuses_a_teacher_it_cannot_pair(sdm_ckpt, teacher_ckpt, tmp_path, capsys):
    other_teacher, other_sdm, _ = make_checkpoints("cpu_small", tmp_path / "other", num_points=64)
    refusals = {
        "--teacher needs --checkpoint": ["--teacher", str(teacher_ckpt)],
        "--teacher cannot be used with --preset": [
            "--preset",
            "cpu_small",
            "--teacher",
            str(teacher_ckpt),
        ],
        f"{teacher_ckpt} is a 'teacher' checkpoint": [
            "--checkpoint",
            str(teacher_ckpt),
            "--teacher",
            str(teacher_ckpt),
        ],
        f"{other_sdm} is an SDM checkpoint": [
            "--checkpoint",
            str(sdm_ckpt),
            "--teacher",
            str(other_sdm),
        ],
        "obs.point_cloud_shape (32, 3) (student) vs (64, 3) (teacher)": [
            "--checkpoint",
            str(sdm_ckpt),
            "--teacher",
            str(other_teacher),
        ],
    }
    for message, args in refusals.items():
        out = tmp_path / "refused.json"
        assert _latency(*args, out=out) == 2, message
        err = capsys.readouterr().err
        assert err.startswith("sdm bench latency: error: ") and message in err, err
        assert not out.exists()


def test_a_teacher_of_another_horizon_or_action_size_is_named():
    from sdm_policy_core.config import ObservationSpec

    def runtime(path, horizon=16, **spec):
        return SimpleNamespace(spec=ObservationSpec(**spec), horizon=horizon, path=path)

    check_pair(runtime("sdm"), runtime("teacher"))  # the same: no error
    with pytest.raises(ValueError, match=r"horizon 16 \(student\) vs 8 \(teacher\)"):
        check_pair(runtime("sdm"), runtime("teacher", horizon=8))
    with pytest.raises(ValueError, match=r"obs.action_dim 4 \(student\) vs 7 \(teacher\)$"):
        check_pair(runtime("sdm"), runtime("teacher", action_dim=7))
