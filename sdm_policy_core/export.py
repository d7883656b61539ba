# Copyright 2026 sdm-policy-ros maintainers
# SPDX-License-Identifier: MIT
"""Export a checkpoint's policy to ONNX or TorchScript, verified against PyTorch.

    result = export_policy("runs/sdm/checkpoints/latest", "policy.onnx", fmt="onnx")
    result.max_abs_diff   # exported model vs the PyTorch policy on random valid inputs

The exported graph takes RAW batch-1 observations with their history plus the sampler's noise
and returns the whole action sequence in robot units:

    point_cloud (1, To, P, C) float32   xyz in m (+ rgb), when the policy reads clouds
    image       (1, To, 3, H, W) uint8  RGB, when the policy reads images
    agent_pos   (1, To, Ds) float32     robot state
    noise       (1, H, Da) float32      standard normal: the initial noise of the sampler
    -> action_pred (1, H, Da) float32   execute action_pred[0, To-1 : To-1+n_action_steps]

Normalisation is inside the graph. The noise is an input so that the export is deterministic and
can be checked against PyTorch for the same noise. An SDM checkpoint exports its one-step
generator (one denoiser call, clamped to [-1, 1] when `diffusion.clip_sample`); a teacher exports
DDIM with K steps (eta 0) unrolled into the graph, its timesteps and coefficients constants taken
from the same diffusers scheduler the PyTorch sampler uses.

Every export is verified before it is kept: the written file is run (onnxruntime on the CPU, or
`torch.jit.load`) on random valid inputs and compared with the PyTorch policy; a difference above
`tolerance` deletes it and raises ExportError. The file is written atomically (temporary sibling
+ `os.replace`) with a JSON sidecar `FILE.json` naming the inputs, the output, the checkpoint,
the sampler and the measured difference.

`quantize="int8"` writes onnxruntime's dynamic int8 quantisation of the verified float graph
(`onnxruntime.quantization.quantize_dynamic`: int8 weights of the matrix products, activations
quantised per call) instead of the float graph, to a file of its own. Int8 cannot meet the float
tolerance; it is verified on QUANTIZE_CHECKS random inputs against `INT8_TOLERANCE`, in
normalised action units (the action's training range is [-1, 1]). The sidecar records both
differences; whether the policy still succeeds is a closed-loop question (BENCHMARKS.md).
"""

from __future__ import annotations

import abc
import contextlib
import datetime as _dt
import hashlib
import json
import os
import uuid
import warnings
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import Tensor, nn

from sdm_policy_core.checkpoint import load_checkpoint
from sdm_policy_core.keys import ACTION, AGENT_POS, IMAGE, POINT_CLOUD
from sdm_policy_core.policies.base import Policy
from sdm_policy_core.policies.diffusion_policy import DiffusionPolicy
from sdm_policy_core.policies.loading import policy_from_checkpoint
from sdm_policy_core.policies.sdm_policy import SdmPolicy

FORMATS: tuple[str, ...] = ("onnx", "torchscript")
DEFAULT_OPSET = 17
OPSETS = range(9, 21)  # what torch's TorchScript-based ONNX exporter supports
TOLERANCE = 1e-4  # max abs difference of the exported actions from PyTorch (robot units)
QUANTIZATIONS = ("int8",)  # `quantize=`: dynamic int8 (onnx only)
INT8_TOLERANCE = 0.1  # max abs difference of int8 actions, normalised units (5 % of the range)
QUANTIZE_CHECKS = 8  # random inputs a quantised graph is verified on
NOISE = "noise"
OUTPUT = "action_pred"


class ExportError(RuntimeError):
    """An export failed or did not reproduce the PyTorch policy; nothing was written."""


@dataclass(frozen=True)
class TensorSpec:
    """Name, shape and dtype of one input or output of an exported graph."""

    name: str
    shape: tuple[int, ...]
    dtype: torch.dtype

    def to_json(self) -> dict[str, Any]:
        return {"name": self.name, "shape": list(self.shape), "dtype": _dtype_name(self.dtype)}


def _dtype_name(dtype: torch.dtype) -> str:
    return str(dtype).removeprefix("torch.")


class ExportModule(nn.Module, abc.ABC):
    """Raw observations + noise -> unnormalised actions, batch 1; see the module docstring.

    Subclasses implement `sample(noise (1, H, Da), cond (1, To * F)) -> (1, H, Da)` normalised.
    Inputs are positional, in the order of `self.inputs`.
    """

    sampler = ""
    steps = 0

    def __init__(self, policy: Policy) -> None:
        super().__init__()
        cfg = policy.cfg
        self.cfg = cfg
        self.timesteps: list[int] = []  # the denoiser's timesteps of one call, in order
        self.encoder = policy.encoder
        self.normalizer = policy.normalizer
        To, spec = cfg.model.n_obs_steps, cfg.obs
        self.n_obs_steps = To
        inputs: list[TensorSpec] = []
        if spec.point_cloud_shape is not None:
            shape = (1, To, *spec.point_cloud_shape)
            inputs.append(TensorSpec(POINT_CLOUD, shape, torch.float32))
        if spec.image_shape is not None:
            inputs.append(TensorSpec(IMAGE, (1, To, *spec.image_shape), torch.uint8))
        inputs.append(TensorSpec(AGENT_POS, (1, To, spec.state_dim), torch.float32))
        inputs.append(TensorSpec(NOISE, (1, *policy.action_shape), torch.float32))
        self.inputs = tuple(inputs)
        self.output = TensorSpec(OUTPUT, (1, *policy.action_shape), torch.float32)

    def condition(self, obs: dict[str, Tensor]) -> Tensor:
        """Compute the (1, To * F) global condition.

        `Policy.encode` without the data-dependent validation (a NaN check cannot be part of a
        static graph).
        """
        To = self.n_obs_steps
        flat = {AGENT_POS: self.normalizer.normalize(AGENT_POS, obs[AGENT_POS]).reshape(To, -1)}
        if POINT_CLOUD in obs:
            cloud = obs[POINT_CLOUD]
            if POINT_CLOUD in self.normalizer:
                channels = self.normalizer.stats(POINT_CLOUD)["scale"].shape[0]
                cloud = self.normalizer.normalize(POINT_CLOUD, cloud[..., :channels])
            flat[POINT_CLOUD] = cloud.reshape(To, *cloud.shape[2:])
        if IMAGE in obs:
            flat[IMAGE] = obs[IMAGE].reshape(To, *obs[IMAGE].shape[2:])
        return self.encoder(flat).reshape(1, -1)

    @abc.abstractmethod
    def sample(self, noise: Tensor, cond: Tensor) -> Tensor:
        """Normalised action sequence (1, H, Da) from the noise (1, H, Da) and condition."""

    def forward(self, *tensors: Tensor) -> Tensor:
        obs = {spec.name: t for spec, t in zip(self.inputs, tensors, strict=True)}
        naction = self.sample(obs.pop(NOISE), self.condition(obs))
        return self.normalizer.unnormalize(ACTION, naction)


class OneStepExportModule(ExportModule):
    """The SDM policy: one generator call, clamped like the teacher's samplers."""

    sampler = "one-step"
    steps = 1

    def __init__(self, policy: SdmPolicy) -> None:
        super().__init__(policy)
        self.generator = policy.generator
        self.clip = bool(self.cfg.diffusion.clip_sample)
        self.timesteps = [int(policy.generator.timestep)]

    def sample(self, noise: Tensor, cond: Tensor) -> Tensor:
        naction = self.generator(noise, cond)
        return naction.clamp(-1.0, 1.0) if self.clip else naction


@dataclass(frozen=True)
class DdimStep:
    """One deterministic DDIM update (eta 0), as diffusers' `DDIMScheduler.step` computes it.

    x0 = output (sample) or (x - sqrt_one_minus_alpha * output) / sqrt_alpha (epsilon),
    eps = (x - sqrt_alpha * x0) / sqrt_one_minus_alpha (sample) or output (epsilon),
    x_prev = sqrt_alpha_prev * clip(x0) + sqrt_one_minus_alpha_prev * eps.
    """

    timestep: int
    sqrt_alpha: float
    sqrt_one_minus_alpha: float
    sqrt_alpha_prev: float
    sqrt_one_minus_alpha_prev: float


def ddim_steps(policy: DiffusionPolicy, steps: int) -> list[DdimStep]:
    """Collect the K updates of the teacher's DDIM sampler from its own scheduler object.

    From the very scheduler object that `NoiseSchedule.sample` uses (timesteps, final alpha,
    float32 arithmetic).
    """
    scheduler = policy.schedule._sampler("ddim", steps)
    if scheduler.config.thresholding:
        raise ExportError("DDIM with dynamic thresholding cannot be exported")
    stride = scheduler.config.num_train_timesteps // scheduler.num_inference_steps
    out = []
    for t in scheduler.timesteps.tolist():
        prev = t - stride
        alpha = scheduler.alphas_cumprod[t]
        alpha_prev = scheduler.alphas_cumprod[prev] if prev >= 0 else scheduler.final_alpha_cumprod
        out.append(
            DdimStep(
                timestep=int(t),
                sqrt_alpha=float(alpha**0.5),
                sqrt_one_minus_alpha=float((1 - alpha) ** 0.5),
                sqrt_alpha_prev=float(alpha_prev**0.5),
                sqrt_one_minus_alpha_prev=float((1 - alpha_prev) ** 0.5),
            )
        )
    return out


class DdimExportModule(ExportModule):
    """The teacher with DDIM K steps unrolled: K denoiser calls at constant timesteps."""

    sampler = "ddim"

    def __init__(self, policy: DiffusionPolicy, steps: int) -> None:
        super().__init__(policy)
        self.denoiser = policy.denoiser
        self.steps = steps
        self.updates = ddim_steps(policy, steps)
        self.timesteps = [u.timestep for u in self.updates]
        self.predicts_x0 = policy.schedule.prediction_type == "sample"
        self.clip = bool(self.cfg.diffusion.clip_sample)
        self.clip_range = float(policy.schedule._sampler("ddim", steps).config.clip_sample_range)

    def sample(self, noise: Tensor, cond: Tensor) -> Tensor:
        x = noise
        for u in self.updates:
            t = torch.full((1,), u.timestep, dtype=torch.long, device=x.device)
            output = self.denoiser(x, t, cond).to(x.dtype)
            if self.predicts_x0:
                x0, eps = output, (x - u.sqrt_alpha * output) / u.sqrt_one_minus_alpha
            else:
                x0, eps = (x - u.sqrt_one_minus_alpha * output) / u.sqrt_alpha, output
            if self.clip:
                x0 = x0.clamp(-self.clip_range, self.clip_range)
            x = u.sqrt_alpha_prev * x0 + u.sqrt_one_minus_alpha_prev * eps
        return x


def build_export_module(policy: Policy, kind: str, steps: int | None = None) -> ExportModule:
    """Wrap a loaded policy for export: one-step for 'sdm', DDIM K for 'teacher'.

    K = `steps`, default the checkpoint's `diffusion.num_inference_steps`.
    """
    if kind == "sdm":
        if steps not in (None, 1):
            raise ExportError(
                f"an SDM checkpoint exports its one-step generator; steps={steps} applies to "
                "teacher checkpoints (DDIM K) only"
            )
        return OneStepExportModule(policy).eval()
    T = policy.cfg.diffusion.num_train_timesteps
    steps = policy.cfg.diffusion.num_inference_steps if steps is None else int(steps)
    if not 1 <= steps <= T:
        raise ExportError(f"DDIM steps must be in [1, {T}], got {steps}")
    return DdimExportModule(policy, steps).eval()


def example_inputs(module: ExportModule, seed: int = 0) -> tuple[Tensor, ...]:
    """Random valid inputs: states and clouds within the normaliser's limits, images, noise.

    States and clouds uniform within the normaliser's fitted limits (what the policy saw in
    training), random images, standard normal noise.
    """
    generator = torch.Generator().manual_seed(seed)
    out = []
    for spec in module.inputs:
        if spec.dtype == torch.uint8:
            value = torch.randint(0, 256, spec.shape, generator=generator, dtype=torch.uint8)
        elif spec.name == NOISE:
            value = torch.randn(spec.shape, generator=generator)
        else:
            value = torch.rand(spec.shape, generator=generator) * 2 - 1
            if spec.name in module.normalizer:
                stats = module.normalizer.stats(spec.name)
                low, high = stats["min"].cpu(), stats["max"].cpu()
                channels = low.shape[0]
                unit = torch.rand(spec.shape, generator=generator)[..., :channels]
                value[..., :channels] = low + unit * (high - low)
        out.append(value)
    return tuple(out)


def reference_actions(policy: Policy, module: ExportModule, inputs: tuple) -> Tensor:
    """(1, H, Da) actions of the PyTorch policy's own code path for the same inputs and noise.

    `encode` -> `sample_normalized(..., initial_noise=noise)` (-> clamp for SDM) -> unnormalise.
    """
    obs = {spec.name: t for spec, t in zip(module.inputs, inputs, strict=True)}
    noise = obs.pop(NOISE)
    with torch.inference_mode():
        cond = policy.encode(obs)
        naction = policy.sample_normalized(cond, module.sampler, module.steps, initial_noise=noise)
        if module.sampler == "one-step" and policy.cfg.diffusion.clip_sample:
            naction = naction.clamp(-1.0, 1.0)
        return policy.normalizer.unnormalize(ACTION, naction)


# ------------------------------------------------------------------------------------------------
# Writing and running the exported files


def _write_onnx(module: ExportModule, inputs: tuple, path: Path, opset: int) -> None:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # the TorchScript-based exporter warns of its deprecation
        torch.onnx.export(
            module,
            inputs,
            str(path),
            input_names=[spec.name for spec in module.inputs],
            output_names=[module.output.name],
            opset_version=opset,
            dynamo=False,  # the dynamo exporter needs onnxscript, which is not a dependency
            do_constant_folding=True,
        )
    import onnx

    onnx.checker.check_model(str(path))


def _write_torchscript(module: ExportModule, inputs: tuple, path: Path) -> None:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # torch.jit is deprecated but still the only format
        traced = torch.jit.trace(module, inputs, check_trace=False)
        torch.jit.save(traced, str(path))


def _quantize_int8(src: Path, dst: Path) -> None:
    """Apply onnxruntime's dynamic int8 quantisation to the graph `src`, written to `dst`."""
    import logging

    from onnxruntime.quantization import QuantType, quantize_dynamic

    root = logging.getLogger()
    level = root.level
    root.setLevel(logging.ERROR)  # it logs a warning advising pre-processing at every call
    try:
        quantize_dynamic(str(src), str(dst), weight_type=QuantType.QInt8)
    finally:
        root.setLevel(level)


def run_exported(path: Path, fmt: str, module: ExportModule, inputs: tuple) -> np.ndarray:
    """Run an exported file on `inputs` -> (1, H, Da) float32 numpy actions."""
    if fmt == "onnx":
        import onnxruntime as ort

        options = ort.SessionOptions()
        options.intra_op_num_threads = max(1, torch.get_num_threads())
        session = ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])
        feed = {spec.name: t.numpy() for spec, t in zip(module.inputs, inputs, strict=True)}
        return np.asarray(session.run([module.output.name], feed)[0])
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        loaded = torch.jit.load(str(path), map_location="cpu")
        with torch.inference_mode():
            return loaded(*inputs).numpy()


@contextlib.contextmanager
def _temporary_sibling(path: Path) -> Iterator[Path]:
    """Yield a fresh temporary path next to `path` (same filesystem: `os.replace` is atomic).

    Removed on exit unless it was moved into place.
    """
    tmp = path.with_name(f".{path.name}.tmp-{uuid.uuid4().hex[:8]}")
    try:
        yield tmp
    finally:
        tmp.unlink(missing_ok=True)


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(2**20), b""):
            digest.update(block)
    return digest.hexdigest()


@dataclass
class ExportResult:
    """What `export_policy` wrote and measured."""

    path: Path  # the exported model
    sidecar: Path  # FILE.json
    max_abs_diff: float  # exported file vs the PyTorch wrapper, robot units
    metadata: dict[str, Any]  # the sidecar's content


def export_policy(
    checkpoint: str | Path,
    out: str | Path,
    fmt: str = "onnx",
    steps: int | None = None,
    opset: int | None = None,
    tolerance: float = TOLERANCE,
    seed: int = 0,
    quantize: str | None = None,
) -> ExportResult:
    """Export the policy of `checkpoint` to `out` (+ `out`.json), verified; see the module doc.

    fmt: 'onnx' or 'torchscript'. steps: DDIM K of a teacher (default: the checkpoint's
    `diffusion.num_inference_steps`); SDM checkpoints take none. opset: ONNX opset version
    (default DEFAULT_OPSET).
    seed: of the random inputs the graph is traced with (it is verified on seed + 1).
    quantize: None, or "int8" (onnx): write the dynamic int8 quantisation of the verified float
    graph, verified within INT8_TOLERANCE (normalised action units) on QUANTIZE_CHECKS inputs.
    Raises CheckpointError for a bad checkpoint and ExportError when the export fails or the
    exported model differs from PyTorch by more than `tolerance` (`out` is left as it was).
    """
    if fmt not in FORMATS:
        raise ExportError(f"format must be one of {list(FORMATS)}, got {fmt!r}")
    if quantize is not None and (quantize not in QUANTIZATIONS or fmt != "onnx"):
        raise ExportError(
            f"quantize must be one of {list(QUANTIZATIONS)} with format onnx, got {quantize!r} "
            f"with {fmt}"
        )
    opset = DEFAULT_OPSET if opset is None else int(opset)
    if fmt == "onnx" and opset not in OPSETS:
        raise ExportError(f"ONNX opset must be in [{OPSETS[0]}, {OPSETS[-1]}], got {opset}")
    out = Path(out)
    if out.is_dir():
        raise ExportError(f"{out} is a directory; give the path of the file to write")
    if not out.parent.is_dir():
        raise ExportError(f"the directory of {out} does not exist; create it first")
    ckpt = load_checkpoint(checkpoint, device="cpu", load_training_state=False)
    policy = policy_from_checkpoint(ckpt)
    module = build_export_module(policy, ckpt.kind, steps)
    # Traced on one set of inputs, checked on another: a value baked into the graph by the
    # trace would show up as a difference.
    trace_inputs = example_inputs(module, seed)
    check_inputs = example_inputs(module, seed + 1)
    with torch.inference_mode():
        expected = module(*check_inputs)
    reference = reference_actions(policy, module, check_inputs)
    wrapper_diff = float((expected - reference).abs().max())
    if not wrapper_diff <= tolerance:  # a bug of this module, not of the exporter
        raise ExportError(
            f"the export wrapper differs from the policy by {wrapper_diff:.3g} > {tolerance:g}"
        )

    sidecar = out.with_name(out.name + ".json")
    with _temporary_sibling(out) as tmp, _temporary_sibling(sidecar) as tmp_sidecar:
        try:
            if fmt == "onnx":
                _write_onnx(module, trace_inputs, tmp, opset)
            else:
                _write_torchscript(module, trace_inputs, tmp)
        except Exception as err:  # the exporters raise many types; one clear line for the CLI
            first_line = (str(err).strip().splitlines() or [type(err).__name__])[0]
            raise ExportError(f"{fmt} export of {checkpoint} failed: {first_line}") from err
        try:
            got = run_exported(tmp, fmt, module, check_inputs)
        except Exception as err:  # onnxruntime / torch.jit errors: the file is unusable
            first_line = (str(err).strip().splitlines() or [type(err).__name__])[0]
            raise ExportError(f"the exported {fmt} model cannot be run: {first_line}") from err
        diff = float(np.abs(got - expected.numpy()).max()) if got.shape == expected.shape else None
        if diff is None or not diff <= tolerance:  # NaN fails too
            detail = f"shape {got.shape}" if diff is None else f"max abs diff {diff:.3g}"
            raise ExportError(
                f"the exported {fmt} model does not reproduce the PyTorch policy ({detail}, "
                f"tolerance {tolerance:g}); nothing was written to {out}"
            )
        quantized = None
        if quantize is not None:
            quantized = _verify_int8(policy, module, tmp, tmp.with_name(tmp.name + ".int8"), seed)
            os.replace(tmp.with_name(tmp.name + ".int8"), tmp)
        metadata = {
            "format": fmt,
            "file": out.name,
            "sha256": _sha256(tmp),
            "checkpoint": str(Path(checkpoint).resolve()),
            "checkpoint_step": ckpt.config.get("provenance", {}).get("step"),
            "kind": ckpt.kind,
            "sampler": module.sampler,
            "steps": module.steps,
            "timesteps": module.timesteps,  # the denoiser's timesteps, in order
            "inputs": [spec.to_json() for spec in module.inputs],
            "output": module.output.to_json(),
            "n_obs_steps": policy.cfg.model.n_obs_steps,
            "n_action_steps": policy.cfg.model.n_action_steps,
            "action_start": policy.cfg.model.n_obs_steps - 1,
            "opset": opset if fmt == "onnx" else None,
            "max_abs_diff": diff,  # exported (float) graph vs the PyTorch wrapper
            "reference_max_abs_diff": wrapper_diff,  # wrapper vs the policy's own sampler
            "tolerance": tolerance,
            "quantization": quantize,  # None: float32; "int8": dynamic int8 (the file written)
            **(quantized or {}),
            "verification_seed": seed + 1,
            "torch_version": torch.__version__,
            "created_at": _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds"),
        }
        tmp_sidecar.write_text(json.dumps(metadata, indent=2) + "\n")
        os.replace(tmp, out)
        os.replace(tmp_sidecar, sidecar)
    return ExportResult(path=out, sidecar=sidecar, max_abs_diff=diff, metadata=metadata)


def _verify_int8(
    policy: Policy, module: ExportModule, src: Path, dst: Path, seed: int
) -> dict[str, Any]:
    """Quantise the verified float graph `src` to `dst` and compare it with the PyTorch wrapper.

    Compared on QUANTIZE_CHECKS inputs; ExportError above INT8_TOLERANCE (normalised action
    units). Returns the sidecar's int8 entries.
    """
    try:
        _quantize_int8(src, dst)
    except Exception as err:  # onnxruntime.quantization raises many types
        dst.unlink(missing_ok=True)
        first_line = (str(err).strip().splitlines() or [type(err).__name__])[0]
        raise ExportError(f"int8 quantisation failed: {first_line}") from err
    scale = policy.normalizer.stats(ACTION)["scale"].cpu().numpy()
    worst = worst_normalized = 0.0
    try:
        for k in range(QUANTIZE_CHECKS):
            inputs = example_inputs(module, seed + 1 + k)
            with torch.inference_mode():
                expected = module(*inputs).numpy()
            error = np.abs(run_exported(dst, "onnx", module, inputs) - expected)
            worst = max(worst, float(error.max()))
            worst_normalized = max(worst_normalized, float((error * scale).max()))
    except Exception as err:
        dst.unlink(missing_ok=True)
        first_line = (str(err).strip().splitlines() or [type(err).__name__])[0]
        raise ExportError(f"the int8 model cannot be run: {first_line}") from err
    if not worst_normalized <= INT8_TOLERANCE:  # NaN fails too
        dst.unlink(missing_ok=True)
        raise ExportError(
            f"the int8 model differs from the PyTorch policy by {worst_normalized:.3g} "
            f"(normalised action units) > {INT8_TOLERANCE:g}; export it without quantisation"
        )
    return {
        "int8_max_abs_diff": worst,  # robot units, over the QUANTIZE_CHECKS inputs
        "int8_max_abs_diff_normalized": worst_normalized,
        "int8_tolerance_normalized": INT8_TOLERANCE,
        "int8_checks": QUANTIZE_CHECKS,
    }
