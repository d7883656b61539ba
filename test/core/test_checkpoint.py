# Copyright 2026 sdm-policy-ros maintainers
# SPDX-License-Identifier: MIT
"""Checkpoints, training-state round trips, RNG state and the checkpoints' normaliser.

Checkpoints (safetensors + JSON, atomic, no pickle), training-state round trips, RNG state and
the linear normaliser that checkpoints carry.
"""

from __future__ import annotations

import json
import pickle
import random
from pathlib import Path

import numpy as np
import pytest
import torch
from torch import nn

from sdm_policy_core import atomic as atomic_mod
from sdm_policy_core import checkpoint as ckpt_mod
from sdm_policy_core.checkpoint import (
    CheckpointError,
    capture_rng_state,
    checkpoint_config,
    flatten_state_dict,
    load_checkpoint,
    prefixed_state_dict,
    restore_rng_state,
    save_checkpoint,
    unflatten_state_dict,
)
from sdm_policy_core.config import ExperimentConfig
from sdm_policy_core.normalizer import LinearNormalizer


def _tensors() -> dict[str, torch.Tensor]:
    g = torch.Generator().manual_seed(0)
    return {
        "encoder.mlp.0.weight": torch.randn(8, 3, generator=g),
        "denoiser.bias": torch.randn(5, generator=g, dtype=torch.float64),
        "denoiser.half": torch.randn(4, 2, generator=g).to(torch.bfloat16),
        "denoiser.count": torch.tensor(7, dtype=torch.int64),
        "denoiser.mask": torch.tensor([True, False, True]),
        "denoiser.empty": torch.zeros(0, 3),
    }


def _config(step: int = 10) -> dict:
    return checkpoint_config(ExperimentConfig(), kind="teacher", step=step)


def _assert_tensors_equal(a: dict[str, torch.Tensor], b: dict[str, torch.Tensor]) -> None:
    assert set(a) == set(b)
    for key in a:
        assert a[key].dtype == b[key].dtype, key
        assert a[key].shape == b[key].shape, key
        assert torch.equal(a[key], b[key]), key


# ------------------------------------------------------------------------------------------------
# Save / load


def test_save_load_is_bitwise_equal(tmp_path: Path) -> None:
    tensors = _tensors()
    written = save_checkpoint(tmp_path / "ckpt", _config(), tensors)
    loaded = load_checkpoint(tmp_path / "ckpt")
    _assert_tensors_equal(tensors, loaded.tensors)
    assert loaded.config == written
    assert loaded.config == json.loads((tmp_path / "ckpt" / "config.json").read_text())
    assert loaded.training_state is None
    assert loaded.kind == "teacher"
    assert written["format_version"] == ckpt_mod.FORMAT_VERSION
    prov = written["provenance"]
    assert prov["step"] == 10 and prov["torch_version"] == torch.__version__
    assert prov["created_at"]
    assert loaded.experiment_config() == ExperimentConfig()
    assert set(loaded.sub_state_dict("denoiser.")) == {"bias", "half", "count", "mask", "empty"}
    with pytest.raises(CheckpointError, match="generator"):
        loaded.sub_state_dict("generator.")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["ckpt"]  # no temp dirs left


def test_module_state_round_trip_with_shared_and_view_tensors(tmp_path: Path) -> None:
    torch.manual_seed(0)
    model = nn.Sequential(nn.Linear(3, 4), nn.ReLU(), nn.Linear(4, 3))
    model[2].weight = nn.Parameter(model[0].weight.t())  # a transposed view of another weight
    base = torch.arange(12.0)
    tensors = prefixed_state_dict({"generator": model, "extra": {"view": base[2:5]}})
    tensors["extra.same"] = base  # shares memory with extra.view
    save_checkpoint(tmp_path / "c", checkpoint_config({}, kind="sdm", step=0), tensors)
    loaded = load_checkpoint(tmp_path / "c")
    _assert_tensors_equal({k: v.detach() for k, v in tensors.items()}, loaded.tensors)
    fresh = nn.Sequential(nn.Linear(3, 4), nn.ReLU(), nn.Linear(4, 3))
    fresh.load_state_dict(loaded.sub_state_dict("generator."))
    for a, b in zip(fresh.state_dict().values(), model.state_dict().values(), strict=True):
        assert torch.equal(a, b)
    x = torch.randn(2, 3)  # the original's transposed weight sums in another order: allclose
    assert torch.allclose(fresh(x), model(x), atol=1e-6)


def test_dataset_provenance_and_normalizer_stats(tmp_path: Path) -> None:
    data = tmp_path / "demo.zarr"
    data.mkdir()
    (data / ".zgroup").write_text('{"zarr_format": 2}')
    (data / "chunk").write_bytes(b"x" * 100)
    norm = LinearNormalizer().fit({"action": np.random.default_rng(0).normal(size=(50, 2))})
    config = checkpoint_config(
        ExperimentConfig(), kind="teacher", step=3, dataset=data, normalizer=norm
    )
    tensors = prefixed_state_dict({"normalizer": norm})
    save_checkpoint(tmp_path / "ckpt", config, tensors)
    loaded = load_checkpoint(tmp_path / "ckpt")
    dataset = loaded.config["provenance"]["dataset"]
    assert dataset["path"] == str(data.resolve())
    assert dataset["size_bytes"] == 100 + len('{"zarr_format": 2}')
    assert len(dataset["sha256"]) == 64 and dataset["hash_of"] == "content"
    assert loaded.config["normalizer"]["stats"]["action"]["mode"] == "limits"
    restored = LinearNormalizer()
    restored.load_state_dict(loaded.sub_state_dict("normalizer."))
    x = torch.randn(4, 2)
    assert torch.equal(restored.normalize("action", x), norm.normalize("action", x))


def test_replace_existing_checkpoint(tmp_path: Path) -> None:
    path = tmp_path / "latest"
    save_checkpoint(path, _config(1), {"w": torch.zeros(3)})
    save_checkpoint(path, _config(2), {"w": torch.ones(3)})
    loaded = load_checkpoint(path)
    assert loaded.config["provenance"]["step"] == 2
    assert torch.equal(loaded.tensors["w"], torch.ones(3))
    assert sorted(p.name for p in tmp_path.iterdir()) == ["latest"]


def test_failure_mid_write_keeps_old_checkpoint(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = tmp_path / "latest"
    save_checkpoint(path, _config(1), {"w": torch.zeros(3)})
    before = {p.name: p.read_bytes() for p in path.iterdir()}

    def failing_write(tensors: dict, file: Path) -> None:
        file.write_bytes(b"half a safetensors file")  # partial output, then the disk "fails"
        raise OSError("simulated: no space left on device")

    monkeypatch.setattr(ckpt_mod, "_write_tensors", failing_write)
    with pytest.raises(OSError, match="simulated"):
        save_checkpoint(path, _config(2), {"w": torch.ones(3)})
    assert {p.name: p.read_bytes() for p in path.iterdir()} == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["latest"]  # temp dir removed
    monkeypatch.undo()
    assert torch.equal(load_checkpoint(path).tensors["w"], torch.zeros(3))


def test_failure_during_swap_restores_old_checkpoint(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = tmp_path / "latest"
    save_checkpoint(path, _config(1), {"w": torch.zeros(3)})
    real_rename = atomic_mod.os.rename

    def rename(src, dst):  # the move of the new checkpoint into place fails
        if ".tmp-" in str(src):
            raise OSError("simulated rename failure")
        return real_rename(src, dst)

    monkeypatch.setattr(atomic_mod.os, "rename", rename)
    with pytest.raises(OSError, match="simulated"):
        save_checkpoint(path, _config(2), {"w": torch.ones(3)})
    monkeypatch.undo()
    assert load_checkpoint(path).config["provenance"]["step"] == 1
    assert sorted(p.name for p in tmp_path.iterdir()) == ["latest"]


def test_refuses_to_replace_non_checkpoint_directory(tmp_path: Path) -> None:
    run_dir = tmp_path / "run"
    run_dir.mkdir()
    (run_dir / "metrics.csv").write_text("step,loss\n")
    with pytest.raises(CheckpointError, match="not a checkpoint"):
        save_checkpoint(run_dir, _config(), {"w": torch.zeros(1)})
    assert (run_dir / "metrics.csv").exists()


def test_save_rejects_bad_input(tmp_path: Path) -> None:
    with pytest.raises(CheckpointError, match="kind"):
        save_checkpoint(tmp_path / "a", {"format_version": 1}, {"w": torch.zeros(1)})
    with pytest.raises(CheckpointError, match="JSON"):
        save_checkpoint(tmp_path / "b", {"kind": "sdm", "x": object()}, {})
    with pytest.raises(CheckpointError, match="not a tensor"):
        save_checkpoint(tmp_path / "c", {"kind": "sdm"}, {"w": [1.0]})
    with pytest.raises(CheckpointError, match="without pickle"):
        save_checkpoint(tmp_path / "d", {"kind": "sdm"}, {}, training_state={"f": len})
    assert list(tmp_path.iterdir()) == []


# ------------------------------------------------------------------------------------------------
# Pickles are refused and never executed


class _Payload:
    """Unpickling this creates `marker`: proof that code from a pickle ran."""

    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self):
        return (Path.touch, (self.marker,))


def test_payload_is_live(tmp_path: Path) -> None:
    """The malicious pickle of the next test really does run code when unpickled."""
    marker = tmp_path / "ran"
    pickle.loads(pickle.dumps(_Payload(marker)))
    assert marker.exists()


@pytest.mark.parametrize("name", ["model.pt", "model.ckpt", "weights.bin"])
def test_pickle_file_is_refused_without_executing(tmp_path: Path, name: str) -> None:
    marker = tmp_path / "pwned"
    file = tmp_path / name
    torch.save({"state_dict": {"w": torch.zeros(2)}, "evil": _Payload(marker)}, file)
    with pytest.raises(CheckpointError, match="pickle") as info:
        load_checkpoint(file)
    assert "safetensors" in str(info.value) and "trusted" in str(info.value)
    assert not marker.exists()


def test_directory_with_only_pickle_is_refused(tmp_path: Path) -> None:
    marker = tmp_path / "pwned"
    run = tmp_path / "run"
    run.mkdir()
    (run / "config.json").write_text(json.dumps(_config()))
    with open(run / "policy.pkl", "wb") as handle:
        pickle.dump(_Payload(marker), handle)
    with pytest.raises(CheckpointError, match="pickle"):
        load_checkpoint(run)
    assert not marker.exists()


def test_pickle_with_unknown_suffix_is_refused(tmp_path: Path) -> None:
    marker = tmp_path / "pwned"
    file = tmp_path / "latest"
    torch.save(_Payload(marker), file)
    with pytest.raises(CheckpointError, match="pickle"):
        load_checkpoint(file)
    assert not marker.exists()


# ------------------------------------------------------------------------------------------------
# Malformed checkpoints name the file and the problem


def test_missing_and_corrupt_files(tmp_path: Path) -> None:
    with pytest.raises(CheckpointError, match="does not exist"):
        load_checkpoint(tmp_path / "nope")
    path = tmp_path / "ckpt"
    save_checkpoint(
        path, _config(), {"w": torch.zeros(3)}, training_state={"step": 1, "m": torch.ones(2)}
    )

    (path / "config.json").write_text("{not json")
    with pytest.raises(CheckpointError, match=r"config\.json is not valid JSON"):
        load_checkpoint(path)
    (path / "config.json").write_text("[1, 2]")
    with pytest.raises(CheckpointError, match="JSON object"):
        load_checkpoint(path)
    (path / "config.json").write_text(json.dumps({"kind": "teacher"}))
    with pytest.raises(CheckpointError, match="format_version"):
        load_checkpoint(path)
    (path / "config.json").write_text(json.dumps({"kind": "teacher", "format_version": 99}))
    with pytest.raises(CheckpointError, match="newer"):
        load_checkpoint(path)
    (path / "config.json").unlink()
    with pytest.raises(CheckpointError, match=r"no config\.json"):
        load_checkpoint(path)
    (path / "config.json").write_text(json.dumps(_config()))

    (path / "training_state.json").unlink()
    with pytest.raises(CheckpointError, match=r"training_state\.json is missing"):
        load_checkpoint(path)
    assert load_checkpoint(path, load_training_state=False).training_state is None

    (path / "model.safetensors").write_bytes(b"\x00" * 3)
    with pytest.raises(CheckpointError, match=r"model\.safetensors is not a readable"):
        load_checkpoint(path)
    (path / "model.safetensors").unlink()
    with pytest.raises(CheckpointError, match=r"no model\.safetensors"):
        load_checkpoint(path)
    with pytest.raises(CheckpointError, match="pass its directory"):
        load_checkpoint(path / "config.json")


def test_interrupted_swap_is_reported(tmp_path: Path) -> None:
    save_checkpoint(tmp_path / "latest", _config(), {"w": torch.zeros(1)})
    (tmp_path / "latest").rename(tmp_path / ".latest.old-1234abcd")
    with pytest.raises(CheckpointError, match=r"\.latest\.old-1234abcd"):
        load_checkpoint(tmp_path / "latest")


# ------------------------------------------------------------------------------------------------
# Training state: optimizer, scheduler, RNG


def _train_steps(model: nn.Module, opt: torch.optim.Optimizer, sched, n: int, seed: int) -> None:
    g = torch.Generator().manual_seed(seed)
    for _ in range(n):
        x = torch.randn(16, 4, generator=g)
        loss = ((model(x) - x.sum(dim=1, keepdim=True)) ** 2).mean()
        opt.zero_grad()
        loss.backward()
        opt.step()
        sched.step()


def _make(opt_cls):
    torch.manual_seed(0)
    model = nn.Sequential(nn.Linear(4, 8), nn.Tanh(), nn.Linear(8, 1))
    opt = opt_cls(model.parameters(), lr=1e-2, betas=(0.95, 0.999), weight_decay=1e-3)
    sched = torch.optim.lr_scheduler.LambdaLR(opt, lambda step: 1.0 / (1 + step))
    return model, opt, sched


@pytest.mark.parametrize("opt_cls", [torch.optim.Adam, torch.optim.AdamW])
def test_optimizer_resume_continues_identically(tmp_path: Path, opt_cls) -> None:
    model, opt, sched = _make(opt_cls)
    _train_steps(model, opt, sched, 3, seed=1)
    state = {"step": 3, "optimizer": opt.state_dict(), "lr_scheduler": sched.state_dict()}
    save_checkpoint(tmp_path / "ckpt", _config(3), prefixed_state_dict({"model": model}), state)

    loaded = load_checkpoint(tmp_path / "ckpt")
    model2, opt2, sched2 = _make(opt_cls)
    model2.load_state_dict(loaded.sub_state_dict("model."))
    opt2.load_state_dict(loaded.training_state["optimizer"])
    sched2.load_state_dict(loaded.training_state["lr_scheduler"])
    assert loaded.training_state["step"] == 3
    assert set(opt2.state_dict()["state"]) == {0, 1, 2, 3}  # int keys survived JSON

    _train_steps(model, opt, sched, 3, seed=2)
    _train_steps(model2, opt2, sched2, 3, seed=2)
    for p1, p2 in zip(model.parameters(), model2.parameters(), strict=True):
        assert torch.equal(p1, p2)
    assert sched.get_last_lr() == sched2.get_last_lr()


def test_flatten_round_trip_keeps_types() -> None:
    state = {
        "ints": {0: torch.arange(3), 5: {"x": 1.5}},
        "tuple": (0.9, 0.999),
        "nested": [{"a": None, "b": True}, "s", float("inf"), float("nan")],
        "array": np.arange(4, dtype=np.uint32),
        "np_scalar": np.float32(0.25),
        "tuple_keys": {(1, 2): "pair"},
        "__tensor__": "not a pointer",
        "tricky": {"__tensor__": "looks like a marker"},
    }
    tensors, skeleton = flatten_state_dict(state)
    restored = unflatten_state_dict(json.loads(json.dumps(skeleton)), tensors)
    assert torch.equal(restored["ints"][0], torch.arange(3))
    assert restored["ints"][5] == {"x": 1.5}
    assert restored["tuple"] == (0.9, 0.999) and isinstance(restored["tuple"], tuple)
    assert restored["nested"][:3] == [{"a": None, "b": True}, "s", float("inf")]
    assert np.isnan(restored["nested"][3])
    assert restored["array"].dtype == np.uint32
    assert np.array_equal(restored["array"], np.arange(4))
    assert restored["np_scalar"] == 0.25
    assert restored["tuple_keys"] == {(1, 2): "pair"}
    assert restored["__tensor__"] == "not a pointer"
    assert restored["tricky"] == {"__tensor__": "looks like a marker"}


def _draw() -> tuple:
    return (
        torch.rand(5),
        np.random.rand(5),
        [random.random() for _ in range(5)],
        np.random.randn(3),
    )


def test_rng_capture_restore_through_checkpoint(tmp_path: Path) -> None:
    torch.manual_seed(123)
    np.random.seed(123)
    random.seed(123)
    np.random.randn()  # leaves a cached gaussian in numpy's state
    random.gauss(0, 1)
    state = capture_rng_state()
    expected = _draw()
    save_checkpoint(tmp_path / "c", _config(), {}, training_state={"rng": state})
    _draw()  # move every generator on
    restore_rng_state(load_checkpoint(tmp_path / "c").training_state["rng"])
    got = _draw()
    assert torch.equal(got[0], expected[0])
    assert np.array_equal(got[1], expected[1])
    assert got[2] == expected[2]
    assert np.array_equal(got[3], expected[3])


# ------------------------------------------------------------------------------------------------
# Normaliser


def test_normalizer_round_trip_and_range() -> None:
    rng = np.random.default_rng(0)
    action = rng.uniform([-3.0, 0.0, 10.0], [5.0, 0.01, 20.0], size=(200, 3)).astype(np.float32)
    cloud = rng.normal(size=(20, 64, 3)).astype(np.float32)
    norm = LinearNormalizer().fit(
        {"action": action, "point_cloud": cloud}, mode={"point_cloud": "identity"}
    )
    x = torch.from_numpy(action)
    y = norm.normalize("action", x)
    assert y.dtype == torch.float32
    assert torch.all(y >= -1 - 1e-6) and torch.all(y <= 1 + 1e-6)
    assert torch.allclose(y.min(0).values, torch.full((3,), -1.0), atol=1e-6)
    assert torch.allclose(y.max(0).values, torch.full((3,), 1.0), atol=1e-6)
    assert torch.allclose(norm.unnormalize("action", y), x, atol=1e-5, rtol=1e-6)
    batch = x.reshape(20, 10, 3)  # any leading shape
    assert torch.allclose(norm.normalize("action", batch), y.reshape(20, 10, 3))
    assert np.allclose(norm.normalize("action", action), y.numpy(), atol=1e-6)  # numpy in/out
    assert torch.equal(
        norm.normalize("point_cloud", torch.from_numpy(cloud)), torch.from_numpy(cloud)
    )
    assert norm.mode("point_cloud") == "identity" and norm.keys() == ["action", "point_cloud"]
    with pytest.raises(ValueError, match="3 features"):
        norm.normalize("action", torch.zeros(2, 4))
    with pytest.raises(KeyError, match="agent_pos"):
        norm.normalize("agent_pos", torch.zeros(2, 3))


def test_normalizer_degenerate_dims() -> None:
    state = np.stack([np.linspace(0, 1, 50), np.full(50, 0.7), np.full(50, -2.0)], axis=1)
    norm = LinearNormalizer().fit({"agent_pos": state})
    x = torch.tensor(state, dtype=torch.float32)
    y = norm.normalize("agent_pos", x)
    assert torch.all(torch.isfinite(y))
    assert torch.allclose(y[:, 1:], torch.zeros(50, 2))  # constants map to 0
    back = norm.unnormalize("agent_pos", torch.zeros(1, 3))
    assert torch.allclose(back[0, 1:], torch.tensor([0.7, -2.0]))  # and back to the constant
    assert torch.allclose(norm.unnormalize("agent_pos", y), x, atol=1e-6)


def test_normalizer_state_dict_and_json() -> None:
    rng = np.random.default_rng(1)
    norm = LinearNormalizer().fit(
        {"action": rng.normal(size=(30, 2)), "agent_pos": rng.normal(size=(30, 4))}
    )
    state = norm.state_dict()
    assert set(state) == {
        f"{k}.{s}"
        for k in ("action", "agent_pos")
        for s in ("scale", "offset", "min", "max", "mean", "std")
    }
    assert all(v.dtype == torch.float32 for v in state.values())

    class Policy(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.normalizer = LinearNormalizer()
            self.head = nn.Linear(2, 2)

    policy = Policy()
    policy.normalizer = norm
    fresh = Policy()  # unfitted normaliser: loading through the parent rebuilds it
    fresh.load_state_dict(policy.state_dict())
    x = torch.randn(3, 4)
    assert torch.equal(fresh.normalizer.normalize("agent_pos", x), norm.normalize("agent_pos", x))
    from_json = LinearNormalizer.from_json(json.dumps(norm.to_json()))
    assert torch.equal(from_json.normalize("agent_pos", x), norm.normalize("agent_pos", x))
