# Copyright 2026 sdm-policy-ros maintainers
# SPDX-License-Identifier: MIT
"""Bad datasets give one clear line and exit code 2, never a traceback from inside zarr."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from sdm_policy_core.cli import main as sdm
from sdm_policy_core.data.synthetic import make_reaching_dataset


@pytest.fixture(scope="module")
def good(tmp_path_factory) -> Path:
    path = tmp_path_factory.mktemp("data") / "ok.zarr"
    make_reaching_dataset(path, episodes=2, steps=8, num_points=16, seed=0)
    return path


def _train(dataset: Path, out: Path) -> int:
    args = ["train", "--dataset", str(dataset), "--out", str(out), "--no-progress"]
    return sdm([*args, "model.preset=cpu_small", "train.max_steps=1"])


def test_a_missing_key_is_named(good, tmp_path, capsys):
    bad = tmp_path / "no_state.zarr"
    shutil.copytree(good, bad)
    shutil.rmtree(bad / "data" / "state")
    assert _train(bad, tmp_path / "run") == 2
    err = capsys.readouterr().err
    assert "has no data/state" in err and "Traceback" not in err


@pytest.mark.parametrize(
    "damage, expected",
    [
        ("data/point_cloud/0.0.0", "data/point_cloud is corrupt"),  # a garbage chunk
        ("data/action/.zarray", "is corrupt or unreadable"),  # a broken array header
    ],
)
def test_a_corrupt_zarr_is_a_clear_error(good, tmp_path, capsys, damage, expected):
    bad = tmp_path / "corrupt.zarr"
    shutil.copytree(good, bad)
    (bad / damage).write_bytes(b"{not a zarr chunk")
    assert _train(bad, tmp_path / "run") == 2
    err = capsys.readouterr().err
    assert expected in err and "sdm train: error:" in err and "Traceback" not in err
    assert not (tmp_path / "run" / "checkpoints").exists()


def test_something_that_is_not_a_dataset(tmp_path, capsys):
    not_zarr = tmp_path / "notes.zarr"
    not_zarr.write_text("hello")
    assert _train(not_zarr, tmp_path / "run") == 2
    assert "not a zipped zarr store" in capsys.readouterr().err
