# Copyright 2026 sdm-policy-ros maintainers
# SPDX-License-Identifier: MIT
"""`sdm bench backends`: both runtimes in fresh processes, onnxruntime's without torch."""

from __future__ import annotations

import json

import pytest

from sdm_policy_core.bench.backends import run_backends
from sdm_policy_core.cli import main as sdm


def test_backends_bench_measures_both_runtimes_in_fresh_processes(tmp_path):
    out = tmp_path / "backends.json"
    args = ["bench", "backends", "--preset", "cpu_small", "--repeats", "1", "--steps", "5"]
    args += ["--optimization", "all", "disable", "--quantize", "int8"]
    assert sdm([*args, "--rate", "50", "--threads", "1", "--out", str(out)]) == 0
    result = json.loads(out.read_text())
    entry = result["cpu_small"]
    torch_run, onnx_run = entry["torch"], entry["onnxruntime"]
    unoptimised = entry["onnxruntime:disable"]  # graph optimisations off: another variant
    int8 = entry["onnxruntime:int8"]  # the dynamic int8 export: a smaller file
    assert torch_run["torch_loaded"] is True and onnx_run["torch_loaded"] is False
    assert unoptimised["torch_loaded"] is False and int8["torch_loaded"] is False
    assert result["onnxruntime_optimizations"] == ["all", "disable"]
    assert result["quantize"] == ["int8"] and entry["int8_onnx_mb"] < 0.5 * entry["onnx_mb"]
    assert 0 < entry["int8_max_abs_diff_normalized"] <= 0.1
    for run in (torch_run, onnx_run, unoptimised, int8):
        assert run["n"] == 5 and 0 < run["step_ms"]["p50"] <= run["step_ms"]["p99"]
        assert run["cold_start_s"]["median"] > run["load_s"] > 0
        assert 0 < run["rss_ready_mb"] <= run["peak_rss_mb"]
    assert entry["export_max_abs_diff"] <= 1e-4
    assert entry["onnxruntime_vs_torch"]["rss"] == onnx_run["rss_mb"] / torch_run["rss_mb"]
    assert (result["threads"], result["rate_hz"], result["steps_per_run"]) == (1, 50.0, 5)


def test_unknown_backend_is_refused(tmp_path):
    with pytest.raises(ValueError, match=r"backends must be among \['torch', 'onnxruntime'\]"):
        run_backends(backends=("tensorrt",), workdir=tmp_path)
    with pytest.raises(ValueError, match=r"quantize must be among \['int8'\], with the onnx"):
        run_backends(backends=("torch",), quantize=("int8",), workdir=tmp_path)
