# Copyright 2026 sdm-policy-ros maintainers
# SPDX-License-Identifier: MIT
"""The main job's report states each paired difference with its interval (known answers)."""

from __future__ import annotations

import json

import pytest

from sdm_policy_core.report.main_job import differences, write_report


def _result(successes: list[bool]) -> dict:
    """Build an eval result of len(successes) episodes on seeds 0 and 1 (paired by reset seed)."""
    rows = [
        {"seed": i % 2, "index": i // 2, "reset_seed": 100 + i, "success": s}
        for i, s in enumerate(successes)
    ]
    return {
        "success_rate": sum(successes) / len(successes),
        "episodes": len(successes) // 2,
        "seeds": [0, 1],
        "latency_ms": {"p50": 1.0, "p99": 2.0},
        "control_hz": 100.0,
        "episode_results": rows,
    }


def test_the_report_states_sdm_minus_naive_and_minus_ddim_with_95_percent_intervals(tmp_path):
    n = 40
    ddim = _result([True] * n)
    naive = _result([i < 8 for i in range(n)])  # 8 of 40
    sdm = _result([i < 4 or i >= 8 for i in range(n)])  # 36 of 40: 4 + 32
    rows = {"teacher DDIM-10": ddim, "teacher naive one-step": naive, "SDM one-step": sdm}
    diffs = differences(rows)
    assert [(d["b"], d["a"]) for d in diffs] == [
        ("SDM one-step", "teacher naive one-step"),
        ("SDM one-step", "teacher DDIM-10"),
    ]
    vs_naive, vs_ddim = diffs
    assert vs_naive["difference"] == pytest.approx(28 / 40)  # 32 gained, 4 lost
    assert (vs_naive["only_a"], vs_naive["only_b"], vs_naive["pairs"]) == (4, 32, 40)
    # per-episode differences: 32 x +1, 4 x -1, 4 x 0 -> standard error 0.10, interval ~ +-0.2
    assert 0.4 < vs_naive["ci"][0] < 0.6 and 0.8 < vs_naive["ci"][1] < 1.0
    assert vs_ddim["difference"] == pytest.approx(-4 / 40) and vs_ddim["ci"][1] <= 0.0
    report = write_report(tmp_path, "t", {"obstacle-2d": rows}, {}, {"x": 1.0}, [])
    text = report.read_text()
    lo, hi = (100 * v for v in vs_naive["ci"])
    assert (
        f"- SDM one-step − teacher naive one-step: +70.0 points, 95 % interval "
        f"[{lo:+.1f}, {hi:+.1f}] over 40 paired episodes"
    ) in text
    assert "- SDM one-step − teacher DDIM-10: -10.0 points, 95 % interval [" in text
    saved = json.loads((tmp_path / "rows.json").read_text())["obstacle-2d"]
    assert saved["differences"][0]["difference"] == pytest.approx(0.7)
    # Rows that ran different episodes cannot be paired: said, not computed.
    rows["SDM one-step"] = _result([True] * (n - 2))
    with pytest.raises(ValueError, match="different episodes"):
        differences(rows)
