# Copyright 2026 sdm-policy-ros maintainers
# SPDX-License-Identifier: MIT
"""Run and report a pre-registered study (benchmarks/protocols/*.yaml) exactly as it was locked.

    python benchmarks/study/study.py plan   --protocol benchmarks/protocols/obstacle_2d.yaml \
        --phase development                    # the commands, nothing run
    python benchmarks/study/study.py run    --protocol ... --phase development [--work runs/study]
    python benchmarks/study/study.py report --protocol ... --phase development

A protocol fixes, before any of its runs: the tasks and their datasets, the teacher's and every
distillation's config overrides, the evaluation rows (checkpoint + sampler), the training seeds
and evaluation seeds of each phase, the compared metric and the decision rules. `run` executes
the `sdm demos / train / distill / eval` commands the protocol implies, each skipped when its
output exists (a killed run resumes: `sdm train` resumes from its run directory), one at a time.
`report` pairs every row with the rows the rules name on the same episodes
(`sdm_policy_core.eval.paired_difference`: training seeds resampled, then episodes), applies the
rules and writes RESULTS/<study>_<phase>.{json,md}.

Phases: `development` explores (its seeds are never reported); the `report` phase runs on
training and evaluation seeds that development never used. A protocol's `headline` names the
distillation the rules call "sdm"; when it is `select`, the report phase takes the distillation
with the highest development mean of the metric on the protocol's `select_task` (ties: the
earlier in `distillations`), so a variant is never picked on reported seeds.
"""

from __future__ import annotations

import argparse
import json
import shlex
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, ClassVar

import numpy as np
import yaml

REPO = Path(__file__).resolve().parents[2]
RESULTS = REPO / "benchmarks" / "results" / "study"
PHASES = ("development", "report")


@dataclass
class Row:
    name: str
    source: str  # "teacher" or a distillation's name
    eval_args: list[str]


class Protocol:
    """A study's locked protocol, validated on load (unknown keys are errors)."""

    KEYS: ClassVar[set[str]] = {
        "study",
        "description",
        "metric",
        "threads",
        "tasks",
        "teacher",
        "distillations",
        "rows",
        "episodes",
        "phases",
        "headline",
        "select_task",
        "rules",
    }

    def __init__(self, path: Path) -> None:
        self.path = path
        raw = yaml.safe_load(path.read_text())
        unknown = set(raw) - self.KEYS
        if unknown:
            raise SystemExit(f"{path}: unknown keys {sorted(unknown)}")
        self.study: str = raw["study"]
        self.metric: str = raw.get("metric", "success")
        self.threads: int = int(raw.get("threads", 2))
        self.tasks: dict[str, dict[str, Any]] = raw["tasks"]
        self.teacher: list[str] = list(raw["teacher"])
        self.distillations: dict[str, list[str]] = {
            k: list(v or []) for k, v in raw["distillations"].items()
        }
        self.rows = [
            Row(name, spec["from"], [str(a) for a in spec.get("eval", [])])
            for name, spec in raw["rows"].items()
        ]
        for row in self.rows:
            if row.source != "teacher" and row.source not in self.distillations:
                raise SystemExit(f"{path}: row {row.name} comes from unknown {row.source!r}")
        self.episodes = int(raw["episodes"])
        self.phases: dict[str, dict[str, list[int]]] = raw["phases"]
        if set(self.phases) != set(PHASES):
            raise SystemExit(f"{path}: phases must be exactly {PHASES}")
        dev, rep = self.phases["development"], self.phases["report"]
        for key in ("train_seeds", "eval_seeds"):
            if set(dev[key]) & set(rep[key]):
                raise SystemExit(f"{path}: report {key} overlap development's")
        self.headline: str = raw["headline"]
        self.select_task: str | None = raw.get("select_task")
        self.rules: list[dict[str, Any]] = raw.get("rules", [])
        order = list(self.tasks)
        for task, spec in self.tasks.items():
            owner = spec.get("teacher_of")
            if owner is None:
                continue
            if owner not in self.tasks or "teacher_of" in self.tasks[owner]:
                raise SystemExit(f"{path}: {task}: teacher_of {owner!r} is not a task that trains")
            if order.index(owner) > order.index(task):
                raise SystemExit(f"{path}: {task}: list its teacher_of {owner!r} before it")

    def teacher_task(self, task: str) -> str:
        """Return the task whose teacher run (and dataset) `task` uses.

        That is itself, or its `teacher_of`.
        """
        return self.tasks[task].get("teacher_of", task)

    def teacher_checkpoint(self, task: str) -> str:
        """Return the teacher checkpoint a task's rows use: `latest` or a kept `step_N`.

        The teacher checkpoint a task's rows use: `latest`, or one kept by train.keep_steps
        (`step_N`: the same teacher run taken at another point of its training).
        """
        return str(self.tasks[task].get("checkpoint", "latest"))

    def env(self, task: str) -> str:
        """Return what `sdm eval --task` evaluates the task's rows on."""
        return str(self.tasks[task].get("env", task))

    def task_rows(self, task: str) -> list[Row]:
        """Return the rows evaluated on `task` (its `rows` list, else all)."""
        names = self.tasks[task].get("rows")
        return [r for r in self.rows if names is None or r.name in names]

    def row(self, name: str) -> Row:
        for row in self.rows:
            if row.name == name:
                return row
        raise SystemExit(f"{self.path}: no row {name!r}")


def sdm(*args: str) -> list[str]:
    return [sys.executable, "-m", "sdm_policy_core.cli", *args]


def dataset_path(p: Protocol, task: str, work: Path) -> Path:
    task = p.teacher_task(task)
    spec = p.tasks[task]["dataset"]
    if "path" in spec:
        path = Path(spec["path"])
        return path if path.is_absolute() else (REPO / path).resolve()
    return work / task / "demos.zarr"


def eval_out(p: Protocol, phase: str, task: str, row: str, seed: int) -> Path:
    return RESULTS / p.study / phase / f"{task}_{row}_s{seed}.json"


def commands(p: Protocol, phase: str, work: Path) -> list[tuple[str, Path, list[str]]]:
    """(label, output that marks it done, command) of every step, in order."""
    steps: list[tuple[str, Path, list[str]]] = []
    seeds = p.phases[phase]
    threads = f"train.threads={p.threads}"
    for task, spec in p.tasks.items():
        data = dataset_path(p, task, work)
        owner = p.teacher_task(task)
        ds = p.tasks[owner]["dataset"]
        if owner == task and "path" not in ds:
            steps.append(
                (
                    f"{task} demos",
                    data,
                    sdm(
                        *("demos", "--task", ds.get("task", task), "--episodes", str(ds["demos"])),
                        *("--seed", str(ds.get("seed", 0)), "--out", str(data)),
                    ),
                )
            )
        teacher_overrides = p.teacher + list(spec.get("teacher", []))
        for seed in seeds["train_seeds"]:
            run = work / owner / f"teacher_s{seed}"
            if owner == task:
                steps.append(
                    (
                        f"{task} teacher s{seed}",
                        run / "checkpoints" / "latest" / "model.safetensors",
                        sdm("train", "--dataset", str(data), "--out", str(run), "--no-progress")
                        + teacher_overrides
                        + [f"train.seed={seed}", threads],
                    )
                )
            teacher = run / "checkpoints" / p.teacher_checkpoint(task)
            rows = p.task_rows(task)
            needed = {r.source for r in rows}
            for name, overrides in p.distillations.items():
                if name not in needed:
                    continue
                out = work / task / f"{name}_s{seed}"
                steps.append(
                    (
                        f"{task} {name} s{seed}",
                        out / "checkpoints" / "latest" / "model.safetensors",
                        sdm(
                            *("distill", "--teacher", str(teacher), "--dataset", str(data)),
                            *("--out", str(out), "--no-progress", *overrides),
                            *(f"train.seed={seed}", threads),
                        ),
                    )
                )
            for row in rows:
                ckpt = (
                    teacher if row.source == "teacher" else work / task / f"{row.source}_s{seed}"
                )
                if row.source != "teacher":
                    ckpt = ckpt / "checkpoints" / "latest"
                out = eval_out(p, phase, task, row.name, seed)
                steps.append(
                    (
                        f"{task} eval {row.name} s{seed}",
                        out,
                        sdm("eval", "--checkpoint", str(ckpt), "--task", p.env(task))
                        + ["--episodes", str(p.episodes), "--seeds"]
                        + [str(s) for s in seeds["eval_seeds"]]
                        + [
                            "--threads",
                            str(p.threads),
                            "--no-progress",
                            "--no-plot",
                            "--out",
                            str(out),
                        ]
                        + row.eval_args,
                    )
                )
    return steps


def finished(done: Path, cmd: list[str]) -> bool:
    """Return whether a step's output is complete.

    Whether a step's output is complete: an evaluation's JSON exists; a training run's
    `latest` checkpoint is at the run's last step (a run killed mid-way has a `latest` from its
    last periodic checkpoint, which must be resumed, not taken).
    """
    if not done.exists():
        return False
    if done.name != "model.safetensors":
        return True
    steps = [a.split("=", 1)[1] for a in cmd if a.startswith("train.max_steps=")]
    config = json.loads((done.parent / "config.json").read_text())
    return bool(steps) and config.get("provenance", {}).get("step") == int(steps[-1])


def run(
    p: Protocol,
    phase: str,
    work: Path,
    only_task: str | None = None,
    only_seeds: list[int] | None = None,
) -> int:
    log_dir = work / "logs"
    log_dir.mkdir(parents=True, exist_ok=True)
    todo = commands(p, phase, work)
    if only_task is not None:
        todo = [step for step in todo if step[0].split(" ")[0] == only_task]
    if only_seeds is not None:  # the shared datasets, then only these seeds' steps
        keep = {f"s{seed}" for seed in only_seeds}
        todo = [s for s in todo if s[0].endswith(" demos") or s[0].split(" ")[-1] in keep]
    for k, (label, done, cmd) in enumerate(todo, 1):
        if finished(done, cmd):
            print(f"[{k}/{len(todo)}] {label}: done", flush=True)
            continue
        log = log_dir / (label.replace(" ", "_") + ".log")
        print(f"[{k}/{len(todo)}] {label} ... (log {log})", flush=True)
        start = time.monotonic()
        with log.open("w") as handle:
            handle.write(shlex.join(cmd) + "\n")
            handle.flush()
            code = subprocess.call(cmd, stdout=handle, stderr=subprocess.STDOUT, cwd=REPO)
        took = time.monotonic() - start
        with (work / "timings.jsonl").open("a") as handle:
            handle.write(json.dumps({"step": label, "seconds": took, "code": code}) + "\n")
        if code != 0:
            print(f"  FAILED with {code} after {took:.0f} s; see {log}", flush=True)
            return code
        print(f"  {took:.0f} s", flush=True)
    return 0


def load_rows(
    p: Protocol, phase: str, task: str, seeds: list[int] | None = None
) -> dict[str, list[dict[str, Any]]]:
    """Load each row's evaluation per training seed.

    Each row's evaluation per training seed (all the phase's seeds, or `seeds`); a row
    lacking one is left out.
    """
    seeds = p.phases[phase]["train_seeds"] if seeds is None else seeds
    rows: dict[str, list[dict[str, Any]]] = {}
    for row in p.task_rows(task):
        paths = [eval_out(p, phase, task, row.name, s) for s in seeds]
        if all(path.exists() for path in paths):
            rows[row.name] = [json.loads(path.read_text()) for path in paths]
    return rows


def episode_mean(result: dict[str, Any], metric: str) -> float:
    return float(np.mean([float(e[metric]) for e in result["episode_results"]]))


def headline(p: Protocol) -> tuple[str, dict[str, float]]:
    """Return the distillation the rules call "sdm", and the development means that chose it."""
    if p.headline != "select":
        return p.headline, {}
    task = p.select_task or next(iter(p.tasks))
    dev = load_rows(p, "development", task)
    means = {
        row.name: float(np.mean([episode_mean(r, p.metric) for r in dev[row.name]]))
        for row in p.rows
        if row.source != "teacher" and row.name in dev
    }
    if not means:
        raise SystemExit(f"headline: select needs the development evaluations of {task}")
    best = max(means.values())
    return next(name for name, v in means.items() if v == best), means


def check_rule(rule: dict[str, Any], gap: dict[str, Any], gap90: dict[str, Any]) -> bool:
    ok = True
    if "difference_at_least" in rule:
        ok &= gap["difference"] >= rule["difference_at_least"]
    if "lower95_above" in rule:
        ok &= gap["ci"][0] > rule["lower95_above"]
    if "ci90_within" in rule:
        lo, hi = rule["ci90_within"]
        ok &= lo <= gap90["ci"][0] and gap90["ci"][1] <= hi
    return bool(ok)


def best_mean_rule(
    p: Protocol, phase: str, used: list[int], rule: dict[str, Any], tag: str
) -> tuple[dict[str, Any], str]:
    """Apply `max_mean_at_least`: the best of `row`'s means over `tasks` reaches the bound.

    `max_mean_at_least`: the best of `row`'s means over `tasks` reaches the bound (e.g. the
    best of a teacher's points of training).
    """
    means = {}
    for task in rule["tasks"]:
        rows = load_rows(p, phase, task, used)
        if rule["row"] in rows:
            means[task] = float(np.mean([episode_mean(r, p.metric) for r in rows[rule["row"]]]))
    entry: dict[str, Any] = {"rule": rule["name"], "row": rule["row"], "means": means}
    if len(means) < len(rule["tasks"]):
        entry["verdict"] = "missing"
        return entry, f"- {rule['name']}: MISSING evaluations"
    best = max(means, key=means.get)
    ok = means[best] >= rule["max_mean_at_least"]
    entry.update(best_task=best, verdict=tag + ("met" if ok else "MISSED"))
    per = ", ".join(f"{t} {v:.3f}" for t, v in means.items())
    return entry, f"- {rule['name']} ({rule['row']}: {per}): **{entry['verdict']}**"


def pair_rule(
    p: Protocol,
    phase: str,
    used: list[int],
    rule: dict[str, Any],
    task: str,
    alias: dict[str, str],
    tag: str,
) -> list[tuple[dict[str, Any], str]]:
    """Apply a rule on B - A on the same episodes, for each B the rule names on `task`.

    Optional parts: `when` (a gap that must hold for the rule to apply: {a, b, lower95_above},
    else "not applicable"), `recovers_at_least` with `reference` ((B - A) / (reference - A) of
    the means), `latency_ratio_at_least` (A's p50 latency / B's, medians over training seeds).
    """
    from sdm_policy_core.eval import paired_difference

    def name(row: str) -> str:
        return alias.get(row, row)

    rows = load_rows(p, phase, task, used)
    a = name(rule["a"])
    bs = (
        [r.name for r in p.task_rows(task) if r.name != a]
        if rule["b"] == "*"
        else [name(rule["b"])]
    )
    needed = {a, *bs} | {name(rule[k]) for k in ("reference",) if k in rule}
    if "when" in rule:
        needed |= {name(rule["when"]["a"]), name(rule["when"]["b"])}
    head = f"- {rule['name']} ({task}"
    if not needed <= set(rows):
        entry = {"rule": rule["name"], "task": task, "a": a, "b": bs, "verdict": "missing"}
        return [(entry, f"{head}): MISSING evaluations of {sorted(needed - set(rows))}")]
    if "when" in rule:
        w = rule["when"]
        cond = paired_difference(rows[name(w["a"])], rows[name(w["b"])], metric=p.metric)
        if not cond["ci"][0] > w["lower95_above"]:
            entry = {
                "rule": rule["name"],
                "task": task,
                "when": {**w, "difference": cond["difference"], "ci95": cond["ci"]},
                "verdict": "not applicable",
            }
            line = (
                f"{head}): not applicable: {name(w['b'])} - {name(w['a'])} "
                f"{cond['difference']:+.3f} [95 % {cond['ci'][0]:+.3f}, {cond['ci'][1]:+.3f}], "
                f"lower bound not above {w['lower95_above']}"
            )
            return [(entry, line)]
    results = []
    for b in bs:
        gap = paired_difference(rows[a], rows[b], metric=p.metric)
        gap90 = paired_difference(rows[a], rows[b], level=0.90, metric=p.metric)
        ok = check_rule(rule, gap, gap90)
        entry = {
            "rule": rule["name"],
            "task": task,
            "a": a,
            "b": b,
            "difference": gap["difference"],
            "ci95": gap["ci"],
            "ci90": gap90["ci"],
            "per_training_seed": gap["per_group"],
        }
        extra = ""
        if "recovers_at_least" in rule:
            full = paired_difference(rows[a], rows[name(rule["reference"])], metric=p.metric)
            recovered = gap["difference"] / full["difference"] if full["difference"] else 0.0
            ok &= recovered >= rule["recovers_at_least"] - 1e-9  # float sums of the means
            entry["recovered"] = recovered
            extra = f", {recovered:.0%} of {name(rule['reference'])} - {a}"
        if "latency_ratio_at_least" in rule:
            lat = {r: float(np.median([x["latency_ms"]["p50"] for x in rows[r]])) for r in (a, b)}
            ratio = lat[a] / lat[b]
            ok &= ratio >= rule["latency_ratio_at_least"]
            entry["latency_ratio"] = ratio
            extra += f", p50 {lat[a]:.2f} / {lat[b]:.2f} ms = {ratio:.1f}x"
        entry["verdict"] = tag + ("met" if ok else "MISSED")
        results.append(
            (
                entry,
                f"{head}, {b} - {a}): {gap['difference']:+.3f} "
                f"[95 % {gap['ci'][0]:+.3f}, {gap['ci'][1]:+.3f}; 90 % {gap90['ci'][0]:+.3f}, "
                f"{gap90['ci'][1]:+.3f}]{extra}: **{entry['verdict']}**",
            )
        )
    return results


def report(p: Protocol, phase: str, only_seeds: list[int] | None = None) -> int:
    """Write the phase's tables and rule verdicts.

    only_seeds: an interim look at the training seeds finished so far (a file of its own, every
    verdict marked interim: not a result).
    """
    name, selection = headline(p)
    train_seeds = p.phases[phase]["train_seeds"]
    interim = only_seeds is not None and sorted(only_seeds) != sorted(train_seeds)
    if only_seeds is not None and not set(only_seeds) <= set(train_seeds):
        raise SystemExit(f"--seeds {only_seeds} are not all {phase} seeds {train_seeds}")
    used = list(only_seeds) if only_seeds is not None else train_seeds
    out: dict[str, Any] = {
        "study": p.study,
        "phase": phase,
        "train_seeds": used,
        "interim": interim,
        "protocol": str(p.path.relative_to(REPO) if p.path.is_relative_to(REPO) else p.path),
        "metric": p.metric,
        "headline": name,
        "headline_selection": selection,
        "tasks": {},
        "rules": [],
    }
    lines = [f"# {p.study}: {phase} phase", ""]
    if interim:
        lines += [
            f"**INTERIM: training seeds {used} of {train_seeds}. Not a result: the protocol's "
            "verdicts need every seed; the verdicts below say where they stand so far.**",
            "",
        ]
    lines.append(f"Protocol `{out['protocol']}`; metric `{p.metric}`; headline SDM row `{name}`")
    if selection:
        chosen = ", ".join(f"{k} {v:.3f}" for k, v in selection.items())
        lines.append(f"(chosen on development seeds: {chosen}).")
    seeds = p.phases[phase]
    lines += [
        "",
        f"Training seeds {used}, evaluation seeds {seeds['eval_seeds']} x "
        f"{p.episodes} episodes. Gaps: B - A on the same episodes, 95 % interval of the "
        "hierarchical bootstrap (training seeds, then episodes).",
    ]
    alias = {"sdm": name}
    for task in p.tasks:
        rows = load_rows(p, phase, task, used)
        table: dict[str, Any] = {}
        lines += ["", f"## {task}", "", "| row | mean | per training seed | latency p50 ms |"]
        lines.append("|---|---|---|---|")
        for row, results in rows.items():
            values = [episode_mean(r, p.metric) for r in results]
            lat = float(np.median([r["latency_ms"]["p50"] for r in results]))
            table[row] = {"mean": float(np.mean(values)), "per_seed": values, "p50_ms": lat}
            per = " ".join(f"{v:.3f}" for v in values)
            lines.append(f"| {row} | {np.mean(values):.3f} | {per} | {lat:.2f} |")
        out["tasks"][task] = {"rows": table}
    lines += ["", "## Decision rules", ""]
    tag = "interim: " if interim else ""
    for rule in p.rules:
        if "max_mean_at_least" in rule:
            entry, line = best_mean_rule(p, phase, used, rule, tag)
            out["rules"].append(entry)
            lines.append(line)
            continue
        tasks = rule["task"] if isinstance(rule["task"], list) else [rule["task"]]
        for task in tasks:
            for entry, line in pair_rule(p, phase, used, rule, task, alias, tag):
                out["rules"].append(entry)
                lines.append(line)
    suffix = "_interim_s" + "-".join(map(str, used)) if interim else ""
    stem = RESULTS / p.study / f"{p.study}_{phase}{suffix}"
    stem.parent.mkdir(parents=True, exist_ok=True)
    stem.with_suffix(".json").write_text(json.dumps(out, indent=1) + "\n")
    stem.with_suffix(".md").write_text("\n".join(lines) + "\n")
    print("\n".join(lines))
    return 0


def main() -> int:
    ap = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawTextHelpFormatter
    )
    ap.add_argument("action", choices=["plan", "run", "report"])
    ap.add_argument("--protocol", type=Path, required=True)
    ap.add_argument("--phase", choices=PHASES, required=True)
    ap.add_argument("--work", type=Path, default=None, help="default runs/study/<study>")
    ap.add_argument("--task", help="run: only this task's steps (e.g. one process per task)")
    ap.add_argument(
        "--seeds",
        type=int,
        nargs="+",
        help="run: only these training seeds' steps (disjoint "
        "sets in parallel processes; never two processes on one seed)",
    )
    a = ap.parse_args()
    p = Protocol(a.protocol.resolve())
    work = (a.work or REPO / "runs" / "study" / p.study).resolve()
    if a.action == "plan":
        for label, done, cmd in commands(p, a.phase, work):
            state = "done" if finished(done, cmd) else "todo"
            print(f"# {label} [{state}]\n{shlex.join(cmd)}")
        return 0
    if a.action == "run":
        return run(p, a.phase, work, a.task, a.seeds)
    return report(p, a.phase, a.seeds)


if __name__ == "__main__":
    sys.exit(main())
