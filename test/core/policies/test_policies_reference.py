# Copyright 2026 sdm-policy-ros maintainers
# SPDX-License-Identifier: MIT
"""Frozen behaviour of teacher and SDM checkpoints.

Frozen behaviour of teacher and SDM checkpoints: fixed-seed weights, fixed observations ->
the actions committed in `test/core/reference/policy_actions.npz` (and the checkpoint layout in
`test/core/reference/policy_checkpoints.json`).

A teacher (2 steps of `TeacherRecipe`) and its student (3 steps of `SdmRecipe`, one generator
update per step) are built from fixed seeds with the training code, saved with the same export
the trainer uses, loaded back through `PolicyRuntime` and run on fixed observations with every
sampler. Refactors of the policies, the generator, the EMA or checkpoint loading must leave
these numbers unchanged. Tolerance 1e-6 (single thread; float32 kernels may differ in the last
bit between CPU kinds, not more).

Regenerate only for an intended change of behaviour, and say so in the commit:
`SDM_REGENERATE_REFERENCE=1 python -m pytest test/core/policies/test_policies_reference.py`.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from sdm_policy_core.checkpoint import load_checkpoint
from sdm_policy_core.policies import DiffusionPolicy, SdmPolicy
from sdm_policy_core.policies.loading import load_policy
from sdm_policy_core.runtime import PolicyRuntime
from test.core.reference_checkpoints import (
    ACTION,
    POINTS,
    REFERENCE,
    REGENERATE,
    STATE,
    build_checkpoints,
)

ACTIONS = REFERENCE / "policy_actions.npz"
LAYOUT = REFERENCE / "policy_checkpoints.json"
# (name, checkpoint, sampler, steps): every sampler a checkpoint offers.
ROWS = [
    ("teacher_ddim10", "teacher", "ddim", 10),
    ("teacher_ddim2", "teacher", "ddim", 2),
    ("teacher_ddpm100", "teacher", "ddpm", 100),
    ("teacher_one_step", "teacher", "one-step", 1),
    ("sdm_one_step", "sdm", "one-step", 1),
]


pytestmark = pytest.mark.usefixtures("one_torch_thread")


def _observations() -> list[dict[str, np.ndarray]]:
    """Three control ticks of one episode, as a robot sends them."""
    rng = np.random.default_rng(11)
    return [
        {
            "point_cloud": rng.uniform(-0.5, 0.5, (POINTS, 3)).astype(np.float32),
            "agent_pos": rng.uniform(-1, 1, STATE).astype(np.float32),
        }
        for _ in range(3)
    ]


@pytest.fixture(scope="module")
def checkpoints(tmp_path_factory) -> dict[str, Path]:
    return build_checkpoints(tmp_path_factory.mktemp("reference"))


def _actions(path: Path, sampler: str, steps: int) -> np.ndarray:
    """(ticks, n_action_steps, Da) actions of the runtime over the fixed observations."""
    runtime = PolicyRuntime(path, sampler=sampler, steps=steps, seed=7, warmup=False)
    return np.stack([runtime.step(obs).actions for obs in _observations()])


def _layout(path: Path) -> dict[str, list[int]]:
    """Tensor name -> shape of a checkpoint's model.safetensors."""
    ckpt = load_checkpoint(path, load_training_state=False)
    return {name: list(t.shape) for name, t in sorted(ckpt.tensors.items())}


def test_checkpoints_keep_their_tensor_layout(checkpoints: dict[str, Path]) -> None:
    layout = {
        f"{kind}/{name}": shape
        for kind, path in checkpoints.items()
        for name, shape in _layout(path).items()
    }
    if REGENERATE:
        REFERENCE.mkdir(exist_ok=True)
        lines = [f"  {json.dumps(k)}: {json.dumps(v)}" for k, v in sorted(layout.items())]
        LAYOUT.write_text("{\n" + ",\n".join(lines) + "\n}\n")
    assert layout == json.loads(LAYOUT.read_text())


def test_policies_reproduce_the_reference_actions(checkpoints: dict[str, Path]) -> None:
    actions = {name: _actions(checkpoints[kind], s, k) for name, kind, s, k in ROWS}
    if REGENERATE:
        REFERENCE.mkdir(exist_ok=True)
        np.savez(ACTIONS, **actions)
    reference = np.load(ACTIONS)
    assert sorted(reference.files) == sorted(actions)
    for name, value in actions.items():
        assert value.shape == (3, 2, ACTION) and np.isfinite(value).all()
        np.testing.assert_allclose(value, reference[name], rtol=0, atol=1e-6, err_msg=name)
    # The rows are different policies, not one number five times.
    assert not np.allclose(actions["sdm_one_step"], actions["teacher_one_step"], atol=1e-4)
    assert not np.allclose(actions["teacher_ddim10"], actions["teacher_one_step"], atol=1e-4)


def test_deployment_and_teacher_training_do_not_import_the_distiller() -> None:
    """Deployment and teacher training do not import the distiller.

    The one-step generator (policies/one_step.py) and the EMA (training/ema.py) live outside
    sdm_policy_core.distill: loading and running any checkpoint, exporting it, or training a
    teacher never imports the distiller.
    """
    probe = (
        "import sys\n"
        "import sdm_policy_core.runtime, sdm_policy_core.export, sdm_policy_core.policies\n"
        "from sdm_policy_core.training.ema import Ema\n"
        "from sdm_policy_core.policies.one_step import OneStepGenerator\n"
        "print(sorted(m for m in sys.modules if m.startswith('sdm_policy_core.distill')))\n"
    )
    out = subprocess.run(
        [sys.executable, "-c", probe], capture_output=True, text=True, check=True, timeout=120
    )
    assert out.stdout.strip() == "[]", out.stdout + out.stderr


def test_the_sdm_policy_is_not_a_diffusion_policy(checkpoints: dict[str, Path]) -> None:
    student, teacher = load_policy(checkpoints["sdm"]), load_policy(checkpoints["teacher"])
    assert isinstance(student, SdmPolicy) and not isinstance(student, DiffusionPolicy)
    assert not hasattr(student, "denoiser") and not hasattr(student, "compute_loss")
    assert isinstance(teacher, DiffusionPolicy) and not hasattr(teacher, "generator")
