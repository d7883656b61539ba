# Copyright 2026 sdm-policy-ros maintainers
# SPDX-License-Identifier: MIT
"""The two things `Trainer` trains: a diffusion teacher and its SDM one-step student."""

from __future__ import annotations

import contextlib
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F
from diffusers.optimization import get_scheduler
from torch import nn
from torch.nn.parallel import DistributedDataParallel as DDP

from sdm_policy_core.checkpoint import prefixed_state_dict
from sdm_policy_core.config import ExperimentConfig
from sdm_policy_core.distill.sdm import SdmDistiller
from sdm_policy_core.keys import ACTION, OBS
from sdm_policy_core.normalizer import LinearNormalizer
from sdm_policy_core.policies import DiffusionPolicy, Policy, SdmPolicy
from sdm_policy_core.training.distributed import DistContext
from sdm_policy_core.training.ema import Ema
from sdm_policy_core.training.trainer import Recipe, step_generator


def _unwrap(module: nn.Module) -> nn.Module:
    return module.module if isinstance(module, DDP) else module


def _autocast(cfg: ExperimentConfig, device: torch.device):
    """bf16 autocast on CUDA (train.mixed_precision=bf16); full precision on the CPU."""
    if device.type == "cuda" and cfg.train.mixed_precision == "bf16":
        return torch.autocast("cuda", dtype=torch.bfloat16)
    return contextlib.nullcontext()


def _adamw(params, lr: float, cfg: ExperimentConfig) -> torch.optim.AdamW:
    return torch.optim.AdamW(
        params, lr=lr, betas=cfg.train.betas, weight_decay=cfg.train.weight_decay
    )


def _cosine(optimizer: torch.optim.Optimizer, warmup: int, total: int):
    return get_scheduler(
        "cosine", optimizer, num_warmup_steps=min(warmup, total), num_training_steps=max(total, 1)
    )


def _clip(params: list[nn.Parameter], max_norm: float) -> float:
    return float(torch.nn.utils.clip_grad_norm_(params, max_norm))


def _val_action_mse(
    policy: Policy, batches: list[dict], sampler: str, steps: int, seed: int
) -> float:
    """MSE between sampled and recorded action sequences, in normalised units ([-1, 1])."""
    gen = step_generator(seed, -1, stream=1)
    errors = []
    for batch in batches:
        cond = policy.encode(batch[OBS])
        pred = policy.sample_normalized(cond, sampler, steps, generator=gen).clamp(-1, 1)
        target = policy.normalizer.normalize(ACTION, batch[ACTION].float())
        errors.append(F.mse_loss(pred, target).item())
    return sum(errors) / len(errors)


class TeacherRecipe(Recipe):
    """DP3 / Diffusion Policy teacher: diffusion loss, AdamW + cosine warm-up, EMA."""

    kind = "teacher"
    best_metric = "val_loss"

    def __init__(
        self, cfg: ExperimentConfig, normalizer: LinearNormalizer, ctx: DistContext
    ) -> None:
        self.cfg, self.ctx = cfg, ctx
        torch.manual_seed(cfg.train.seed)  # the same initial weights on every rank
        self.policy = DiffusionPolicy(cfg)
        self.policy.normalizer.load_state_dict(normalizer.state_dict())
        self.policy.to(ctx.device).train()
        self.ema = (
            Ema(self.policy, power=cfg.train.ema_power, max_decay=cfg.train.ema_decay)
            if cfg.train.use_ema
            else None
        )
        self.model: nn.Module = DDP(self.policy) if ctx.distributed else self.policy
        self.params = [p for p in self.policy.parameters() if p.requires_grad]
        self.optimizer = _adamw(self.params, cfg.train.lr, cfg)
        self.scheduler = _cosine(self.optimizer, cfg.train.warmup_steps, cfg.train.max_steps)

    def _global_noise(self, step: int, batch: int) -> tuple[torch.Tensor, torch.Tensor]:
        """Draw this rank's rows of the global batch's noise (B, H, Da) and timesteps (B,)."""
        world, rank = self.ctx.world_size, self.ctx.rank
        gen = step_generator(self.cfg.train.seed, step)
        H, Da = self.policy.action_shape
        noise = torch.randn((batch * world, H, Da), generator=gen)[rank::world]
        T = self.policy.schedule.num_train_timesteps
        t = torch.randint(0, T, (batch * world,), generator=gen)[rank::world]
        return noise.to(self.ctx.device), t.to(self.ctx.device)

    def train_step(self, batch: dict, step: int) -> dict[str, float]:
        noise, t = self._global_noise(step, batch[ACTION].shape[0])
        with _autocast(self.cfg, self.ctx.device):
            loss = self.model(batch, noise, t)
        self.optimizer.zero_grad(set_to_none=True)
        loss.backward()
        grad_norm = _clip(self.params, self.cfg.train.grad_clip)
        self.optimizer.step()
        self.scheduler.step()
        if self.ema is not None:
            self.ema.update(self.policy)
        return {
            "loss": float(loss.detach()),
            "grad_norm": grad_norm,
            "lr": self.scheduler.get_last_lr()[0],
        }

    @property
    def deployed(self) -> DiffusionPolicy:
        return self.ema.model if self.ema is not None else self.policy

    @torch.no_grad()
    def validate(self, batches: list[dict]) -> dict[str, float]:
        policy = self.deployed
        was_training = policy.training
        policy.eval()
        gen = step_generator(self.cfg.train.seed, -1)
        losses = [policy.compute_loss(b, generator=gen).item() for b in batches]
        d = self.cfg.diffusion
        mse = _val_action_mse(
            policy, batches[:1], d.sampler, d.num_inference_steps, self.cfg.train.seed
        )
        policy.train(was_training)
        return {"val_loss": sum(losses) / len(losses), "val_action_mse": mse}

    def export_tensors(self) -> dict[str, torch.Tensor]:
        m = self.deployed
        return prefixed_state_dict(
            {"encoder": m.encoder, "denoiser": m.denoiser, "normalizer": m.normalizer}
        )

    def state(self) -> dict[str, Any]:
        return {
            "model": self.policy.state_dict(),
            "ema": self.ema.state_dict() if self.ema is not None else None,
            "optimizer": self.optimizer.state_dict(),
            "lr_scheduler": self.scheduler.state_dict(),
        }

    def load_state(self, state: dict[str, Any]) -> None:
        self.policy.load_state_dict(state["model"])
        if self.ema is not None and state.get("ema") is not None:
            self.ema.load_state_dict(state["ema"])
        self.optimizer.load_state_dict(state["optimizer"])
        self.scheduler.load_state_dict(state["lr_scheduler"])


class SdmRecipe(Recipe):
    """SDM distillation of a frozen teacher into a one-step generator (METHOD.md).

    The corrector is updated every step, the generator every k-th step
    (distill.corrector_steps_per_generator_step); the generator's EMA is updated after each
    generator step and is what the checkpoint deploys and validation evaluates.

    `best` is never chosen on the validation action MSE (still logged): a student that outputs
    the mean of the demonstrated actions, exactly the collapse distillation must avoid, has the
    lowest MSE where demonstrations have several modes. Without `train.eval_task` (closed-loop
    selection), `best` is the newest checkpoint, the same as `latest`.
    """

    kind = "sdm"
    best_metric = None

    def __init__(
        self,
        cfg: ExperimentConfig,
        teacher: DiffusionPolicy,
        ctx: DistContext,
        teacher_path: Path,
        extra_datasets: Sequence[Path] = (),
    ) -> None:
        self.cfg, self.ctx, self.teacher_path = cfg, ctx, Path(teacher_path)
        self.extra_datasets = [Path(p) for p in extra_datasets]
        self.teacher = teacher.to(ctx.device).eval().requires_grad_(False)
        torch.manual_seed(cfg.train.seed)
        self.distiller = SdmDistiller(
            self.teacher.denoiser,
            self.teacher.schedule,
            cfg.distill,
            self.teacher.action_shape,
            ema_power=cfg.train.ema_power,
            ema_max_decay=cfg.train.ema_decay,
        )
        self.generator = self.distiller.generator
        self.corrector = self.distiller.corrector
        if ctx.distributed:
            self.distiller.generator = DDP(self.generator)
            self.distiller.corrector = DDP(self.corrector)
        self.student = SdmPolicy(cfg, self.teacher).to(ctx.device).eval()
        self.student.generator = self.distiller.ema.model if cfg.train.use_ema else self.generator
        k = cfg.distill.corrector_steps_per_generator_step
        self.opt_g = _adamw(self.generator.parameters(), cfg.distill.generator_lr, cfg)
        self.opt_d = _adamw(self.corrector.parameters(), cfg.distill.corrector_lr, cfg)
        self.sched_g = _cosine(self.opt_g, cfg.train.warmup_steps // k, cfg.train.max_steps // k)
        self.sched_d = _cosine(self.opt_d, cfg.train.warmup_steps, cfg.train.max_steps)

    def train_step(self, batch: dict, step: int) -> dict[str, float]:
        with torch.no_grad():
            cond = self.teacher.encode(batch[OBS])
        gen = step_generator(self.cfg.train.seed, step, stream=self.ctx.rank)
        with _autocast(self.cfg, self.ctx.device):
            metrics = self.distiller.distill_step(
                step, cond, self.opt_g, self.opt_d, self.cfg.train.grad_clip, generator=gen
            )
        self.sched_d.step()
        if self.distiller.should_update_generator(step):
            self.sched_g.step()
        metrics["lr_generator"] = self.sched_g.get_last_lr()[0]
        return metrics

    @torch.no_grad()
    def validate(self, batches: list[dict]) -> dict[str, float]:
        mse = _val_action_mse(self.student, batches, "one-step", 1, self.cfg.train.seed)
        return {"val_action_mse": mse}

    def export_tensors(self) -> dict[str, torch.Tensor]:
        return prefixed_state_dict(
            {
                "encoder": self.student.encoder,
                "normalizer": self.student.normalizer,
                "generator": self.student.generator,
            }
        )

    def state(self) -> dict[str, Any]:
        return {
            "generator": self.generator.state_dict(),
            "corrector": self.corrector.state_dict(),
            "ema": self.distiller.ema.state_dict(),
            "opt_g": self.opt_g.state_dict(),
            "opt_d": self.opt_d.state_dict(),
            "sched_g": self.sched_g.state_dict(),
            "sched_d": self.sched_d.state_dict(),
        }

    def load_state(self, state: dict[str, Any]) -> None:
        self.generator.load_state_dict(state["generator"])
        self.corrector.load_state_dict(state["corrector"])
        self.distiller.ema.load_state_dict(state["ema"])
        self.opt_g.load_state_dict(state["opt_g"])
        self.opt_d.load_state_dict(state["opt_d"])
        self.sched_g.load_state_dict(state["sched_g"])
        self.sched_d.load_state_dict(state["sched_d"])

    def config_extra(self) -> dict[str, Any]:
        return {
            "teacher": str(self.teacher_path.resolve()),
            "extra_datasets": [str(p.resolve()) for p in self.extra_datasets],
        }
