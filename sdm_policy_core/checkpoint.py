# Copyright 2026 sdm-policy-ros maintainers
# SPDX-License-Identifier: MIT
"""Self-describing, pickle-free checkpoints: a directory, written atomically.

Layout (ARCHITECTURE.md, seam 4):

    CKPT_DIR/
      config.json                  # ExperimentConfig sections (obs = observation spec, model,
                                   # diffusion, train, distill) + kind, format_version, provenance
      model.safetensors            # tensors of named modules, prefixed: 'encoder.', 'denoiser.',
                                   # 'normalizer.' (teacher) or 'generator.', 'ema.', 'corrector.'
      training_state.safetensors   # optional, for resume: every tensor of the training state
      training_state.json          # optional: the rest of it (optimizer hyper-parameters, LR
                                   # scheduler, step, RNG states) with pointers to the tensors

Nothing here unpickles: tensors are read with safetensors, everything else is JSON. Pickle
checkpoints (`torch.save` files: .pt/.pth/.ckpt/.pkl) are refused with `CheckpointError`.

`save_checkpoint` writes into a temporary sibling directory `.{name}.tmp-XXXX`, fsyncs it, then
renames it into place; an existing checkpoint is renamed aside first and deleted only after the
new one is in place, so a crash never leaves a half-written checkpoint under `path`.

    save_checkpoint(run / "checkpoints" / "latest",
                    checkpoint_config(cfg, kind="teacher", step=step, dataset=dataset_path),
                    prefixed_state_dict({"encoder": enc, "denoiser": unet, "normalizer": norm}),
                    training_state={"step": step, "optimizer": opt.state_dict(),
                                    "lr_scheduler": sched.state_dict(),
                                    "rng": capture_rng_state()})
    ckpt = load_checkpoint(run / "checkpoints" / "latest")
    unet.load_state_dict(ckpt.sub_state_dict("denoiser."))
"""

from __future__ import annotations

import datetime as _dt
import functools
import hashlib
import json
import math
import platform
import random
import subprocess
from collections.abc import Mapping
from dataclasses import dataclass, fields
from pathlib import Path
from typing import Any

import numpy as np
import safetensors
import safetensors.torch
import torch
from torch import nn

from sdm_policy_core.atomic import atomic_directory
from sdm_policy_core.config import ExperimentConfig, from_dict

FORMAT_VERSION = 1
CONFIG_FILE = "config.json"
MODEL_FILE = "model.safetensors"
TRAINING_STATE_TENSORS = "training_state.safetensors"
TRAINING_STATE_JSON = "training_state.json"
KINDS: tuple[str, ...] = ("teacher", "sdm")
PICKLE_SUFFIXES: tuple[str, ...] = (".pt", ".pth", ".ckpt", ".pkl", ".pickle", ".bin")

# Markers of the JSON skeleton of a flattened state (see `flatten_state_dict`).
_TENSOR, _NDARRAY, _TUPLE, _DICT, _FLOAT = (
    "__tensor__",
    "__ndarray__",
    "__tuple__",
    "__dict__",
    "__float__",
)
_MARKERS = (_TENSOR, _NDARRAY, _TUPLE, _DICT, _FLOAT)


class CheckpointError(ValueError):
    """A checkpoint is missing, malformed or unsafe; the message names the file and the fix."""


@dataclass
class Checkpoint:
    """A loaded checkpoint.

    config: the parsed config.json (ExperimentConfig sections + kind, format_version, provenance).
    tensors: every tensor of model.safetensors, by prefixed name, on the requested device.
    training_state: the nested training state (see `save_checkpoint`), or None when the
        checkpoint has none or it was not requested.
    path: the checkpoint directory.
    """

    config: dict[str, Any]
    tensors: dict[str, torch.Tensor]
    training_state: dict[str, Any] | None
    path: Path

    @property
    def kind(self) -> str:
        """'teacher' or 'sdm'."""
        return str(self.config["kind"])

    def sub_state_dict(self, prefix: str) -> dict[str, torch.Tensor]:
        """Tensors whose name starts with `prefix` (e.g. 'denoiser.'), with the prefix removed.

        Raises CheckpointError when there are none (the message lists the prefixes present).
        """
        out = {k[len(prefix) :]: v for k, v in self.tensors.items() if k.startswith(prefix)}
        if not out:
            prefixes = sorted({k.split(".", 1)[0] + "." for k in self.tensors})
            raise CheckpointError(
                f"{self.path / MODEL_FILE} has no tensors under {prefix!r}; it has {prefixes}"
            )
        return out

    def experiment_config(self) -> ExperimentConfig:
        """Return the ExperimentConfig stored in config.json (validated; extra keys ignored)."""
        names = {f.name for f in fields(ExperimentConfig)}
        return from_dict(ExperimentConfig, {k: v for k, v in self.config.items() if k in names})


# ------------------------------------------------------------------------------------------------
# Provenance


@functools.lru_cache(maxsize=1)
def git_commit() -> str | None:
    """Commit of the source tree this package runs from ('<sha>' or '<sha>-dirty'), or None."""
    repo = Path(__file__).resolve().parent.parent
    try:
        sha = subprocess.run(
            ["git", "-C", str(repo), "rev-parse", "HEAD"],
            capture_output=True,
            text=True,
            timeout=5,
            check=True,
        ).stdout.strip()
        dirty = subprocess.run(
            ["git", "-C", str(repo), "status", "--porcelain", "--untracked-files=no"],
            capture_output=True,
            text=True,
            timeout=5,
            check=True,
        ).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        return None
    return f"{sha}-dirty" if dirty else sha or None


_FULL_HASH_LIMIT = 256 * 2**20  # bytes; bigger datasets get a hash of their file listing


@functools.lru_cache(maxsize=8)
def dataset_fingerprint(path: str | Path) -> dict[str, Any]:
    """{'path', 'size_bytes', 'num_files', 'sha256', 'hash_of'} of a dataset file or directory.

    Datasets up to 256 MiB are hashed by content ('content'); bigger ones by their listing of
    relative paths and sizes plus the content of their metadata files ('listing'), which takes
    milliseconds instead of minutes. Cached per path for the life of the process.
    """
    root = Path(path).resolve()
    files = [root] if root.is_file() else sorted(p for p in root.rglob("*") if p.is_file())
    sizes = [p.stat().st_size for p in files]
    total = int(sum(sizes))
    full = total <= _FULL_HASH_LIMIT
    digest = hashlib.sha256()
    for file, size in zip(files, sizes, strict=True):
        rel = file.name if file == root else file.relative_to(root).as_posix()
        digest.update(f"{rel}\0{size}\0".encode())
        if full or file.name.startswith(".z") or file.name == "zarr.json":
            with open(file, "rb") as handle:
                for block in iter(lambda h=handle: h.read(2**20), b""):
                    digest.update(block)
    return {
        "path": str(root),
        "size_bytes": total,
        "num_files": len(files),
        "sha256": digest.hexdigest(),
        "hash_of": "content" if full else "listing",
    }


def make_provenance(
    step: int, dataset: str | Path | Mapping[str, Any] | None = None, **extra: Any
) -> dict[str, Any]:
    """Build the provenance block of config.json.

    created_at (UTC, ISO 8601), git commit, step, dataset (path + fingerprint, see
    `dataset_fingerprint`), torch / numpy / python versions and `extra`.
    """
    if dataset is not None and not isinstance(dataset, Mapping):
        dataset = dataset_fingerprint(str(Path(dataset).resolve()))
    out: dict[str, Any] = {
        "created_at": _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds"),
        "git_commit": git_commit(),
        "step": int(step),
        "dataset": dict(dataset) if dataset is not None else None,
        "torch_version": torch.__version__,
        "numpy_version": np.__version__,
        "python_version": platform.python_version(),
        "host": platform.node(),
    }
    out.update(extra)
    return out


def checkpoint_config(
    experiment: ExperimentConfig | Mapping[str, Any],
    kind: str,
    step: int,
    dataset: str | Path | Mapping[str, Any] | None = None,
    normalizer: Any | None = None,
    **extra: Any,
) -> dict[str, Any]:
    """Build the config.json dict of a checkpoint.

    experiment: the run's ExperimentConfig (or its `to_dict()`); its sections become top-level
        keys ('obs' is the observation spec).
    kind: 'teacher' or 'sdm'.
    normalizer: optional LinearNormalizer; its statistics are copied under 'normalizer' for
        people reading the file (the runtime loads the tensors under 'normalizer.' instead).
    extra: more top-level keys (e.g. teacher=<path of the teacher checkpoint> for 'sdm').
    """
    if kind not in KINDS:
        raise CheckpointError(f"checkpoint kind must be one of {KINDS}, got {kind!r}")
    sections = experiment.to_dict() if isinstance(experiment, ExperimentConfig) else experiment
    config: dict[str, Any] = {"format_version": FORMAT_VERSION, "kind": kind}
    config.update(json.loads(json.dumps(sections)))
    config["provenance"] = make_provenance(step, dataset)
    if normalizer is not None:
        config["normalizer"] = {"tensors": "normalizer.", "stats": normalizer.to_json()}
    config.update(extra)
    return config


# ------------------------------------------------------------------------------------------------
# Flattening nested states (optimizer / scheduler / RNG) into tensors + JSON, without pickle


def _plain_keys(obj: dict[Any, Any]) -> bool:
    """Tell whether a dict can stay a JSON object (string keys, not mistakable for a marker)."""
    return all(isinstance(k, str) for k in obj) and not (
        len(obj) == 1 and next(iter(obj)) in _MARKERS
    )


def _join(path: str, key: Any) -> str:
    return f"{path}/{key}" if path else str(key)


def flatten_state_dict(state: Any, prefix: str = "") -> tuple[dict[str, torch.Tensor], Any]:
    """Split a nested state into (tensors, JSON-able skeleton) so it can be stored without pickle.

    Handles dicts (any keys of type str/int/float/bool/None/tuple; int keys of optimizer states
    survive), lists, tuples, torch tensors, numpy arrays and scalars, and JSON scalars (floats
    bit-exact, including inf/nan). Each tensor is replaced in the skeleton by
    {'__tensor__': name}, with name its '/'-joined path under `prefix`.
    Raises CheckpointError naming the path of any other type.
    """
    tensors: dict[str, torch.Tensor] = {}

    def walk(obj: Any, path: str) -> Any:
        if isinstance(obj, torch.Tensor):
            name = path or "tensor"
            while name in tensors:
                name += "_"
            tensors[name] = obj
            return {_TENSOR: name}
        if isinstance(obj, np.ndarray):
            name = path or "array"
            while name in tensors:
                name += "_"
            if obj.dtype.kind not in "biuf":
                raise CheckpointError(f"state {path!r}: numpy dtype {obj.dtype} cannot be stored")
            tensors[name] = torch.from_numpy(np.ascontiguousarray(obj))
            return {_NDARRAY: name}
        if isinstance(obj, np.generic):
            return walk(obj.item(), path)
        if obj is None or isinstance(obj, (bool, int, str)):
            return obj
        if isinstance(obj, float):
            return obj if math.isfinite(obj) else {_FLOAT: repr(obj)}
        if isinstance(obj, tuple):
            return {_TUPLE: [walk(v, _join(path, i)) for i, v in enumerate(obj)]}
        if isinstance(obj, list):
            return [walk(v, _join(path, i)) for i, v in enumerate(obj)]
        if isinstance(obj, Mapping):
            obj = dict(obj)
            if _plain_keys(obj):
                return {k: walk(v, _join(path, k)) for k, v in obj.items()}
            items = []
            for k, v in obj.items():
                if not (k is None or isinstance(k, (str, int, float, tuple))):
                    raise CheckpointError(
                        f"state {path!r}: dict key {k!r} of type "
                        f"{type(k).__name__} cannot be stored without pickle"
                    )
                items.append([walk(k, _join(path, "key")), walk(v, _join(path, k))])
            return {_DICT: items}
        raise CheckpointError(
            f"state {path or '<root>'!r}: a {type(obj).__name__} cannot be "
            f"stored without pickle; convert it to tensors/numbers/strings"
        )

    skeleton = walk(state, prefix.rstrip("/"))
    return tensors, skeleton


def unflatten_state_dict(skeleton: Any, tensors: Mapping[str, torch.Tensor]) -> Any:
    """Inverse of `flatten_state_dict`: rebuild the nested state from its skeleton and tensors."""

    def walk(obj: Any) -> Any:
        if isinstance(obj, list):
            return [walk(v) for v in obj]
        if not isinstance(obj, dict):
            return obj
        if len(obj) == 1:
            ((key, value),) = obj.items()
            if key in (_TENSOR, _NDARRAY):
                if value not in tensors:
                    raise CheckpointError(
                        f"training state refers to tensor {value!r}, which "
                        f"is not in {TRAINING_STATE_TENSORS}"
                    )
                tensor = tensors[value]
                return tensor.numpy() if key == _NDARRAY else tensor
            if key == _TUPLE:
                return tuple(walk(v) for v in value)
            if key == _FLOAT:
                return float(value)
            if key == _DICT:
                return {_hashable(walk(k)): walk(v) for k, v in value}
        return {k: walk(v) for k, v in obj.items()}

    return walk(skeleton)


def _hashable(key: Any) -> Any:
    return tuple(_hashable(k) for k in key) if isinstance(key, (list, tuple)) else key


# ------------------------------------------------------------------------------------------------
# RNG states


def capture_rng_state() -> dict[str, Any]:
    """Capture the global RNG states, all storable without pickle.

    torch CPU (uint8 tensor), CUDA (one per device, when CUDA is initialised), numpy's legacy
    global generator and python `random`, all storable by `flatten_state_dict` /
    `save_checkpoint` without pickle.
    """
    np_state = np.random.get_state()
    py_version, py_internal, py_gauss = random.getstate()
    state: dict[str, Any] = {
        "torch": torch.get_rng_state(),
        "numpy": {
            "bit_generator": str(np_state[0]),
            "keys": np.asarray(np_state[1]),
            "pos": int(np_state[2]),
            "has_gauss": int(np_state[3]),
            "cached_gaussian": float(np_state[4]),
        },
        "python": {"version": py_version, "internal": list(py_internal), "gauss_next": py_gauss},
    }
    if torch.cuda.is_available() and torch.cuda.is_initialized():
        state["cuda"] = list(torch.cuda.get_rng_state_all())
    return state


def restore_rng_state(state: Mapping[str, Any]) -> None:
    """Set the global RNGs from `capture_rng_state()` output.

    Missing entries are left alone; CUDA states are restored for as many devices as both
    sides have.
    """
    if "torch" in state:
        torch.set_rng_state(torch.as_tensor(state["torch"], dtype=torch.uint8).cpu())
    if "numpy" in state:
        s = state["numpy"]
        np.random.set_state(
            (
                s["bit_generator"],
                np.asarray(s["keys"], dtype=np.uint32),
                int(s["pos"]),
                int(s["has_gauss"]),
                float(s["cached_gaussian"]),
            )
        )
    if "python" in state:
        s = state["python"]
        random.setstate((s["version"], tuple(s["internal"]), s["gauss_next"]))
    if state.get("cuda") and torch.cuda.is_available():
        cuda_states = list(state["cuda"])[: torch.cuda.device_count()]
        for device, cuda_state in enumerate(cuda_states):
            torch.cuda.set_rng_state(torch.as_tensor(cuda_state, dtype=torch.uint8), device)


def _interrupted_hint(path: Path) -> str:
    olds = sorted(path.parent.glob(f".{path.name}.old-*")) if path.parent.is_dir() else []
    if not olds:
        return ""
    return (
        f" (a save was interrupted while replacing it; the previous version is at "
        f"{olds[-1]}: rename it to {path.name} to recover)"
    )


# ------------------------------------------------------------------------------------------------
# Save / load


def prefixed_state_dict(
    parts: Mapping[str, nn.Module | Mapping[str, torch.Tensor]],
) -> dict[str, torch.Tensor]:
    """Merge modules' state dicts: {'encoder': module, ...} -> {'encoder.<param>': tensor, ...}."""
    out: dict[str, torch.Tensor] = {}
    for prefix, part in parts.items():
        state = part.state_dict() if isinstance(part, nn.Module) else part
        for name, tensor in state.items():
            out[f"{prefix}.{name}"] = tensor
    return out


def _storable(tensors: Mapping[str, torch.Tensor], what: str) -> dict[str, torch.Tensor]:
    """Detached, contiguous CPU tensors that share no memory (as safetensors requires)."""
    out: dict[str, torch.Tensor] = {}
    seen: set[int] = set()
    for name, tensor in tensors.items():
        if not isinstance(name, str):
            raise CheckpointError(f"{what}: tensor names must be strings, got {name!r}")
        if not isinstance(tensor, torch.Tensor):
            raise CheckpointError(f"{what}: {name!r} is a {type(tensor).__name__}, not a tensor")
        t = tensor.detach().to("cpu").contiguous()
        if t.is_sparse or t.layout != torch.strided:
            raise CheckpointError(f"{what}: {name!r} has layout {t.layout}; save it dense")
        storage = t.untyped_storage()
        if t.numel() and (
            storage.data_ptr() in seen or storage.nbytes() != t.numel() * t.element_size()
        ):
            t = t.clone()
            storage = t.untyped_storage()
        if t.numel():
            seen.add(storage.data_ptr())
        out[name] = t
    return out


def _write_tensors(tensors: dict[str, torch.Tensor], path: Path) -> None:
    safetensors.torch.save_file(tensors, str(path), metadata={"format": "pt"})


def _write_json(data: Any, path: Path) -> None:
    with open(path, "w", encoding="utf-8") as handle:
        json.dump(data, handle, indent=2, sort_keys=False)
        handle.write("\n")


def save_checkpoint(
    path: str | Path,
    config_dict: Mapping[str, Any],
    tensors: Mapping[str, torch.Tensor],
    training_state: Mapping[str, Any] | None = None,
) -> dict[str, Any]:
    """Write a checkpoint directory atomically and return the config dict written.

    path: the checkpoint directory (e.g. RUN_DIR/checkpoints/latest). An existing directory is
        replaced only if it is empty or a checkpoint (has config.json or model.safetensors).
    config_dict: JSON-able config (see `checkpoint_config`); must hold 'kind' ('teacher' or
        'sdm'). 'format_version' and the basic provenance (created_at, torch version, git
        commit) are filled in when absent.
    tensors: name -> tensor, named with module prefixes ('denoiser.mid.0.weight').
    training_state: optional nested dict for resuming, e.g. {'step', 'optimizer':
        opt.state_dict(), 'lr_scheduler': sched.state_dict(), 'rng': capture_rng_state()}
        (see `flatten_state_dict` for what it may hold).
    Raises CheckpointError on bad input; on any failure an existing checkpoint stays intact.
    """
    path = Path(path)
    config = dict(config_dict)
    config.setdefault("format_version", FORMAT_VERSION)
    if config.get("kind") not in KINDS:
        raise CheckpointError(
            f"config_dict['kind'] must be one of {KINDS}, got {config.get('kind')!r}"
        )
    provenance = dict(config.get("provenance") or {})
    provenance.setdefault(
        "created_at", _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds")
    )
    provenance.setdefault("torch_version", torch.__version__)
    provenance.setdefault("git_commit", git_commit())
    config["provenance"] = provenance
    try:
        config = json.loads(json.dumps(config, allow_nan=False))
    except (TypeError, ValueError) as err:
        raise CheckpointError(f"config_dict is not JSON-serialisable: {err}") from None
    model_tensors = _storable(tensors, MODEL_FILE)
    if training_state is not None:
        state_tensors, skeleton = flatten_state_dict(dict(training_state))
        state_tensors = _storable(state_tensors, TRAINING_STATE_TENSORS)
    if path.is_symlink() or (path.exists() and not path.is_dir()):
        raise CheckpointError(f"{path} exists and is not a directory; refusing to replace it")
    if (
        path.is_dir()
        and any(path.iterdir())
        and not ((path / CONFIG_FILE).exists() or (path / MODEL_FILE).exists())
    ):
        raise CheckpointError(
            f"{path} is a non-empty directory that is not a checkpoint; "
            f"refusing to replace it (choose another path)"
        )
    with atomic_directory(path) as tmp:
        _write_tensors(model_tensors, tmp / MODEL_FILE)
        if training_state is not None:
            _write_tensors(state_tensors, tmp / TRAINING_STATE_TENSORS)
            _write_json(
                {"format_version": FORMAT_VERSION, "state": skeleton}, tmp / TRAINING_STATE_JSON
            )
        _write_json(config, tmp / CONFIG_FILE)  # last: its presence marks a complete write
    return config


def _looks_like_pickle(path: Path) -> bool:
    if path.suffix.lower() in PICKLE_SUFFIXES:
        return True
    try:
        with open(path, "rb") as handle:
            head = handle.read(4)
    except OSError:
        return False
    return head[:1] == b"\x80" or head == b"PK\x03\x04"  # pickle protocol >= 2, torch zip


def _pickle_refusal(path: Path) -> CheckpointError:
    return CheckpointError(
        f"{path} is a pickle checkpoint (torch.save/.pt/.pth/.ckpt/.pkl). Pickle checkpoints "
        f"are refused for security: loading one can execute arbitrary code. To convert it, "
        f"load it yourself in a trusted environment (torch.load(path, weights_only=True) where "
        f"possible) and write its tensors with sdm_policy_core.checkpoint.save_checkpoint, "
        f"which stores config.json + model.safetensors."
    )


def _read_json(path: Path) -> Any:
    try:
        with open(path, encoding="utf-8") as handle:
            return json.load(handle)
    except json.JSONDecodeError as err:
        raise CheckpointError(
            f"{path} is not valid JSON ({err}); the checkpoint is corrupt "
            f"or was not written by save_checkpoint"
        ) from None
    except (OSError, UnicodeDecodeError) as err:
        raise CheckpointError(f"cannot read {path}: {err}") from None


def _read_tensors(path: Path, device: str | torch.device) -> dict[str, torch.Tensor]:
    try:
        return safetensors.torch.load_file(str(path), device=str(device))
    except (safetensors.SafetensorError, OSError, ValueError) as err:
        raise CheckpointError(
            f"{path} is not a readable safetensors file ({err}); the "
            f"checkpoint is corrupt or incomplete"
        ) from None


def load_checkpoint(
    path: str | Path,
    device: str | torch.device = "cpu",
    load_training_state: bool = True,
) -> Checkpoint:
    """Read a checkpoint directory written by `save_checkpoint`; never unpickles anything.

    device: where the model tensors are placed (training-state tensors stay on the CPU).
    load_training_state: False skips the resume state (deployment).
    Raises CheckpointError naming the file and what is wrong (missing, corrupt, pickle, from a
    newer format).
    """
    path = Path(path)
    if not path.exists():
        raise CheckpointError(f"checkpoint {path} does not exist{_interrupted_hint(path)}")
    if not path.is_dir():
        if _looks_like_pickle(path):
            raise _pickle_refusal(path)
        hint = (
            f"; pass its directory {path.parent}" if path.name in (MODEL_FILE, CONFIG_FILE) else ""
        )
        raise CheckpointError(
            f"checkpoint {path} is a file; a checkpoint is a directory with "
            f"{CONFIG_FILE} and {MODEL_FILE}{hint}"
        )
    model_path, config_path = path / MODEL_FILE, path / CONFIG_FILE
    if not model_path.exists():
        pickles = sorted(
            p.name for p in path.iterdir() if p.is_file() and p.suffix.lower() in PICKLE_SUFFIXES
        )
        if pickles:
            raise _pickle_refusal(path / pickles[0])
    if not config_path.is_file():
        raise CheckpointError(
            f"checkpoint {path} has no {CONFIG_FILE}; it is incomplete or "
            f"not a checkpoint directory"
        )
    config = _read_json(config_path)
    if not isinstance(config, dict):
        raise CheckpointError(
            f"{config_path} must hold a JSON object, got {type(config).__name__}"
        )
    version = config.get("format_version")
    if not isinstance(version, int) or isinstance(version, bool):
        raise CheckpointError(
            f"{config_path} has no integer 'format_version'; it was not written by save_checkpoint"
        )
    if version > FORMAT_VERSION:
        raise CheckpointError(
            f"{config_path} has format_version {version}, newer than this "
            f"code reads ({FORMAT_VERSION}); update sdm-policy"
        )
    if config.get("kind") not in KINDS:
        raise CheckpointError(
            f"{config_path}: 'kind' must be one of {KINDS}, got {config.get('kind')!r}"
        )
    if not model_path.is_file():
        raise CheckpointError(f"checkpoint {path} has no {MODEL_FILE} (the model tensors)")
    tensors = _read_tensors(model_path, device)
    training_state = None
    state_json, state_tensors = path / TRAINING_STATE_JSON, path / TRAINING_STATE_TENSORS
    if load_training_state and (state_json.exists() or state_tensors.exists()):
        for needed in (state_json, state_tensors):
            if not needed.is_file():
                raise CheckpointError(
                    f"checkpoint {path} has a partial training state: {needed.name} is missing"
                )
        meta = _read_json(state_json)
        if not isinstance(meta, dict) or "state" not in meta:
            raise CheckpointError(f"{state_json} must hold an object with a 'state' entry")
        training_state = unflatten_state_dict(meta["state"], _read_tensors(state_tensors, "cpu"))
    return Checkpoint(config=config, tensors=tensors, training_state=training_state, path=path)
