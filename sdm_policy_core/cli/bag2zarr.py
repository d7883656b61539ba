# Copyright 2026 sdm-policy-ros maintainers
# SPDX-License-Identifier: MIT
"""`sdm bag2zarr`: convert rosbag2 bags (sqlite3 or mcap) into a DP3 / Diffusion Policy zarr.

Convert rosbag2 bags into a DP3 / Diffusion Policy zarr dataset. No ROS installation is
needed. A bag is a bag directory (split into several files too), a bare .mcap / .db3 file, or
a directory of storage files without metadata.yaml; ROS 1 bags are refused (convert them with
`rosbags-convert`). `sdm bag info BAG` shows what a bag holds.

    sdm bag2zarr BAG_DIR [BAG_DIR ...] --out DATA.zarr [--config FILE.yaml] [--append]
                 [--set key.sub=value ...]

One bag is one episode unless the config splits by a marker topic or by time gaps. Without
--config the MetaWorld sim-bridge layout is assumed (`points`, `joint_states`,
`joint_commands`; see config/bag2zarr/metaworld_sim.yaml and real_arm.yaml). The dataset is
written atomically; --append adds episodes to an existing dataset without ever damaging it.
Exit status 2 on a bad bag, config or output (the message says what to fix); nothing is
written then.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path


def _bag2zarr(args: argparse.Namespace) -> int:
    from sdm_policy_core.config import ConfigError
    from sdm_policy_core.data.bag2zarr import (
        BagError,
        convert_bags,
        format_summary,
        load_bag2zarr_config,
    )
    from sdm_policy_core.data.replay_buffer import DatasetError

    if args.append and args.overwrite:
        print("sdm bag2zarr: error: --append and --overwrite exclude each other", file=sys.stderr)
        return 2
    overrides = list(args.set or [])
    if args.workers is not None:
        overrides.append(f"workers={args.workers}")
    try:
        cfg = load_bag2zarr_config(args.config, overrides)
        summary = convert_bags(
            args.bags,
            args.out,
            cfg,
            append=args.append,
            overwrite=args.overwrite,
            progress=not args.no_progress,
        )
    except (BagError, ConfigError, DatasetError) as err:
        print(f"sdm bag2zarr: error: {err}", file=sys.stderr)
        return 2
    print(format_summary(summary))
    if args.summary_json is not None:
        args.summary_json.parent.mkdir(parents=True, exist_ok=True)
        args.summary_json.write_text(json.dumps(summary, indent=2) + "\n")
    return 0


def add_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "bag2zarr",
        help="convert rosbag2 bags into a zarr training dataset",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument(
        "bags", nargs="+", type=Path, metavar="BAG_DIR", help="rosbag2 bag(s): directory or file"
    )
    p.add_argument("--out", required=True, type=Path, help="zarr dataset to write")
    p.add_argument("--config", type=Path, help="YAML conversion config (config/bag2zarr/)")
    p.add_argument("--append", action="store_true", help="add episodes to an existing dataset")
    p.add_argument("--overwrite", action="store_true", help="replace an existing dataset")
    p.add_argument(
        "--set",
        action="append",
        metavar="key.sub=value",
        help="config override, repeatable (e.g. --set point_cloud.num_points=512)",
    )
    p.add_argument("--workers", type=int, help="decoding processes (default: config, 2)")
    p.add_argument("--summary-json", type=Path, help="also write the summary as JSON here")
    p.add_argument("--no-progress", action="store_true", help="no progress bar")
    p.set_defaults(func=_bag2zarr)
