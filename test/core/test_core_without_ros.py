# Copyright 2026 sdm-policy-ros maintainers
# SPDX-License-Identifier: MIT
"""sdm_policy_core works on a training server with no ROS.

sdm_policy_core works on a training server with no ROS: every module imports and a model
runs while rclpy, launch and every *_msgs / *_srvs / *_interfaces package are unimportable.
"""

from __future__ import annotations

import json
import subprocess
import sys

from test.conftest import REPO

BLOCKER = r"""
import importlib.abc, sys
BLOCKED = {"rclpy", "rcl_interfaces", "launch", "launch_ros", "launch_testing",
           "ament_index_python", "rosidl_runtime_py", "rosidl_parser", "tf2_ros", "cv_bridge",
           "sensor_msgs_py", "tf_transformations", "sdm_policy_ros"}
class BlockRos(importlib.abc.MetaPathFinder):
    def find_spec(self, name, path=None, target=None):
        root = name.split(".")[0]
        if root in BLOCKED or root.endswith(("_msgs", "_srvs", "_interfaces")):
            raise ImportError(f"blocked ROS import: {name}")
        return None
sys.meta_path.insert(0, BlockRos())
for mod in [m for m in sys.modules if m.split(".")[0] in BLOCKED]:
    del sys.modules[mod]
"""

PROBE = (
    BLOCKER
    + r"""
import importlib, json, pkgutil
try:
    import rclpy  # noqa: F401
    raise SystemExit("the import blocker does not work")
except ImportError:
    pass
import sdm_policy_core
names = sorted(m.name for m in pkgutil.walk_packages(sdm_policy_core.__path__, "sdm_policy_core.")
               if not m.name.endswith("__main__"))
for name in names:
    importlib.import_module(name)

import torch
from sdm_policy_core.config import load_config
from sdm_policy_core.models import build_denoiser, build_observation_encoder

cfg = load_config(overrides=["model.preset=cpu_small", "obs.point_cloud_shape=[64, 3]"])
torch.manual_seed(0)
encoder = build_observation_encoder(cfg.obs, cfg.model)
denoiser = build_denoiser(cfg.obs, cfg.model)
B, To = 2, cfg.model.n_obs_steps
obs = {"point_cloud": torch.randn(B * To, 64, 3), "agent_pos": torch.randn(B * To, 4)}
cond = encoder(obs).reshape(B, -1)
out = denoiser(torch.randn(B, cfg.model.horizon, 4), torch.tensor([3, 99]), cond)
loss = out.square().mean()
loss.backward()
ros = sorted(m for m in sys.modules if m.split(".")[0] in BLOCKED)
print(json.dumps({"modules": names, "shape": list(out.shape), "finite": bool(out.isfinite().all()),
                  "ros_loaded": ros}))
"""
)


def test_core_imports_and_runs_without_ros():
    proc = subprocess.run(
        [sys.executable, "-c", PROBE], capture_output=True, text=True, cwd=REPO, timeout=180
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    report = json.loads(proc.stdout.strip().splitlines()[-1])
    assert "sdm_policy_core.config" in report["modules"]
    assert "sdm_policy_core.models.unet1d" in report["modules"]
    assert report["shape"] == [2, 16, 4] and report["finite"]
    assert report["ros_loaded"] == []


def test_sdm_cli_runs_without_ros():
    code = BLOCKER + "from sdm_policy_core.cli import main\nraise SystemExit(main(['--help']))"
    proc = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, cwd=REPO, timeout=60
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert "doctor" in proc.stdout
