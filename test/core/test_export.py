# Copyright 2026 sdm-policy-ros maintainers
# SPDX-License-Identifier: MIT
"""`sdm export`: ONNX / TorchScript graphs that reproduce the PyTorch policies."""

from __future__ import annotations

import hashlib
import json
import re
from pathlib import Path

import numpy as np
import onnxruntime as ort
import pytest
import torch

from sdm_policy_core import export
from sdm_policy_core.checkpoint import checkpoint_config, prefixed_state_dict, save_checkpoint
from sdm_policy_core.cli import main as sdm
from sdm_policy_core.config import load_config
from sdm_policy_core.models.keys import ACTION
from sdm_policy_core.policies.loading import load_policy
from sdm_policy_core.policies.sdm_policy import SdmPolicy
from sdm_policy_core.runtime import PolicyRuntime

TOL = 1e-4
H, DA, TO = 8, 4, 2  # horizon, action dim, n_obs_steps of the fixtures


def _observations(seed: int) -> list[dict[str, np.ndarray]]:
    """Two observation steps (a history of To = 2), as a robot would send them."""
    rng = np.random.default_rng(seed)
    return [
        {
            "point_cloud": rng.uniform(-0.5, 0.5, (32, 3)).astype(np.float32),
            "agent_pos": rng.uniform(-0.5, 0.5, 4).astype(np.float32),
        }
        for _ in range(TO)
    ]


def _feed(history: list[dict[str, np.ndarray]], noise: torch.Tensor) -> dict[str, np.ndarray]:
    """Return the exported graph's inputs: each key stacked over time, batch 1."""
    feed = {k: np.stack([obs[k] for obs in history])[None] for k in history[0]}
    feed["noise"] = noise.numpy()
    return feed


def _onnx(path: Path, feed: dict[str, np.ndarray]) -> np.ndarray:
    session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    assert [i.name for i in session.get_inputs()] == list(feed)
    return session.run(["action_pred"], feed)[0]


def _policy_actions(policy, feed: dict[str, np.ndarray], steps: int | None = None) -> np.ndarray:
    """(1, H, Da) actions of the PyTorch policy for these inputs and this noise."""
    obs = {k: torch.from_numpy(v) for k, v in feed.items() if k != "noise"}
    noise = torch.from_numpy(feed["noise"])
    with torch.inference_mode():
        cond = policy.encode(obs)
        if steps is None:  # SDM: one generator call, clamped as SdmPolicy.predict_action does
            naction = policy.sample_normalized(cond, initial_noise=noise).clamp(-1.0, 1.0)
        else:
            naction = policy.sample_normalized(cond, "ddim", steps, initial_noise=noise)
        return policy.normalizer.unnormalize(ACTION, naction).numpy()


@pytest.fixture(scope="module")
def sdm_onnx(sdm_ckpt, tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("export") / "sdm.onnx"
    args = ["export", "--checkpoint", str(sdm_ckpt), "--format", "onnx", "--out", str(out)]
    assert sdm(args) == 0
    return out


def test_sdm_onnx_equals_the_runtime_for_the_same_noise(sdm_onnx, sdm_ckpt):
    # The runtime draws its one-step noise from torch.Generator(seed); draw the same here.
    runtime = PolicyRuntime(sdm_ckpt, threads=1, seed=7, warmup=False)
    history = _observations(seed=11)
    for obs in history:
        runtime.push(obs)
    chunk = runtime.infer()
    noise = torch.randn((1, H, DA), generator=torch.Generator().manual_seed(7))
    feed = _feed(history, noise)
    got = _onnx(sdm_onnx, feed)
    assert got.shape == (1, H, DA) and got.dtype == np.float32
    np.testing.assert_allclose(got[0], chunk.action_pred, rtol=0, atol=TOL)
    # ... and to SdmPolicy's own one-step path on another fresh noise tensor.
    policy = load_policy(sdm_ckpt)
    feed = _feed(history, torch.randn((1, H, DA), generator=torch.Generator().manual_seed(99)))
    np.testing.assert_allclose(_onnx(sdm_onnx, feed), _policy_actions(policy, feed), atol=TOL)
    # The noise is a real input: another noise tensor gives other actions.
    assert np.abs(_onnx(sdm_onnx, feed) - got).max() > 1e-3


def test_sidecar_describes_the_export(sdm_onnx, sdm_ckpt):
    meta = json.loads(sdm_onnx.with_name("sdm.onnx.json").read_text())
    assert meta["format"] == "onnx" and meta["file"] == "sdm.onnx" and meta["opset"] == 17
    assert meta["checkpoint"] == str(Path(sdm_ckpt).resolve())
    assert (meta["kind"], meta["sampler"], meta["steps"]) == ("sdm", "one-step", 1)
    assert meta["inputs"] == [
        {"name": "point_cloud", "shape": [1, TO, 32, 3], "dtype": "float32"},
        {"name": "agent_pos", "shape": [1, TO, 4], "dtype": "float32"},
        {"name": "noise", "shape": [1, H, DA], "dtype": "float32"},
    ]
    assert meta["output"] == {"name": "action_pred", "shape": [1, H, DA], "dtype": "float32"}
    assert (meta["n_obs_steps"], meta["n_action_steps"], meta["action_start"]) == (TO, 4, 1)
    assert 0 <= meta["max_abs_diff"] <= TOL and meta["tolerance"] == TOL
    assert meta["sha256"] == hashlib.sha256(sdm_onnx.read_bytes()).hexdigest()
    # The graph's own signature agrees with the sidecar.
    session = ort.InferenceSession(str(sdm_onnx), providers=["CPUExecutionProvider"])
    assert [(i.name, i.shape) for i in session.get_inputs()] == [
        (i["name"], i["shape"]) for i in meta["inputs"]
    ]
    assert [o.name for o in session.get_outputs()] == ["action_pred"]


@pytest.mark.filterwarnings("ignore:`torch.jit.load` is deprecated:DeprecationWarning")
def test_sdm_torchscript_equals_pytorch_and_onnx(sdm_ckpt, sdm_onnx, tmp_path):
    out = tmp_path / "sdm.pt"
    result = export.export_policy(sdm_ckpt, out, "torchscript")
    assert result.max_abs_diff <= TOL and result.metadata["opset"] is None
    feed = _feed(_observations(seed=5), torch.randn((1, H, DA)))
    with torch.inference_mode():
        got = torch.jit.load(str(out))(*(torch.from_numpy(v) for v in feed.values())).numpy()
    np.testing.assert_allclose(got, _policy_actions(load_policy(sdm_ckpt), feed), atol=TOL)
    np.testing.assert_allclose(got, _onnx(sdm_onnx, feed), atol=TOL)


def test_teacher_onnx_unrolls_ddim_k(teacher_ckpt, tmp_path):
    out = tmp_path / "teacher.onnx"
    result = export.export_policy(teacher_ckpt, out, "onnx")  # K = num_inference_steps = 10
    assert (result.metadata["kind"], result.metadata["sampler"]) == ("teacher", "ddim")
    assert result.metadata["steps"] == 10 and result.max_abs_diff <= TOL
    teacher = load_policy(teacher_ckpt)
    for seed in (3, 4):
        noise = torch.randn((1, H, DA), generator=torch.Generator().manual_seed(seed))
        feed = _feed(_observations(seed), noise)
        expected = _policy_actions(teacher, feed, steps=10)
        np.testing.assert_allclose(_onnx(out, feed), expected, rtol=0, atol=TOL)
    # K is part of the graph: 2 steps give other actions than 10.
    two = export.export_policy(teacher_ckpt, tmp_path / "k2.onnx", "onnx", steps=2)
    assert two.metadata["steps"] == 2
    got = _onnx(two.path, feed)
    np.testing.assert_allclose(got, _policy_actions(teacher, feed, steps=2), atol=TOL)
    assert np.abs(got - expected).max() > 1e-3


def test_verification_rejects_a_mismatch_and_leaves_no_file(sdm_ckpt, tmp_path, monkeypatch):
    real = export.run_exported
    monkeypatch.setattr(export, "run_exported", lambda *a: real(*a) + 1e-6)
    ok = export.export_policy(sdm_ckpt, tmp_path / "ok.onnx")  # a tiny difference passes
    assert 5e-7 < ok.max_abs_diff <= TOL
    monkeypatch.setattr(export, "run_exported", lambda *a: real(*a) + 1e-3)
    out = tmp_path / "bad" / "policy.onnx"
    out.parent.mkdir()
    with pytest.raises(export.ExportError, match=r"does not reproduce .*max abs diff 0\.001"):
        export.export_policy(sdm_ckpt, out, "onnx")
    assert list(out.parent.iterdir()) == []  # no file, no sidecar, no temporary
    # Through the CLI: one line on stderr, exit code 2, nothing written.
    args = ["export", "--checkpoint", str(sdm_ckpt), "--format", "torchscript", "--out"]
    assert sdm([*args, str(out.with_suffix(".pt"))]) == 2
    assert list(out.parent.iterdir()) == []


def test_bad_checkpoints_and_arguments_exit_2_with_one_line(
    reaching_dataset, sdm_ckpt, tmp_path, capsys
):
    out = str(tmp_path / "x.onnx")
    cases = [
        (reaching_dataset, [], "has no config.json; it is incomplete or not a checkpoint"),
        (tmp_path / "missing", [], "does not exist"),
        (sdm_ckpt, ["--steps", "3"], "applies to teacher checkpoints"),
        (sdm_ckpt, ["--opset", "99"], r"opset must be in \[9, 20\], got 99"),
    ]
    for checkpoint, extra, message in cases:
        args = ["export", "--checkpoint", str(checkpoint), "--format", "onnx", "--out", out]
        assert sdm([*args, *extra]) == 2
        err = capsys.readouterr().err
        assert err.startswith("sdm export: error: ") and err.count("\n") == 1, err
        assert re.search(message, err), err
    assert list(tmp_path.iterdir()) == []


def test_image_policy_takes_uint8_images(tmp_path):
    overrides = [
        "obs.point_cloud_shape=null",
        "obs.image_shape=[3,32,32]",
        "model.encoder=image",
        "model.image_crop=[24,24]",
        "model.preset=cpu_small",
        "model.down_dims=[32,64]",
        "model.diffusion_step_embed_dim=32",
        "model.horizon=8",
        "model.n_action_steps=4",
    ]
    cfg = load_config(None, overrides)
    torch.manual_seed(0)
    policy = SdmPolicy(cfg)
    policy.normalizer.fit({"action": torch.randn(64, DA), "agent_pos": torch.randn(64, 4)})
    parts = {"encoder": policy.encoder, "generator": policy.generator}
    parts["normalizer"] = policy.normalizer
    ckpt = tmp_path / "image_sdm"
    save_checkpoint(ckpt, checkpoint_config(cfg, "sdm", step=0), prefixed_state_dict(parts))
    result = export.export_policy(ckpt, tmp_path / "image.onnx")
    assert [(i["name"], i["dtype"]) for i in result.metadata["inputs"]] == [
        ("image", "uint8"),
        ("agent_pos", "float32"),
        ("noise", "float32"),
    ]
    rng = np.random.default_rng(0)
    feed = {
        "image": rng.integers(0, 256, (1, TO, 3, 32, 32), dtype=np.uint8),
        "agent_pos": rng.standard_normal((1, TO, 4)).astype(np.float32),
        "noise": rng.standard_normal((1, H, DA)).astype(np.float32),
    }
    expected = _policy_actions(load_policy(ckpt), feed)
    np.testing.assert_allclose(_onnx(result.path, feed), expected, atol=TOL)


def _int8_initializers(path: Path) -> int:
    import onnx

    graph = onnx.load(str(path)).graph
    return sum(t.data_type == onnx.TensorProto.INT8 for t in graph.initializer)


def test_int8_quantisation_writes_its_own_verified_file(sdm_ckpt, sdm_onnx, tmp_path):
    """int8 quantisation writes its own verified file.

    --quantize int8: a file of its own with int8 weights, verified against PyTorch within
    INT8_TOLERANCE (normalised action units), which the torch-free runtime loads and reports.
    """
    from sdm_policy_core.onnx_runtime import OnnxPolicyRuntime

    out = tmp_path / "policy.int8.onnx"
    args = ["export", "--checkpoint", str(sdm_ckpt), "--format", "onnx", "--out", str(out)]
    assert sdm([*args, "--quantize", "int8"]) == 0
    meta = json.loads(out.with_name(out.name + ".json").read_text())
    assert meta["quantization"] == "int8" and meta["int8_checks"] == export.QUANTIZE_CHECKS
    assert meta["sha256"] == hashlib.sha256(out.read_bytes()).hexdigest()
    assert meta["max_abs_diff"] <= TOL  # the float graph it was made from passed the float check
    assert 0 < meta["int8_max_abs_diff_normalized"] <= export.INT8_TOLERANCE
    assert _int8_initializers(out) > 0 and _int8_initializers(sdm_onnx) == 0
    assert out.stat().st_size < 0.5 * sdm_onnx.stat().st_size
    float_rt = OnnxPolicyRuntime(sdm_onnx, threads=1, warmup=False)
    int8_rt = OnnxPolicyRuntime(out, threads=1, warmup=False)
    assert (int8_rt.quantization, float_rt.quantization) == ("int8", None)
    assert int8_rt.policy_id == float_rt.policy_id
    scale = load_policy(sdm_ckpt).normalizer.stats(ACTION)["scale"].numpy()
    for obs in _observations(seed=5):
        float_rt.push(obs)
        int8_rt.push(obs)
    noise = np.random.default_rng(5).standard_normal((1, H, DA)).astype(np.float32)
    a, b = float_rt.infer(noise=noise), int8_rt.infer(noise=noise)
    error = np.abs(b.action_pred - a.action_pred) * scale  # normalised units
    assert 0 < error.max() <= 2 * export.INT8_TOLERANCE  # both graphs are within it of PyTorch


def test_int8_quantisation_refusals_leave_no_file(sdm_ckpt, tmp_path, monkeypatch, capsys):
    out = tmp_path / "q" / "policy.int8.onnx"
    out.parent.mkdir()
    with pytest.raises(export.ExportError, match=r"quantize must be one of .* with format onnx"):
        export.export_policy(sdm_ckpt, out.with_suffix(".pt"), "torchscript", quantize="int8")
    with pytest.raises(export.ExportError, match="got 'int4'"):
        export.export_policy(sdm_ckpt, out, "onnx", quantize="int4")
    monkeypatch.setattr(export, "INT8_TOLERANCE", 1e-6)  # what a broken quantisation looks like
    with pytest.raises(export.ExportError, match=r"int8 model differs .* > 1e-06; export it"):
        export.export_policy(sdm_ckpt, out, "onnx", quantize="int8")
    assert list(out.parent.iterdir()) == []  # no file, no sidecar, no temporary
    args = ["export", "--checkpoint", str(sdm_ckpt), "--format", "torchscript", "--out"]
    assert sdm([*args, str(out.with_suffix(".pt")), "--quantize", "int8"]) == 2
    assert "with format onnx" in capsys.readouterr().err
    assert list(out.parent.iterdir()) == []
