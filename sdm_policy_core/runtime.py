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
"""

from __future__ import annotations

import time
from collections import deque
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from sdm_policy_core.checkpoint import load_checkpoint
from sdm_policy_core.config import SAMPLERS, ObservationSpec
from sdm_policy_core.models.keys import AGENT_POS, IMAGE, POINT_CLOUD
from sdm_policy_core.policies.loading import policy_from_checkpoint
from sdm_policy_core.policies.observation import ObservationError


class PolicyOutputError(RuntimeError):
    """The model produced non-finite actions; nothing may be sent to a robot."""


@dataclass
class ActionChunk:
    """Actions of one inference call, in robot units."""

    actions: np.ndarray  # (n_action_steps, Da) float32: execute these, in order
    action_pred: np.ndarray  # (horizon, Da) float32: the whole predicted sequence
    inference_time: float  # [s] wall-clock time of the call
    sampler: str
    steps: int  # network evaluations made (1 for one-step)
    policy_id: str


class PolicyRuntime:
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
    ) -> None:
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
        run = self.path.resolve().parent.parent.name
        self.policy_id = f"{run}/{self.path.name}" + (f"@{step}" if step is not None else "")
        self.device = torch.device(device)
        self.generator = torch.Generator(device=self.device)
        self.generator.manual_seed(seed if seed is not None else 0)
        self.sampler, self.steps = "", 0
        self.set_sampler(sampler, steps, spacing=spacing, naive_timestep=naive_timestep)
        self._history: deque[dict[str, np.ndarray]] = deque(maxlen=self.n_obs_steps)
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
        """Choose the sampler: SDM checkpoints run 'one-step'; teachers 'ddim' (K = steps),
        'ddpm' (the full chain) or 'one-step' (the naive single call, a baseline).

        spacing: where a teacher's ddim/ddpm steps lie, "leading" or "trailing" (default: the
        checkpoint's `diffusion.timestep_spacing`). naive_timestep: the timestep of a teacher's
        one-step call (default T - 1; an epsilon-prediction teacher's fair baseline is its
        student's `distill.generator_timestep`). Sets `timesteps`, the denoiser's timesteps of
        one inference call, in order."""
        if sampler is None or sampler == "":
            sampler = "one-step" if self.kind == "sdm" else self.cfg.diffusion.sampler
        if sampler not in SAMPLERS:
            raise ValueError(f"sampler must be one of {list(SAMPLERS)}, got {sampler!r}")
        if self.kind == "sdm" and sampler != "one-step":
            raise ValueError(
                f"{self.path} is an SDM one-step checkpoint; it samples with 'one-step' only "
                f"(got {sampler!r}); load the teacher checkpoint for ddim/ddpm"
            )
        T = self.cfg.diffusion.num_train_timesteps
        if sampler == "one-step":
            steps = 1
        elif sampler == "ddpm":
            steps = steps or T
        else:
            steps = steps or self.cfg.diffusion.num_inference_steps
        if not 1 <= steps <= T:
            raise ValueError(f"steps must be in [1, {T}], got {steps}")
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
    def expected_shapes(self) -> dict[str, tuple[int, ...]]:
        """Shape of one observation per key (no time axis)."""
        shapes: dict[str, tuple[int, ...]] = {AGENT_POS: (self.spec.state_dim,)}
        if self.spec.point_cloud_shape is not None:
            shapes[POINT_CLOUD] = tuple(self.spec.point_cloud_shape)
        if self.spec.image_shape is not None:
            c, h, w = self.spec.image_shape
            shapes[IMAGE] = (h, w, c)
        return shapes

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

    def _zero_observation(self) -> dict[str, np.ndarray]:
        return {
            k: np.zeros(s, dtype=np.uint8 if k == IMAGE else np.float32)
            for k, s in self.expected_shapes().items()
        }

    def validate(self, observation: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        """Checked copies of one observation step; ObservationError names what is wrong."""
        out = {}
        for key, shape in self.expected_shapes().items():
            if key not in observation:
                raise ObservationError(
                    f"observation is missing {key!r} (shape {shape}); got {sorted(observation)}"
                )
            value = np.asarray(observation[key])
            got = value.shape
            if key == POINT_CLOUD and value.ndim == 2 and got[0] == shape[0] and got[1] > shape[1]:
                value = value[:, : shape[1]]  # xyz of an xyz+rgb cloud for an xyz policy
            elif got != shape:
                raise ObservationError(
                    f"observation {key!r} has shape {got}, the checkpoint expects {shape}"
                )
            if key == IMAGE:
                if value.dtype != np.uint8:
                    raise ObservationError(f"observation 'image' must be uint8, got {value.dtype}")
            else:
                if not np.issubdtype(value.dtype, np.number):
                    raise ObservationError(
                        f"observation {key!r} must be numeric, got {value.dtype}"
                    )
                value = value.astype(np.float32, copy=True)
                if not np.isfinite(value).all():
                    raise ObservationError(f"observation {key!r} contains NaN or Inf values")
            out[key] = value
        return out

    def reset(self) -> None:
        """Forget the history (new episode); the next observation fills it."""
        self._history.clear()

    def push(self, observation: dict[str, np.ndarray]) -> None:
        """Validate and append one observation step to the history."""
        obs = self.validate(observation)
        if not self._history:
            for _ in range(self.n_obs_steps - 1):
                self._history.append(obs)
        self._history.append(obs)

    # -- inference -------------------------------------------------------------------------------
    def infer(self) -> ActionChunk:
        """An action chunk from the current history (push at least one observation first)."""
        if not self._history:
            raise ObservationError("no observation yet: call push() or step() first")
        start = time.perf_counter()
        with torch.inference_mode():
            out = self.policy.predict_action(
                self.model_inputs(),
                self.sampler,
                self.steps,
                generator=self.generator,
                **self._options,
            )
            actions = out["action"][0].float().cpu().numpy()
            action_pred = out["action_pred"][0].float().cpu().numpy()
        elapsed = time.perf_counter() - start
        if not (np.isfinite(actions).all() and np.isfinite(action_pred).all()):
            raise PolicyOutputError(f"{self.policy_id} produced non-finite actions")
        return ActionChunk(
            actions=actions,
            action_pred=action_pred,
            inference_time=elapsed,
            sampler=self.sampler,
            steps=self.steps,
            policy_id=self.policy_id,
        )

    def model_inputs(self) -> dict[str, torch.Tensor]:
        """The current history as the policy's batch: {key: (1, n_obs_steps, ...)} tensors on
        the device (images CHW uint8), filled in place into buffers allocated once."""
        for key, buffer in self._inputs.items():
            for i, obs in enumerate(self._history):
                value = torch.from_numpy(obs[key])
                buffer[0, i].copy_(value.permute(2, 0, 1) if key == IMAGE else value)
        return self._inputs

    def step(self, observation: dict[str, np.ndarray]) -> ActionChunk:
        """push(observation) then infer()."""
        self.push(observation)
        return self.infer()
