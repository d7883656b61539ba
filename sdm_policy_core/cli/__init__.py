# Copyright 2026 sdm-policy-ros maintainers
# SPDX-License-Identifier: MIT
"""The `sdm` command line: one subcommand per module in this package.

    sdm doctor        check the environment
    sdm <command> -h  help of a command

Each subcommand module defines `add_parser(subparsers)` which registers its arguments and sets
`func(args) -> int` as the handler. Imports of heavy modules happen inside the handlers so that
`sdm -h` and `sdm doctor` start fast. A subcommand whose module cannot be imported (a robot's
torch-free install, requirements/deploy.txt, has no training packages) is still listed and says
what is missing when called; the others work.
"""

from __future__ import annotations

import argparse
import importlib
import sys

FULL_INSTALL = (
    "it needs the full install: pip install torch==2.13.0 (or your build) && pip install -e . "
    "(requirements/core.txt)"
)

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
        try:
            module = importlib.import_module(f"{__name__}.{name.replace('-', '_')}")
        except ImportError as err:
            _add_unavailable(sub, name, err)
            continue
        module.add_parser(sub)
    return parser


def _add_unavailable(sub: argparse._SubParsersAction, name: str, err: ImportError) -> None:
    """`sdm NAME ...` exits 2 naming the missing package and the full install."""
    missing = err.name or str(err)
    # Every argument is taken as it comes (no option parsing): the message is the answer.
    help_text = f"(not in this install: needs {missing})"
    p = sub.add_parser(name, help=help_text, add_help=False, prefix_chars="\0")
    p.add_argument("args", nargs="*")

    def unavailable(args: argparse.Namespace) -> int:
        print(
            f"sdm {name}: not available in this install ({err}); {FULL_INSTALL}",
            file=sys.stderr,
        )
        return 2

    p.set_defaults(func=unavailable)


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        return int(args.func(args) or 0)
    except ModuleNotFoundError as err:  # e.g. `sdm export` (torch) on a robot's deploy install
        print(f"sdm {args.command}: {err}; {FULL_INSTALL}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
