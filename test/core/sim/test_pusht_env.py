# Copyright 2026 sdm-policy-ros maintainers
# SPDX-License-Identifier: MIT
"""PushT: the gym-pusht wrapper, its metrics, and Diffusion Policy's human demonstrations.

PushT: the gym-pusht wrapper, its metrics, and Diffusion Policy's 206 human demonstrations
(read in place from ../shared/external; those tests skip when the file is absent).
"""

from __future__ import annotations

import builtins
import json
from pathlib import Path

import numpy as np
import pytest

from sdm_policy_core.data import ReplayBuffer

pytest.importorskip("gym_pusht", reason="gym-pusht not installed (scripts/setup.sh installs it)")

from sdm_policy_core.sim.pusht_env import (
    DEFAULT_MAX_EPISODE_STEPS,
    SUCCESS_COVERAGE,
    PushTEnv,
    coverage_score,
    episode_metrics,
    replay_episode,
    state_error,
)

REPO = Path(__file__).resolve().parents[3]
PUSHT_ZARR = (
    REPO.parent
    / "shared/external/humanoid-collective_diffusion_policy_soup/data/pusht"
    / "pusht_cchi_v7_replay.zarr"
)
needs_demos = pytest.mark.skipif(
    not PUSHT_ZARR.is_dir(),
    reason=f"Diffusion Policy's PushT dataset is not at {PUSHT_ZARR} (../shared/external absent)",
)


@pytest.fixture(scope="module")
def demos() -> ReplayBuffer:
    return ReplayBuffer.load(PUSHT_ZARR, keys=["state", "action"])


@pytest.fixture()
def env():
    with PushTEnv() as env:
        yield env


def test_score_and_success_follow_diffusion_policy():
    assert coverage_score(0.475) == pytest.approx(0.5)
    assert coverage_score(0.97) == 1.0 and coverage_score(-0.1) == 0.0
    assert episode_metrics(0.95) == {"max_coverage": 0.95, "score": 1.0, "success": True}
    assert episode_metrics(0.9499)["success"] is False


def test_seeded_resets_are_repeatable_random_starts(env):
    starts = {seed: env.reset(seed=seed)["agent_pos"] for seed in range(20)}
    assert all(v.shape == (5,) and v.dtype == np.float32 for v in starts.values())
    np.testing.assert_array_equal(env.reset(seed=7)["agent_pos"], starts[7])
    assert len({tuple(v) for v in starts.values()}) == 20
    s = np.stack(list(starts.values()))
    assert (s[:, :2] >= 50).all() and (s[:, :2] < 450).all()
    # the block lands where the start says, but its centre of gravity is what was drawn: it can
    # sit a little outside [100, 400); the angle is reported in [0, 2 pi)
    assert (s[:, 4] >= 0).all() and (s[:, 4] < 2 * np.pi).all()


def test_step_reports_coverage_score_success_and_ends_at_the_limit():
    with PushTEnv(max_episode_steps=5) as env:
        obs = env.reset(seed=1)
        target = obs["agent_pos"][:2] + 20.0
        best = 0.0
        for i in range(5):
            obs, reward, done, info = env.step(target)
            best = max(best, info["coverage"])
            assert reward == pytest.approx(coverage_score(info["coverage"]))
            assert info["success"] == (info["coverage"] >= SUCCESS_COVERAGE)
            assert info["metrics"] == {"max_coverage": best, "score": coverage_score(best)}
            assert done == (i == 4)
        # the agent tracks its target
        assert np.linalg.norm(obs["agent_pos"][:2] - target) < 5.0
        with pytest.raises(RuntimeError, match="episode is over"):
            env.step(target)


def test_bad_actions_and_states_are_refused(env):
    with pytest.raises(RuntimeError, match="reset"):
        env.step(np.zeros(2))
    env.reset(seed=0)
    with pytest.raises(ValueError, match=r"\(2,\) agent target"):
        env.step(np.zeros(3))
    with pytest.raises(ValueError, match="NaN"):
        env.step(np.array([np.nan, 1.0]))
    with pytest.raises(ValueError, match=r"\(5,\) finite"):
        env.reset_to_state(np.zeros(4))


def test_image_observation_is_the_96px_view():
    with PushTEnv(image_size=96) as env:
        obs = env.reset(seed=0)
        assert obs["image"].shape == (96, 96, 3) and obs["image"].dtype == np.uint8
        assert env.observation_keys == ("agent_pos", "image")
        obs, *_ = env.step(obs["agent_pos"][:2], observe=False)
        assert "image" not in obs and "agent_pos" in obs


def test_missing_gym_pusht_says_how_to_install(monkeypatch):
    real_import = builtins.__import__

    def no_gym_pusht(name, *args, **kwargs):
        if name.startswith("gym_pusht"):
            raise ImportError(f"No module named {name!r}")
        return real_import(name, *args, **kwargs)

    monkeypatch.setattr(builtins, "__import__", no_gym_pusht)
    from sdm_policy_core.sim import SimulatorError

    with pytest.raises(SimulatorError, match=r"gym-pusht.*pip install --no-deps gym-pusht"):
        PushTEnv()


@needs_demos
def test_reader_loads_the_real_dataset_in_place(demos):
    assert demos.n_episodes == 206 and demos.n_steps == 25650
    assert demos["state"].shape == (25650, 5) and demos["action"].shape == (25650, 2)
    assert demos.episode_ends[0] == 161 and demos.episode_ends[-1] == 25650
    assert demos.keys() == ["state", "action"]  # img / keypoint / n_contacts are not read


@needs_demos
def test_reset_to_state_lands_on_every_recorded_state(demos, env):
    """Resetting to each recorded state lands on it exactly.

    The centre-of-gravity correction: each of the 25,650 states is reproduced exactly (to
    float32); without it the block lands up to 90 px away.
    """
    states = demos["state"]
    errors = np.array([state_error(env.reset_to_state(s)["agent_pos"], s) for s in states])
    assert errors.max() <= 1e-4, f"worst state {errors.argmax()}: {errors.max()}"


@needs_demos
def test_replaying_every_demo_reproduces_it_and_its_coverage(demos, env):
    """Open-loop replay of all 206 human demos from their first states.

    Measured (gym-pusht 0.1.8, pymunk 6.11.1): the median episode's worst state error is
    3e-5 px; contacts amplify the float32 rounding of the stored start, so two episodes end
    near 1e-3 and one (107) at 0.17 px. The demos' mean max coverage is 0.900, 7 of 206 reach
    0.95 (the anchor of issue 18).
    """
    errors, max_coverage = [], []
    for e in range(demos.n_episodes):
        ep = demos.get_episode(e)
        replayed, coverage = replay_episode(env, ep["state"], ep["action"])
        errors.append(state_error(replayed, ep["state"]).max())
        max_coverage.append(coverage.max())
    errors = np.array(errors)
    assert np.median(errors) < 1e-4
    assert (errors < 2e-3).sum() >= 205 and errors.max() < 0.5, np.sort(errors)[-5:]
    assert np.mean(max_coverage) == pytest.approx(0.900, abs=5e-4)
    assert sum(c >= SUCCESS_COVERAGE for c in max_coverage) == 7
    assert env.max_episode_steps == DEFAULT_MAX_EPISODE_STEPS  # replay restores the limit


def test_sdm_eval_registry_runs_pusht_for_state_only_policies():
    from sdm_policy_core.config import ObservationSpec
    from sdm_policy_core.eval.envs import EvalEnv, resolve_eval_task

    task, entry = resolve_eval_task("pusht")
    assert task == "pusht"
    state_only = ObservationSpec(point_cloud_shape=None, state_dim=5, action_dim=2)
    entry.check(task, state_only, "ckpt")
    with pytest.raises(ValueError, match="ckpt observes a point cloud"):
        entry.check(
            task, ObservationSpec(point_cloud_shape=(64, 3), state_dim=5, action_dim=2), "ckpt"
        )
    with pytest.raises(ValueError, match=r"ckpt maps agent_pos \(9,\).*PushT zarr"):
        entry.check(
            task, ObservationSpec(point_cloud_shape=None, state_dim=9, action_dim=2), "ckpt"
        )
    env = entry.make(task, state_only, None)
    try:
        assert isinstance(env, EvalEnv) and env.max_episode_steps == DEFAULT_MAX_EPISODE_STEPS
        assert env.observation_keys == ("agent_pos",)
        _, reward, done, info = env.step(env.reset(seed=0)["agent_pos"][:2])
        assert reward == pytest.approx(coverage_score(info["coverage"]))
        assert set(info["metrics"]) == {"max_coverage", "score"} and not done
    finally:
        env.close()
    with entry.make(task, state_only, 50) as short:
        assert short.max_episode_steps == 50


@pytest.fixture(scope="module")
def pusht_checkpoint(tmp_path_factory) -> Path:
    """Train a state-only teacher 5 steps on 3 short PushT episodes recorded in the env.

    A state-only teacher trained 5 steps on 3 short PushT episodes recorded in the env (the
    agent heading for the block).
    """
    from sdm_policy_core.cli import main as sdm
    from test.conftest import TINY

    buffer = ReplayBuffer.create_empty()
    with PushTEnv() as env:
        for seed in range(3):
            state = env.reset(seed=seed)["agent_pos"]
            states, actions = [], []
            for _ in range(24):
                action = state[:2] + 0.3 * (state[2:4] - state[:2])
                states.append(state)
                actions.append(action)
                state = env.step(action)[0]["agent_pos"]
            buffer.add_episode({"state": np.stack(states), "action": np.stack(actions)})
    root = tmp_path_factory.mktemp("pusht")
    buffer.save(root / "pusht.zarr")
    model = ["model.denoiser=mlp", "model.mlp_hidden_dim=32", "model.mlp_blocks=1"]
    args = ["train", "--dataset", str(root / "pusht.zarr"), "--out", str(root / "run")]
    assert sdm([*args, "--no-progress", *TINY, *model]) == 0
    return root / "run" / "checkpoints" / "latest"


@pytest.mark.parametrize("sampler", ["ddim", "one-step"])
def test_sdm_eval_pusht_reports_coverage_score_and_success(
    pusht_checkpoint, tmp_path, capsys, sampler
):
    from sdm_policy_core.cli import main as sdm

    out = tmp_path / "pusht.json"
    args = ["eval", "--checkpoint", str(pusht_checkpoint), "--task", "pusht", "--out", str(out)]
    args += ["--episodes", "2", "--seeds", "0", "--sampler", sampler, "--threads", "1"]
    assert sdm([*args, "--max-episode-steps", "12", "--no-plot", "--no-progress"]) == 0
    result = json.loads(out.read_text())
    contract = {"success_rate", "episodes", "seeds", "sampler", "steps", "latency_ms"}
    assert set(result) >= contract | {"control_hz", "metrics"}
    assert result["task"] == "pusht" and result["max_episode_steps"] == 12
    rows = result["episode_results"]
    assert len(rows) == 2 and len({r["reset_seed"] for r in rows}) == 2
    for row in rows:
        assert 0.0 <= row["max_coverage"] <= 1.0
        assert row["score"] == pytest.approx(min(row["max_coverage"] / 0.95, 1.0))
        assert row["success"] == (row["max_coverage"] >= 0.95)
        assert row["length"] == 12 or row["success"]
    for key in ("max_coverage", "score"):
        assert result["metrics"][key] == pytest.approx(np.mean([r[key] for r in rows]))
    line = capsys.readouterr().out
    assert f"max_coverage {result['metrics']['max_coverage']:.3f}, score " in line


def test_sdm_eval_pusht_without_gym_pusht_says_how_to_install(
    pusht_checkpoint, tmp_path, monkeypatch, capsys
):
    from sdm_policy_core.cli import main as sdm

    real_import = builtins.__import__

    def no_gym_pusht(name, *args, **kwargs):
        if name.startswith("gym_pusht"):
            raise ImportError(f"No module named {name!r}")
        return real_import(name, *args, **kwargs)

    monkeypatch.setattr(builtins, "__import__", no_gym_pusht)
    args = ["eval", "--checkpoint", str(pusht_checkpoint), "--task", "pusht", "--episodes", "1"]
    assert sdm([*args, "--out", str(tmp_path / "r.json"), "--no-progress"]) == 2
    assert "pip install --no-deps gym-pusht==0.1.8" in capsys.readouterr().err
    assert not (tmp_path / "r.json").exists()


@needs_demos
def test_state_only_training_reads_the_real_pusht_file(tmp_path):
    """State-only training reads the real PushT file.

    `sdm train --dataset PUSHT model.encoder=state`: data/state and data/action only (the
    2.8 GB of float images are never read), the spec from the file.
    """
    from sdm_policy_core.config import load_config
    from sdm_policy_core.training.data import make_datasets

    cfg = load_config(None, ["model.encoder=state", "train.val_fraction=0.02"])
    cfg, train, val = make_datasets(cfg, PUSHT_ZARR)
    assert (cfg.obs.point_cloud_shape, cfg.obs.image_shape) == (None, None)
    assert (cfg.obs.state_dim, cfg.obs.action_dim) == (5, 2)
    assert sorted(train.replay_buffer.keys()) == ["action", "state"]
    assert train.val_mask.sum() == 4
    # one window per step, less the n_action_steps - 1 = 7 that would run past each episode end
    assert len(train) + len(val) == 25650 - 7 * 206
    item = train[0]
    assert item["obs"]["agent_pos"].shape == (cfg.model.horizon, 5)
    assert item["action"].shape == (cfg.model.horizon, 2)


@needs_demos
def test_an_image_policy_on_pusht_float_images_is_refused_before_reading_them():
    """An image policy on PushT's float images is refused before reading them.

    The file's data/img is float32 holding 0-255; the encoder would take floats as 0-1. The
    dtype is checked from the metadata, before 2.8 GB of images are decoded.
    """
    from sdm_policy_core.config import load_config
    from sdm_policy_core.data import DatasetError
    from sdm_policy_core.training.data import make_datasets

    cfg = load_config(None, [])  # model.encoder=auto picks the image policy: the file has img
    with pytest.raises(DatasetError, match=r"data/img is float32.*model\.encoder=state"):
        make_datasets(cfg, PUSHT_ZARR)


def test_float_images_are_refused_for_image_policies(tmp_path):
    from sdm_policy_core.data import DatasetError, TrajectoryDataset

    buffer = ReplayBuffer.create_empty()
    img = np.full((6, 16, 16, 3), 200.0, dtype=np.float32)
    buffer.add_episode({"img": img, "state": np.zeros((6, 5)), "action": np.zeros((6, 2))})
    buffer.save(tmp_path / "float_img.zarr")
    keys = {"point_cloud": None, "image": "img", "agent_pos": "state", "action": "action"}
    for source in (tmp_path / "float_img.zarr", buffer):
        with pytest.raises(DatasetError, match="data/img is float32"):
            TrajectoryDataset(source, 4, 2, 2, keys=keys)
    TrajectoryDataset(tmp_path / "float_img.zarr", 4, 2, 2, keys={**keys, "image": None})
