# Copyright 2026 sdm-policy-ros maintainers
# SPDX-License-Identifier: MIT
"""The pre-registered study runner's verdicts on known evaluations.

The pre-registered study runner's verdicts (benchmarks/study/study.py) on known evaluations:
the rules decide what BENCHMARKS.md may claim, so each kind of rule is checked on data whose
answer is known.
"""

from __future__ import annotations

import importlib.util
import json
import sys
from pathlib import Path

import numpy as np
import pytest
import yaml

from test.conftest import REPO


@pytest.fixture
def study(tmp_path, monkeypatch):
    spec = importlib.util.spec_from_file_location("study", REPO / "benchmarks/study/study.py")
    module = importlib.util.module_from_spec(spec)
    monkeypatch.setitem(sys.modules, "study", module)  # dataclasses look their module up
    spec.loader.exec_module(module)
    monkeypatch.setattr(module, "RESULTS", tmp_path / "results")
    return module


def _protocol(tmp_path: Path, rules: list[dict]) -> Path:
    raw = {
        "study": "toy",
        "metric": "max_coverage",
        "episodes": 50,
        "tasks": {
            "early": {"dataset": {"path": "x.zarr"}, "env": "pusht"},
            "late": {"teacher_of": "early", "checkpoint": "step_9", "env": "pusht"},
        },
        "teacher": ["train.max_steps=9", "train.keep_steps=[3,9]"],
        "distillations": {"sdm": ["train.max_steps=5"]},
        "rows": {
            "ddim10": {"from": "teacher", "eval": ["--sampler", "ddim"]},
            "naive": {"from": "teacher", "eval": ["--sampler", "one-step"]},
            "sdm": {"from": "sdm"},
        },
        "phases": {
            "development": {"train_seeds": [100], "eval_seeds": [100]},
            "report": {"train_seeds": [0, 1], "eval_seeds": [1000]},
        },
        "headline": "sdm",
        "rules": rules,
    }
    path = tmp_path / "toy.yaml"
    path.write_text(yaml.safe_dump(raw))
    return path


def _write(study, p, task: str, row: str, values: np.ndarray, p50: float) -> None:
    for seed in (0, 1):
        out = study.eval_out(p, "report", task, row, seed)
        out.parent.mkdir(parents=True, exist_ok=True)
        episodes = [
            {"seed": 1000, "reset_seed": i, "success": False, "max_coverage": float(v)}
            for i, v in enumerate(values)
        ]
        out.write_text(json.dumps({"episode_results": episodes, "latency_ms": {"p50": p50}}))


def test_shared_teacher_points_and_every_rule_kind(study, tmp_path):
    rules = [
        {"name": "best teacher", "tasks": ["early", "late"], "row": "ddim10",
         "max_mean_at_least": 0.8},
        {"name": "recovers", "task": ["early", "late"], "a": "naive", "b": "sdm",
         "reference": "ddim10", "recovers_at_least": 0.75,
         "when": {"a": "naive", "b": "ddim10", "lower95_above": 0.05}},
        {"name": "cheaper", "task": "late", "a": "ddim10", "b": "sdm",
         "latency_ratio_at_least": 8},
    ]  # fmt: skip
    p = study.Protocol(_protocol(tmp_path, rules))
    steps = study.commands(p, "report", tmp_path / "work")
    labels = [label for label, _, _ in steps]
    assert labels.count("early teacher s0") == 1 and not any("late teacher" in x for x in labels)
    late_eval = next(cmd for label, _, cmd in steps if label == "late eval ddim10 s0")
    assert str(tmp_path / "work/early/teacher_s0/checkpoints/step_9") in late_eval
    assert late_eval[late_eval.index("--task") + 1] == "pusht"
    distill = next(cmd for label, _, cmd in steps if label == "late sdm s0")
    assert distill[distill.index("--out") + 1] == str(tmp_path / "work/late/sdm_s0")

    rng = np.random.default_rng(0)
    base = rng.uniform(0.2, 0.4, 100)
    # early: the teacher's gap is tiny (not applicable); late: gap 0.4, SDM recovers 0.3 (75 %)
    _write(study, p, "early", "naive", base, 1.0)
    _write(study, p, "early", "ddim10", base + 0.01, 9.0)
    _write(study, p, "early", "sdm", base + 0.01, 1.0)
    _write(study, p, "late", "naive", base, 1.0)
    _write(study, p, "late", "ddim10", base + 0.4, 10.0)
    _write(study, p, "late", "sdm", base + 0.3, 1.0)
    assert study.report(p, "report") == 0
    verdicts = json.loads((tmp_path / "results/toy/toy_report.json").read_text())["rules"]
    by = {(v["rule"], v.get("task")): v for v in verdicts}
    assert by[("best teacher", None)]["verdict"] == "MISSED"  # best 0.70 < 0.80
    assert by[("best teacher", None)]["best_task"] == "late"
    assert by[("recovers", "early")]["verdict"] == "not applicable"
    assert by[("recovers", "late")]["recovered"] == pytest.approx(0.75)
    assert by[("recovers", "late")]["verdict"] == "met"
    assert by[("cheaper", "late")]["latency_ratio"] == pytest.approx(10.0)
    assert by[("cheaper", "late")]["verdict"] == "met"

    _write(study, p, "late", "sdm", base + 0.29, 1.0)  # 72.5 %: one point short
    study.report(p, "report")
    verdicts = json.loads((tmp_path / "results/toy/toy_report.json").read_text())["rules"]
    assert {(v["rule"], v.get("task")): v["verdict"] for v in verdicts}[
        ("recovers", "late")
    ] == "MISSED"


def test_a_teacher_of_that_trains_nothing_is_refused(study, tmp_path):
    path = _protocol(tmp_path, [])
    raw = yaml.safe_load(path.read_text())
    raw["tasks"]["late"]["teacher_of"] = "nowhere"
    path.write_text(yaml.safe_dump(raw))
    with pytest.raises(SystemExit, match="teacher_of 'nowhere'"):
        study.Protocol(path)
