# Copyright 2026 sdm-policy-ros maintainers
# SPDX-License-Identifier: MIT
"""Score and Distribution Matching (SDM) distillation of a diffusion policy into one step.

Three copies of the teacher's denoiser take part (see METHOD.md):
- the frozen teacher, whose x0 predictions give the real score s_real;
- the `Corrector`, trained continually as the denoiser of the generator's current output
  distribution, whose predictions give the fake score s_fake;
- the `OneStepGenerator`, called once at a fixed timestep on pure noise, trained with the
  distribution-matching gradient g ∝ s_fake - s_real (descending g moves its outputs toward the
  teacher's distribution).

Shapes: actions `(B, T, D)` (batch, horizon, action dim); timesteps `(B,)` long; `cond` is
whatever the denoiser takes (observation features `(B, F)` for the ConditionalUnet1D).
Optimisers live in the trainer; `SdmDistiller.distill_step` is a small convenience loop body.
The generator (`policies/one_step.py`) and the EMA (`training/ema.py`) live where deployment and
teacher training use them; they are re-exported here.
"""

from __future__ import annotations

import copy
from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from sdm_policy_core.config import DistillConfig
from sdm_policy_core.diffusion import NoiseSchedule, batch_size_of, device_of, randint, randn
from sdm_policy_core.policies.one_step import OneStepGenerator
from sdm_policy_core.training.ema import Ema


class Corrector(nn.Module):
    """D_ψ, the fake score: a copy of the teacher's denoiser, retrained on the generator's outputs.

    Same call and output type as the teacher: `forward(x_t (B,T,D), t (B,), cond) -> (B,T,D)`.
    """

    def __init__(self, denoiser: nn.Module) -> None:
        super().__init__()
        self.denoiser = copy.deepcopy(denoiser)

    def forward(self, x_t: Tensor, t: Tensor, cond: Any) -> Tensor:
        return self.denoiser(x_t, t, cond)


class SdmDistiller:
    """Frozen teacher + `OneStepGenerator` + `Corrector` (+ the generator's `Ema`) and losses.

    teacher_denoiser: `(x_t (B,T,D), t (B,), cond) -> (B,T,D)` in the schedule's prediction type.
        It is frozen in place (requires_grad False, eval mode); the generator and the corrector
        are trainable deep copies of it, initialised from its weights, in train mode.
    action_shape: (T, D) = (horizon, action_dim) of one action sequence.
    ema_power, ema_max_decay: the generator EMA's warm-up (pass TrainConfig.ema_power/ema_decay).
    """

    def __init__(
        self,
        teacher_denoiser: nn.Module,
        schedule: NoiseSchedule,
        cfg: DistillConfig,
        action_shape: tuple[int, int],
        *,
        ema_power: float = 0.75,
        ema_max_decay: float = 0.9999,
    ) -> None:
        T = schedule.num_train_timesteps
        if cfg.t_max >= T:
            raise ValueError(f"distill.t_max={cfg.t_max} must be < num_train_timesteps={T}")
        self.cfg = cfg
        self.schedule = schedule
        self.action_shape = tuple(int(v) for v in action_shape)
        self.generator = OneStepGenerator(teacher_denoiser, schedule, cfg.generator_timestep)
        self.generator.train().requires_grad_(True)
        self.corrector = Corrector(teacher_denoiser)
        self.corrector.train().requires_grad_(True)
        self.teacher = teacher_denoiser.eval().requires_grad_(False)
        self.ema = Ema(self.generator, power=ema_power, max_decay=ema_max_decay)

    # -- helpers ---------------------------------------------------------------------------------

    def _device(self, cond: Any) -> torch.device:
        device = device_of(cond)
        if device is not None:
            return device
        param = next(self.generator.parameters(), None)
        return param.device if param is not None else torch.device("cpu")

    def _noise(self, cond: Any, generator: torch.Generator | None) -> Tensor:
        """Draw generator input z (B, T, D) ~ N(0, I) for the batch of `cond`."""
        shape = (batch_size_of(cond), *self.action_shape)
        return randn(shape, generator, self._device(cond))

    def should_update_generator(self, step: int) -> bool:
        """Whether 0-based distillation `step` also updates the generator (the corrector always).

        True on steps k-1, 2k-1, ... for k = corrector_steps_per_generator_step, so the corrector
        has taken k updates on the generator's outputs before the generator's first update.
        """
        return (step + 1) % self.cfg.corrector_steps_per_generator_step == 0

    def distribution_matching_gradient(
        self, x: Tensor, x_t: Tensor, x0_real: Tensor, x0_fake: Tensor, t: Tensor
    ) -> Tensor:
        """Compute the distillation gradient g, per `distill.grad_normalisation`.

        g (B, ...) ∝ s_fake - s_real = alpha_t (x0_fake - x0_real) / sigma_t², per
        `distill.grad_normalisation`.

        x: the generator's outputs (B, ...); x_t = alpha_t x + sigma_t eps at timesteps t (B,);
        x0_real, x0_fake: the teacher's and the corrector's x0 predictions at x_t.
        - "mean_abs": (s_fake - s_real) / mean|s_real| over each sample's elements. At high t
          mean|s_real| ≈ mean|eps| / sigma_t, so g ≈ alpha_t / (sigma_t mean|eps|) ·
          (x0_fake - x0_real): the mode-level signal of high t fades with alpha_t.
        - "mean_abs_batch": the same, divided by one mean|s_real| over the whole batch, NaNs
          zeroed: the SDM authors' code (BofangJia/SDM-Policy, SDM/train_sdm.py:
          `(s_dynamic - s_pre_trained) / torch.abs(s_pre_trained).mean()` then `nan_to_num`).
          The paper's own equation text was not available to us to check.
        - "sigma2": (s_fake - s_real) · sigma_t² = alpha_t (x0_fake - x0_real) (OneDP).
        - "dmd": (x0_fake - x0_real) / mean|x - x0_real| per sample (DMD, Yin et al. 2024): in
          x0 space, so high t keeps its weight.
        All four point along s_fake - s_real in every sample; they differ in magnitude only.
        """
        mode = self.cfg.grad_normalisation
        dims = tuple(range(1, x.ndim))
        if mode == "dmd":
            scale = (x - x0_real).abs().mean(dim=dims, keepdim=True).clamp_min(1e-8)
            return (x0_fake - x0_real) / scale
        s_real = self.schedule.score_from_x0(x_t, x0_real, t)
        diff = self.schedule.score_from_x0(x_t, x0_fake, t) - s_real
        if mode == "sigma2":
            _, sigma = self.schedule.alpha_sigma(t, diff.ndim)
            return diff * sigma.to(diff.dtype) ** 2
        if mode == "mean_abs_batch":
            return torch.nan_to_num(diff / s_real.abs().mean().clamp_min(1e-8))
        return diff / s_real.abs().mean(dim=dims, keepdim=True).clamp_min(1e-8)

    # -- losses ----------------------------------------------------------------------------------

    def generator_loss(
        self, cond: Any, generator: torch.Generator | None = None
    ) -> tuple[Tensor, dict[str, float]]:
        """L_G = w_dm·½·mean((x - sg(x - g))²) [+ w·mean((x - x_teacher_ddim)²)], x = G(z, cond).

        Gradients reach only the generator: the teacher and the corrector are evaluated without
        gradient at t ~ U{t_min..t_max} on x_t = alpha_t x + sigma_t eps. The regression term
        (when `regression_weight` > 0) pairs each z with the teacher's DDIM sample from the same
        z. Returns the scalar loss and float metrics.
        """
        cfg, schedule = self.cfg, self.schedule
        z = self._noise(cond, generator)
        # Score arithmetic in float32 even under autocast: s_fake - s_real is a small difference
        # of terms ~1/sigma_t, which bf16 would drown.
        x = self.generator(z, cond).float()
        B = x.shape[0]
        t = randint(cfg.t_min, cfg.t_max + 1, (B,), generator, x.device)
        eps = randn(tuple(x.shape), generator, x.device)
        with torch.no_grad():
            x_t = schedule.add_noise(x.detach(), eps, t)
            x0_real = schedule.predict_x0(self.teacher(x_t, t, cond).float(), x_t, t)
            x0_fake = schedule.predict_x0(self.corrector(x_t, t, cond).float(), x_t, t)
            g = self.distribution_matching_gradient(x.detach(), x_t, x0_real, x0_fake, t)
        loss_dm = 0.5 * F.mse_loss(x, (x - g).detach())
        loss = cfg.dm_weight * loss_dm
        loss_reg = torch.zeros((), device=x.device)
        if cfg.regression_weight > 0:
            x_ref = schedule.sample(
                self.teacher,
                tuple(x.shape),
                cond,
                "ddim",
                cfg.regression_ddim_steps,
                initial_noise=z.float(),
            )
            loss_reg = F.mse_loss(x, x_ref.float())
            loss = loss + cfg.regression_weight * loss_reg
        values = torch.stack(
            [
                loss.detach(),
                loss_dm.detach(),
                loss_reg.detach(),
                g.abs().mean(),
                (x0_fake - x0_real).abs().mean(),
            ]
        ).tolist()
        names = (
            "loss_generator",
            "loss_dm",
            "loss_regression",
            "dm_grad_abs_mean",
            "x0_fake_minus_real_abs_mean",
        )
        return loss, dict(zip(names, values, strict=True))

    def corrector_loss(
        self, cond: Any, generator: torch.Generator | None = None
    ) -> tuple[Tensor, dict[str, float]]:
        """Diffusion loss of the corrector on the generator's current outputs (scalar, metrics).

        The generator runs under `torch.no_grad`, so no gradient can reach it (the authors' code
        leaks here). t is drawn from [t_min, t_max], the timesteps where s_fake is queried.
        """
        with torch.no_grad():
            x = self.generator(self._noise(cond, generator), cond)
        loss = self.schedule.training_loss(
            self.corrector, x, cond, generator, t_range=(self.cfg.t_min, self.cfg.t_max)
        )
        return loss, {"loss_corrector": float(loss.detach())}

    # -- a loop body and the sampler -------------------------------------------------------------

    def distill_step(
        self,
        step: int,
        cond: Any,
        opt_g: torch.optim.Optimizer,
        opt_d: torch.optim.Optimizer,
        grad_clip: float | None = 1.0,
        generator: torch.Generator | None = None,
    ) -> dict[str, float]:
        """One distillation step: corrector update, then (on schedule) generator + EMA update.

        `opt_g` must hold the generator's parameters and `opt_d` the corrector's; gradient norms
        are clipped to `grad_clip` (None or <= 0: no clipping). Learning-rate schedulers are the
        caller's. Returns float metrics (generator ones only on generator steps).
        """
        loss_d, metrics = self.corrector_loss(cond, generator)
        opt_d.zero_grad(set_to_none=True)
        loss_d.backward()
        metrics["grad_norm_corrector"] = _clip(self.corrector, grad_clip)
        opt_d.step()
        if self.should_update_generator(step):
            loss_g, metrics_g = self.generator_loss(cond, generator)
            opt_g.zero_grad(set_to_none=True)
            loss_g.backward()
            metrics_g["grad_norm_generator"] = _clip(self.generator, grad_clip)
            opt_g.step()
            self.ema.update(self.generator)
            metrics_g["ema_decay"] = self.ema.decay
            metrics.update(metrics_g)
        return metrics

    @torch.no_grad()
    def sample_one_step(
        self, cond: Any, generator: torch.Generator | None = None, use_ema: bool = True
    ) -> Tensor:
        """Actions (B, T, D) from ONE call of the (EMA) generator on fresh noise.

        Clipped to [-1, 1] when the diffusion config clips, like the teacher's samplers.
        """
        model = self.ema.model if use_ema else self.generator
        x = model(self._noise(cond, generator), cond)
        return x.clamp(-1.0, 1.0) if self.schedule.cfg.clip_sample else x

    # -- checkpoints -----------------------------------------------------------------------------

    def state_dict(self) -> dict[str, Any]:
        """Return generator, corrector and EMA state (the teacher is the teacher checkpoint's)."""
        return {
            "generator": self.generator.state_dict(),
            "corrector": self.corrector.state_dict(),
            "ema": self.ema.state_dict(),
        }

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.generator.load_state_dict(state["generator"])
        self.corrector.load_state_dict(state["corrector"])
        self.ema.load_state_dict(state["ema"])


def _clip(module: nn.Module, max_norm: float | None) -> float:
    """Clip the gradient norm of `module` (if max_norm > 0) and return the norm before clipping."""
    params = [p for p in module.parameters() if p.grad is not None]
    if not params:
        return 0.0
    if max_norm is None or max_norm <= 0:
        norms = torch.stack([p.grad.detach().norm() for p in params])
        return float(norms.norm())
    return float(torch.nn.utils.clip_grad_norm_(params, max_norm))
