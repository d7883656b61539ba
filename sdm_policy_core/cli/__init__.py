"""The `sdm` command line: one subcommand per module in this package.

    sdm doctor        check the environment
    sdm <command> -h  help of a command

Each subcommand module defines `add_parser(subparsers)` which registers its arguments and sets
`func(args) -> int` as the handler. Imports of heavy modules happen inside the handlers so that
`sdm -h` and `sdm doctor` start fast.
"""

from __future__ import annotations

import argparse
import importlib
import sys

# Subcommand modules, in the order `sdm -h` lists them.
_COMMANDS = (
    "demos",
    "bag2zarr",
    "bag",
    "train",
    "distill",
    "eval",
    "sim-eval",
    "export",
    "bench",
    "doctor",
)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="sdm",
        description="SDM Policy: train diffusion teachers, distil them into one-step policies, "
        "evaluate and deploy them.",
    )
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    for name in _COMMANDS:
        importlib.import_module(f"{__name__}.{name.replace('-', '_')}").add_parser(sub)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        return int(args.func(args) or 0)
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
