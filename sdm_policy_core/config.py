# Copyright 2026 sdm-policy-ros maintainers
# SPDX-License-Identifier: MIT
"""Configuration dataclasses of the core, loaded strictly from YAML with dotted overrides.

One dataclass per component (`ModelConfig`, `DiffusionConfig`, `TrainConfig`, `DistillConfig`),
grouped in `ExperimentConfig`. Every dataclass validates itself in `__post_init__` and raises
`ConfigError` naming the bad key and value. Unknown keys are errors, never silently ignored.

    cfg = load_config("my.yaml", overrides=["model.preset=cpu_small", "train.max_steps=2000"])
    cfg.to_dict()  # plain JSON/YAML-serialisable dict (stored in checkpoints)
"""

from __future__ import annotations

import dataclasses
import types
import typing
from collections.abc import Sequence
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any, TypeVar

import yaml

from sdm_policy_core.keys import ENCODER_AUTO, ENCODERS, NOISE_SOURCES, RUNTIME_BACKENDS


class ConfigError(ValueError):
    """A configuration value is missing, unknown or out of range; the message says which."""


# ------------------------------------------------------------------------------------------------
# Architecture presets. `dp3` and `simple_dp3` follow the DP3 paper; `cpu_small` is sized for
# real-time one-step inference on 2 CPU cores (see BENCHMARKS.md).
PRESETS: dict[str, dict[str, Any]] = {
    "dp3": {
        "down_dims": (512, 1024, 2048),
        "diffusion_step_embed_dim": 128,
        "kernel_size": 5,
        "n_groups": 8,
        "pointnet_dims": (64, 128, 256),
        "encoder_output_dim": 64,
        "state_mlp_dims": (64, 64),
    },
    "simple_dp3": {
        "down_dims": (128, 256, 384),
        "diffusion_step_embed_dim": 128,
        "kernel_size": 5,
        "n_groups": 8,
        "pointnet_dims": (64, 128, 256),
        "encoder_output_dim": 64,
        "state_mlp_dims": (64, 64),
    },
    "cpu_small": {
        "down_dims": (64, 128, 256),
        "diffusion_step_embed_dim": 64,
        "kernel_size": 5,
        "n_groups": 8,
        "pointnet_dims": (32, 64, 128),
        "encoder_output_dim": 64,
        "state_mlp_dims": (64, 64),
    },
}

SAMPLERS = ("one-step", "ddim", "ddpm")
GRAD_NORMALISATIONS = ("mean_abs", "mean_abs_batch", "sigma2", "dmd")
TIMESTEP_SPACINGS = ("leading", "trailing")  # diffusers' DDIM/DDPM `timestep_spacing`

T = TypeVar("T")


def _require(ok: bool, message: str) -> None:
    if not ok:
        raise ConfigError(message)


@dataclass
class ObservationSpec:
    """What the policy observes and emits (stored in every checkpoint).

    point_cloud_shape: (P, C) with C = 3 (xyz, m) or 6 (xyz + rgb in [0, 1]); None for no cloud.
    image_shape: (3, H, W) uint8 RGB image (channels first after conversion); None for no image.
        Neither: a state-only (low-dimensional) policy that observes `agent_pos` alone.
    state_dim: length of `agent_pos` (joint positions, gripper, ...).
    action_dim: length of one action.
    """

    point_cloud_shape: tuple[int, int] | None = (512, 3)
    image_shape: tuple[int, int, int] | None = None
    state_dim: int = 4
    action_dim: int = 4

    def __post_init__(self) -> None:
        if self.point_cloud_shape is not None:
            self.point_cloud_shape = tuple(int(v) for v in self.point_cloud_shape)
            _require(
                len(self.point_cloud_shape) == 2
                and self.point_cloud_shape[0] > 0
                and self.point_cloud_shape[1] in (3, 6),
                f"obs.point_cloud_shape must be (P, 3) or (P, 6) with P > 0, "
                f"got {self.point_cloud_shape}",
            )
        if self.image_shape is not None:
            self.image_shape = tuple(int(v) for v in self.image_shape)
            _require(
                len(self.image_shape) == 3
                and self.image_shape[0] == 3
                and min(self.image_shape[1:]) >= 16,
                f"obs.image_shape must be (3, H, W) with H, W >= 16, got {self.image_shape}",
            )
        _require(self.state_dim > 0, f"obs.state_dim must be > 0, got {self.state_dim}")
        _require(self.action_dim > 0, f"obs.action_dim must be > 0, got {self.action_dim}")


DENOISERS = ("unet", "mlp")


@dataclass
class ModelConfig:
    """Observation encoder + denoiser (ConditionalUnet1D or a residual MLP).

    Fields left None come from `preset`.
    """

    preset: str = "simple_dp3"
    # Observation modality: "dp3" (point cloud + state), "image" (RGB + state, Diffusion Policy),
    # "state" (agent_pos only), or "auto": chosen from the dataset's arrays when training starts
    # (point_cloud -> dp3, else img -> image, else state).
    encoder: str = ENCODER_AUTO
    # Denoiser: "unet" (ConditionalUnet1D, DP3 / Diffusion Policy) or "mlp" (a residual MLP over
    # the flattened action sequence, FiLM-conditioned: a cheap low-dimensional denoiser on CPUs)
    denoiser: str = "unet"
    mlp_hidden_dim: int = 512  # width of the MLP denoiser's residual blocks
    mlp_blocks: int = 4  # residual blocks of the MLP denoiser
    # State feature: "mlp" (StateEncoder, state_mlp_dims) or "identity" (the normalised state)
    state_encoder: str = "mlp"
    horizon: int = 16
    n_obs_steps: int = 2
    n_action_steps: int = 8
    down_dims: tuple[int, ...] | None = None
    diffusion_step_embed_dim: int | None = None
    kernel_size: int | None = None
    n_groups: int | None = None
    pointnet_dims: tuple[int, ...] | None = None
    encoder_output_dim: int | None = None
    state_mlp_dims: tuple[int, ...] | None = None
    use_pc_color: bool = False
    image_crop: tuple[int, int] | None = None  # random crop (H, W) for the image encoder

    def __post_init__(self) -> None:
        _require(
            self.preset in PRESETS,
            f"model.preset must be one of {sorted(PRESETS)}, got {self.preset!r}",
        )
        _require(
            self.encoder in ENCODERS,
            f"model.encoder must be one of {list(ENCODERS)}, got {self.encoder!r}",
        )
        _require(
            self.denoiser in DENOISERS,
            f"model.denoiser must be one of {list(DENOISERS)}, got {self.denoiser!r}",
        )
        _require(
            self.state_encoder in ("mlp", "identity"),
            f"model.state_encoder must be 'mlp' or 'identity', got {self.state_encoder!r}",
        )
        _require(
            self.mlp_hidden_dim > 0 and self.mlp_blocks > 0,
            f"model.mlp_hidden_dim and model.mlp_blocks must be > 0, got "
            f"{self.mlp_hidden_dim}, {self.mlp_blocks}",
        )
        for key, value in PRESETS[self.preset].items():
            if getattr(self, key) is None:
                setattr(self, key, value)
        for key in ("down_dims", "pointnet_dims", "state_mlp_dims"):
            setattr(self, key, tuple(int(v) for v in getattr(self, key)))
            _require(
                len(getattr(self, key)) > 0 and min(getattr(self, key)) > 0,
                f"model.{key} must be positive sizes, got {getattr(self, key)}",
            )
        if self.image_crop is not None:
            self.image_crop = tuple(int(v) for v in self.image_crop)
        _require(self.horizon > 0, f"model.horizon must be > 0, got {self.horizon}")
        _require(
            1 <= self.n_obs_steps <= self.horizon,
            f"model.n_obs_steps must be in [1, horizon={self.horizon}], got {self.n_obs_steps}",
        )
        _require(
            1 <= self.n_action_steps <= self.horizon - self.n_obs_steps + 1,
            f"model.n_action_steps must be in [1, horizon - n_obs_steps + 1 = "
            f"{self.horizon - self.n_obs_steps + 1}], got {self.n_action_steps}",
        )
        # The UNet halves the sequence len(down_dims) - 1 times.
        factor = 2 ** (len(self.down_dims) - 1) if self.denoiser == "unet" else 1
        _require(
            self.horizon % factor == 0,
            f"model.horizon={self.horizon} must be divisible by {factor} "
            f"(2 ** (len(down_dims) - 1) for down_dims={self.down_dims})",
        )
        for key in ("diffusion_step_embed_dim", "kernel_size", "n_groups", "encoder_output_dim"):
            _require(getattr(self, key) > 0, f"model.{key} must be > 0, got {getattr(self, key)}")
        _require(
            self.kernel_size % 2 == 1, f"model.kernel_size must be odd, got {self.kernel_size}"
        )
        for d in self.down_dims:
            _require(
                d % self.n_groups == 0,
                f"model.down_dims entries must be divisible by n_groups={self.n_groups}, "
                f"got {self.down_dims}",
            )


@dataclass
class DiffusionConfig:
    """Noise schedule (diffusers) and the teacher's default sampler."""

    num_train_timesteps: int = 100
    beta_schedule: str = "squaredcos_cap_v2"
    prediction_type: str = "sample"  # "sample" (x0, DP3) or "epsilon" (Diffusion Policy)
    clip_sample: bool = True
    sampler: str = "ddim"  # default sampler of the teacher: "ddim" or "ddpm"
    num_inference_steps: int = 10
    # Where the sampler's steps lie (diffusers): "leading" DDIM-2 = [50, 0], DDIM-10 = [90..0];
    # "trailing" DDIM-2 = [99, 49], DDIM-10 = [99..9] (starts from the noisiest timestep).
    timestep_spacing: str = "leading"

    def sampler_for(
        self, kind: str, sampler: str | None = None, steps: int | None = None
    ) -> tuple[str, int]:
        """Return the (sampler, steps) a checkpoint of `kind` runs.

        The one place for the defaults (the runtime, the teacher's predict_action, the launch
        files). No sampler: an SDM checkpoint 'one-step', a teacher `sampler`; no steps:
        one-step 1, ddim `num_inference_steps`, ddpm `num_train_timesteps`.
        """
        sampler = sampler or ("one-step" if kind == "sdm" else self.sampler)
        if sampler == "one-step":
            return sampler, 1
        default = self.num_train_timesteps if sampler == "ddpm" else self.num_inference_steps
        return sampler, int(steps or default)

    def __post_init__(self) -> None:
        _require(
            self.num_train_timesteps >= 2,
            f"diffusion.num_train_timesteps must be >= 2, got {self.num_train_timesteps}",
        )
        _require(
            self.beta_schedule in ("squaredcos_cap_v2", "linear", "scaled_linear"),
            f"diffusion.beta_schedule must be squaredcos_cap_v2, linear or scaled_linear, "
            f"got {self.beta_schedule!r}",
        )
        _require(
            self.prediction_type in ("sample", "epsilon"),
            f"diffusion.prediction_type must be 'sample' or 'epsilon', "
            f"got {self.prediction_type!r}",
        )
        _require(
            self.sampler in ("ddim", "ddpm"),
            f"diffusion.sampler must be 'ddim' or 'ddpm', got {self.sampler!r}",
        )
        _require(
            1 <= self.num_inference_steps <= self.num_train_timesteps,
            f"diffusion.num_inference_steps must be in [1, {self.num_train_timesteps}], "
            f"got {self.num_inference_steps}",
        )
        _require(
            self.timestep_spacing in TIMESTEP_SPACINGS,
            f"diffusion.timestep_spacing must be one of {list(TIMESTEP_SPACINGS)}, "
            f"got {self.timestep_spacing!r}",
        )


@dataclass
class TrainConfig:
    """Optimisation of a teacher (`sdm train`); `distill` reuses the loop settings."""

    max_steps: int = 3000
    batch_size: int = 64
    lr: float = 1e-4
    betas: tuple[float, float] = (0.95, 0.999)
    weight_decay: float = 1e-6
    warmup_steps: int = 500
    grad_clip: float = 1.0
    ema_decay: float = 0.9999  # maximum decay of the EMA (power warm-up as in Diffusion Policy)
    ema_power: float = 0.75
    use_ema: bool = True
    seed: int = 42
    device: str = "cpu"  # "cpu", "cuda", "cuda:N" or "auto"
    val_fraction: float = 0.1  # fraction of episodes held out for the validation loss
    val_every: int = 250
    checkpoint_every: int = 500
    # Steps whose checkpoint is also kept as checkpoints/step_<N> (a teacher taken at several
    # points of one training run: early, best, late); () = none
    keep_steps: tuple[int, ...] = ()
    log_every: int = 25
    num_workers: int = 0
    threads: int = 0  # torch CPU threads; 0 = torch's default
    mixed_precision: str = "bf16"  # autocast dtype on CUDA: "bf16" or "no" (CPU: always fp32)
    max_val_batches: int = 8  # validation batches per evaluation
    # Closed-loop evaluation during training, which then selects checkpoints/best on success
    # (eval/selection.py; needs the embedded simulator): the MetaWorld task, "" = none (best =
    # a teacher's lowest val loss; a student's latest checkpoint)
    eval_task: str = ""
    eval_every: int = 500  # steps between closed-loop evaluations (and at the last step)
    eval_episodes: int = 20  # episodes per closed-loop evaluation

    def __post_init__(self) -> None:
        self.betas = tuple(float(b) for b in self.betas)
        _require(self.max_steps > 0, f"train.max_steps must be > 0, got {self.max_steps}")
        _require(self.batch_size > 0, f"train.batch_size must be > 0, got {self.batch_size}")
        _require(self.lr > 0, f"train.lr must be > 0, got {self.lr}")
        _require(
            len(self.betas) == 2 and all(0 <= b < 1 for b in self.betas),
            f"train.betas must be two values in [0, 1), got {self.betas}",
        )
        _require(
            self.weight_decay >= 0, f"train.weight_decay must be >= 0, got {self.weight_decay}"
        )
        _require(
            self.warmup_steps >= 0, f"train.warmup_steps must be >= 0, got {self.warmup_steps}"
        )
        _require(self.grad_clip > 0, f"train.grad_clip must be > 0, got {self.grad_clip}")
        _require(
            0 <= self.ema_decay < 1, f"train.ema_decay must be in [0, 1), got {self.ema_decay}"
        )
        _require(
            0 <= self.val_fraction < 1,
            f"train.val_fraction must be in [0, 1), got {self.val_fraction}",
        )
        for key in ("val_every", "checkpoint_every", "log_every", "eval_every", "eval_episodes"):
            _require(getattr(self, key) > 0, f"train.{key} must be > 0, got {getattr(self, key)}")
        self.keep_steps = tuple(int(s) for s in self.keep_steps)
        _require(
            all(0 < s <= self.max_steps for s in self.keep_steps),
            f"train.keep_steps must be steps in [1, train.max_steps={self.max_steps}], "
            f"got {list(self.keep_steps)}",
        )
        _require(
            self.num_workers >= 0 and self.threads >= 0,
            "train.num_workers and train.threads must be >= 0",
        )
        _require(
            self.mixed_precision in ("bf16", "no"),
            f"train.mixed_precision must be 'bf16' or 'no', got {self.mixed_precision!r}",
        )
        _require(self.max_val_batches > 0, "train.max_val_batches must be > 0")
        _require(
            self.device == "auto" or self.device == "cpu" or self.device.startswith("cuda"),
            f"train.device must be cpu, cuda, cuda:N or auto, got {self.device!r}",
        )


@dataclass
class DistillConfig:
    """SDM distillation (METHOD.md): generator G, corrector D, frozen teacher."""

    generator_lr: float = 5e-5
    corrector_lr: float = 5e-5
    # The corrector must outpace the generator: D is updated every step, G every k-th step.
    corrector_steps_per_generator_step: int = 5
    t_min: int = 2  # distribution-matching timesteps are drawn uniformly from [t_min, t_max]
    t_max: int = 95
    # Normalisation of the distribution-matching gradient (distill/sdm.py, GRAD_NORMALISATIONS):
    # "mean_abs" (s_fake - s_real) / mean|s_real| per sample; "mean_abs_batch" the same over the
    # whole batch (the SDM authors' code); "sigma2" (s_fake - s_real) * sigma_t^2 (OneDP);
    # "dmd" (x0_fake - x0_real) / mean|x - x0_real| per sample (DMD, x0 space).
    grad_normalisation: str = "mean_abs"
    # Weight of the distribution-matching term (0 with regression_weight > 0: regression only,
    # the ablation that tells what distribution matching adds).
    dm_weight: float = 1.0
    # Optional stabiliser: weight of an L2 regression of G's output to teacher DDIM samples.
    regression_weight: float = 0.0
    regression_ddim_steps: int = 10
    # Timestep at which the one-step generator is trained AND sampled; None = T - 1.
    generator_timestep: int | None = None

    def __post_init__(self) -> None:
        _require(
            self.generator_lr > 0 and self.corrector_lr > 0,
            "distill.generator_lr and distill.corrector_lr must be > 0",
        )
        _require(
            self.corrector_steps_per_generator_step >= 1,
            f"distill.corrector_steps_per_generator_step must be >= 1, "
            f"got {self.corrector_steps_per_generator_step}",
        )
        _require(
            0 <= self.t_min <= self.t_max,
            f"distill.t_min <= t_max required, got t_min={self.t_min}, t_max={self.t_max}",
        )
        _require(
            self.grad_normalisation in GRAD_NORMALISATIONS,
            f"distill.grad_normalisation must be one of {list(GRAD_NORMALISATIONS)}, "
            f"got {self.grad_normalisation!r}",
        )
        _require(
            self.regression_weight >= 0,
            f"distill.regression_weight must be >= 0, got {self.regression_weight}",
        )
        _require(
            self.dm_weight >= 0 and self.dm_weight + self.regression_weight > 0,
            f"distill.dm_weight must be >= 0 and dm_weight + regression_weight > 0, got "
            f"dm_weight={self.dm_weight}, regression_weight={self.regression_weight}",
        )
        _require(self.regression_ddim_steps >= 1, "distill.regression_ddim_steps must be >= 1")


@dataclass
class ExperimentConfig:
    """Everything a training or distillation run needs besides the dataset path."""

    obs: ObservationSpec = field(default_factory=ObservationSpec)
    model: ModelConfig = field(default_factory=ModelConfig)
    diffusion: DiffusionConfig = field(default_factory=DiffusionConfig)
    train: TrainConfig = field(default_factory=TrainConfig)
    distill: DistillConfig = field(default_factory=DistillConfig)

    def __post_init__(self) -> None:
        _require(
            self.distill.t_max < self.diffusion.num_train_timesteps,
            f"distill.t_max={self.distill.t_max} must be < diffusion.num_train_timesteps="
            f"{self.diffusion.num_train_timesteps}",
        )
        t_gen = self.distill.generator_timestep
        _require(
            t_gen is None or 0 <= t_gen < self.diffusion.num_train_timesteps,
            f"distill.generator_timestep must be in [0, "
            f"{self.diffusion.num_train_timesteps - 1}], got {t_gen}",
        )

    def to_dict(self) -> dict[str, Any]:
        return to_dict(self)


# ------------------------------------------------------------------------------------------------
# Strict construction from plain dicts (YAML / JSON), and dotted overrides.


def to_dict(obj: Any) -> Any:
    """Dataclass -> plain dict of lists/numbers/strings (tuples become lists)."""
    if dataclasses.is_dataclass(obj):
        return {f.name: to_dict(getattr(obj, f.name)) for f in fields(obj)}
    if isinstance(obj, (list, tuple)):
        return [to_dict(v) for v in obj]
    return obj


def _convert(value: Any, annotation: Any, where: str) -> Any:
    origin = typing.get_origin(annotation)
    args = typing.get_args(annotation)
    if origin in (typing.Union, types.UnionType):
        if value is None and type(None) in args:
            return None
        non_none = [a for a in args if a is not type(None)]
        return _convert(value, non_none[0], where)
    if dataclasses.is_dataclass(annotation):
        if not isinstance(value, dict):
            raise ConfigError(f"{where} must be a mapping, got {value!r}")
        return from_dict(annotation, value, where)
    if origin is tuple:
        if not isinstance(value, (list, tuple)):
            raise ConfigError(f"{where} must be a list, got {value!r}")
        inner = args[0] if args else Any
        return tuple(_convert(v, inner, f"{where}[{i}]") for i, v in enumerate(value))
    if annotation is bool:
        if isinstance(value, bool):
            return value
        if isinstance(value, str) and value.lower() in ("true", "false", "1", "0", "yes", "no"):
            return value.lower() in ("true", "1", "yes")
        raise ConfigError(f"{where} must be true or false, got {value!r}")
    if annotation is int:
        if isinstance(value, bool) or not isinstance(value, (int, str)):
            raise ConfigError(f"{where} must be an integer, got {value!r}")
        try:
            return int(value)
        except ValueError:
            raise ConfigError(f"{where} must be an integer, got {value!r}") from None
    if annotation is float:
        if isinstance(value, bool):
            raise ConfigError(f"{where} must be a number, got {value!r}")
        try:
            return float(value)
        except (TypeError, ValueError):
            raise ConfigError(f"{where} must be a number, got {value!r}") from None
    if annotation is str:
        if not isinstance(value, str):
            raise ConfigError(f"{where} must be a string, got {value!r}")
        return value
    return value


def from_dict(cls: type, data: dict[str, Any], where: str = "") -> Any:
    """Build dataclass `cls` from `data`; unknown keys and wrong types raise ConfigError."""
    hints = typing.get_type_hints(cls)
    known = {f.name for f in fields(cls)}
    unknown = sorted(set(data) - known)
    if unknown:
        prefix = f"{where}." if where else ""
        raise ConfigError(
            f"unknown config key(s) {[prefix + k for k in unknown]}; "
            f"valid keys here: {sorted(known)}"
        )
    kwargs = {k: _convert(v, hints[k], f"{where}.{k}" if where else k) for k, v in data.items()}
    return cls(**kwargs)


def _parse_scalar(text: str) -> Any:
    """Parse the right-hand side of `key=value` as YAML (numbers, lists, null, true/false)."""
    try:
        return yaml.safe_load(text)
    except yaml.YAMLError as err:
        raise ConfigError(f"cannot parse override value {text!r}: {err}") from None


def apply_overrides(data: dict[str, Any], overrides: Sequence[str]) -> dict[str, Any]:
    """Apply `a.b=value` overrides (`key=value` for a top-level key) to a nested dict.

    The result is returned as a new dict. A section that is null (e.g. an optional stream) is
    created.
    """
    out = _deepcopy_dict(data)
    for item in overrides:
        if "=" not in item:
            raise ConfigError(f"override {item!r} must look like section.key=value")
        key, text = item.split("=", 1)
        parts = [p for p in key.strip().split(".") if p]
        if not parts:
            raise ConfigError(f"override {item!r} names no key, e.g. train.max_steps=1000")
        node = out
        for part in parts[:-1]:
            if node.get(part) is None:
                node[part] = {}
            node = node[part]
            if not isinstance(node, dict):
                raise ConfigError(f"override {item!r}: {part!r} is not a section")
        node[parts[-1]] = _parse_scalar(text)
    return out


def _deepcopy_dict(data: dict[str, Any]) -> dict[str, Any]:
    return {k: _deepcopy_dict(v) if isinstance(v, dict) else v for k, v in data.items()}


def read_yaml_mapping(path: str | Path) -> dict[str, Any]:
    """Load the mapping in YAML file `path` (yaml.safe_load only).

    Raises ConfigError when the file is missing, not YAML, or not a mapping.
    """
    path = Path(path)
    if not path.is_file():
        raise ConfigError(f"config file {path} does not exist")
    try:
        loaded = yaml.safe_load(path.read_text()) or {}
    except yaml.YAMLError as err:
        raise ConfigError(f"config file {path} is not valid YAML: {err}") from None
    if not isinstance(loaded, dict):
        raise ConfigError(f"config file {path} must hold a mapping")
    return loaded


def load_dataclass(
    cls: type[T],
    path: str | Path | None = None,
    overrides: Sequence[str] | None = None,
    base: dict[str, Any] | None = None,
) -> T:
    """Load config dataclass `cls` from an optional YAML file, base dict and dotted overrides.

    The loader of every command: `sdm train`, `sdm distill`, `sdm bag2zarr`.

    Precedence: defaults < base < file < overrides. YAML is read with `yaml.safe_load` only.
    """
    data: dict[str, Any] = _deepcopy_dict(base or {})
    if path is not None:
        data = _merge(data, read_yaml_mapping(path))
    data = apply_overrides(data, overrides or [])
    return from_dict(cls, data)


def load_config(
    path: str | Path | None = None,
    overrides: Sequence[str] | None = None,
    base: dict[str, Any] | None = None,
) -> ExperimentConfig:
    """Load an ExperimentConfig from an optional YAML file, base dict and overrides.

    See `load_dataclass`.
    """
    return load_dataclass(ExperimentConfig, path, overrides, base)


def _merge(a: dict[str, Any], b: dict[str, Any]) -> dict[str, Any]:
    out = _deepcopy_dict(a)
    for key, value in b.items():
        if isinstance(value, dict) and isinstance(out.get(key), dict):
            out[key] = _merge(out[key], value)
        else:
            out[key] = value
    return out


@dataclass
class DeploymentConfig:
    """How a trained policy runs on a robot (ROS parameters of the policy node map onto this).

    Architecture never comes from here: it comes from the checkpoint.
    """

    sampler: str = field(
        default="one-step",
        metadata={"help": "sampler: one-step (SDM student), ddim or ddpm (diffusion teacher)"},
    )
    ddim_steps: int = field(default=10, metadata={"help": "denoising steps of the ddim sampler"})
    control_rate_hz: float = field(
        default=10.0,
        metadata={"help": "[Hz] rate of the control timer; one action is executed per tick"},
    )
    stale_age_s: float = field(
        default=0.5, metadata={"help": "[s] observations older than this are never acted on"}
    )
    status_rate_hz: float = field(
        default=2.0, metadata={"help": "[Hz] rate of the status and /diagnostics messages"}
    )
    torch_threads: int = field(
        default=2,
        metadata={"help": "CPU threads of the policy's inference (torch or onnxruntime)"},
    )
    backend: str = field(
        default="torch",
        metadata={
            "help": "torch: the checkpoint on PyTorch; onnxruntime: its exported .onnx (+ .json "
            "sidecar; a file or a directory holding one), no torch in the process"
        },
    )
    sampler_noise: str = field(
        default="torch",
        metadata={
            "help": "torch backend's initial noise: torch (its generator) or numpy "
            "(default_rng(seed), as onnxruntime always draws it: equal seeds, equal commands; "
            "one-step and ddim only)"
        },
    )
    on_fault: str = field(
        default="hold",
        metadata={
            "help": "on stale or invalid data: hold (keep the last target) or stop (send nothing)"
        },
    )

    trigger: str = field(
        default="timer",
        metadata={"help": "timer: act at control_rate_hz; observation: act on each new cloud"},
    )
    execution: str = field(
        default="receding",
        metadata={
            "help": "receding: one action per tick, re-plan every n_action_steps; trajectory: "
            "publish the whole chunk as a time-parameterised JointTrajectory"
        },
    )
    temporal_ensembling: bool = field(
        default=False,
        metadata={"help": "re-plan every tick and average overlapping chunks (ACT-style)"},
    )
    ensembling_decay: float = field(
        default=0.1, metadata={"help": "weight exp(-decay * age in ticks) of older chunks"}
    )
    num_points_seed: int = field(
        default=0, metadata={"help": "seed of farthest-point sampling (deterministic clouds)"}
    )

    def __post_init__(self) -> None:
        _require(
            self.sampler in SAMPLERS,
            f"sampler must be one of {list(SAMPLERS)}, got {self.sampler!r}",
        )
        _require(
            1 <= self.ddim_steps <= 1000, f"ddim_steps must be in [1, 1000], got {self.ddim_steps}"
        )
        _require(
            0 < self.control_rate_hz <= 1000,
            f"control_rate_hz must be in (0, 1000], got {self.control_rate_hz}",
        )
        _require(
            0 < self.stale_age_s <= 60, f"stale_age_s must be in (0, 60], got {self.stale_age_s}"
        )
        _require(
            0 < self.status_rate_hz <= 100,
            f"status_rate_hz must be in (0, 100], got {self.status_rate_hz}",
        )
        _require(
            1 <= self.torch_threads <= 256,
            f"torch_threads must be in [1, 256], got {self.torch_threads}",
        )
        _require(
            self.backend in RUNTIME_BACKENDS,
            f"backend must be {' or '.join(map(repr, RUNTIME_BACKENDS))}, got {self.backend!r}",
        )
        _require(
            self.sampler_noise in NOISE_SOURCES,
            f"sampler_noise must be {' or '.join(map(repr, NOISE_SOURCES))}, "
            f"got {self.sampler_noise!r}",
        )
        _require(
            self.trigger in ("timer", "observation"),
            f"trigger must be 'timer' or 'observation', got {self.trigger!r}",
        )
        _require(
            self.execution in ("receding", "trajectory"),
            f"execution must be 'receding' or 'trajectory', got {self.execution!r}",
        )
        _require(
            self.ensembling_decay >= 0,
            f"ensembling_decay must be >= 0, got {self.ensembling_decay}",
        )
        _require(
            self.on_fault in ("hold", "stop"),
            f"on_fault must be 'hold' or 'stop', got {self.on_fault!r}",
        )
