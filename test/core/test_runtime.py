# Copyright 2026 sdm-policy-ros maintainers
# SPDX-License-Identifier: MIT
"""PolicyRuntime: the per-tick API of a deployed checkpoint."""

from __future__ import annotations

import json
import shutil

import numpy as np
import pytest
import torch
from safetensors.torch import load_file, save_file

from sdm_policy_core.policies.observation import ObservationError
from sdm_policy_core.runtime import PolicyOutputError, PolicyRuntime


def _obs(rng: np.random.Generator, points: int = 32) -> dict[str, np.ndarray]:
    return {
        "point_cloud": rng.uniform(-0.5, 0.5, (points, 3)).astype(np.float32),
        "agent_pos": rng.uniform(-0.5, 0.5, 4).astype(np.float32),
    }


def _count_calls(module: torch.nn.Module) -> list[int]:
    calls: list[int] = []
    module.register_forward_hook(lambda *_: calls.append(1))
    return calls


def test_sdm_runtime_returns_a_chunk_from_exactly_one_network_call(sdm_ckpt):
    runtime = PolicyRuntime(sdm_ckpt, threads=1)
    assert (runtime.kind, runtime.sampler, runtime.steps) == ("sdm", "one-step", 1)
    calls = _count_calls(runtime.policy.generator.denoiser)
    chunk = runtime.step(_obs(np.random.default_rng(0)))
    assert len(calls) == 1
    assert chunk.actions.shape == (4, 4) and chunk.action_pred.shape == (8, 4)
    assert chunk.actions.dtype == np.float32
    # The executed actions start at the newest observation step of the predicted sequence.
    np.testing.assert_array_equal(chunk.actions, chunk.action_pred[1:5])
    assert chunk.policy_id.endswith("latest@20") and chunk.inference_time > 0
    with pytest.raises(ValueError, match=r"'one-step' only"):
        runtime.set_sampler("ddim", 10)


def test_teacher_runtime_samplers_make_the_stated_number_of_calls(teacher_ckpt):
    runtime = PolicyRuntime(teacher_ckpt, threads=1)
    calls = _count_calls(runtime.policy.denoiser)
    obs = _obs(np.random.default_rng(0))
    for sampler, steps, expected in (
        ("ddim", 10, 10),
        ("ddim", 2, 2),
        ("ddpm", None, 100),
        ("one-step", None, 1),
    ):
        runtime.set_sampler(sampler, steps)
        calls.clear()
        chunk = runtime.step(obs)
        assert len(calls) == expected == chunk.steps, sampler


def test_same_seed_same_actions_and_history_semantics(sdm_ckpt):
    rng = np.random.default_rng(3)
    first, second = _obs(rng), _obs(rng)
    a = PolicyRuntime(sdm_ckpt, seed=7, threads=1)
    b = PolicyRuntime(sdm_ckpt, seed=7, threads=1)
    np.testing.assert_array_equal(a.step(first).actions, b.step(first).actions)
    # History: the first observation is repeated; a second one shifts it.
    a.push(second)
    assert [h["agent_pos"][0] for h in a._history] == [
        first["agent_pos"][0],
        second["agent_pos"][0],
    ]
    a.reset()
    assert len(a._history) == 0
    with pytest.raises(ObservationError, match="no observation yet"):
        a.infer()


def test_bad_observations_are_rejected_with_expected_and_received(sdm_ckpt):
    runtime = PolicyRuntime(sdm_ckpt, threads=1)
    rng = np.random.default_rng(0)
    with pytest.raises(
        ObservationError,
        match=r"'point_cloud' has shape \(31, 3\), the "
        r"checkpoint expects \(32, 3\)",
    ):
        runtime.step(_obs(rng, points=31))
    bad = _obs(rng)
    bad["agent_pos"] = np.zeros(7, np.float32)
    with pytest.raises(ObservationError, match=r"'agent_pos' has shape \(7,\).*\(4,\)"):
        runtime.step(bad)
    with pytest.raises(ObservationError, match="missing 'agent_pos'"):
        runtime.step({"point_cloud": _obs(rng)["point_cloud"]})
    nan = _obs(rng)
    nan["point_cloud"][5, 1] = np.nan
    with pytest.raises(ObservationError, match="NaN"):
        runtime.step(nan)
    assert len(runtime._history) == 0  # nothing invalid entered the history
    # An xyz+rgb cloud feeds an xyz policy (colour dropped).
    rgb = _obs(rng)
    rgb["point_cloud"] = np.concatenate([rgb["point_cloud"], np.ones((32, 3), np.float32)], 1)
    assert np.isfinite(runtime.step(rgb).actions).all()


def test_non_finite_weights_never_produce_actions(sdm_ckpt, tmp_path):
    broken = tmp_path / "broken"
    shutil.copytree(sdm_ckpt, broken)
    tensors = load_file(broken / "model.safetensors")
    name = next(k for k in tensors if k.startswith("generator.") and k.endswith("weight"))
    tensors[name] = torch.full_like(tensors[name], float("nan"))
    save_file(tensors, broken / "model.safetensors")
    with pytest.raises(PolicyOutputError, match="non-finite"):
        PolicyRuntime(broken, threads=1)  # caught at load time by the warm-up call


def test_checkpoint_config_is_self_describing(sdm_ckpt):
    config = json.loads((sdm_ckpt / "config.json").read_text())
    assert config["kind"] == "sdm"
    assert config["teacher"].endswith("latest")
    assert config["model"]["horizon"] == 8 and config["obs"]["point_cloud_shape"] == [32, 3]
    assert config["distill"]["corrector_steps_per_generator_step"] == 5
