# Copyright 2026 sdm-policy-ros maintainers
# SPDX-License-Identifier: MIT
"""SDM's distribution-matching gradient, gradient isolation, the one-step sampler and the EMA.

The Gaussian cases use exact denoisers: for data x0 ~ N(mu, I) under the variance-preserving
process, E[x0 | x_t] = mu + alpha_t (x_t - alpha_t mu), the score of x_t is -(x_t - alpha_t mu),
and the score difference of two such models is exactly alpha_t (mu_fake - mu_real).
"""

from __future__ import annotations

import math
from collections.abc import Iterator
from typing import Any

import pytest
import torch
from diffusers import DDPMScheduler
from torch import Tensor, nn

from sdm_policy_core.config import GRAD_NORMALISATIONS, DiffusionConfig, DistillConfig
from sdm_policy_core.diffusion import NoiseSchedule
from sdm_policy_core.distill import Corrector, Ema, OneStepGenerator, SdmDistiller

HORIZON, ACTION_DIM = 4, 3


@pytest.fixture(autouse=True, scope="module")
def _few_threads() -> Iterator[None]:
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


class GaussianDenoiser(nn.Module):
    """Exact x0-denoiser of N(mu, I) data, mu (T, D) a parameter; the condition is ignored."""

    def __init__(self, mu: Tensor, schedule: NoiseSchedule) -> None:
        super().__init__()
        self.mu = nn.Parameter(mu.clone())
        self.register_buffer("alpha", schedule.alphas_cumprod.sqrt().float())

    def forward(self, x_t: Tensor, t: Tensor, cond: Any) -> Tensor:
        alpha = self.alpha[t].view(-1, 1, 1)
        return self.mu + alpha * (x_t - alpha * self.mu)


class CountingDenoiser(nn.Module):
    """A small conditional MLP denoiser that records the timesteps of every call."""

    def __init__(self) -> None:
        super().__init__()
        self.net = nn.Sequential(
            nn.Linear(HORIZON * ACTION_DIM + 3, 32), nn.SiLU(), nn.Linear(32, HORIZON * ACTION_DIM)
        )
        self.calls: list[list[int]] = []

    def forward(self, x_t: Tensor, t: Tensor, cond: Tensor) -> Tensor:
        self.calls.append(sorted(set(t.tolist())))
        h = torch.cat([x_t.flatten(1), t.float()[:, None] / 100.0, cond], dim=1)
        return self.net(h).view_as(x_t)


def _schedule(**kwargs: Any) -> NoiseSchedule:
    return NoiseSchedule(DiffusionConfig(**kwargs))


def _gaussian_distiller(
    mu_real: Tensor, mu_fake: Tensor, **cfg: Any
) -> tuple[SdmDistiller, NoiseSchedule]:
    """Teacher = exact denoiser of N(mu_real, I); generator and corrector start at mu_fake."""
    schedule = _schedule(clip_sample=False)
    distiller = SdmDistiller(
        GaussianDenoiser(mu_real, schedule), schedule, DistillConfig(**cfg), (HORIZON, ACTION_DIM)
    )
    with torch.no_grad():
        distiller.generator.denoiser.mu.copy_(mu_fake)
        distiller.corrector.denoiser.mu.copy_(mu_fake)
    return distiller, schedule


# -- the noise schedule -------------------------------------------------------------------------


def test_schedule_matches_diffusers_and_inverts_epsilon() -> None:
    g = torch.Generator().manual_seed(0)
    x0 = torch.randn(8, HORIZON, ACTION_DIM, generator=g)
    noise = torch.randn(8, HORIZON, ACTION_DIM, generator=g)
    t = torch.randint(0, 100, (8,), generator=g)
    schedule = _schedule(prediction_type="epsilon")
    reference = DDPMScheduler(num_train_timesteps=100, beta_schedule="squaredcos_cap_v2")
    x_t = schedule.add_noise(x0, noise, t)
    torch.testing.assert_close(x_t, reference.add_noise(x0, noise, t), rtol=1e-5, atol=1e-5)
    alpha, sigma = schedule.alpha_sigma(t)
    assert alpha.shape == (8, 1, 1)
    torch.testing.assert_close(alpha**2 + sigma**2, torch.ones_like(alpha))
    t_small = torch.randint(0, 90, (8,), generator=g)  # alpha_99 ≈ 5e-4 would amplify rounding
    x_t = schedule.add_noise(x0, noise, t_small)
    x0_hat = schedule.predict_x0(noise, x_t, t_small)
    torch.testing.assert_close(x0_hat, x0, rtol=1e-4, atol=1e-4)
    assert _schedule(prediction_type="sample").predict_x0(x0, x_t, t) is x0


def test_score_from_exact_denoiser_is_the_analytic_score() -> None:
    schedule = _schedule()
    mu = torch.randn(HORIZON, ACTION_DIM)
    x_t = torch.randn(16, HORIZON, ACTION_DIM)
    t = torch.arange(2, 98, 6)
    alpha, _ = schedule.alpha_sigma(t)
    x0_hat = GaussianDenoiser(mu, schedule)(x_t, t, None)
    score = schedule.score_from_x0(x_t, x0_hat, t)
    torch.testing.assert_close(score, -(x_t - alpha * mu), rtol=1e-4, atol=1e-4)


@pytest.mark.parametrize("sampler", ["ddim", "ddpm"])
def test_samplers_are_deterministic_given_a_generator(sampler: str) -> None:
    schedule = _schedule(clip_sample=False)
    mu = torch.full((HORIZON, ACTION_DIM), 0.3)
    teacher = GaussianDenoiser(mu, schedule)
    runs = [
        schedule.sample(
            teacher,
            (2000, HORIZON, ACTION_DIM),
            None,
            sampler,
            10,
            torch.Generator().manual_seed(1),
        )
        for _ in range(2)
    ]
    assert runs[0].shape == (2000, HORIZON, ACTION_DIM)
    torch.testing.assert_close(runs[0], runs[1], rtol=0, atol=0)
    # The exact denoiser of N(mu, I) gives samples of mean mu (standard error 1/sqrt(2000)).
    assert (runs[0].mean(0) - mu).abs().max() < 0.1


def test_naive_one_step_is_the_conditional_mean() -> None:
    schedule = _schedule()
    mu = torch.full((HORIZON, ACTION_DIM), -0.4)
    x = schedule.naive_one_step(GaussianDenoiser(mu, schedule), (64, HORIZON, ACTION_DIM), None)
    # alpha_{T-1} ≈ 5e-4: the one-step x0 prediction is mu + 5e-4·z for every noise draw.
    torch.testing.assert_close(x, mu.expand_as(x), rtol=0, atol=5e-3)


# -- the distribution-matching gradient ----------------------------------------------------------


def _dm_gradient(distiller: SdmDistiller, x: Tensor, t: Tensor, seed: int = 1) -> Tensor:
    """Compute g at x_t = alpha_t x + sigma_t eps with the distiller's teacher and corrector."""
    eps = torch.randn(x.shape, generator=torch.Generator().manual_seed(seed))
    x_t = distiller.schedule.add_noise(x, eps, t)
    with torch.no_grad():
        x0_real = distiller.teacher(x_t, t, None)
        x0_fake = distiller.corrector(x_t, t, None)
        return distiller.distribution_matching_gradient(x, x_t, x0_real, x0_fake, t)


@pytest.mark.parametrize("normalisation", GRAD_NORMALISATIONS)
def test_dm_gradient_points_from_real_to_fake_mean(normalisation: str) -> None:
    """Check g ∝ +(mu_fake - mu_real) per sample, so descending on g moves x toward mu_real."""
    mu_real = torch.randn(HORIZON, ACTION_DIM)
    mu_fake = mu_real + torch.randn(HORIZON, ACTION_DIM)
    distiller, _ = _gaussian_distiller(mu_real, mu_fake, grad_normalisation=normalisation)
    x = mu_fake + 2.0 * torch.randn(32, HORIZON, ACTION_DIM)
    g = _dm_gradient(distiller, x, torch.randint(2, 96, (32,)))
    direction = (mu_fake - mu_real).flatten()
    cosine = torch.nn.functional.cosine_similarity(g.flatten(1), direction[None], dim=1)
    torch.testing.assert_close(cosine, torch.ones_like(cosine), rtol=0, atol=1e-4)


def _magnitude(normalisation: str, t: int) -> float:
    """mean|g| over 256 generator outputs x ~ N(mu_fake, I), at one timestep."""
    mu_real, mu_fake = torch.zeros(HORIZON, ACTION_DIM), torch.full((HORIZON, ACTION_DIM), 0.5)
    distiller, _ = _gaussian_distiller(mu_real, mu_fake, grad_normalisation=normalisation)
    x = mu_fake + torch.randn(256, HORIZON, ACTION_DIM, generator=torch.Generator().manual_seed(0))
    return float(_dm_gradient(distiller, x, torch.full((256,), t)).abs().mean())


def test_dmd_normaliser_keeps_the_high_noise_signal_that_mean_abs_weakens() -> None:
    """The DMD normaliser keeps the high-noise signal that mean_abs weakens.

    METHOD.md: mean|s_real| ∝ 1/sigma_t at high noise, so the mean_abs gradient shrinks with
    alpha_t; DMD's x0-space normaliser keeps it. dmd / mean_abs ≈ sigma_t / alpha_t (16 at
    t = 95 of 100, squaredcos_cap_v2).
    """
    schedule = _schedule()
    for t in (50, 85, 95):
        alpha, sigma = (float(v) for v in schedule.alpha_sigma(torch.tensor([t]), 1))
        ratio = _magnitude("dmd", t) / _magnitude("mean_abs", t)
        assert 0.5 < ratio / (sigma / alpha) < 2.0, (t, ratio, sigma / alpha)
    assert _magnitude("dmd", 95) > 10 * _magnitude("mean_abs", 95)
    assert _magnitude("mean_abs", 95) < 0.1 * _magnitude("mean_abs", 10)  # fades with alpha_t
    assert 0.5 < _magnitude("dmd", 95) / _magnitude("dmd", 50) < 2.0  # does not


def test_batch_normaliser_divides_every_sample_by_one_number() -> None:
    """The batch normaliser divides every sample by one number.

    mean_abs_batch (the SDM authors' code): one mean|s_real| for the batch, so samples keep
    their relative sizes; mean_abs rescales each sample on its own.
    """
    mu_real, mu_fake = torch.zeros(HORIZON, ACTION_DIM), torch.ones(HORIZON, ACTION_DIM)
    x = mu_fake + torch.randn(8, HORIZON, ACTION_DIM)
    t = torch.tensor([5, 20, 40, 60, 70, 80, 90, 95])
    grads = {}
    for mode in ("mean_abs", "mean_abs_batch", "sigma2"):
        distiller, _ = _gaussian_distiller(mu_real, mu_fake, grad_normalisation=mode)
        grads[mode] = _dm_gradient(distiller, x, t)
    # sigma2 is the raw alpha_t (x0_fake - x0_real): batch divides it by sigma_t² and a constant.
    _, sigma = _schedule().alpha_sigma(t)
    factor = grads["mean_abs_batch"] * sigma**2 / grads["sigma2"]
    torch.testing.assert_close(factor, factor.flatten()[0].expand_as(factor), rtol=1e-4, atol=0)
    factor = grads["mean_abs"] * sigma**2 / grads["sigma2"]
    assert factor.amax() > 1.5 * factor.amin()  # per-sample factors differ


@pytest.mark.parametrize("normalisation", GRAD_NORMALISATIONS)
def test_generator_gradient_moves_its_mean_toward_the_teacher(normalisation: str) -> None:
    """Through `generator_loss`: the generator's mu gets a gradient along mu_fake - mu_real."""
    mu_real = torch.zeros(HORIZON, ACTION_DIM)
    mu_fake = torch.randn(HORIZON, ACTION_DIM)
    distiller, _ = _gaussian_distiller(mu_real, mu_fake, grad_normalisation=normalisation)
    loss, metrics = distiller.generator_loss(torch.zeros(64, 1), torch.Generator().manual_seed(0))
    loss.backward()
    grad = distiller.generator.denoiser.mu.grad
    cosine = torch.nn.functional.cosine_similarity(
        grad.flatten(), (mu_fake - mu_real).flatten(), 0
    )
    assert cosine > 0.999
    assert distiller.corrector.denoiser.mu.grad is None  # s_fake is computed without gradient
    assert not any(p.requires_grad for p in distiller.teacher.parameters())
    assert metrics["loss_dm"] > 0 and math.isfinite(metrics["loss_generator"])


def test_dm_weight_scales_the_distribution_matching_term_and_zero_leaves_regression_only():
    """distill.dm_weight scales the DM term, and 0 leaves the regression alone.

    distill.dm_weight: the DM gradient scales with it; at 0 (with a regression weight) the
    generator's gradient is the regression's alone, which pulls it to the teacher's samples.
    """
    mu_real = torch.zeros(HORIZON, ACTION_DIM)
    mu_fake = torch.randn(HORIZON, ACTION_DIM)
    grads = {}
    for weight in (1.0, 0.5):
        distiller, _ = _gaussian_distiller(mu_real, mu_fake, dm_weight=weight)
        loss, _ = distiller.generator_loss(torch.zeros(64, 1), torch.Generator().manual_seed(0))
        loss.backward()
        grads[weight] = distiller.generator.denoiser.mu.grad.clone()
    assert torch.allclose(grads[0.5], 0.5 * grads[1.0], atol=1e-7)
    distiller, _ = _gaussian_distiller(mu_real, mu_fake, dm_weight=0.0, regression_weight=1.0)
    loss, metrics = distiller.generator_loss(torch.zeros(64, 1), torch.Generator().manual_seed(0))
    loss.backward()
    assert loss.item() == pytest.approx(metrics["loss_regression"])
    assert metrics["loss_dm"] > 0  # still measured, not applied
    with pytest.raises(ValueError, match="dm_weight"):
        _gaussian_distiller(mu_real, mu_fake, dm_weight=0.0)  # nothing would train


def test_distillation_loop_converges_on_gaussians() -> None:
    """Corrector tracks the generator's mean, the generator's mean goes to the teacher's."""
    torch.manual_seed(0)
    mu_real = torch.randn(HORIZON, ACTION_DIM)
    offset = torch.randn(HORIZON, ACTION_DIM)
    mu_start = mu_real + 3.0 * offset / offset.norm()
    distiller, _ = _gaussian_distiller(mu_real, mu_start, corrector_steps_per_generator_step=2)
    opt_g = torch.optim.Adam(distiller.generator.parameters(), lr=2e-2)
    opt_d = torch.optim.Adam(distiller.corrector.parameters(), lr=5e-2)
    g = torch.Generator().manual_seed(0)
    cond = torch.zeros(128, 1)
    for step in range(600):
        distiller.distill_step(step, cond, opt_g, opt_d, grad_clip=1.0, generator=g)
    start = (mu_start - mu_real).norm()
    end = (distiller.generator.denoiser.mu.detach() - mu_real).norm()
    assert end < 0.1 * start, f"generator mean error {end:.3f} (started at {start:.3f})"
    samples = distiller.sample_one_step(cond, g)
    assert (samples.mean(0) - mu_real).abs().max() < 0.15 * start


# -- gradient isolation, the one-step sampler, the timestep, the EMA ---------------------------


def _counting_distiller(generator_timestep: int | None = None) -> SdmDistiller:
    torch.manual_seed(0)
    schedule = _schedule()
    cfg = DistillConfig(generator_timestep=generator_timestep)
    return SdmDistiller(CountingDenoiser(), schedule, cfg, (HORIZON, ACTION_DIM))


def test_corrector_loss_leaves_no_gradient_on_the_generator() -> None:
    distiller = _counting_distiller()
    loss, metrics = distiller.corrector_loss(torch.randn(16, 2))
    loss.backward()
    assert all(p.grad is None for p in distiller.generator.parameters())
    assert all(p.grad is not None for p in distiller.corrector.parameters())
    assert all(p.grad is None for p in distiller.teacher.parameters())
    assert metrics["loss_corrector"] > 0
    # The same through the loop body on a corrector-only step (step 0 with k = 5).
    distiller.corrector.zero_grad(set_to_none=True)
    opt_g = torch.optim.AdamW(distiller.generator.parameters(), lr=1e-3)
    opt_d = torch.optim.AdamW(distiller.corrector.parameters(), lr=1e-3)
    before = [p.detach().clone() for p in distiller.generator.parameters()]
    distiller.distill_step(0, torch.randn(16, 2), opt_g, opt_d)
    assert all(p.grad is None for p in distiller.generator.parameters())
    for p, q in zip(distiller.generator.parameters(), before, strict=True):
        torch.testing.assert_close(p.detach(), q, rtol=0, atol=0)


def test_update_schedule_is_one_generator_step_per_k_corrector_steps() -> None:
    distiller = _counting_distiller()  # k = 5
    assert [s for s in range(20) if distiller.should_update_generator(s)] == [4, 9, 14, 19]


@pytest.mark.parametrize("generator_timestep", [None, 90])
def test_one_step_sampler_calls_the_generator_once_at_its_training_timestep(
    generator_timestep: int | None,
) -> None:
    distiller = _counting_distiller(generator_timestep)
    t_gen = 99 if generator_timestep is None else generator_timestep
    assert distiller.generator.timestep == t_gen
    cond = torch.randn(8, 2)
    for model in (
        distiller.generator,
        distiller.ema.model,
        distiller.teacher,
        distiller.corrector,
    ):
        model_calls(model).clear()

    actions = distiller.sample_one_step(cond, use_ema=False)
    assert actions.shape == (8, HORIZON, ACTION_DIM)
    assert model_calls(distiller.generator) == [[t_gen]]
    distiller.sample_one_step(cond, use_ema=True)
    assert model_calls(distiller.ema.model) == [[t_gen]]
    assert model_calls(distiller.teacher) == [] and model_calls(distiller.corrector) == []

    model_calls(distiller.generator).clear()
    distiller.generator_loss(cond)
    assert model_calls(distiller.generator) == [[t_gen]]  # trained where it is sampled
    assert len(model_calls(distiller.teacher)) == 1 and len(model_calls(distiller.corrector)) == 1


def model_calls(model: nn.Module) -> list[list[int]]:
    """Return the call log of the CountingDenoiser inside a generator, corrector or teacher."""
    inner = model.denoiser if isinstance(model, (OneStepGenerator, Corrector)) else model
    assert isinstance(inner, CountingDenoiser)
    return inner.calls


def test_ema_is_updated_and_round_trips() -> None:
    distiller = _counting_distiller()
    initial = [p.detach().clone() for p in distiller.ema.model.parameters()]
    opt_g = torch.optim.AdamW(distiller.generator.parameters(), lr=1e-2)
    opt_d = torch.optim.AdamW(distiller.corrector.parameters(), lr=1e-2)
    g = torch.Generator().manual_seed(0)
    for step in range(30):  # 6 generator updates
        distiller.distill_step(step, torch.randn(16, 2, generator=g), opt_g, opt_d, generator=g)
    assert distiller.ema.optimization_step == 6
    ema_params = list(distiller.ema.model.parameters())
    raw_params = list(distiller.generator.parameters())
    assert any(not torch.equal(e, i) for e, i in zip(ema_params, initial, strict=True))
    assert any(not torch.equal(e, r) for e, r in zip(ema_params, raw_params, strict=True))
    assert not any(p.requires_grad for p in ema_params)

    restored = Ema(distiller.generator)
    restored.load_state_dict(distiller.ema.state_dict())
    assert restored.optimization_step == 6
    for a, b in zip(restored.model.parameters(), ema_params, strict=True):
        torch.testing.assert_close(a, b, rtol=0, atol=0)


def test_ema_decay_follows_the_power_warm_up() -> None:
    ema = Ema(nn.Linear(2, 2), power=0.75, max_decay=0.999)
    assert ema.get_decay(0) == 0.0 and ema.get_decay(1) == 0.0
    assert ema.get_decay(2) == pytest.approx(1 - 2**-0.75)
    assert ema.get_decay(10) == pytest.approx(1 - 10**-0.75)
    assert ema.get_decay(10**7) == 0.999
