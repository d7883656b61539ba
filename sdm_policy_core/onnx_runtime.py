# Copyright 2026 sdm-policy-ros maintainers
# SPDX-License-Identifier: MIT
"""OnnxPolicyRuntime: the policy runtime on onnxruntime, with no torch in the process.

    runtime = OnnxPolicyRuntime("runs/sdm/checkpoints/latest")   # a directory holding one .onnx
    runtime = OnnxPolicyRuntime("sdm.onnx", threads=2)           # or the file (+ sdm.onnx.json)
    chunk = runtime.step({"point_cloud": cloud, "agent_pos": joints})   # as PolicyRuntime

It runs the graph `sdm export --format onnx` writes (normalisation and the whole sampler inside:
the SDM generator's one call, or a teacher's DDIM K unrolled) and offers the interface of
`PolicyRuntime` that the controller, the node and `sdm eval` use (runtime_base.RuntimeBase:
history, validation, `push`/`infer`/`step`/`reset`, `spec`, `policy_id`, `kind`, `sampler`,
`steps`, `generator.manual_seed`, `set_sampler`). Export needs torch and is never done here: the
model must be exported beforehand, on a machine with torch. An int8 export (`sdm export
--quantize int8`, a file of its own) loads the same way; `quantization` says which it is.

Refused with what differs (OnnxModelError, at construction): a missing or malformed JSON sidecar
(`FILE.onnx.json`), a file whose sha256 is not the sidecar's, graph inputs or output that are not
the sidecar's, a checkpoint directory whose config.json describes other observations (points,
channels, state size, image, action size, horizons), and a model unlike `expected_spec`.

Noise: the sampler's initial noise (1, horizon, Da) is drawn from `generator`, a numpy
`default_rng(seed)` standard normal stream (seed as PolicyRuntime's, default 0; the warm-up call
draws once, as PolicyRuntime's does). It is not torch.Generator's stream: the two runtimes give
equal actions for equal noise, which `infer(noise=...)` on both supplies, or
`PolicyRuntime(..., noise="numpy")`, which draws from the same numpy stream.
"""

from __future__ import annotations

import contextlib
import ctypes
import hashlib
import json
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from sdm_policy_core.config import SAMPLERS, ObservationSpec
from sdm_policy_core.keys import AGENT_POS, IMAGE, POINT_CLOUD
from sdm_policy_core.runtime_base import (
    ActionChunk,
    NumpyNoise,
    RuntimeBase,
    checkpoint_policy_id,
)

DEPLOY_INSTALL = (
    "pip install -r requirements/deploy.txt (onnxruntime, numpy, fpsample, pyyaml, opencv; "
    "no torch), then pip install --no-deps -e ."
)
EXPORT_HINT = (
    "export it on a machine with torch: sdm export --checkpoint CKPT_DIR --format onnx "
    "--out CKPT_DIR/policy.onnx (writes policy.onnx.json beside it)"
)
NOISE = "noise"  # names of export.py's graph: the initial noise in, the action sequence out
OUTPUT = "action_pred"
OPTIMIZATION_LEVELS = ("disable", "basic", "extended", "all")
_ORT_TYPES = {"float32": "tensor(float)", "uint8": "tensor(uint8)"}
_SIDECAR_KEYS = ("format", "sha256", "kind", "sampler", "steps", "inputs", "output", "n_obs_steps")
_SIDECAR_KEYS += ("n_action_steps", "action_start")


class OnnxModelError(ValueError):
    """An exported model that cannot run here; the message says what differs or is missing."""


class OnnxRuntimeMissingError(ImportError):
    """onnxruntime is not installed; the message says how to install it."""


def import_onnxruntime() -> Any:
    """Import the onnxruntime module, or raise OnnxRuntimeMissingError with the install command."""
    try:
        import onnxruntime
    except ImportError as err:
        raise OnnxRuntimeMissingError(
            f"onnxruntime is not importable ({err}); install the robot-side packages: "
            f"{DEPLOY_INSTALL}"
        ) from err
    return onnxruntime


def release_free_heap() -> None:
    """Return the C heap's free pages to the system (glibc's malloc_trim; elsewhere nothing).

    Creating a session leaves the memory that parsing the graph used free but resident.
    """
    with contextlib.suppress(OSError, AttributeError, TypeError):  # not glibc (or Windows)
        ctypes.CDLL(None).malloc_trim(0)


def find_onnx_model(path: str | Path) -> Path:
    """Find the .onnx file of `path`: the file itself, or the one .onnx in a directory."""
    path = Path(path)
    if not path.exists():
        raise OnnxModelError(f"{path} does not exist")
    if path.is_file():
        if path.suffix != ".onnx":
            raise OnnxModelError(f"{path} is not an .onnx file; {EXPORT_HINT}")
        return path
    found = sorted(path.glob("*.onnx"))
    if not found:
        raise OnnxModelError(
            f"{path} holds no exported .onnx model (the onnxruntime backend never exports); "
            f"{EXPORT_HINT}"
        )
    if len(found) > 1:
        raise OnnxModelError(
            f"{path} holds {len(found)} .onnx models ({', '.join(p.name for p in found)}); "
            "give the file to load"
        )
    return found[0]


@dataclass(frozen=True)
class OnnxModel:
    """An exported graph and what its sidecar says about it."""

    path: Path  # the .onnx file
    sidecar: Path  # FILE.onnx.json
    metadata: dict[str, Any]  # the sidecar's content
    spec: ObservationSpec  # what the graph observes and emits, from its inputs
    n_obs_steps: int
    n_action_steps: int
    horizon: int

    @property
    def input_specs(self) -> list[tuple[str, tuple[int, ...], str]]:
        """(name, shape, dtype) of each graph input, in order."""
        return [(i["name"], tuple(i["shape"]), i["dtype"]) for i in self.metadata["inputs"]]


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(2**20), b""):
            digest.update(block)
    return digest.hexdigest()


def _spec_from_inputs(meta: dict[str, Any], where: Path) -> tuple[ObservationSpec, int, int]:
    """(spec, n_obs_steps, horizon) of the sidecar's inputs (1, To, ...) and output (1, H, Da)."""
    shapes = {i["name"]: list(i["shape"]) for i in meta["inputs"]}
    output = list(meta["output"]["shape"])
    To = int(meta["n_obs_steps"])
    for name in (AGENT_POS, NOISE):
        if name not in shapes:
            raise OnnxModelError(f"{where}: the model has no {name!r} input; {EXPORT_HINT}")
    problems = [
        f"{name} {shape}"
        for name, shape in shapes.items()
        if name != NOISE and (len(shape) < 3 or shape[:2] != [1, To])
    ]
    if len(output) != 3 or shapes[NOISE] != output:
        problems.append(f"noise {shapes[NOISE]} vs output {output}")
    if problems:
        raise OnnxModelError(
            f"{where}: inputs are not (1, n_obs_steps={To}, ...) batch-1 observations with noise "
            f"shaped as the output: {', '.join(problems)}"
        )
    cloud = shapes.get(POINT_CLOUD)
    image = shapes.get(IMAGE)
    try:
        spec = ObservationSpec(
            point_cloud_shape=tuple(cloud[2:]) if cloud else None,
            image_shape=tuple(image[2:]) if image else None,
            state_dim=shapes[AGENT_POS][2],
            action_dim=output[2],
        )
    except ValueError as err:
        raise OnnxModelError(f"{where}: {err}") from None
    return spec, To, output[1]


def read_onnx_model(path: str | Path, expected_spec: ObservationSpec | None = None) -> OnnxModel:
    """Find and check an exported model (see the module docstring).

    OnnxModelError says what is missing or differs. Reads files only (no onnxruntime session).
    """
    onnx_path = find_onnx_model(path)
    sidecar = onnx_path.with_name(onnx_path.name + ".json")
    if not sidecar.is_file():
        raise OnnxModelError(
            f"{onnx_path} has no sidecar {sidecar.name} beside it (inputs, sampler, horizons and "
            f"the verification `sdm export` writes); {EXPORT_HINT}"
        )
    try:
        meta = json.loads(sidecar.read_text())
    except (OSError, json.JSONDecodeError) as err:
        raise OnnxModelError(f"cannot read the sidecar {sidecar}: {err}") from None
    missing = [k for k in _SIDECAR_KEYS if not isinstance(meta, dict) or k not in meta]
    if missing:
        raise OnnxModelError(f"sidecar {sidecar} lacks {missing}; {EXPORT_HINT}")
    if meta["format"] != "onnx":
        raise OnnxModelError(f"sidecar {sidecar} describes a {meta['format']!r} export, not onnx")
    digest = _sha256(onnx_path)
    if digest != meta["sha256"]:
        raise OnnxModelError(
            f"{onnx_path} is not the file its sidecar {sidecar.name} describes (sha256 "
            f"{digest[:12]}… vs {str(meta['sha256'])[:12]}…); copy both files of one export "
            "together, or export again"
        )
    spec, To, horizon = _spec_from_inputs(meta, sidecar)
    if int(meta["action_start"]) != To - 1:
        raise OnnxModelError(
            f"sidecar {sidecar}: action_start {meta['action_start']} is not n_obs_steps - 1 "
            f"= {To - 1}"
        )
    model = OnnxModel(
        path=onnx_path,
        sidecar=sidecar,
        metadata=meta,
        spec=spec,
        n_obs_steps=To,
        n_action_steps=int(meta["n_action_steps"]),
        horizon=horizon,
    )
    config = onnx_path.parent / "config.json"
    if config.is_file():  # exported into its checkpoint directory: it must be that checkpoint's
        _check_against_checkpoint(model, config)
    if expected_spec is not None:
        differences = spec_differences(model.spec, expected_spec)
        if differences:
            raise OnnxModelError(
                f"{onnx_path} does not fit the expected observations: {'; '.join(differences)}"
            )
    return model


def spec_differences(
    model: ObservationSpec, expected: ObservationSpec, other: str = "expected"
) -> list[str]:
    """List '<what> <model's> in the model, <other's> <other>' for each field that differs."""
    rows: list[str] = []

    def differ(what: str, a: object, b: object) -> None:
        if a != b:
            rows.append(f"{what} {a} in the model, {b} {other}")

    cloud_a, cloud_b = model.point_cloud_shape, expected.point_cloud_shape
    if cloud_a is not None and cloud_b is not None:
        differ("points", cloud_a[0], cloud_b[0])
        differ("channels", cloud_a[1], cloud_b[1])
    else:
        differ("point cloud (P, C)", cloud_a, cloud_b)
    differ("image (C, H, W)", model.image_shape, expected.image_shape)
    differ("state size", model.state_dim, expected.state_dim)
    differ("action size", model.action_dim, expected.action_dim)
    return rows


def _check_against_checkpoint(model: OnnxModel, config_path: Path) -> None:
    """Check that the checkpoint's config.json describes the same observations, horizons, kind."""
    try:
        config = json.loads(config_path.read_text())
        obs, arch = config["obs"], config["model"]
        spec = ObservationSpec(
            point_cloud_shape=obs.get("point_cloud_shape"),
            image_shape=obs.get("image_shape"),
            state_dim=obs["state_dim"],
            action_dim=obs["action_dim"],
        )
        horizons = {k: arch[k] for k in ("n_obs_steps", "horizon", "n_action_steps")}
    except (OSError, ValueError, KeyError, TypeError) as err:
        raise OnnxModelError(f"cannot read the checkpoint's {config_path}: {err!r}") from None
    rows = spec_differences(model.spec, spec, other=f"in {config_path.name}")
    ours = {
        "n_obs_steps": model.n_obs_steps,
        "horizon": model.horizon,
        "n_action_steps": model.n_action_steps,
    }
    rows += [
        f"{k} {ours[k]} in the model, {horizons[k]} in {config_path.name}"
        for k in ours
        if ours[k] != horizons[k]
    ]
    if config.get("kind") != model.metadata["kind"]:
        rows.append(f"kind {model.metadata['kind']} in the model, {config.get('kind')} in config")
    if rows:
        raise OnnxModelError(
            f"{model.path} was not exported from the checkpoint it lies in "
            f"({config_path.parent}): {'; '.join(rows)}; export this checkpoint again"
        )


def _graph_differences(session: Any, model: OnnxModel) -> list[str]:
    """How the graph's inputs and output differ from its sidecar's."""
    rows = []
    graph = [(i.name, tuple(i.shape), i.type) for i in session.get_inputs()]
    sidecar = [(n, s, _ORT_TYPES.get(d, d)) for n, s, d in model.input_specs]
    names, want_names = [g[0] for g in graph], [s[0] for s in sidecar]
    if names != want_names:
        rows.append(f"inputs {names} in the graph, {want_names} in the sidecar")
    else:
        for (name, shape, kind), (_, want_shape, want_kind) in zip(graph, sidecar, strict=True):
            if shape != want_shape or kind != want_kind:
                rows.append(
                    f"{name} {list(shape)} {kind} in the graph, {list(want_shape)} {want_kind} "
                    "in the sidecar"
                )
    outputs = [(o.name, tuple(o.shape)) for o in session.get_outputs()]
    want = (model.metadata["output"]["name"], tuple(model.metadata["output"]["shape"]))
    if outputs != [want]:
        rows.append(f"outputs {outputs} in the graph, {[want]} in the sidecar")
    return rows


class OnnxPolicyRuntime(RuntimeBase):
    """An exported policy on onnxruntime with its observation history.

    See the module docstring. Arguments as PolicyRuntime's (`threads`: onnxruntime's intra-op
    threads), plus `expected_spec` (refuse a model that observes otherwise), `optimization`
    (onnxruntime's graph optimisation level, one of OPTIMIZATION_LEVELS) and `providers`
    (execution providers, default CPU only).
    """

    backend = "onnxruntime"

    def __init__(
        self,
        model: str | Path,
        sampler: str | None = None,
        steps: int | None = None,
        threads: int | None = None,
        seed: int | None = None,
        warmup: bool = True,
        *,
        expected_spec: ObservationSpec | None = None,
        optimization: str = "all",
        providers: Sequence[str] | None = None,
    ) -> None:
        if threads is not None and threads < 1:
            raise ValueError(f"threads must be >= 1, got {threads}")
        if optimization not in OPTIMIZATION_LEVELS:
            raise ValueError(
                f"optimization must be one of {list(OPTIMIZATION_LEVELS)}, got {optimization!r}"
            )
        ort = import_onnxruntime()
        self.model = read_onnx_model(model, expected_spec)
        self.path = self.model.path
        meta = self.model.metadata
        self.kind = str(meta["kind"])
        self.spec = self.model.spec
        self.n_obs_steps = self.model.n_obs_steps
        self.n_action_steps = self.model.n_action_steps
        self.horizon = self.model.horizon
        options = ort.SessionOptions()
        if threads is not None:
            options.intra_op_num_threads = threads
        options.inter_op_num_threads = 1
        options.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
        # Same outputs, less memory and CPU (BENCHMARKS.md, issue 21): no memory pattern (the
        # activations reuse the arena's chunks, not one more block planned for all of them:
        # 5 MB less for simple_dp3); idle intra-op threads sleep instead of spinning on cores
        # the node's other threads need (lower p50 and ready through the node, loaded 2 cores).
        options.enable_mem_pattern = False
        options.add_session_config_entry("session.intra_op.allow_spinning", "0")
        options.graph_optimization_level = {
            "disable": ort.GraphOptimizationLevel.ORT_DISABLE_ALL,
            "basic": ort.GraphOptimizationLevel.ORT_ENABLE_BASIC,
            "extended": ort.GraphOptimizationLevel.ORT_ENABLE_EXTENDED,
            "all": ort.GraphOptimizationLevel.ORT_ENABLE_ALL,
        }[optimization]
        try:
            self.session = ort.InferenceSession(
                str(self.path), options, providers=list(providers or ["CPUExecutionProvider"])
            )
        except Exception as err:  # onnxruntime raises its own types for an unusable file
            first = (str(err).strip().splitlines() or [type(err).__name__])[0]
            raise OnnxModelError(f"onnxruntime cannot load {self.path}: {first}") from err
        differences = _graph_differences(self.session, self.model)
        if differences:
            raise OnnxModelError(
                f"{self.path}'s graph does not match its sidecar {self.model.sidecar.name}: "
                f"{'; '.join(differences)}; export again"
            )
        release_free_heap()  # what loading the graph freed: 7 MB for simple_dp3's 53 MB file
        self.providers = self.session.get_providers()
        checkpoint = meta.get("checkpoint") or self.path.parent  # where it was exported from
        self.policy_id = checkpoint_policy_id(checkpoint, meta.get("checkpoint_step"))
        self.quantization = meta.get("quantization")
        self.generator = NumpyNoise(seed if seed is not None else 0)
        self.sampler, self.steps = "", 0
        self.set_sampler(sampler, steps)
        self._init_history()
        self._feed = {
            name: np.zeros(shape, dtype=np.dtype(dtype))
            for name, shape, dtype in self.model.input_specs
            if name != NOISE
        }
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
        """Accept the sampler the graph was exported with (None or '': that one).

        Any other raises ValueError saying how to export it. `steps` is ignored for 'one-step'.
        """
        exported, exported_steps = (
            str(self.model.metadata["sampler"]),
            int(self.model.metadata["steps"]),
        )
        sampler = sampler or exported
        if sampler not in SAMPLERS:
            raise ValueError(f"sampler must be one of {list(SAMPLERS)}, got {sampler!r}")
        wrong_steps = sampler != "one-step" and steps is not None and steps != exported_steps
        if sampler != exported or wrong_steps:
            asked = sampler if sampler == "one-step" else f"{sampler} x{steps or '?'}"
            raise ValueError(
                f"{self.path} runs {exported} x{exported_steps} (its sampler is inside the "
                f"graph), not {asked}; export the teacher with `sdm export --steps K` for DDIM "
                "K (ddpm and a teacher's naive one-step call are not exported)"
            )
        if spacing is not None or naive_timestep is not None:
            raise ValueError("spacing and naive_timestep are fixed in an exported graph")
        self.sampler, self.steps = exported, exported_steps
        self.spacing, self.naive_timestep = None, None
        self.timesteps = list(self.model.metadata.get("timesteps") or [])

    # -- inference -------------------------------------------------------------------------------
    def infer(self, noise: np.ndarray | None = None) -> ActionChunk:
        """Plan an action chunk from the current history (push at least one observation first).

        noise: (1, horizon, Da) or (horizon, Da) standard normal initial noise, used instead of
        a draw from `generator`.
        """
        self._require_history()
        for name, buffer in self._feed.items():
            for i, obs in enumerate(self._history):
                buffer[0, i] = obs[name].transpose(2, 0, 1) if name == IMAGE else obs[name]
        if noise is None:
            noise = self.generator.standard_normal(self.noise_shape())
        feed = {**self._feed, NOISE: self.check_noise(noise)}
        start = time.perf_counter()
        (action_pred,) = self.session.run([OUTPUT], feed)
        elapsed = time.perf_counter() - start
        return self._chunk(np.asarray(action_pred[0], dtype=np.float32), elapsed)
