# Copyright 2026 sdm-policy-ros maintainers
# SPDX-License-Identifier: MIT
"""PolicyRuntime: what a robot (or the ROS node, or `sdm eval`) calls at every control tick.

    runtime = PolicyRuntime("runs/sdm/checkpoints/latest", threads=2)
    chunk = runtime.step({"point_cloud": cloud, "agent_pos": joints})   # numpy in, numpy out
    chunk.actions        # (n_action_steps, Da) float32, robot units, execute in order
    chunk.action_pred    # (horizon, Da) the whole predicted sequence

It loads a checkpoint (safetensors + JSON, never a pickle), keeps the observation history of
`n_obs_steps` (repeating the first observation after a reset, as Diffusion Policy's env runner
does), owns normalisation and sampling (`one-step`, `ddim` K steps, `ddpm`), and validates
every observation: a wrong shape or a NaN raises ObservationError and never reaches the model.
The batch-1 path runs under `torch.inference_mode` with preallocated input buffers.

The history, validation and ActionChunk live in runtime_base.py (torch-free), shared with
`OnnxPolicyRuntime` (onnx_runtime.py), which runs an exported graph without torch.
`infer(noise=...)` takes the sampler's initial noise (1, horizon, Da) instead of drawing it from
`generator` (torch.Generator seeded with `seed`); `noise="numpy"` draws it from numpy's
`default_rng(seed)` as OnnxPolicyRuntime does (one-step and ddim: their only randomness), so the
two runtimes give equal actions for equal seeds.
"""

from __future__ import annotations

import time
from pathlib import Path

import numpy as np
import torch

from sdm_policy_core.checkpoint import load_checkpoint
from sdm_policy_core.config import SAMPLERS, ObservationSpec
from sdm_policy_core.keys import IMAGE, NOISE_SOURCES
from sdm_policy_core.policies.loading import policy_from_checkpoint
from sdm_policy_core.runtime_base import (
    ActionChunk,
    NumpyNoise,
    ObservationError,
    PolicyOutputError,
    RuntimeBase,
    checkpoint_policy_id,
)

__all__ = ["ActionChunk", "ObservationError", "PolicyOutputError", "PolicyRuntime"]


class PolicyRuntime(RuntimeBase):
    """A loaded policy with its observation history; see the module docstring."""

    def __init__(
        self,
        checkpoint: str | Path,
        sampler: str | None = None,
        steps: int | None = None,
        device: str | torch.device = "cpu",
        threads: int | None = None,
        seed: int | None = None,
        warmup: bool = True,
        *,
        spacing: str | None = None,
        naive_timestep: int | None = None,
        noise: str = "torch",
    ) -> None:
        if noise not in NOISE_SOURCES:
            raise ValueError(f"noise must be one of {list(NOISE_SOURCES)}, got {noise!r}")
        if threads is not None:
            if threads < 1:
                raise ValueError(f"threads must be >= 1, got {threads}")
            torch.set_num_threads(threads)
        self.path = Path(checkpoint)
        ckpt = load_checkpoint(self.path, device=device, load_training_state=False)
        self.kind = ckpt.kind
        self.policy = policy_from_checkpoint(ckpt)
        self.cfg = self.policy.cfg
        self.spec: ObservationSpec = self.cfg.obs
        self.n_obs_steps = self.cfg.model.n_obs_steps
        self.n_action_steps = self.cfg.model.n_action_steps
        self.horizon = self.cfg.model.horizon
        step = ckpt.config.get("provenance", {}).get("step")
        self.policy_id = checkpoint_policy_id(self.path, step)
        self.device = torch.device(device)
        self.noise_source = noise
        if noise == "numpy":
            self.generator: torch.Generator | NumpyNoise = NumpyNoise(seed or 0)
        else:
            self.generator = torch.Generator(device=self.device)
            self.generator.manual_seed(seed if seed is not None else 0)
        self.sampler, self.steps = "", 0
        self.set_sampler(sampler, steps, spacing=spacing, naive_timestep=naive_timestep)
        self._init_history()
        self._inputs = self._allocate_inputs()
        if warmup:  # the first call pays for lazy initialisation; not the robot's first tick
            self.step(self._zero_observation())
            self.reset()

    # -- configuration ---------------------------------------------------------------------------
    def set_sampler(
        self,
        sampler: str | None,
        steps: int | None = None,
        *,
        spacing: str | None = None,
        naive_timestep: int | None = None,
    ) -> None:
        """Choose the sampler: SDM checkpoints run 'one-step'; teachers 'ddim', 'ddpm', 'one-step'.

        Teachers run 'ddim' (K = steps), 'ddpm' (the full chain) or 'one-step' (the naive
        single call, a baseline).

        spacing: where a teacher's ddim/ddpm steps lie, "leading" or "trailing" (default: the
        checkpoint's `diffusion.timestep_spacing`). naive_timestep: the timestep of a teacher's
        one-step call (default T - 1; an epsilon-prediction teacher's fair baseline is its
        student's `distill.generator_timestep`). Sets `timesteps`, the denoiser's timesteps of
        one inference call, in order.
        """
        sampler, steps = self.cfg.diffusion.sampler_for(self.kind, sampler, steps)
        if sampler not in SAMPLERS:
            raise ValueError(f"sampler must be one of {list(SAMPLERS)}, got {sampler!r}")
        if self.kind == "sdm" and sampler != "one-step":
            raise ValueError(
                f"{self.path} is an SDM one-step checkpoint; it samples with 'one-step' only "
                f"(got {sampler!r}); load the teacher checkpoint for ddim/ddpm"
            )
        T = self.cfg.diffusion.num_train_timesteps
        if not 1 <= steps <= T:
            raise ValueError(f"steps must be in [1, {T}], got {steps}")
        if sampler == "ddpm" and self.noise_source == "numpy":
            raise ValueError(
                "ddpm draws noise at every step from torch's generator; noise='numpy' covers "
                "one-step and ddim (their only randomness is the initial noise)"
            )
        teacher_one_step = self.kind != "sdm" and sampler == "one-step"
        if spacing is not None and sampler == "one-step":
            raise ValueError(f"spacing={spacing!r} applies to ddim/ddpm, not to {sampler!r}")
        if naive_timestep is not None and not teacher_one_step:
            raise ValueError(
                "naive_timestep applies to a teacher's 'one-step' sampler only (an SDM "
                "checkpoint samples at the timestep it was trained at)"
            )
        schedule = self.policy.schedule
        if sampler == "one-step":
            spacing = None
            if teacher_one_step:
                naive_timestep = T - 1 if naive_timestep is None else int(naive_timestep)
                if not 0 <= naive_timestep < T:
                    raise ValueError(
                        f"naive_timestep must be in [0, {T - 1}], got {naive_timestep}"
                    )
                self.timesteps = [naive_timestep]
            else:
                self.timesteps = [int(self.policy.generator.timestep)]
        else:
            spacing = spacing or self.cfg.diffusion.timestep_spacing
            self.timesteps = schedule.timesteps(sampler, int(steps), spacing)
        self.sampler, self.steps = sampler, int(steps)
        self.spacing, self.naive_timestep = spacing, naive_timestep
        # Keyword options of the teacher's predict_action (the SDM policy takes none).
        self._options = (
            {} if self.kind == "sdm" else {"spacing": spacing, "naive_timestep": naive_timestep}
        )

    # -- observations ----------------------------------------------------------------------------
    def _allocate_inputs(self) -> dict[str, torch.Tensor]:
        To = self.n_obs_steps
        inputs = {}
        for key, shape in self.expected_shapes().items():
            if key == IMAGE:
                inputs[key] = torch.zeros(
                    (1, To, shape[2], shape[0], shape[1]), dtype=torch.uint8, device=self.device
                )
            else:
                inputs[key] = torch.zeros((1, To, *shape), dtype=torch.float32, device=self.device)
        return inputs

    # -- inference -------------------------------------------------------------------------------
    def infer(self, noise: np.ndarray | None = None) -> ActionChunk:
        """Plan an action chunk from the current history (push at least one observation first).

        noise: (1, horizon, Da) or (horizon, Da) standard normal initial noise of the sampler,
        used instead of a draw from `generator` (ddpm still draws its per-step noise there).
        """
        self._require_history()
        options = dict(self._options)
        if noise is None and self.noise_source == "numpy":
            noise = self.generator.standard_normal(self.noise_shape())
        if noise is not None:
            options["initial_noise"] = torch.from_numpy(self.check_noise(noise)).to(self.device)
        start = time.perf_counter()
        with torch.inference_mode():
            out = self.policy.predict_action(
                self.model_inputs(),
                self.sampler,
                self.steps,
                generator=self.generator if self.noise_source == "torch" else None,
                **options,
            )
            action_pred = out["action_pred"][0].float().cpu().numpy()
        return self._chunk(action_pred, time.perf_counter() - start)

    def model_inputs(self) -> dict[str, torch.Tensor]:
        """Return the current history as the policy's batch: {key: (1, n_obs_steps, ...)}.

        Tensors on the device (images CHW uint8), filled in place into buffers allocated once.
        """
        for key, buffer in self._inputs.items():
            for i, obs in enumerate(self._history):
                value = torch.from_numpy(obs[key])
                buffer[0, i].copy_(value.permute(2, 0, 1) if key == IMAGE else value)
        return self._inputs
