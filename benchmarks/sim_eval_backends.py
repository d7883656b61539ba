# Copyright 2026 sdm-policy-ros maintainers
# SPDX-License-Identifier: MIT
"""The pre-registered torch-vs-onnxruntime study through the ROS bridge (issue 21 item 3).

    python benchmarks/sim_eval_backends.py --protocol benchmarks/protocols/sim_eval_backends.yaml

Copies the policy's config.json and weights into the protocol's checkpoint directory (no export:
the onnxruntime row's `sdm sim-eval --backend onnxruntime` makes policy.onnx there itself), runs
every row with `sdm sim-eval` (one at a time, each on a ROS domain no test run holds, skipped
when its JSON exists) into benchmarks/results/sim_eval_backends/, and applies the protocol's
rules with `sdm_policy_core.eval.paired_difference` as benchmarks/onnx_backends.py does (holds:
the interval within the margin; fails: it excludes 0 and crosses the margin; else undecided,
and an undecided rule 2 is rerun once on the extended seeds). Each row is also compared episode
by episode with the in-process `sdm eval` of the same row (the onnx_backends results). Writes
summary.{json,md}; the load average before and after each row is kept in the summary.
"""

from __future__ import annotations

import argparse
import fcntl
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import IO

import yaml

from sdm_policy_core.eval.protocol import paired_difference

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "benchmarks" / "results" / "sim_eval_backends"
IN_PROCESS = ROOT / "benchmarks" / "results" / "onnx_backends"


def claim_domain() -> tuple[int, IO[str]]:
    """Claim a ROS domain (10-99) that no test run holds.

    A ROS domain (10-99) no test run holds, by the lock files test/conftest.py uses: the
    evaluation's nodes must not meet a test's nodes of the same names.
    """
    for domain in range(99, 9, -1):
        handle = (Path(tempfile.gettempdir()) / f"sdm_policy_ros_domain_{domain}.lock").open("w")
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            handle.close()
            continue
        return domain, handle  # locked while the handle is open
    raise RuntimeError("ROS domains 10-99 are all held")


def prepare(policy: dict) -> Path:
    """Return the copied checkpoint: config.json and weights only, no export."""
    ckpt = ROOT / policy["checkpoint"]
    if not ckpt.exists():
        ckpt.mkdir(parents=True)
        for name in ("config.json", "model.safetensors"):
            shutil.copy2(ROOT / policy["source"] / name, ckpt / name)
    return ckpt


def evaluation(protocol: dict, row: str, seeds: list[int], tag: str = "") -> dict:
    out = RESULTS / f"sdm_{row}{tag}.json"
    if not out.exists():
        domain, lock = claim_domain()
        load_before = os.getloadavg()
        try:
            subprocess.run(
                [
                    sys.executable, "-m", "sdm_policy_core.cli", "sim-eval",
                    "--checkpoint", str(ROOT / protocol["policy"]["checkpoint"]),
                    "--task", protocol["task"], "--episodes", str(protocol["episodes"]),
                    "--seeds", *map(str, seeds), "--out", str(out), "--no-plot", "--no-progress",
                    "--domain-id", str(domain), "--timeout-s", "3600", *protocol["rows"][row],
                ],
                check=True,
                cwd=ROOT,
            )  # fmt: skip
        finally:
            lock.close()
        result = json.loads(out.read_text())
        result["load_average"] = {"before": load_before, "after": os.getloadavg()}
        out.write_text(json.dumps(result, indent=2) + "\n")
    return json.loads(out.read_text())


def verdict(ci: tuple[float, float], margin: list[float]) -> str:
    if margin[0] <= ci[0] and ci[1] <= margin[1]:
        return "holds"
    return "fails" if ci[0] > 0 or ci[1] < 0 else "undecided"


def paired_row(protocol: dict, rule: dict, extended: bool = False) -> dict:
    """B - A of one rule, on the protocol's seeds or the extended ones."""
    level = 0.90 if "ci90_within" in rule else 0.95
    margin = rule["ci90_within"] if level == 0.90 else rule["ci95_within"]
    seeds, tag = protocol["eval_seeds"], ""
    if extended:
        seeds = list(range(seeds[0], seeds[0] + protocol["extended_seeds"]))
        tag = f"__{len(seeds) * protocol['episodes']}ep"  # not a row name
    ra, rb = (evaluation(protocol, r, seeds, tag) for r in (rule["a"], rule["b"]))
    diff = paired_difference([ra], [rb], level=level)
    return {
        "rule": rule["name"], "a": rule["a"], "b": rule["b"], "level": level,
        "episodes": diff["pairs"], "success_a": ra["success_rate"],
        "success_b": rb["success_rate"], "difference": diff["difference"],
        "ci": list(diff["ci"]), "only_a": diff["only_a"], "only_b": diff["only_b"],
        "backend_a": ra["backend"], "backend_b": rb["backend"],
        "noise_a": ra["noise"], "noise_b": rb["noise"],
        "achieved_hz_a": ra["achieved_control_hz"], "achieved_hz_b": rb["achieved_control_hz"],
        "verdict": verdict(diff["ci"], margin), "extended": extended,
    }  # fmt: skip


def against_in_process(protocol: dict, row: str) -> dict:
    """Episodes of a row whose success or length differ from the in-process `sdm eval`."""
    ros = evaluation(protocol, row, protocol["eval_seeds"])
    local = json.loads((IN_PROCESS / protocol["in_process"][row]).read_text())

    def episodes(result: dict) -> dict:
        return {(e["seed"], e["reset_seed"]): e for e in result["episode_results"]}

    a, b = episodes(ros), episodes(local)
    if a.keys() != b.keys():
        raise ValueError(f"{row}: the ROS and in-process runs have other episodes")
    return {
        "row": row,
        "episodes": len(a),
        "success_ros": ros["success_rate"],
        "success_in_process": local["success_rate"],
        "success_differs": sum(a[k]["success"] != b[k]["success"] for k in a),
        "length_differs": sum(a[k]["length"] != b[k]["length"] for k in a),
    }


def markdown(rows: list[dict], checks: list[dict]) -> str:
    lines = [
        "| rule | A | B | episodes | success A | success B | B - A [interval] | "
        "only A / only B | verdict |",
        "|---|---|---|---:|---:|---:|---|---:|---|",
    ]
    for r in rows:
        ci = f"[{100 * r['ci'][0]:+.1f}, {100 * r['ci'][1]:+.1f}] ({r['level']:.0%})"
        lines.append(
            f"| {r['rule']}{' (extended)' if r['extended'] else ''} | {r['a']} | {r['b']} | "
            f"{r['episodes']} | {r['success_a']:.3f} | {r['success_b']:.3f} | "
            f"{100 * r['difference']:+.1f} {ci} | {r['only_a']} / {r['only_b']} | "
            f"{r['verdict']} |"
        )
    lines += [
        "",
        "| row | episodes | success ROS | success in process | differ: success / length |",
    ]
    lines.append("|---|---:|---:|---:|---:|")
    for c in checks:
        lines.append(
            f"| {c['row']} | {c['episodes']} | {c['success_ros']:.3f} | "
            f"{c['success_in_process']:.3f} | {c['success_differs']} / {c['length_differs']} |"
        )
    return "\n".join(lines) + "\n"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--protocol", type=Path, required=True)
    args = parser.parse_args()
    protocol = yaml.safe_load(args.protocol.read_text())
    RESULTS.mkdir(parents=True, exist_ok=True)
    prepare(protocol["policy"])
    rows = []
    for i, rule in enumerate(protocol["rules"]):
        rows.append(paired_row(protocol, rule))
        print(json.dumps(rows[-1]), flush=True)
        if i == 1 and rows[-1]["verdict"] == "undecided":  # rule 2's one allowed rerun
            rows.append(paired_row(protocol, rule, extended=True))
            print(json.dumps(rows[-1]), flush=True)
    checks = [against_in_process(protocol, row) for row in protocol["in_process"]]
    summary = {"protocol": str(args.protocol), "rows": rows, "in_process": checks}
    summary["finished"] = time.strftime("%Y-%m-%dT%H:%M:%S")
    (RESULTS / "summary.json").write_text(json.dumps(summary, indent=2) + "\n")
    table = markdown(rows, checks)
    (RESULTS / "summary.md").write_text(table)
    print(table)
    return 0


if __name__ == "__main__":
    sys.exit(main())
