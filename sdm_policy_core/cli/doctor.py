# Copyright 2026 sdm-policy-ros maintainers
# SPDX-License-Identifier: MIT
"""`sdm doctor`: what a user needs to know before running anything.

Checks Python, torch (device, threads), the core's packages, ROS 2 (rclpy, the RMW, the message
packages, sdm_msgs, DDS discovery confined to this machine), the MuJoCo GL backend that works, and
free disk. Prints one line per check and a fix-it line for each failure; exits 1 when a required
piece is missing. ROS probes run in a subprocess: the core never imports ROS itself.

`--deploy` checks a robot's torch-free install instead (requirements/deploy.txt): onnxruntime and
its execution providers, numpy / fpsample / pyyaml (opencv for image policies), that the ONNX
runtime and the controller import without torch, and with `--model PATH` that an exported model
loads and runs one step there.
"""

from __future__ import annotations

import argparse
import importlib.metadata
import json
import os
import platform
import shutil
import subprocess
import sys
from dataclasses import asdict, dataclass
from pathlib import Path

SETUP_HINT = "run scripts/setup.sh, then `source scripts/env.sh`"
DEPLOY_HINT = (
    "pip install -c requirements/constraints.txt -r requirements/deploy.txt, then "
    "pip install --no-deps -e . (no torch needed)"
)


@dataclass
class Check:
    name: str
    ok: bool
    detail: str
    fix: str = ""
    required: bool = True


def _version(dist: str) -> str | None:
    try:
        return importlib.metadata.version(dist)
    except importlib.metadata.PackageNotFoundError:
        return None


def _probe(
    code: str, env: dict[str, str] | None = None, timeout: float = 60.0
) -> tuple[bool, str]:
    """Run `code` in a fresh interpreter; (succeeded, last line of output or error)."""
    try:
        proc = subprocess.run(
            [sys.executable, "-c", code],
            capture_output=True,
            text=True,
            timeout=timeout,
            env={**os.environ, **(env or {})},
        )
    except subprocess.TimeoutExpired:
        return False, f"timed out after {timeout:.0f} s"
    out = (proc.stdout.strip() or proc.stderr.strip()).splitlines()
    last = out[-1] if out else f"exit code {proc.returncode}"
    return proc.returncode == 0, last


def check_python() -> Check:
    ok = sys.version_info >= (3, 10)
    return Check(
        "python",
        ok,
        f"{platform.python_version()} ({sys.executable})",
        "use Python 3.10 or newer (SDM_PYTHON=python3.11 scripts/setup.sh)",
    )


def check_torch() -> Check:
    try:
        import torch
    except ImportError as err:
        return Check(
            "torch",
            False,
            f"not importable ({err})",
            "pip install torch==2.13.0 (CPU) or your CUDA build; or " + SETUP_HINT,
        )
    if torch.cuda.is_available():
        device = f"cuda ({torch.cuda.device_count()} x {torch.cuda.get_device_name(0)})"
    else:
        device = "cpu"
    return Check(
        "torch",
        True,
        f"{torch.__version__}, device {device}, {torch.get_num_threads()} threads "
        f"on {os.cpu_count()} cores",
    )


def check_core_packages() -> Check:
    wanted = (
        "numpy",
        "zarr",
        "diffusers",
        "safetensors",
        "einops",
        "pyyaml",
        "tqdm",
        "matplotlib",
    )
    found = {d: _version(d) for d in wanted}
    missing = [d for d, v in found.items() if v is None]
    detail = ", ".join(f"{d} {v}" for d, v in found.items() if v) or "none"
    return Check(
        "core packages",
        not missing,
        detail if not missing else f"missing: {', '.join(missing)}",
        f"pip install -e . (or {SETUP_HINT})",
    )


def check_optional_packages() -> Check:
    wanted = (
        "mujoco",
        "metaworld",
        "gym-pusht",
        "open3d-cpu",
        "rosbags",
        "fpsample",
        "transforms3d",
    )
    found = {d: _version(d) for d in wanted}
    if found["open3d-cpu"] is None:
        found["open3d-cpu"] = _version("open3d")
    missing = [d for d, v in found.items() if v is None]
    return Check(
        "sim/data packages",
        not missing,
        ", ".join(f"{d} {v}" for d, v in found.items() if v)
        + (f"; missing: {', '.join(missing)}" if missing else ""),
        "pip install -r requirements/core.txt && pip install --no-deps -r "
        f"requirements/no-deps.txt (or {SETUP_HINT})",
        required=False,
    )


def check_ros() -> list[Check]:
    ok, detail = _probe(
        "import rclpy, rclpy.utilities as u; "
        "import sensor_msgs.msg, geometry_msgs.msg, std_msgs.msg, std_srvs.srv, "
        "trajectory_msgs.msg, diagnostic_msgs.msg; "
        "print(u.get_rmw_implementation_identifier())"
    )
    checks = [
        Check(
            "ROS 2 rclpy + RMW",
            ok,
            f"rmw {detail}" if ok else detail,
            "pip install -r requirements/ros.txt, set AMENT_PREFIX_PATH=$VIRTUAL_ENV; "
            "or source /opt/ros/<distro>/setup.bash; or " + SETUP_HINT,
        )
    ]
    ok, detail = _probe(
        "import sdm_msgs.msg as m, sdm_msgs.srv as s; "
        "m.ActionChunk(); m.PolicyStatus(); m.EpisodeStatus(); s.LoadCheckpoint.Request(); "
        "s.ResetEpisode.Request(); print(m.__file__)"
    )
    checks.append(
        Check(
            "sdm_msgs",
            ok,
            detail,
            "build it: scripts/setup.sh (or colcon build --base-paths . sdm_msgs), "
            "then source install/setup.bash",
        )
    )
    ok, detail = _probe("import tf2_ros; print(tf2_ros.__file__)")
    checks.append(
        Check(
            "tf2_ros (optional)",
            ok,
            "policy node places clouds by tf2 lookups (transform_source auto)"
            if ok
            else "not importable: clouds are placed by the robot profile's camera mount",
            "source a ROS 2 install (/opt/ros/<distro>/setup.bash) for tf2_ros; the PyPI "
            "wheels have none. Without it, set camera.frame_id and its pose in the profile",
            required=False,
        )
    )
    rng = os.environ.get("ROS_AUTOMATIC_DISCOVERY_RANGE", "")
    local = rng in ("LOCALHOST", "OFF") or os.environ.get("ROS_LOCALHOST_ONLY") == "1"
    checks.append(
        Check(
            "DDS discovery",
            local,
            f"ROS_AUTOMATIC_DISCOVERY_RANGE={rng or '(unset)'}, "
            f"ROS_LOCALHOST_ONLY={os.environ.get('ROS_LOCALHOST_ONLY', '(unset)')}, "
            f"ROS_DOMAIN_ID={os.environ.get('ROS_DOMAIN_ID', '(unset: 0)')}",
            "export ROS_AUTOMATIC_DISCOVERY_RANGE=LOCALHOST ROS_LOCALHOST_ONLY=1 "
            "(scripts/env.sh does); only widen it on a robot network you control",
        )
    )
    return checks


def check_mujoco_gl() -> Check:
    if _version("mujoco") is None:
        return Check(
            "MuJoCo rendering",
            False,
            "mujoco not installed",
            f"pip install mujoco (or {SETUP_HINT})",
            required=False,
        )
    code = "import mujoco; c = mujoco.GLContext(64, 64); c.make_current(); c.free(); print('ok')"
    tried = []
    for backend in ("egl", "osmesa"):
        ok, detail = _probe(
            code, env={"MUJOCO_GL": backend, "PYOPENGL_PLATFORM": backend}, timeout=30
        )
        if ok:
            hint = (
                ""
                if os.environ.get("MUJOCO_GL") == backend
                else f" (set MUJOCO_GL={backend}; now {os.environ.get('MUJOCO_GL', 'unset')})"
            )
            return Check(
                "MuJoCo rendering", True, f"MUJOCO_GL={backend} works{hint}", required=False
            )
        tried.append(f"{backend}: {detail}")
    return Check(
        "MuJoCo rendering",
        False,
        "; ".join(tried),
        "install Debian libegl1 libgl1 (EGL) or libosmesa6 (software): scripts/setup.sh",
        required=False,
    )


def check_disk(path: Path) -> Check:
    free_gb = shutil.disk_usage(path).free / 1e9
    return Check(
        "free disk",
        free_gb >= 5.0,
        f"{free_gb:.1f} GB free at {path}",
        "free at least 5 GB (the environment takes ~2.5 GB, runs and datasets more)",
    )


def check_deploy_packages() -> list[Check]:
    """Report onnxruntime (with its providers) and the packages of robot-side preprocessing."""
    try:
        import onnxruntime as ort

        ort_check = Check(
            "onnxruntime",
            True,
            f"{ort.__version__}, providers {', '.join(ort.get_available_providers())}",
        )
    except ImportError as err:
        ort_check = Check("onnxruntime", False, f"not importable ({err})", DEPLOY_HINT)
    found = {d: _version(d) for d in ("numpy", "fpsample", "pyyaml")}
    missing = [d for d, v in found.items() if v is None]
    opencv = _version("opencv-python-headless") or _version("opencv-python")
    return [
        ort_check,
        Check(
            "deploy packages",
            not missing,
            ", ".join(f"{d} {v}" for d, v in found.items() if v)
            + (f"; missing: {', '.join(missing)}" if missing else ""),
            DEPLOY_HINT,
        ),
        Check(
            "opencv (image policies)",
            opencv is not None,
            f"opencv {opencv}" if opencv else "not installed: camera frames cannot be resized",
            "pip install opencv-python-headless (only image policies need it)",
            required=False,
        ),
    ]


# Imports the robot-side runtime in a fresh interpreter and fails if torch came with it; with a
# model path (argv[1]) loads it and runs one step on zero observations.
_TORCH_FREE_PROBE = """
import sys, time
from sdm_policy_core import control
from sdm_policy_core.onnx_runtime import OnnxPolicyRuntime
message = "sdm_policy_core.onnx_runtime and control import without torch"
if len(sys.argv) > 1:
    start = time.perf_counter()
    runtime = OnnxPolicyRuntime(sys.argv[1], threads=1)
    ready = time.perf_counter() - start
    chunk = runtime.step(runtime._zero_observation())
    message = (f"{runtime.policy_id} ({runtime.kind}, {runtime.sampler} x{runtime.steps}) "
               f"loaded in {ready:.2f} s, one step {chunk.inference_time * 1e3:.1f} ms, no torch")
torch = sorted(m for m in sys.modules if m.split(".")[0] == "torch")
if torch:
    raise SystemExit(f"torch was imported: {', '.join(torch[:3])}")
print(message)
"""


def check_torch_free_runtime(model: str | None = None) -> Check:
    code = _TORCH_FREE_PROBE
    if model is not None:
        code = f"import sys; sys.argv[1:] = [{str(Path(model).resolve())!r}]\n" + code
    ok, detail = _probe(code)
    return Check(
        "torch-free runtime" + (" + model" if model else ""),
        ok,
        detail,
        "export the model with `sdm export --format onnx` on a machine with torch and copy "
        "the .onnx with its .onnx.json"
        if model and "torch was imported" not in detail
        else DEPLOY_HINT,
    )


def run_checks(
    core_only: bool = False, deploy: bool = False, model: str | None = None
) -> list[Check]:
    if deploy:
        checks = [check_python(), *check_deploy_packages(), check_torch_free_runtime(model)]
        return checks if core_only else checks + check_ros()
    checks = [check_python(), check_torch(), check_core_packages(), check_optional_packages()]
    if not core_only:
        checks += check_ros()
    checks += [check_mujoco_gl(), check_disk(Path.cwd())]
    return checks


def _handler(args: argparse.Namespace) -> int:
    if args.model is not None and not args.deploy:
        print("sdm doctor: --model is checked with --deploy", file=sys.stderr)
        return 2
    checks = run_checks(core_only=args.core_only, deploy=args.deploy, model=args.model)
    failed = [c for c in checks if not c.ok and c.required]
    if args.json:
        print(json.dumps({"ok": not failed, "checks": [asdict(c) for c in checks]}, indent=2))
        return 1 if failed else 0
    width = max(len(c.name) for c in checks)
    for c in checks:
        mark = "ok  " if c.ok else ("FAIL" if c.required else "warn")
        print(f"[{mark}] {c.name:<{width}}  {c.detail}")
        if not c.ok:
            print(f"       {'':<{width}}  fix: {c.fix}")
    print(
        "sdm doctor: "
        + (
            "all required checks passed"
            if not failed
            else f"{len(failed)} required check(s) failed"
        )
    )
    return 1 if failed else 0


def add_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "doctor",
        help="check the environment; non-zero exit when broken",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument(
        "--core-only",
        action="store_true",
        help="skip the ROS 2 checks (training servers without ROS)",
    )
    p.add_argument(
        "--deploy",
        action="store_true",
        help="check a robot's torch-free install (requirements/deploy.txt): onnxruntime, the "
        "preprocessing packages, the ONNX runtime importing without torch",
    )
    p.add_argument(
        "--model",
        metavar="PATH",
        help="with --deploy: an exported .onnx (or a directory holding one) to load and run once",
    )
    p.add_argument("--json", action="store_true", help="print the checks as JSON")
    p.set_defaults(func=_handler)
