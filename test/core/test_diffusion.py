# Copyright 2026 sdm-policy-ros maintainers
# SPDX-License-Identifier: MIT
"""Sampler options of a teacher: trailing spacing and the naive one-step call's timestep.

Sampler options of a teacher: trailing timestep spacing for few-step DDIM, and the timestep
of the naive one-step call (an epsilon-prediction teacher's fair baseline).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch
from torch import Tensor, nn

from sdm_policy_core.checkpoint import checkpoint_config, prefixed_state_dict, save_checkpoint
from sdm_policy_core.config import ConfigError, DiffusionConfig, load_config
from sdm_policy_core.diffusion import NoiseSchedule
from sdm_policy_core.policies import DiffusionPolicy, SdmPolicy
from sdm_policy_core.runtime import PolicyRuntime

POINTS, STATE, ACTION = 16, 4, 3
OVERRIDES = [
    "model.preset=cpu_small",
    "model.encoder=dp3",
    "model.down_dims=[16,32]",
    "model.pointnet_dims=[8,16]",
    "model.diffusion_step_embed_dim=8",
    "model.horizon=4",
    "model.n_action_steps=2",
    f"obs.point_cloud_shape=[{POINTS},3]",
    "obs.image_shape=null",
    f"obs.state_dim={STATE}",
    f"obs.action_dim={ACTION}",
    "diffusion.prediction_type=epsilon",
    "distill.generator_timestep=85",
]


pytestmark = pytest.mark.usefixtures("one_torch_thread")


@pytest.fixture(scope="module")
def checkpoints(tmp_path_factory) -> dict[str, Path]:
    """Build an epsilon-prediction teacher (random weights) and its SDM student at t = 85."""
    out = tmp_path_factory.mktemp("eps")
    cfg = load_config(overrides=OVERRIDES)
    torch.manual_seed(0)
    teacher = DiffusionPolicy(cfg)
    rng = np.random.default_rng(0)
    teacher.normalizer.fit(
        {"action": rng.uniform(-1, 1, (64, ACTION)), "agent_pos": rng.uniform(-1, 1, (64, STATE))}
    )
    student = SdmPolicy(cfg, teacher)
    parts = {
        "teacher": {"encoder": teacher.encoder, "denoiser": teacher.denoiser},
        "sdm": {"encoder": student.encoder, "generator": student.generator},
    }
    paths = {}
    for kind, modules in parts.items():
        paths[kind] = out / kind
        tensors = prefixed_state_dict({**modules, "normalizer": teacher.normalizer})
        save_checkpoint(paths[kind], checkpoint_config(cfg, kind, 0), tensors)
    return paths


def _observation() -> dict[str, np.ndarray]:
    rng = np.random.default_rng(3)
    return {
        "point_cloud": rng.uniform(-0.5, 0.5, (POINTS, 3)).astype(np.float32),
        "agent_pos": rng.uniform(-1, 1, STATE).astype(np.float32),
    }


def _record_timesteps(module: nn.Module) -> list[list[int]]:
    """Record the timesteps of every call of `module` (a forward pre-hook), one list per call."""
    calls: list[list[int]] = []
    module.register_forward_pre_hook(lambda _, args: calls.append(sorted(set(args[1].tolist()))))
    return calls


# -- trailing timestep spacing ------------------------------------------------------------------


def test_trailing_spacing_starts_few_step_ddim_at_the_noisiest_timestep() -> None:
    schedule = NoiseSchedule(DiffusionConfig())
    assert schedule.timesteps("ddim", 2) == [50, 0]  # diffusers' default, "leading"
    assert schedule.timesteps("ddim", 2, "trailing") == [99, 49]
    assert schedule.timesteps("ddim", 10, "trailing") == list(range(99, 0, -10))
    assert schedule.timesteps("ddim", 10) == list(range(90, -1, -10))
    trailing = NoiseSchedule(DiffusionConfig(timestep_spacing="trailing"))
    assert trailing.timesteps("ddim", 2) == [99, 49]  # the config sets the default
    assert trailing.timesteps("ddim", 2, "leading") == [50, 0]
    with pytest.raises(ValueError, match="timestep spacing must be one of"):
        schedule.timesteps("ddim", 2, "linspace")
    with pytest.raises(ConfigError, match=r"diffusion\.timestep_spacing"):
        DiffusionConfig(timestep_spacing="middle")


def test_ddim_samples_at_the_spacing_timesteps() -> None:
    """The denoiser is called at exactly those timesteps, and the samples differ."""
    schedule = NoiseSchedule(DiffusionConfig(clip_sample=False))
    calls: list[int] = []

    def denoiser(x_t: Tensor, t: Tensor, cond: Any) -> Tensor:
        calls.append(int(t[0]))
        return 0.5 * x_t  # any x0 prediction that depends on x_t

    out = {}
    for spacing in ("leading", "trailing"):
        calls.clear()
        noise = torch.randn(8, 4, 3, generator=torch.Generator().manual_seed(0))
        out[spacing] = schedule.sample(
            denoiser, (8, 4, 3), None, "ddim", 2, initial_noise=noise, spacing=spacing
        )
        assert calls == schedule.timesteps("ddim", 2, spacing)
    assert not torch.allclose(out["leading"], out["trailing"])


def test_runtime_uses_and_reports_the_spacing(checkpoints: dict[str, Path]) -> None:
    runtime = PolicyRuntime(checkpoints["teacher"], sampler="ddim", steps=2, warmup=False)
    assert (runtime.spacing, runtime.timesteps) == ("leading", [50, 0])
    calls = _record_timesteps(runtime.policy.denoiser)
    leading = runtime.step(_observation()).actions
    runtime.set_sampler("ddim", 2, spacing="trailing")
    runtime.generator.manual_seed(0)
    runtime.reset()
    trailing = runtime.step(_observation()).actions
    assert (runtime.spacing, runtime.timesteps) == ("trailing", [99, 49])
    assert calls == [[50], [0], [99], [49]]
    assert not np.allclose(leading, trailing)
    with pytest.raises(ValueError, match="applies to ddim/ddpm"):
        runtime.set_sampler("one-step", spacing="trailing")


# -- the naive one-step call of an epsilon teacher ----------------------------------------------


class NoisyEpsilonDenoiser(nn.Module):
    """Epsilon prediction of N(mu, I) data, off by a constant `error`.

    Epsilon prediction of N(mu, I) data, off by a constant `error` (a trained network's
    error): eps = (x_t - alpha x0_hat) / sigma with x0_hat = mu + alpha (x_t - alpha mu).
    """

    def __init__(self, mu: Tensor, schedule: NoiseSchedule, error: float) -> None:
        super().__init__()
        self.mu, self.error = mu, error
        self.alpha = schedule.alphas_cumprod.sqrt().float()

    def forward(self, x_t: Tensor, t: Tensor, cond: Any) -> Tensor:
        alpha = self.alpha[t].view(-1, 1, 1)
        sigma = (1 - alpha**2).sqrt()
        x0 = self.mu + alpha * (x_t - alpha * self.mu)
        return (x_t - alpha * x0) / sigma + self.error


def test_naive_call_of_an_epsilon_teacher_at_the_students_timestep_is_well_conditioned() -> None:
    """The naive call of an epsilon teacher at the student's timestep is well conditioned.

    x0 = (x_t - sigma eps)/alpha: at t = 99 (alpha 4.9e-4) an eps error of 0.01 becomes ~20
    in x0; at t = 85 (alpha 0.22) 0.045.
    """
    schedule = NoiseSchedule(DiffusionConfig(prediction_type="epsilon", clip_sample=False))
    mu = torch.full((4, 3), 0.3)
    teacher = NoisyEpsilonDenoiser(mu, schedule, error=0.01)
    g = torch.Generator().manual_seed(0)
    at_end = schedule.naive_one_step(teacher, (256, 4, 3), None, generator=g)
    at_85 = schedule.naive_one_step(teacher, (256, 4, 3), None, 85, generator=g)
    assert (at_end.mean(0) - mu).abs().min() > 10.0  # ill-conditioned: the error x 2000
    # At 85: mu (1 - alpha²) + alpha z - sigma/alpha · 0.01, z ~ N(0, I): the mean is near mu.
    assert (at_85.mean(0) - mu).abs().max() < 0.1
    with pytest.raises(ValueError, match=r"one-step timestep must be in \[0, 99\]"):
        schedule.naive_one_step(teacher, (1, 4, 3), None, 100)


def test_teacher_one_step_calls_the_denoiser_once_at_the_naive_timestep(
    checkpoints: dict[str, Path],
) -> None:
    runtime = PolicyRuntime(checkpoints["teacher"], sampler="one-step", warmup=False)
    assert (runtime.naive_timestep, runtime.timesteps) == (99, [99])  # default: T - 1
    calls = _record_timesteps(runtime.policy.denoiser)
    at_end = runtime.step(_observation()).actions
    runtime.set_sampler("one-step", naive_timestep=85)
    runtime.reset()
    at_85 = runtime.step(_observation()).actions
    assert calls == [[99], [85]]
    assert runtime.timesteps == [85]
    assert not np.allclose(at_end, at_85)
    # Its student samples where it was trained, and takes no naive timestep.
    student = PolicyRuntime(checkpoints["sdm"], warmup=False)
    assert student.timesteps == [85] and student.naive_timestep is None
    with pytest.raises(ValueError, match="naive_timestep applies to a teacher's 'one-step'"):
        student.set_sampler("one-step", naive_timestep=85)
    with pytest.raises(ValueError, match="naive_timestep applies"):
        runtime.set_sampler("ddim", 10, naive_timestep=85)
    with pytest.raises(ValueError, match=r"naive_timestep must be in \[0, 99\]"):
        runtime.set_sampler("one-step", naive_timestep=100)


# -- default sampler and steps ------------------------------------------------------------------


def test_default_sampler_and_steps_come_from_the_checkpoint_config(checkpoints) -> None:
    """The default sampler and steps come from the checkpoint config.

    DiffusionConfig.sampler_for is the one place the defaults live; the runtime and the
    teacher's predict_action follow it (a teacher configured for DDPM samples DDPM).
    """
    ddpm = DiffusionConfig(sampler="ddpm", num_inference_steps=4)
    assert ddpm.sampler_for("teacher") == ("ddpm", 100)
    assert ddpm.sampler_for("teacher", "ddim") == ("ddim", 4)
    assert ddpm.sampler_for("teacher", "ddim", 7) == ("ddim", 7)
    assert ddpm.sampler_for("teacher", "one-step", 7) == ("one-step", 1)
    assert ddpm.sampler_for("sdm") == ("one-step", 1)
    teacher = PolicyRuntime(checkpoints["teacher"], warmup=False)
    diffusion = teacher.cfg.diffusion
    assert (teacher.sampler, teacher.steps) == (diffusion.sampler, diffusion.num_inference_steps)
    teacher.set_sampler("ddpm")
    assert teacher.steps == diffusion.num_train_timesteps
    sdm = PolicyRuntime(checkpoints["sdm"], warmup=False)
    assert (sdm.sampler, sdm.steps) == ("one-step", 1)
    # predict_action without a sampler runs the config's: DDIM K calls of the denoiser.
    policy = teacher.policy
    calls = _record_timesteps(policy.denoiser)
    obs = {
        k: torch.from_numpy(v)[None, None].expand(1, 2, *v.shape)
        for k, v in _observation().items()
    }
    policy.predict_action(obs, generator=torch.Generator().manual_seed(0))
    assert len(calls) == diffusion.num_inference_steps
