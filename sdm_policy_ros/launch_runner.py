# Copyright 2026 sdm-policy-ros maintainers
# SPDX-License-Identifier: MIT
r"""Start a launch spec's processes without the `launch` package.

    python -m sdm_policy_ros.launch_runner policy checkpoint:=runs/sdm/checkpoints/latest \
        robot:=ur5e
    python -m sdm_policy_ros.launch_runner policy --show-args
    python -m sdm_policy_ros.launch_runner sim_eval sim:=mujoco checkpoint:=CKPT episodes:=10

Each process is this package's executable (from the colcon install space, else
`python -m sdm_policy_ros <executable>`), started with the spec's `--ros-args`. SIGINT/SIGTERM
are forwarded; the runner exits when any process exits, with its code.
"""

from __future__ import annotations

import argparse
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

from sdm_policy_ros.executables import MODULES
from sdm_policy_ros.launch_spec import LAUNCH_FILES, PACKAGE, NodeSpec


def executable_command(spec: NodeSpec) -> list[str]:
    prefix = os.environ.get("COLCON_PREFIX_PATH", "").split(os.pathsep)[0]
    candidates = [Path(prefix) / PACKAGE / "lib" / PACKAGE / spec.executable] if prefix else []
    candidates.append(
        Path(__file__).resolve().parents[1]
        / "install"
        / PACKAGE
        / "lib"
        / PACKAGE
        / spec.executable
    )
    for path in candidates:
        if path.is_file():
            return [str(path)]
    if spec.executable in MODULES:
        return [sys.executable, "-m", "sdm_policy_ros", spec.executable]
    found = shutil.which(spec.executable)
    if found:
        return [found]
    raise FileNotFoundError(f"executable {spec.executable!r} not found; build with colcon")


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    p.add_argument("launch", choices=sorted(LAUNCH_FILES), help="which launch file")
    p.add_argument("arguments", nargs="*", metavar="name:=value")
    p.add_argument("--show-args", action="store_true", help="list the launch arguments")
    a = p.parse_args(argv)
    declared, build = LAUNCH_FILES[a.launch]
    if a.show_args:
        for arg in declared:
            print(f"{arg.name}:={arg.default!r}\n    {arg.description}")
        return 0
    values = {}
    for item in a.arguments:
        if ":=" not in item:
            p.error(f"argument {item!r} must look like name:=value")
        key, value = item.split(":=", 1)
        values[key] = value
    try:
        specs = build(values)
    except ValueError as err:
        p.error(str(err))
    procs = []
    for spec in specs:
        cmd = executable_command(spec) + spec.ros_arguments()
        print("[launch] " + " ".join(cmd), file=sys.stderr, flush=True)
        procs.append(subprocess.Popen(cmd))

    def forward(signum, _frame):
        for proc in procs:
            if proc.poll() is None:
                proc.send_signal(signum)

    signal.signal(signal.SIGINT, forward)
    signal.signal(signal.SIGTERM, forward)
    while True:
        for proc in procs:
            code = proc.poll()
            if code is not None:
                forward(signal.SIGINT, None)
                for other in procs:
                    try:
                        other.wait(10)
                    except subprocess.TimeoutExpired:
                        other.kill()
                return code
        time.sleep(0.1)


if __name__ == "__main__":
    sys.exit(main())
