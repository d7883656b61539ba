# Copyright 2026 sdm-policy-ros maintainers
# SPDX-License-Identifier: MIT
"""Noise schedule, diffusion loss and samplers of the teacher (diffusers DDPM/DDIM underneath).

Conventions (shared by the teacher, the one-step generator and the corrector):
- Actions are `(B, T, D)` tensors (batch, horizon, action dimension), normalised to [-1, 1].
- Timesteps are integer indices `t` in `[0, num_train_timesteps - 1]`, `(B,)` long tensors.
- `x_t = alpha_t * x0 + sigma_t * eps` with `alpha_t = sqrt(alphas_cumprod[t])` and
  `sigma_t = sqrt(1 - alphas_cumprod[t])` (the variance-preserving process of DDPM).
- A denoiser is any callable `denoise_fn(x_t (B,T,D), t (B,) long, cond) -> (B,T,D)` returning
  x0 (`prediction_type="sample"`, DP3) or epsilon (`"epsilon"`, Diffusion Policy); `cond` is
  passed through untouched (a tensor of observation features, or whatever the denoiser takes).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import torch
import torch.nn.functional as F
from diffusers import DDIMScheduler, DDPMScheduler
from torch import Tensor

from sdm_policy_core.config import TIMESTEP_SPACINGS, DiffusionConfig

DenoiseFn = Callable[[Tensor, Tensor, Any], Tensor]
SAMPLERS = ("ddim", "ddpm")


def randn(
    shape: tuple[int, ...],
    generator: torch.Generator | None = None,
    device: torch.device | str | None = None,
    dtype: torch.dtype = torch.float32,
) -> Tensor:
    """Draw standard normal noise of `shape` on `device`, reproducible from `generator`.

    The noise is drawn on the generator's own device and then moved, so a CPU generator gives
    the same numbers whatever device the models run on.
    """
    if generator is None:
        return torch.randn(shape, device=device, dtype=dtype)
    out = torch.randn(shape, generator=generator, device=generator.device, dtype=dtype)
    return out.to(device) if device is not None else out


def randint(
    low: int,
    high: int,
    size: tuple[int, ...],
    generator: torch.Generator | None = None,
    device: torch.device | str | None = None,
) -> Tensor:
    """Uniform integers in `[low, high)` (long), reproducible from `generator` like `randn`."""
    if generator is None:
        return torch.randint(low, high, size, device=device)
    out = torch.randint(low, high, size, generator=generator, device=generator.device)
    return out.to(device) if device is not None else out


def device_of(cond: Any) -> torch.device | None:
    """Device of a condition: a tensor's, or the first tensor's in a dict/list/tuple; else None."""
    if isinstance(cond, Tensor):
        return cond.device
    values = cond.values() if isinstance(cond, dict) else cond
    if isinstance(values, (list, tuple)) or isinstance(cond, dict):
        for value in values:
            found = device_of(value)
            if found is not None:
                return found
    return None


def batch_size_of(cond: Any) -> int:
    """Batch size B of a condition: a tensor's first dim, or the first tensor's in a container."""
    if isinstance(cond, Tensor):
        return int(cond.shape[0])
    values = cond.values() if isinstance(cond, dict) else cond
    if isinstance(values, (list, tuple)) or isinstance(cond, dict):
        for value in values:
            try:
                return batch_size_of(value)
            except TypeError:
                continue
    raise TypeError(f"cannot infer the batch size from a condition of type {type(cond).__name__}")


class NoiseSchedule:
    """The forward process, its inverse relations, the diffusion loss and the samplers.

    Built on diffusers' `DDPMScheduler`/`DDIMScheduler` with the settings of `cfg`
    (`squaredcos_cap_v2`, 100 training steps and x0 prediction for DP3). The samplers' scheduler
    objects are built once per (sampler, steps) and reused: after `set_timesteps` their `step`
    keeps no state, so reuse is safe.
    """

    def __init__(self, cfg: DiffusionConfig) -> None:
        self.cfg = cfg
        self.num_train_timesteps = cfg.num_train_timesteps
        self.prediction_type = cfg.prediction_type
        self._scheduler_kwargs: dict[str, Any] = {
            "num_train_timesteps": cfg.num_train_timesteps,
            "beta_schedule": cfg.beta_schedule,
            "prediction_type": cfg.prediction_type,
            "clip_sample": cfg.clip_sample,
        }
        self.train_scheduler = DDPMScheduler(**self._scheduler_kwargs)
        # float64 master copy; per-device float32 copies are cached by `_coefficients`.
        self.alphas_cumprod = self.train_scheduler.alphas_cumprod.to(torch.float64)
        self._per_device: dict[torch.device, tuple[Tensor, Tensor]] = {}
        self._samplers: dict[tuple[str, int, str], DDIMScheduler | DDPMScheduler] = {}

    # -- the forward process ---------------------------------------------------------------------

    def _coefficients(self, device: torch.device) -> tuple[Tensor, Tensor]:
        if device not in self._per_device:
            alpha = self.alphas_cumprod.sqrt().to(device=device, dtype=torch.float32)
            sigma = (1.0 - self.alphas_cumprod).sqrt().to(device=device, dtype=torch.float32)
            self._per_device[device] = (alpha, sigma)
        return self._per_device[device]

    def alpha_sigma(self, t: Tensor, ndim: int = 3) -> tuple[Tensor, Tensor]:
        """(alpha_t, sigma_t) for timesteps `t` (B,), shaped `(B, 1, ..., 1)` with `ndim` dims.

        The default `ndim=3` broadcasts against `(B, T, D)` action sequences.
        """
        if t.dtype not in (torch.int64, torch.int32):
            raise TypeError(f"timesteps must be an integer tensor, got {t.dtype}")
        alpha, sigma = self._coefficients(t.device)
        shape = (-1,) + (1,) * (ndim - 1)
        return alpha[t].reshape(shape), sigma[t].reshape(shape)

    def add_noise(self, x0: Tensor, noise: Tensor, t: Tensor) -> Tensor:
        """x_t = alpha_t x0 + sigma_t noise. x0, noise: (B, ...); t: (B,) long -> (B, ...)."""
        alpha, sigma = self.alpha_sigma(t, x0.ndim)
        return alpha.to(x0.dtype) * x0 + sigma.to(x0.dtype) * noise

    def predict_x0(self, model_output: Tensor, x_t: Tensor, t: Tensor) -> Tensor:
        """Return the denoiser's clean-sample estimate x̂0 (B, ...) from its raw output (B, ...).

        `sample` prediction returns the output itself; `epsilon` prediction inverts the forward
        process, x̂0 = (x_t - sigma_t epŝ) / alpha_t. No clipping (the samplers clip, if asked).
        """
        if self.prediction_type == "sample":
            return model_output
        alpha, sigma = self.alpha_sigma(t, x_t.ndim)
        return (x_t - sigma.to(x_t.dtype) * model_output) / alpha.to(x_t.dtype)

    def score_from_x0(self, x_t: Tensor, x0_hat: Tensor, t: Tensor) -> Tensor:
        """Score ∇ log p_t(x_t) = -(x_t - alpha_t x̂0) / sigma_t², shapes (B, ...)."""
        alpha, sigma = self.alpha_sigma(t, x_t.ndim)
        alpha, sigma = alpha.to(x_t.dtype), sigma.to(x_t.dtype)
        return -(x_t - alpha * x0_hat) / sigma**2

    # -- training --------------------------------------------------------------------------------

    def training_loss(
        self,
        denoise_fn: DenoiseFn,
        x0: Tensor,
        cond: Any,
        generator: torch.Generator | None = None,
        t_range: tuple[int, int] | None = None,
    ) -> Tensor:
        """Compute the standard diffusion loss (scalar): MSE of the output to x0 or to epsilon.

        The MSE of the denoiser's output to x0 or to epsilon. x0: (B, T, D) clean actions. t is
        drawn uniformly from `t_range` = (low, high), both inclusive (default: every training
        timestep); noise and t come from `generator`.
        """
        low, high = t_range if t_range is not None else (0, self.num_train_timesteps - 1)
        if not 0 <= low <= high < self.num_train_timesteps:
            raise ValueError(
                f"t_range must satisfy 0 <= low <= high < {self.num_train_timesteps}, "
                f"got {t_range}"
            )
        B = x0.shape[0]
        noise = randn(tuple(x0.shape), generator, x0.device, x0.dtype)
        t = randint(low, high + 1, (B,), generator, x0.device)
        x_t = self.add_noise(x0, noise, t)
        prediction = denoise_fn(x_t, t, cond)
        target = x0 if self.prediction_type == "sample" else noise
        return F.mse_loss(prediction, target)

    # -- sampling --------------------------------------------------------------------------------

    def _sampler(
        self, sampler: str, steps: int, spacing: str | None = None
    ) -> DDIMScheduler | DDPMScheduler:
        """Build the diffusers scheduler of `sampler` with `steps` timesteps placed by `spacing`.

        `spacing`: "leading" or "trailing"; None: `diffusion.timestep_spacing`.
        """
        if sampler not in SAMPLERS:
            raise ValueError(f"sampler must be one of {SAMPLERS}, got {sampler!r}")
        if not 1 <= steps <= self.num_train_timesteps:
            raise ValueError(f"steps must be in [1, {self.num_train_timesteps}], got {steps}")
        spacing = spacing or self.cfg.timestep_spacing
        if spacing not in TIMESTEP_SPACINGS:
            raise ValueError(
                f"timestep spacing must be one of {TIMESTEP_SPACINGS}, got {spacing!r}"
            )
        key = (sampler, steps, spacing)
        if key not in self._samplers:
            cls = DDIMScheduler if sampler == "ddim" else DDPMScheduler
            scheduler = cls(**self._scheduler_kwargs, timestep_spacing=spacing)
            scheduler.set_timesteps(steps)
            self._samplers[key] = scheduler
        return self._samplers[key]

    def timesteps(self, sampler: str, steps: int, spacing: str | None = None) -> list[int]:
        """Return the denoiser's timesteps, in calling order, of `sampler` with `steps` steps.

        diffusers' "leading" spacing (the default) gives DDIM-2 [50, 0] and DDIM-10 [90, ..., 0]
        for 100 training steps, so a few-step sampler never starts from the noisiest timestep;
        "trailing" gives [99, 49] and [99, 89, ..., 9] (Lin et al. 2024, the fair few-step
        baseline).
        """
        return [int(t) for t in self._sampler(sampler, steps, spacing).timesteps]

    @torch.no_grad()
    def sample(
        self,
        denoise_fn: DenoiseFn,
        shape: tuple[int, ...],
        cond: Any,
        sampler: str = "ddim",
        steps: int = 10,
        generator: torch.Generator | None = None,
        *,
        device: torch.device | str | None = None,
        initial_noise: Tensor | None = None,
        spacing: str | None = None,
    ) -> Tensor:
        """Run the diffusers `sampler` ("ddim", eta 0, or "ddpm") for `steps` denoiser calls.

        shape: (B, T, D) of the result. `initial_noise` (B, T, D) replaces the starting noise
        (to pair samples with a one-step generator's inputs). Deterministic given `generator`
        (DDIM draws only the starting noise; DDPM also its per-step noise). Returns (B, T, D),
        on `device` (default: that of `initial_noise`, else of `cond`, else the CPU). `spacing`:
        where the steps lie (see `timesteps`; None: `diffusion.timestep_spacing`).
        """
        scheduler = self._sampler(sampler, steps, spacing)
        device = device if device is not None else device_of(cond)
        if initial_noise is not None:
            x = initial_noise
        else:
            x = randn(tuple(shape), generator, device) * scheduler.init_noise_sigma
        B = x.shape[0]
        for t in scheduler.timesteps:
            t_batch = torch.full((B,), int(t), dtype=torch.long, device=x.device)
            # The scheduler's arithmetic stays in x's dtype even if the denoiser runs in bf16.
            model_output = denoise_fn(x, t_batch, cond).to(x.dtype)
            if sampler == "ddim":
                x = scheduler.step(model_output, int(t), x, eta=0.0).prev_sample
            else:
                x = scheduler.step(model_output, int(t), x, generator=generator).prev_sample
        return x

    @torch.no_grad()
    def naive_one_step(
        self,
        denoise_fn: DenoiseFn,
        shape: tuple[int, ...],
        cond: Any,
        t: int | None = None,
        generator: torch.Generator | None = None,
        *,
        device: torch.device | str | None = None,
        initial_noise: Tensor | None = None,
    ) -> Tensor:
        """Sample the undistilled baseline: x̂0 of one denoiser call at timestep `t` (default T-1).

        Pure noise of `shape` (B, T, D) goes in; the denoiser's clean-sample estimate comes out,
        clipped to [-1, 1] when the config clips. This is what a diffusion policy gives in one
        step without distillation: near the conditional mean, i.e. collapsed between modes.
        An epsilon-prediction denoiser at T-1 is ill-conditioned (x̂0 = (x - sigma ε̂) / alpha,
        1/alpha ≈ 2000 with squaredcos_cap_v2): call it at its student's timestep (≈ T - 15)
        for a fair baseline. Noise enters at unit scale, as the one-step generator's does;
        `initial_noise` (B, T, D) replaces its draw.
        """
        t = self.num_train_timesteps - 1 if t is None else int(t)
        if not 0 <= t < self.num_train_timesteps:
            raise ValueError(
                f"one-step timestep must be in [0, {self.num_train_timesteps - 1}], got {t}"
            )
        device = device if device is not None else device_of(cond)
        x = initial_noise if initial_noise is not None else randn(tuple(shape), generator, device)
        t_batch = torch.full((x.shape[0],), t, dtype=torch.long, device=x.device)
        x0 = self.predict_x0(denoise_fn(x, t_batch, cond).to(x.dtype), x, t_batch)
        return x0.clamp(-1.0, 1.0) if self.cfg.clip_sample else x0
