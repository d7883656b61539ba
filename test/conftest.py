# Copyright 2026 sdm-policy-ros maintainers
# SPDX-License-Identifier: MIT
"""Shared test set-up: DDS on this machine, a ROS domain per run, processes stopped by PID.

Shared test set-up: DDS confined to this machine, a ROS domain of the run's own, and real
processes started and stopped by PID.
"""

from __future__ import annotations

import fcntl
import importlib.util
import os
import random
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path
from typing import IO

import numpy as np
import pytest
import zarr

from sdm_policy_core.data.synthetic import make_reaching_dataset

REPO = Path(__file__).resolve().parents[1]

# Every process a test starts inherits these: no DDS packet leaves the machine, and parallel
# test runs on one machine do not see each other's nodes.
os.environ["ROS_AUTOMATIC_DISCOVERY_RANGE"] = "LOCALHOST"
os.environ["ROS_LOCALHOST_ONLY"] = "1"
_DOMAIN_LOCKS: list[IO[str]] = []


def _claim_domain() -> str:
    """Claim a ROS domain that no other test run on this machine holds.

    A ROS domain that no other test run on this machine holds: one lock file per domain,
    locked while this process lives (a random pick alone collided now and then when several
    runs shared the machine, and their nodes saw each other). The order tried is random per
    process (SDM_TEST_DOMAIN_ORDER_SEED fixes it: the test of this claim uses it).
    """
    seed = int(os.environ.get("SDM_TEST_DOMAIN_ORDER_SEED", os.getpid()))
    for domain in random.Random(seed).sample(range(10, 100), 90):
        lock = Path(tempfile.gettempdir()) / f"sdm_policy_ros_domain_{domain}.lock"
        handle = lock.open("w")
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            handle.close()
            continue
        _DOMAIN_LOCKS.append(handle)  # open, so locked, until this process ends
        return str(domain)
    raise RuntimeError("ROS domains 10-99 are all held by other test runs on this machine")


if "ROS_DOMAIN_ID" not in os.environ:
    os.environ["ROS_DOMAIN_ID"] = _claim_domain()
os.environ.setdefault("RMW_IMPLEMENTATION", "rmw_fastrtps_cpp")
os.environ.setdefault("PYTHONUNBUFFERED", "1")


# The ROS test folder (test/ros) needs rclpy and the built sdm_msgs.
ROS_MISSING = [m for m in ("rclpy", "sdm_msgs") if importlib.util.find_spec(m) is None]


def ros_collect_ignore() -> list[str]:
    """Return the `collect_ignore_glob` of a ROS test folder.

    `collect_ignore_glob` of a ROS test folder: all of it where ROS_MISSING is not empty
    (a pip-only checkout), or an error under SDM_REQUIRE_ROS=1 (the README's test command).
    """
    if not ROS_MISSING:
        return []
    if os.environ.get("SDM_REQUIRE_ROS") == "1":
        raise RuntimeError(
            f"ROS tests required but {', '.join(ROS_MISSING)} not importable: run "
            "scripts/setup.sh and `source scripts/env.sh`"
        )
    return ["test_*.py"]


class ProcessGroup:
    """Starts real processes with logs in a temp dir; stops them by PID at teardown."""

    def __init__(self, log_dir: Path) -> None:
        self.log_dir = log_dir
        self.procs: list[tuple[subprocess.Popen, Path]] = []

    def start(
        self,
        cmd: list[str],
        name: str,
        env: dict[str, str] | None = None,
    ) -> subprocess.Popen:
        log = self.log_dir / f"{name}.log"
        handle = log.open("w")
        proc = subprocess.Popen(
            cmd,
            stdout=handle,
            stderr=subprocess.STDOUT,
            cwd=REPO,
            env={**os.environ, **(env or {})},
            start_new_session=True,
        )
        handle.close()
        self.procs.append((proc, log))
        return proc

    def log(self, proc: subprocess.Popen) -> str:
        for p, log in self.procs:
            if p is proc:
                return log.read_text(errors="replace")
        raise KeyError(proc.pid)

    def stop(self, proc: subprocess.Popen, timeout: float = 10.0) -> int:
        """SIGINT (clean rclpy shutdown), then SIGKILL; returns the exit code."""
        if proc.poll() is None:
            proc.send_signal(signal.SIGINT)
            try:
                proc.wait(timeout)
            except subprocess.TimeoutExpired:
                os.killpg(proc.pid, signal.SIGKILL)
                proc.wait(5)
        return proc.returncode

    def stop_all(self) -> None:
        for proc, _ in self.procs:
            self.stop(proc)


@pytest.fixture
def processes(tmp_path: Path) -> Iterator[ProcessGroup]:
    group = ProcessGroup(tmp_path)
    try:
        yield group
    finally:
        group.stop_all()


def wait_for(predicate, timeout: float, interval: float = 0.05, what: str = "condition"):
    """Poll `predicate` until it returns a truthy value or `timeout` seconds pass."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(interval)
    raise TimeoutError(f"timed out after {timeout} s waiting for {what}")


PYTHON = sys.executable


# -- tiny trained checkpoints shared by the training, runtime and ROS tests ----------------------
TINY_MODEL = [
    "model.preset=cpu_small",
    "model.down_dims=[32,64]",
    "model.pointnet_dims=[16,32]",
    "model.diffusion_step_embed_dim=32",
    "model.horizon=8",
    "model.n_action_steps=4",
]
# Tiny MetaWorld-shaped runs (sim tests): enough to load, sample and act, not to succeed.
TINY = [
    *TINY_MODEL,
    "train.batch_size=8",
    "train.val_fraction=0",
    "train.threads=1",
    "train.max_steps=5",
]
FAST = [
    *TINY_MODEL,
    "train.batch_size=16",
    "train.lr=1e-3",
    "train.warmup_steps=2",
    "train.log_every=2",
    "train.val_fraction=0.25",
    "train.threads=1",
]


def write_dataset(path: Path, **arrays: np.ndarray) -> Path:
    """Write a zarr v2 dataset of one episode holding exactly `arrays` (lengths unchecked)."""
    root = zarr.open_group(str(path), mode="w", zarr_format=2)
    data = root.create_group("data")
    for key, value in arrays.items():
        data.create_array(key, shape=value.shape, dtype=value.dtype)[...] = value
    n = next(iter(arrays.values())).shape[0]
    root.create_group("meta").create_array("episode_ends", shape=(1,), dtype=np.int64)[...] = n
    return path


@pytest.fixture(scope="session")
def reaching_dataset(tmp_path_factory) -> Path:
    path = tmp_path_factory.mktemp("data") / "reach.zarr"
    make_reaching_dataset(path, episodes=8, steps=16, num_points=32, seed=0)
    return path


@pytest.fixture(scope="session")
def teacher_ckpt(reaching_dataset, tmp_path_factory) -> Path:
    """Train a teacher for 40 steps on the reaching data (checkpoints/latest)."""
    from sdm_policy_core.cli import main as sdm

    out = tmp_path_factory.mktemp("teacher")
    code = sdm(
        [
            "train",
            "--dataset",
            str(reaching_dataset),
            "--out",
            str(out),
            "--no-progress",
            *FAST,
            "train.max_steps=40",
            "train.val_every=20",
            "train.checkpoint_every=20",
        ]
    )
    assert code == 0
    return out / "checkpoints" / "latest"


@pytest.fixture(scope="session")
def sdm_ckpt(reaching_dataset, teacher_ckpt, tmp_path_factory) -> Path:
    """Distil that teacher for 20 steps (checkpoints/latest)."""
    from sdm_policy_core.cli import main as sdm

    out = tmp_path_factory.mktemp("sdm")
    code = sdm(
        [
            "distill",
            "--teacher",
            str(teacher_ckpt),
            "--dataset",
            str(reaching_dataset),
            "--out",
            str(out),
            "--no-progress",
            "train.max_steps=20",
            "train.batch_size=16",
            "train.val_every=10",
            "train.checkpoint_every=10",
            "train.threads=1",
        ]
    )
    assert code == 0
    return out / "checkpoints" / "latest"


@pytest.fixture(scope="session")
def image_ckpt(tmp_path_factory) -> Path:
    """Build a tiny image teacher (Diffusion Policy style: ResNet-18 GN on 40x40 frames)."""
    from sdm_policy_core.cli import main as sdm

    root = tmp_path_factory.mktemp("image")
    make_reaching_dataset(root / "img.zarr", episodes=4, steps=12, num_points=16, image_size=40)
    code = sdm(
        [
            "train",
            "--dataset",
            str(root / "img.zarr"),
            "--out",
            str(root / "run"),
            "--no-progress",
            "model.encoder=image",
            "model.preset=cpu_small",
            "model.horizon=8",
            "model.n_action_steps=4",
            "model.down_dims=[32,64]",
            "model.image_crop=[36,36]",
            "model.diffusion_step_embed_dim=32",
            "train.batch_size=8",
            "train.max_steps=3",
            "train.val_fraction=0",
            "train.threads=1",
        ]
    )
    assert code == 0
    return root / "run" / "checkpoints" / "latest"
