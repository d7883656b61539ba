# Copyright 2026 sdm-policy-ros maintainers
# SPDX-License-Identifier: MIT
"""Compare evaluation rows of one benchmark task over training seeds, paired episode by episode.

    python benchmarks/metaworld/compare.py --name pick-place-v3 --train-seeds 0 1 2 \
        --rows teacher_ddim10 teacher_onestep sdm_onestep sdm_reg_onestep \
        --against teacher_ddim10 sdm_onestep

NAME is the task's run folder under runs/metaworld (e.g. pick-place-v3,
push-wall-v3_two-route); ROW names the `sdm eval` JSONs RESULTS/metaworld*_NAME_ROW_s<seed>.json
that run.py writes (teacher_ddim10, teacher_ddim2, teacher_onestep, sdm_onestep) or that a
variant's evaluation was given (e.g. sdm_reg_onestep for `--out ..._sdm_reg_onestep_s0.json`).
Every row needs one evaluation per training seed, all over the same episodes (with one training
seed, RESULTS/metaworld*_NAME_ROW.json too: run.py's name for a single seed). `--tag TAG` takes
only run.py's files of that --tag (metaworld_TAG_NAME_...; `--tag ''`: untagged), e.g. where a
`--smoke` run's evaluations of the same task sit beside the real ones. With several
--results folders (e.g. the default evaluation seeds 0 1 2 and a replicate on seeds 3-7 in
benchmarks/results/heldout), each row and seed is found in every folder and the evaluations are
pooled into one over all their episodes; the folders must hold different episodes of the same
checkpoint and sampler.

For each row: success, mean ± std over training seeds (each seed's value), and its gap to every
`--against` row on the same episodes with the 95 % interval of
`sdm_policy_core.eval.paired_difference` (training seeds resampled, then episodes). Writes
OUT/metaworld_compare_NAME.json and .md (also printed; OUT defaults to the first --results).
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np
from common import (  # beside this script
    evaluation_files,
    evaluation_pattern,
    gap_cell,
    write_report,
)

REPO = Path(__file__).resolve().parents[2]
RESULTS = REPO / "benchmarks" / "results"


def find_results(
    results: Path, name: str, row: str, train_seeds: list[int], tag: str | None = None
) -> list[Path]:
    """One evaluation JSON per training seed; SystemExit naming what is missing or ambiguous.

    tag: run.py's --tag of the files ("" for none; None: any).
    """
    paths = []
    for seed in train_seeds:
        key: int | None = seed
        found = evaluation_files(results, name, row, key, tag)
        if not found and len(train_seeds) == 1:  # run.py names a single seed's file without _s
            key = None
            found = evaluation_files(results, name, row, key, tag)
        if len(found) != 1:
            what = "no" if not found else f"{len(found)} ({', '.join(p.name for p in found)})"
            hint = " or choose one with --tag" if found else ""
            raise SystemExit(
                f"{what} evaluation for row {row!r}, training seed {seed}: expected one "
                f"{results / evaluation_pattern(name, row, key, tag)} (evaluate it with "
                f"`sdm eval ... --out` of that name{hint})"
            )
        paths.append(found[0])
    return paths


def pool_evaluations(results: list[dict[str, Any]], sources: list[str]) -> dict[str, Any]:
    """Pool several `sdm eval` results of one policy on different episodes into one.

    One evaluation from several `sdm eval` results of the same checkpoint and sampler on
    different episodes: their episodes together, success over all of them. SystemExit names the
    files when they evaluated different policies or the same episode twice.
    """
    first = results[0]
    for result, source in zip(results[1:], sources[1:], strict=True):
        # policy_id (run/checkpoint@step) names the policy whether the path was given
        # relative or absolute
        for key in ("policy_id", "sampler", "steps", "task"):
            if result.get(key) != first.get(key):
                raise SystemExit(
                    f"{source} and {sources[0]} evaluated a different {key} "
                    f"({result.get(key)!r} vs {first.get(key)!r}); they cannot be pooled"
                )
    episodes: list[dict[str, Any]] = []
    seen: dict[tuple[int, int], str] = {}
    for result, source in zip(results, sources, strict=True):
        for episode in result["episode_results"]:
            key = (int(episode["seed"]), int(episode["reset_seed"]))
            if key in seen:
                raise SystemExit(
                    f"{source} and {seen[key]} both hold the episode of evaluation seed "
                    f"{key[0]}, reset seed {key[1]}: pool evaluations of different --seeds"
                )
            seen[key] = source
            episodes.append(episode)
    return {
        **{k: first.get(k) for k in ("task", "policy_id", "sampler", "steps")},
        "success_rate": float(np.mean([bool(e["success"]) for e in episodes])),
        "episodes_total": len(episodes),
        "episode_results": episodes,
    }


def compare(
    evaluations: dict[str, list[dict[str, Any]]], against: list[str]
) -> dict[str, dict[str, Any]]:
    """Compare every row with the rows named in `against`.

    row -> {'success': {mean, std, per_seed} in %, 'minus': {base: paired_difference}}.
    """
    from sdm_policy_core.eval import paired_difference

    out = {}
    for row, results in evaluations.items():
        per_seed = [100.0 * float(r["success_rate"]) for r in results]
        out[row] = {
            "success": {
                "mean": float(np.mean(per_seed)),
                "std": float(np.std(per_seed)),
                "per_seed": per_seed,
            },
            "minus": {
                base: paired_difference(evaluations[base], results)
                for base in against
                if base != row
            },
        }
    return out


def markdown(table: dict[str, dict[str, Any]], against: list[str]) -> str:
    lines = [
        "Success %, mean ± std over training seeds (per seed), and the paired gap "
        "row − base in points on the same episodes, with its 95 % interval.",
        "",
        "| row | success | " + " | ".join(f"− {b}" for b in against) + " |",
        "|---|---:|" + "---:|" * len(against),
    ]
    for row, entry in table.items():
        s = entry["success"]
        seeds = " / ".join(f"{v:.0f}" for v in s["per_seed"])
        # a spread over training seeds only where there are several
        score = (
            f"{s['mean']:.1f} ± {s['std']:.1f} ({seeds})"
            if len(s["per_seed"]) > 1
            else f"{s['mean']:.1f}"
        )
        cells = [gap_cell(entry["minus"][b]) if b in entry["minus"] else "–" for b in against]
        lines.append(f"| {row} | {score} | " + " | ".join(cells) + " |")
    return "\n".join(lines) + "\n"


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    p.add_argument("--name", required=True, help="the task's run folder name, e.g. pick-place-v3")
    p.add_argument("--rows", nargs="+", required=True, help="evaluation rows to compare")
    p.add_argument("--against", nargs="+", required=True, help="rows to take gaps to")
    p.add_argument("--train-seeds", type=int, nargs="+", default=[0])
    p.add_argument(
        "--results",
        type=Path,
        nargs="+",
        default=[RESULTS],
        help="folder(s) of evaluation JSONs; several are pooled episode by episode",
    )
    p.add_argument("--out", type=Path, help="folder of the comparison (default: first --results)")
    p.add_argument(
        "--tag",
        help="only evaluations of run.py's --tag TAG (metaworld_TAG_...); '' for untagged ones "
        "(default: any tag)",
    )
    args = p.parse_args()
    unknown = [b for b in args.against if b not in args.rows]
    if unknown:
        p.error(f"--against {unknown} must also be in --rows")
    start = time.perf_counter()
    evaluations, files = {}, {}
    for row in args.rows:
        found = [find_results(r, args.name, row, args.train_seeds, args.tag) for r in args.results]
        by_seed = list(zip(*found, strict=True))  # per training seed: one path per folder
        evaluations[row] = [
            pool_evaluations([json.loads(p.read_text()) for p in paths], [str(p) for p in paths])
            for paths in by_seed
        ]
        files[row] = [" + ".join(p.name for p in paths) for paths in by_seed]
    table = compare(evaluations, args.against)
    summary = {"name": args.name, "train_seeds": args.train_seeds, "files": files, "rows": table}
    write_report(
        (args.out or args.results[0]) / f"metaworld_compare_{args.name}",
        summary,
        markdown(table, args.against),
        start,
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
