# Copyright 2026 sdm-policy-ros maintainers
# SPDX-License-Identifier: MIT
"""`sdm bag info`: what a bag holds, without ROS (`ros2 bag info` for machines that have none).

    sdm bag info BAG [BAG ...] [--json] [--typestore auto|humble|jazzy|kilted]

BAG is a rosbag2 bag directory, a bare .mcap or .db3 file, a directory of storage files without
metadata.yaml, or a ROS 1 .bag. Per bag: layout, storage, files, distro, compression, start /
end / duration of the messages read, and per topic its type, QoS, the number of messages the
bag declares and the number actually read, with a warning when they differ or when a topic's
messages cannot be decoded. Every message is read once (not decoded, except each topic's
first). Exit status 2 when a bag cannot be opened (one line says why); the other bags are still
reported.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path


def _info(args: argparse.Namespace) -> int:
    from sdm_policy_core.config import ConfigError
    from sdm_policy_core.data.bag_reading import BagError, bag_info, format_bag_info

    infos, errors = [], []
    for path in args.bags:
        try:
            info = bag_info(path, typestore=args.typestore)
        except (BagError, ConfigError) as err:
            errors.append({"path": str(path), "error": str(err)})
            print(f"sdm bag info: error: {err}", file=sys.stderr)
            continue
        infos.append(info)
        if not args.json:
            print(("\n" if len(infos) > 1 else "") + format_bag_info(info))
    if args.json:
        print(json.dumps({"bags": infos, "errors": errors}, indent=2))
    return 2 if errors else 0


def add_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "bag",
        help="inspect rosbag2 bags (sdm bag info)",
        description="Inspect rosbag2 bags without ROS.",
    )
    commands = p.add_subparsers(dest="bag_command", metavar="SUBCOMMAND", required=True)
    info = commands.add_parser(
        "info",
        help="storage, duration, topics, QoS and message counts of bags",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    info.add_argument("bags", nargs="+", type=Path, metavar="BAG", help="bag directory or file")
    info.add_argument("--json", action="store_true", help="print JSON (for scripts)")
    info.add_argument(
        "--typestore",
        default="auto",
        choices=("auto", "humble", "jazzy", "kilted"),
        help="message definitions for bags that carry none (default: the bag's distro)",
    )
    info.set_defaults(func=_info)
