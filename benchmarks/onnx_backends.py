# Copyright 2026 sdm-policy-ros maintainers
# SPDX-License-Identifier: MIT
"""The pre-registered onnxruntime-vs-torch closed-loop study (issue 21 items 3 and 4).

    python benchmarks/onnx_backends.py --protocol benchmarks/protocols/onnx_backends.yaml

Copies each policy's checkpoint to runs/onnx_backends/POLICY/checkpoints/latest, exports it there
(`sdm export`: policy.onnx, and POLICY/policy.int8.onnx with --quantize int8), runs every row of
the protocol with `sdm eval` (one process at a time, skipped when its JSON exists) into
benchmarks/results/onnx_backends/, and applies the protocol's rules with
`sdm_policy_core.eval.paired_difference`: a rule holds when the interval lies within its margin,
fails when it excludes 0 and crosses the margin, and is otherwise undecided; an undecided variant
rule is rerun once on the extended seeds (both rows) and decided there; `follow_up` rows, declared
after the registered runs, are run on the extended seeds and reported apart. Writes
summary.{json,md}.
"""

from __future__ import annotations

import argparse
import json
import shutil
import subprocess
import sys
from pathlib import Path

import yaml

from sdm_policy_core.eval.protocol import paired_difference

ROOT = Path(__file__).resolve().parents[1]
RUNS = ROOT / "runs" / "onnx_backends"
RESULTS = ROOT / "benchmarks" / "results" / "onnx_backends"


def sdm(*args: str) -> None:
    subprocess.run([sys.executable, "-m", "sdm_policy_core.cli", *args], check=True, cwd=ROOT)


def prepare(name: str, policy: dict, threads: int) -> Path:
    """Return the copied checkpoint with its fp32 export, and the int8 export beside it."""
    ckpt = RUNS / name / "checkpoints" / "latest"
    if not ckpt.exists():
        ckpt.mkdir(parents=True)
        for f in ("config.json", "model.safetensors"):
            shutil.copy2(ROOT / policy["checkpoint"] / f, ckpt / f)
    common = ["--checkpoint", str(ckpt), "--format", "onnx", "--threads", str(threads)]
    if not (ckpt / "policy.onnx").exists():
        sdm("export", *common, *policy["export"], "--out", str(ckpt / "policy.onnx"))
    int8 = RUNS / name / "policy.int8.onnx"
    if not int8.exists():
        sdm("export", *common, *policy["export"], "--quantize", "int8", "--out", str(int8))
    return ckpt


def evaluation(protocol: dict, name: str, row: str, seeds: list[int], tag: str = "") -> dict:
    out = RESULTS / f"{name}_{row}{tag}.json"
    if not out.exists():
        ckpt = RUNS / name / "checkpoints" / "latest"
        model = RUNS / name / "policy.int8.onnx" if row in protocol["int8_rows"] else ckpt
        sdm(
            "eval", "--checkpoint", str(model), "--task", protocol["task"],
            "--episodes", str(protocol["episodes"]), "--seeds", *map(str, seeds),
            "--out", str(out), "--no-plot", "--no-progress",
            *protocol["policies"][name]["eval"], *protocol["rows"][row],
        )  # fmt: skip
    return json.loads(out.read_text())


def verdict(ci: tuple[float, float], margin: list[float]) -> str:
    if margin[0] <= ci[0] and ci[1] <= margin[1]:
        return "holds"
    return "fails" if ci[0] > 0 or ci[1] < 0 else "undecided"


def paired_row(protocol: dict, name: str, rule: dict, b: str, extended: bool = False) -> dict:
    """B - A of one rule on one policy, on the protocol's seeds or the extended ones."""
    level = 0.90 if "ci90_within" in rule else 0.95
    margin = rule["ci90_within"] if level == 0.90 else rule["ci95_within"]
    seeds, tag = protocol["eval_seeds"], ""
    if extended:
        seeds = list(range(seeds[0], seeds[0] + protocol["extended_seeds"]))
        tag = f"__{len(seeds) * protocol['episodes']}ep"  # not a row name
    ra, rb = (evaluation(protocol, name, r, seeds, tag) for r in (rule["a"], b))
    diff = paired_difference([ra], [rb], level=level)
    return {
        "policy": name, "rule": rule["name"], "a": rule["a"], "b": b, "level": level,
        "episodes": diff["pairs"], "success_a": ra["success_rate"],
        "success_b": rb["success_rate"], "difference": diff["difference"],
        "ci": list(diff["ci"]), "only_a": diff["only_a"], "only_b": diff["only_b"],
        "latency_p50_a": ra["latency_ms"]["p50"], "latency_p50_b": rb["latency_ms"]["p50"],
        "verdict": verdict(diff["ci"], margin),
    }  # fmt: skip


def compare(protocol: dict, name: str, rule: dict, b: str) -> dict:
    """One rule on one policy; an undecided variant rule (b a list) is rerun once, extended."""
    row = paired_row(protocol, name, rule, b)
    if row["verdict"] == "undecided" and not isinstance(rule["b"], str):
        row = paired_row(protocol, name, rule, b, extended=True)
    return row


def markdown(rows: list[dict]) -> str:
    lines = [
        "| policy | A | B | episodes | success A | success B | B - A [interval] | "
        "only A / only B | p50 A / B (ms) | verdict |",
        "|---|---|---|---:|---:|---:|---|---:|---:|---|",
    ]
    for r in rows:
        ci = f"[{100 * r['ci'][0]:+.1f}, {100 * r['ci'][1]:+.1f}] ({r['level']:.0%})"
        lines.append(
            f"| {r['policy']} | {r['a']} | {r['b']} | {r['episodes']} | {r['success_a']:.3f} | "
            f"{r['success_b']:.3f} | {100 * r['difference']:+.1f} {ci} | "
            f"{r['only_a']} / {r['only_b']} | {r['latency_p50_a']:.2f} / "
            f"{r['latency_p50_b']:.2f} | {r['verdict']} |"
        )
    return "\n".join(lines) + "\n"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--protocol", type=Path, required=True)
    args = parser.parse_args()
    protocol = yaml.safe_load(args.protocol.read_text())
    RESULTS.mkdir(parents=True, exist_ok=True)
    rows = []
    for name, policy in protocol["policies"].items():
        prepare(name, policy, protocol["threads"])
        for rule in protocol["rules"]:
            for b in [rule["b"]] if isinstance(rule["b"], str) else rule["b"]:
                rows.append(compare(protocol, name, rule, b))
                print(json.dumps(rows[-1]), flush=True)
    kept = {
        b: all(r["verdict"] == "holds" for r in rows if r["b"] == b)
        for rule in protocol["rules"]
        if not isinstance(rule["b"], str)
        for b in rule["b"]
    }
    rules = {rule["name"]: rule for rule in protocol["rules"]}
    follow_ups = [  # declared after the registered runs; reported apart from them
        paired_row(protocol, f["policy"], rules[f["rule"]], rules[f["rule"]]["b"], extended=True)
        for f in protocol.get("follow_up", [])
    ]
    summary = {"protocol": str(args.protocol), "rows": rows, "variants_kept": kept}
    summary["follow_up"] = follow_ups
    (RESULTS / "summary.json").write_text(json.dumps(summary, indent=2) + "\n")
    table = markdown(rows) + "\nVariants kept: " + ", ".join(f"{k} {v}" for k, v in kept.items())
    if follow_ups:
        table += "\n\nFollow-up (declared after the registered runs):\n\n" + markdown(follow_ups)
    (RESULTS / "summary.md").write_text(table + "\n")
    print(table)
    return 0


if __name__ == "__main__":
    sys.exit(main())
