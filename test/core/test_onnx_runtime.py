# Copyright 2026 sdm-policy-ros maintainers
# SPDX-License-Identifier: MIT
"""OnnxPolicyRuntime: the PyTorch runtime's actions, without torch, refusing unfit models.

OnnxPolicyRuntime: an exported policy on onnxruntime gives the PyTorch runtime's actions for
the same observations and noise, runs in a process that never imports torch, and refuses models
that do not fit with what differs.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from sdm_policy_core import control
from sdm_policy_core.config import DeploymentConfig, ObservationSpec
from sdm_policy_core.export import export_policy
from sdm_policy_core.onnx_runtime import OnnxModelError, OnnxPolicyRuntime
from sdm_policy_core.runtime import PolicyRuntime
from test.conftest import REPO
from test.core.conftest import arm_profile

TOL = 1e-4  # export.TOLERANCE: robot units
H, DA, TO = 8, 4, 2  # horizon, action dim, n_obs_steps of the fixtures
PROFILE = arm_profile()


def _exported(checkpoint: Path, root: Path, steps: int | None = None) -> Path:
    """Copy `checkpoint` with policy.onnx (+ .json) exported into it.

    A copy of `checkpoint` with policy.onnx (+ .json) exported into it, as a deployer
    would ship it.
    """
    target = root / checkpoint.parent.parent.name / "checkpoints" / checkpoint.name
    shutil.copytree(checkpoint, target)
    export_policy(target, target / "policy.onnx", "onnx", steps=steps)
    return target


@pytest.fixture(scope="module")
def sdm_dir(sdm_ckpt, tmp_path_factory) -> Path:
    return _exported(Path(sdm_ckpt), tmp_path_factory.mktemp("deploy_sdm"))


def _observation(rng: np.random.Generator) -> dict[str, np.ndarray]:
    return {
        "point_cloud": rng.uniform(-0.5, 0.5, (32, 3)).astype(np.float32),
        "agent_pos": rng.uniform(-0.5, 0.5, 4).astype(np.float32),
    }


def _assert_same_actions(torch_rt, onnx_rt, seed: int) -> None:
    """Five ticks of equal observations and equal noise: equal chunks within TOL."""
    rng, noise_rng = np.random.default_rng(seed), np.random.default_rng(seed + 100)
    previous = None
    for _ in range(5):
        obs = _observation(rng)
        noise = noise_rng.standard_normal((1, H, DA)).astype(np.float32)
        torch_rt.push(obs)
        onnx_rt.push(obs)
        a, b = torch_rt.infer(noise=noise), onnx_rt.infer(noise=noise)
        assert b.action_pred.shape == (H, DA) and b.actions.shape == (4, DA)
        np.testing.assert_allclose(b.action_pred, a.action_pred, rtol=0, atol=TOL)
        np.testing.assert_allclose(b.actions, a.actions, rtol=0, atol=TOL)
        assert (b.sampler, b.steps, b.policy_id) == (a.sampler, a.steps, a.policy_id)
        if previous is not None:  # the inputs matter: not a constant output
            assert np.abs(b.action_pred - previous).max() > 1e-3
        previous = b.action_pred


def test_sdm_actions_equal_the_torch_runtime_for_the_same_noise(sdm_dir):
    torch_rt = PolicyRuntime(sdm_dir, threads=1, warmup=False)
    onnx_rt = OnnxPolicyRuntime(sdm_dir, threads=1, warmup=False)
    assert (onnx_rt.kind, onnx_rt.sampler, onnx_rt.steps) == ("sdm", "one-step", 1)
    assert onnx_rt.spec == torch_rt.spec
    assert onnx_rt.timesteps == torch_rt.timesteps
    assert (onnx_rt.n_obs_steps, onnx_rt.n_action_steps, onnx_rt.horizon) == (TO, 4, H)
    _assert_same_actions(torch_rt, onnx_rt, seed=1)


def test_teacher_ddim_actions_equal_the_torch_runtime(teacher_ckpt, tmp_path):
    ckpt = _exported(Path(teacher_ckpt), tmp_path, steps=3)
    torch_rt = PolicyRuntime(ckpt, sampler="ddim", steps=3, threads=1, warmup=False)
    onnx_rt = OnnxPolicyRuntime(ckpt / "policy.onnx", threads=1, warmup=False)
    assert (onnx_rt.kind, onnx_rt.sampler, onnx_rt.steps) == ("teacher", "ddim", 3)
    assert onnx_rt.timesteps == torch_rt.timesteps
    _assert_same_actions(torch_rt, onnx_rt, seed=2)
    # The sampler is inside the graph: another one is refused with the way to get it.
    with pytest.raises(ValueError, match=r"runs ddim x3.*sdm export --steps K"):
        onnx_rt.set_sampler("ddim", 10)
    with pytest.raises(ValueError, match="not one-step"):
        onnx_rt.set_sampler("one-step")
    onnx_rt.set_sampler("ddim", 3)  # the exported one is accepted


def test_equal_seeds_give_equal_actions_with_numpy_noise(sdm_dir, teacher_ckpt, tmp_path):
    """Equal seeds give equal actions with numpy noise.

    PolicyRuntime(noise="numpy") draws the initial noise from numpy's default_rng(seed), as
    OnnxPolicyRuntime does: equal seeds, equal actions (warm-up draw and re-seeding included).
    """
    teacher = _exported(Path(teacher_ckpt), tmp_path, steps=3)
    for ckpt, options in ((sdm_dir, {}), (teacher, {"sampler": "ddim", "steps": 3})):
        torch_rt = PolicyRuntime(ckpt, threads=1, seed=4, noise="numpy", **options)
        onnx_rt = OnnxPolicyRuntime(ckpt, threads=1, seed=4)
        rng = np.random.default_rng(0)
        for k in range(4):
            if k == 2:  # as the node does when sampler_seed is set again
                torch_rt.generator.manual_seed(9)
                onnx_rt.generator.manual_seed(9)
            obs = _observation(rng)
            a, b = torch_rt.step(obs), onnx_rt.step(obs)
            np.testing.assert_allclose(b.action_pred, a.action_pred, rtol=0, atol=TOL)
    # torch's own stream is another one: the same seed gives other actions.
    own = PolicyRuntime(sdm_dir, threads=1, seed=4).step(obs)
    numpy_noise = PolicyRuntime(sdm_dir, threads=1, seed=4, noise="numpy").step(obs)
    assert np.abs(own.action_pred - numpy_noise.action_pred).max() > 1e-3
    with pytest.raises(ValueError, match="ddpm draws noise at every step"):
        PolicyRuntime(teacher, sampler="ddpm", noise="numpy", warmup=False)
    with pytest.raises(ValueError, match=r"noise must be one of \['torch', 'numpy'\]"):
        PolicyRuntime(sdm_dir, noise="philox", warmup=False)


def test_controller_commands_equal_with_either_runtime(sdm_dir):
    """The robot-side path: raw clouds -> crop/FPS (numpy, fpsample) -> runtime -> limits."""

    def controller(runtime):
        noises = iter(np.random.default_rng(5).standard_normal((10, 1, H, DA)))
        infer = runtime.infer
        runtime.infer = lambda: infer(noise=next(noises))  # equal noise, call by call
        ctrl = control.PolicyController(runtime, PROFILE, DeploymentConfig())
        ctrl.set_enabled(True)
        return ctrl

    torch_ctrl = controller(PolicyRuntime(sdm_dir, threads=1))
    onnx_ctrl = controller(OnnxPolicyRuntime(sdm_dir, threads=1))
    rng = np.random.default_rng(3)
    commands, state = 0, np.zeros(4, np.float32)
    for k in range(12):
        cloud = rng.uniform(-0.5, 0.5, (500, 3)).astype(np.float32)
        results = []
        for ctrl in (torch_ctrl, onnx_ctrl):
            ctrl.update_cloud(cloud, 1.0 + 0.1 * k)
            ctrl.update_state(state, 1.0 + 0.1 * k)
            results.append(ctrl.tick(1.01 + 0.1 * k))
        a, b = results
        assert a.state == b.state == control.RUNNING
        np.testing.assert_allclose(b.command, a.command, rtol=0, atol=TOL)
        commands += 1
        state = a.command.astype(np.float32)  # the arm follows
    assert commands == 12 and onnx_ctrl.counters.inferences == 3


NO_TORCH = r"""
import json, sys
import numpy as np
from sdm_policy_core import control
from sdm_policy_core.config import DeploymentConfig
from sdm_policy_core.onnx_runtime import OnnxPolicyRuntime
from sdm_policy_core.robot import RobotProfile

runtime = OnnxPolicyRuntime(sys.argv[1], threads=1, seed=3)
chunk = runtime.step({"point_cloud": np.zeros((32, 3), np.float32),
                      "agent_pos": np.zeros(4, np.float32)})
joints = ("j1", "j2", "j3", "j4")
profile = RobotProfile(name="arm", state_names=joints, action_names=joints,
                       action_kind="joint_position", output="joint_trajectory",
                       lower=(-0.3,) * 4, upper=(0.3,) * 4, max_step=0.02)
ctrl = control.PolicyController(runtime, profile, DeploymentConfig())
ctrl.set_enabled(True)
ctrl.update_cloud(np.random.default_rng(0).uniform(-0.5, 0.5, (2000, 3)).astype(np.float32), 1.0)
ctrl.update_state(np.zeros(4, np.float32), 1.0)
result = ctrl.tick(1.01)
print(json.dumps({"torch": sorted(m for m in sys.modules if m.split(".")[0] == "torch"),
                  "actions": chunk.actions.tolist(), "command": result.command.tolist()}))
"""


def _python(code: str, *args: str, env: dict[str, str] | None = None):
    return subprocess.run(
        [sys.executable, "-c", code, *args],
        capture_output=True,
        text=True,
        cwd=REPO,
        env={**os.environ, "OMP_NUM_THREADS": "1", **(env or {})},
        timeout=120,
    )


def test_the_onnx_runtime_never_imports_torch(sdm_dir):
    proc = _python(NO_TORCH, str(sdm_dir))
    assert proc.returncode == 0, proc.stderr
    out = json.loads(proc.stdout.strip().splitlines()[-1])
    assert out["torch"] == []
    assert np.isfinite(out["actions"]).all() and len(out["command"]) == 4
    # The same seed in-process (with torch loaded) gives the same actions: the noise stream
    # is numpy's default_rng(seed), warm-up draw included.
    runtime = OnnxPolicyRuntime(sdm_dir, threads=1, seed=3)
    chunk = runtime.step({"point_cloud": np.zeros((32, 3)), "agent_pos": np.zeros(4)})
    np.testing.assert_allclose(chunk.actions, out["actions"], rtol=0, atol=1e-6)


BLOCK_ORT = r"""
import importlib.abc, sys
class Block(importlib.abc.MetaPathFinder):
    def find_spec(self, name, path=None, target=None):
        if name.split(".")[0] == "onnxruntime":
            raise ImportError("No module named 'onnxruntime'")
sys.meta_path.insert(0, Block())
from sdm_policy_core.onnx_runtime import OnnxPolicyRuntime
OnnxPolicyRuntime(sys.argv[1])
"""


def test_missing_onnxruntime_says_how_to_install_it(sdm_dir):
    proc = _python(BLOCK_ORT, str(sdm_dir))
    assert proc.returncode != 0
    assert "OnnxRuntimeMissingError" in proc.stderr
    assert "pip install -r requirements/deploy.txt" in proc.stderr


def test_session_options_reach_onnxruntime_and_are_validated(sdm_dir):
    """Session options reach onnxruntime and are validated.

    `optimization` and `threads` are the session's graph optimisation level and intra-op
    threads; a level or thread count onnxruntime does not have is refused before loading.
    """
    import onnxruntime as ort

    levels = ort.GraphOptimizationLevel
    for level, want in (("disable", levels.ORT_DISABLE_ALL), ("basic", levels.ORT_ENABLE_BASIC)):
        runtime = OnnxPolicyRuntime(sdm_dir, threads=2, optimization=level, warmup=False)
        options = runtime.session.get_session_options()
        assert (options.graph_optimization_level, options.intra_op_num_threads) == (want, 2)
    default = OnnxPolicyRuntime(sdm_dir, threads=1, warmup=False).session.get_session_options()
    assert default.graph_optimization_level == levels.ORT_ENABLE_ALL
    # the memory and CPU settings the node's benchmark was measured with
    assert not default.enable_mem_pattern
    assert default.get_session_config_entry("session.intra_op.allow_spinning") == "0"
    with pytest.raises(ValueError, match=r"optimization must be one of \['disable', 'basic', "):
        OnnxPolicyRuntime(sdm_dir, optimization="max")
    with pytest.raises(ValueError, match="threads must be >= 1, got 0"):
        OnnxPolicyRuntime(sdm_dir, threads=0)


def _copy_export(sdm_dir: Path, target: Path, with_config: bool = False) -> Path:
    target.mkdir()
    for name in ("policy.onnx", "policy.onnx.json") + (("config.json",) if with_config else ()):
        shutil.copy(sdm_dir / name, target / name)
    return target


def test_refusals_name_what_is_missing_or_differs(sdm_dir, tmp_path):
    # A checkpoint directory without an export: the backend never exports (that needs torch).
    bare = tmp_path / "bare"
    bare.mkdir()
    shutil.copy(sdm_dir / "config.json", bare / "config.json")
    with pytest.raises(OnnxModelError, match=r"no exported \.onnx.*sdm export --checkpoint"):
        OnnxPolicyRuntime(bare)
    # The .onnx without its sidecar.
    alone = tmp_path / "alone"
    alone.mkdir()
    shutil.copy(sdm_dir / "policy.onnx", alone / "policy.onnx")
    with pytest.raises(OnnxModelError, match=r"no sidecar policy\.onnx\.json"):
        OnnxPolicyRuntime(alone / "policy.onnx")
    # A sidecar whose inputs are not the graph's (from another export).
    edited = _copy_export(sdm_dir, tmp_path / "edited")
    meta = json.loads((edited / "policy.onnx.json").read_text())
    meta["inputs"][0]["shape"] = [1, TO, 64, 3]
    (edited / "policy.onnx.json").write_text(json.dumps(meta))
    with pytest.raises(OnnxModelError, match=r"point_cloud \[1, 2, 32, 3\] tensor\(float\) in "):
        OnnxPolicyRuntime(edited)
    # A graph file that is not the one the sidecar describes.
    swapped = _copy_export(sdm_dir, tmp_path / "swapped")
    (swapped / "policy.onnx").write_bytes((swapped / "policy.onnx").read_bytes() + b"\0")
    with pytest.raises(OnnxModelError, match="sha256"):
        OnnxPolicyRuntime(swapped)
    # A checkpoint directory whose config.json observes otherwise (points, channels, state).
    other = _copy_export(sdm_dir, tmp_path / "other", with_config=True)
    config = json.loads((other / "config.json").read_text())
    config["obs"].update(point_cloud_shape=[64, 6], state_dim=7)
    (other / "config.json").write_text(json.dumps(config))
    with pytest.raises(OnnxModelError) as err:
        OnnxPolicyRuntime(other)
    message = str(err.value)
    for part in (
        "points 32 in the model, 64 in config.json",
        "channels 3 in the model, 6 in ",
        "state size 4 in the model, 7 in config.json",
        "export this checkpoint again",
    ):
        assert part in message
    # What the caller expects (the robot's topics): the state size differs.
    want = ObservationSpec(point_cloud_shape=(32, 3), state_dim=5, action_dim=4)
    with pytest.raises(OnnxModelError, match="state size 4 in the model, 5 expected"):
        OnnxPolicyRuntime(sdm_dir, expected_spec=want)
    # Two exports in one directory: which one is ambiguous.
    two = _copy_export(sdm_dir, tmp_path / "two")
    shutil.copy(two / "policy.onnx", two / "other.onnx")
    with pytest.raises(OnnxModelError, match=r"2 \.onnx models \(other\.onnx, policy\.onnx\)"):
        OnnxPolicyRuntime(two)


NO_TRAINING_PACKAGES = r"""
import importlib.abc, sys
class Block(importlib.abc.MetaPathFinder):  # a robot's install: requirements/deploy.txt only
    def find_spec(self, name, path=None, target=None):
        if name.split(".")[0] in {"torch", "zarr", "numcodecs", "diffusers", "safetensors"}:
            raise ModuleNotFoundError(f"No module named {name!r}", name=name)
sys.meta_path.insert(0, Block())
from sdm_policy_core.cli import main
sys.exit(main(sys.argv[1:]))
"""


def test_doctor_deploy_checks_the_torch_free_install_and_model(sdm_dir, tmp_path):
    proc = _python(
        NO_TRAINING_PACKAGES,
        "doctor",
        "--deploy",
        "--core-only",
        "--json",
        "--model",
        str(sdm_dir),
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr
    checks = {c["name"]: c for c in json.loads(proc.stdout)["checks"]}
    assert {"onnxruntime", "deploy packages", "torch-free runtime + model"} <= set(checks)
    assert "torch" not in checks  # not needed on the robot
    assert checks["torch-free runtime + model"]["ok"]
    assert "(sdm, one-step x1) loaded in" in checks["torch-free runtime + model"]["detail"]
    # A model that does not load fails the check with the reason.
    alone = tmp_path / "alone"
    alone.mkdir()
    shutil.copy(sdm_dir / "policy.onnx", alone / "policy.onnx")
    proc = _python(
        NO_TRAINING_PACKAGES, "doctor", "--deploy", "--core-only", "--model", str(alone)
    )
    assert proc.returncode == 1
    assert "no sidecar policy.onnx.json" in proc.stdout and "sdm export" in proc.stdout
    # Commands that need torch or the training packages say so instead of a traceback.
    for args in (
        ["export", "--checkpoint", str(sdm_dir), "--format", "onnx", "--out", str(tmp_path)],
        ["train", "--dataset", "d.zarr", "--out", str(tmp_path / "run")],
    ):
        proc = _python(NO_TRAINING_PACKAGES, *args)
        assert proc.returncode == 2 and "Traceback" not in proc.stderr, proc.stderr
        assert "No module named" in proc.stderr and "pip install -e ." in proc.stderr
