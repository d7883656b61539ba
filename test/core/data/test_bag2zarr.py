# Copyright 2026 sdm-policy-ros maintainers
# SPDX-License-Identifier: MIT
"""`sdm bag2zarr` on real rosbag2 bags of known content.

`sdm bag2zarr` on real rosbag2 bags (written with rosbags' Writer, sqlite3 and mcap) of known
content: the dataset equals the expected arrays (alignment, ordering, FPS count, crop,
transform), episode splitting, append, and every bad-input case of issue 6.
"""

from __future__ import annotations

import glob
import hashlib
import json
import os
import re
import sqlite3
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import yaml
import zarr

from sdm_policy_core.cli import main as sdm_main
from sdm_policy_core.config import ConfigError
from sdm_policy_core.data import DatasetError, ReplayBuffer
from sdm_policy_core.data.bag2zarr import (
    BagError,
    convert_bags,
    load_bag2zarr_config,
)
from sdm_policy_core.data.bag_alignment import (
    ACCEPTED,
    DUPLICATE,
    LATE,
    REORDERED,
    AlignRule,
    StreamBuffer,
)
from sdm_policy_core.data.bag_writer import BagWriter

REPO = Path(__file__).resolve().parents[3]
MS = 1_000_000
T0 = 1_700_000_000 * 1_000_000_000  # a realistic epoch stamp (ns)
EPISODE_STATUS = (REPO / "sdm_msgs" / "msg" / "EpisodeStatus.msg").read_text()
JOINTS = ["j2", "j1", "finger"]  # message order; the config asks for [j1, j2]


def cloud_for(k: int, n: int = 64) -> np.ndarray:
    """(n, 3) points encoding step k: x in [k, k + 0.5), y = point index / n, z = -k."""
    i = np.arange(n, dtype=np.float32)
    return np.stack([k + 0.5 * i / n, i / n, np.full(n, -k, np.float32)], axis=1)


def write_demo(
    bag: BagWriter,
    steps: int,
    start_ns: int = T0,
    first_step: int = 0,
    period_ms: int = 100,
) -> list[int]:
    """Write a demo bag of clouds, joint states and commands at known stamps.

    Clouds at 1/period (stamp t_k), joint states at 5x that rate (stamps t + 2 ms + j*20 ms:
    j1 = time in s, j2 = -time), commands 30 ms after each cloud ([k, 10k]). Returns t_k.
    """
    ticks = []
    for s in range(steps):
        k = first_step + s
        t = start_ns + s * period_ms * MS
        ticks.append(t)
        bag.write_cloud("/points", t, cloud_for(k), frame_id="camera")
        for j in range(5):
            tj = t + 2 * MS + j * period_ms * MS // 5
            bag.write_joint_state("/joint_states", tj, JOINTS, [-tj / 1e9, tj / 1e9, 0.04])
        bag.write_float64_array("/joint_commands", t + 30 * MS, [k, 10 * k])
    return ticks


def expected_state(ticks: list[int]) -> np.ndarray:
    t = (np.asarray(ticks) + 2 * MS) / 1e9  # the nearest joint state is 2 ms after the cloud
    return np.stack([t, -t], axis=1).astype(np.float32)


def config(tmp: Path, **sections) -> Path:
    """Write a YAML config: the sim layout, j1/j2 state order, 16 points, decoding in-process."""
    data = {
        "state": {"topic": "joint_states", "joint_names": ["j1", "j2"], "tolerance_s": 0.015},
        "point_cloud": {"topic": "points", "num_points": 16},
        "workers": 0,
    }
    for key, value in sections.items():
        if isinstance(value, dict) and isinstance(data.get(key), dict):
            data[key] = {**data[key], **value}
        else:
            data[key] = value
    path = tmp / "bag2zarr.yaml"
    path.write_text(yaml.safe_dump(data))
    return path


def convert(bags, out, cfg_path, overrides=(), **kwargs):
    cfg = load_bag2zarr_config(cfg_path, list(overrides))
    return convert_bags(bags, out, cfg, progress=False, **kwargs)


@pytest.fixture(params=["mcap", "sqlite3"])
def storage(request) -> str:
    return request.param


@pytest.fixture
def three_bags(tmp_path: Path, storage: str) -> tuple[list[Path], list[list[int]]]:
    bags, ticks = [], []
    for e, steps in enumerate((12, 15, 9)):
        path = tmp_path / f"demo_{e}"
        with BagWriter(path, storage=storage) as bag:
            ticks.append(write_demo(bag, steps, start_ns=T0 + e * 60 * 10**9, first_step=100 * e))
        bags.append(path)
    return bags, ticks


# -- the dataset equals the expected arrays -------------------------------------------------------


def test_three_bags_become_three_aligned_episodes(tmp_path, three_bags, storage):
    bags, ticks = three_bags
    out = tmp_path / "demos.zarr"
    summary = convert(bags, out, config(tmp_path))
    assert (out / ".zgroup").exists()  # zarr format 2, as DP3 / Diffusion Policy read it
    data = ReplayBuffer.load(out)
    np.testing.assert_array_equal(data.episode_ends, [12, 27, 36])
    steps = np.concatenate([100 * e + np.arange(n) for e, n in enumerate((12, 15, 9))])
    pc = data["point_cloud"]
    assert pc.shape == (36, 16, 3) and pc.dtype == np.float32
    np.testing.assert_array_equal(np.floor(pc[:, :, 0]), np.repeat(steps[:, None], 16, 1))
    np.testing.assert_array_equal(pc[:, :, 2], -np.repeat(steps[:, None], 16, 1))
    assert all(len(np.unique(frame, axis=0)) == 16 for frame in pc)  # FPS: 16 distinct points
    np.testing.assert_array_equal(
        data["state"], expected_state([t for episode in ticks for t in episode])
    )
    np.testing.assert_array_equal(data["action"], np.stack([steps, 10 * steps], 1))
    assert summary["samples_written"] == 36 and summary["episodes_written"] == 3
    assert summary["messages"] == {"/joint_commands": 36, "/joint_states": 180, "/points": 36}
    assert summary["rates_hz"]["/joint_states"] == pytest.approx(50.0, rel=0.1)
    assert summary["samples_dropped"] == {} and summary["message_issues"] == {}


@pytest.mark.parametrize(("storage", "compression"), [("mcap", "message"), ("sqlite3", "file")])
def test_compressed_bags_and_a_pool_of_two_workers(tmp_path, storage, compression):
    bags = []
    for e in range(2):
        bags.append(tmp_path / f"demo_{e}")
        with BagWriter(bags[-1], storage=storage, compression=compression) as bag:
            write_demo(bag, 25, start_ns=T0 + e * 10**10, first_step=100 * e)
    convert(bags, tmp_path / "a.zarr", config(tmp_path))
    convert(bags, tmp_path / "b.zarr", config(tmp_path), ["workers=2", "chunk_size=7"])
    a, b = ReplayBuffer.load(tmp_path / "a.zarr"), ReplayBuffer.load(tmp_path / "b.zarr")
    np.testing.assert_array_equal(a.episode_ends, [25, 50])
    for key in ("point_cloud", "state", "action"):
        np.testing.assert_array_equal(a[key], b[key])
    np.testing.assert_array_equal(a["action"][:, 0], np.r_[0:25, 100:125])


def test_the_converter_runs_where_torch_is_not_installed(tmp_path):
    """The converter runs where torch is not installed.

    Recording machines need no PyTorch: `sdm bag2zarr` (CLI, converter and its two decoding
    workers) converts with every torch import blocked.
    """
    path = tmp_path / "demo"
    with BagWriter(path) as bag:
        write_demo(bag, 20, start_ns=T0)
    out = tmp_path / "a.zarr"
    args = [str(path), "--out", str(out), "--config", str(config(tmp_path)), "--no-progress"]
    # sitecustomize: the blocker also loads in the spawned worker processes.
    site = tmp_path / "no_torch"
    site.mkdir()
    (site / "sitecustomize.py").write_text(
        "import importlib.abc, sys\n"
        "class NoTorch(importlib.abc.MetaPathFinder):\n"
        "    def find_spec(self, name, path=None, target=None):\n"
        "        if name.split('.')[0] == 'torch':\n"
        "            raise ImportError('blocked: ' + name)\n"
        "sys.meta_path.insert(0, NoTorch())\n"
    )
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(site), str(REPO)])}
    script = (
        "import sys\n"
        "assert any(type(f).__name__ == 'NoTorch' for f in sys.meta_path), 'no blocker'\n"
        "from sdm_policy_core.cli import main\n"
        f"sys.exit(main(['bag2zarr', *{args!r}, '--workers', '2']))\n"
    )
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, env=env)
    assert done.returncode == 0, done.stderr[-2000:]
    assert ReplayBuffer.load(out).episode_ends.tolist() == [20]


def test_a_dead_topic_forces_alignment_instead_of_buffering_the_bag(tmp_path):
    path = tmp_path / "bag"
    with BagWriter(path) as bag:
        for k in range(60):
            t = T0 + k * 100 * MS
            bag.write_cloud("/points", t, cloud_for(k, 2000))  # 24 kB per cloud
            bag.write_joint_state("/joint_states", t + 2 * MS, JOINTS, [-k, k, 0])
            if k < 10:  # the command topic dies after 1 s
                bag.write_float64_array("/joint_commands", t + 30 * MS, [k, 10 * k])
    summary = convert([path], tmp_path / "a.zarr", config(tmp_path, max_buffer_mb=0.2))
    data = ReplayBuffer.load(tmp_path / "a.zarr")
    np.testing.assert_array_equal(data["action"][:, 0], np.arange(10))
    assert summary["message_issues"]["alignment forced early (max_buffer_mb reached)"] > 0
    reason = "no action message (/joint_commands) within tolerance (next)"
    assert summary["samples_dropped"] == {reason: 50}


def test_crop_box_and_transform_from_config_or_tf_static(tmp_path):
    bag_path = tmp_path / "bag"
    rotation = [0.0, 0.0, 0.5**0.5, 0.5**0.5]  # 90 deg about z: (x, y) -> (-y, x)
    with BagWriter(bag_path) as bag:
        bag.write_transform("/tf_static", T0 - MS, "world", "base_link", [0, 0, 1], [0, 0, 0, 1])
        bag.write_transform("/tf_static", T0 - MS, "base_link", "camera", [1, 0, 0], rotation)
        write_demo(bag, 5)
    crop = {"crop_low": [0.0, -1.0, -10.0], "crop_high": [0.5, 10.0, 10.0]}
    fixed = {**crop, "transform": {"translation": [1, 0, 0], "rotation_xyzw": rotation}}
    convert([bag_path], tmp_path / "fixed.zarr", config(tmp_path, point_cloud=fixed))
    from_tf = {**crop, "target_frame": "base_link"}
    convert([bag_path], tmp_path / "tf.zarr", config(tmp_path, point_cloud=from_tf))
    pc = ReplayBuffer.load(tmp_path / "fixed.zarr")["point_cloud"]
    np.testing.assert_array_equal(pc, ReplayBuffer.load(tmp_path / "tf.zarr")["point_cloud"])
    # a config written before /tf was read (`tf_topic: /tf_static`) reads it as static
    old_style = {**from_tf, "tf_topic": "/tf_static"}
    convert([bag_path], tmp_path / "old.zarr", config(tmp_path, point_cloud=old_style))
    np.testing.assert_array_equal(pc, ReplayBuffer.load(tmp_path / "old.zarr")["point_cloud"])
    # camera point (x, y, z) -> base (1 - y, x, z); the crop keeps base x <= 0.5, i.e. y >= 0.5
    for k, frame in enumerate(pc):
        assert (frame[:, 0] <= 0.5 + 1e-6).all() and (frame[:, 0] >= 0).all()
        np.testing.assert_allclose(np.floor(frame[:, 1] + 1e-6), k)
        np.testing.assert_allclose(frame[:, 2], -k)
    with pytest.raises(BagError, match=r"no transform from the cloud's frame 'camera' to 'odom'"):
        convert(
            [bag_path], tmp_path / "x.zarr", config(tmp_path, point_cloud={"target_frame": "odom"})
        )


# -- episodes -------------------------------------------------------------------------------------


def _status(bag: BagWriter, t: int, episode: int, success: bool = False) -> None:
    msg = bag.types["sdm_msgs/msg/EpisodeStatus"](
        header=bag.header(t),
        episode_id=episode,
        step=0,
        max_steps=100,
        success=success,
        done=False,
        task="reach-v3",
        seed=episode,
    )
    bag.write("/episode_status", msg, t)


def test_split_by_marker_field_with_custom_type_from_msg_text(tmp_path):
    path = tmp_path / "session"
    with BagWriter(
        path, storage="sqlite3", custom_types={"sdm_msgs/msg/EpisodeStatus": EPISODE_STATUS}
    ) as bag:
        for e, steps in enumerate((8, 6, 7)):
            start = T0 + e * 10**9
            ticks = write_demo(bag, steps, start_ns=start, first_step=10 * e)
            for t in ticks:
                _status(bag, t - MS, e)  # published every step; a new episode_id = a new demo
    episodes = {"split": "marker", "marker_topic": "episode_status", "marker_field": "episode_id"}
    cfg = config(tmp_path, episodes=episodes)
    data = ReplayBuffer.load(convert([path], tmp_path / "a.zarr", cfg)["out"])
    np.testing.assert_array_equal(data.episode_ends, [8, 14, 21])
    # A bag recorded without message definitions (e.g. Humble sqlite3) needs the .msg text.
    db = glob.glob(str(path / "*.db3"))[0]
    with sqlite3.connect(db) as connection:
        connection.execute("DELETE FROM message_definitions")
    with pytest.raises(BagError, match="custom_types"):
        convert([path], tmp_path / "b.zarr", cfg)
    custom = {"sdm_msgs/msg/EpisodeStatus": str(REPO / "sdm_msgs/msg/EpisodeStatus.msg")}
    cfg = config(tmp_path, episodes=episodes, custom_types=custom)
    again = ReplayBuffer.load(
        convert([path], tmp_path / "c.zarr", cfg, ["typestore=humble"])["out"]
    )
    np.testing.assert_array_equal(again["state"], data["state"])


def test_failed_demonstrations_are_left_out_by_the_success_field(tmp_path):
    """Failed demonstrations are left out by the success field.

    A teleoperation session keeps failed attempts in the bag; the marker's success flag at
    the end of each episode decides what enters the dataset.
    """
    path = tmp_path / "session"
    with BagWriter(
        path, storage="mcap", custom_types={"sdm_msgs/msg/EpisodeStatus": EPISODE_STATUS}
    ) as bag:
        for e, (steps, succeeded) in enumerate(((8, True), (6, False), (7, True))):
            ticks = write_demo(bag, steps, start_ns=T0 + e * 10**9, first_step=10 * e)
            for k, t in enumerate(ticks):  # success comes on the last steps (or never)
                _status(bag, t - MS, e, success=succeeded and k >= steps - 2)
    episodes = {"split": "marker", "marker_topic": "episode_status", "marker_field": "episode_id"}
    cfg = config(tmp_path, episodes={**episodes, "success_field": "success"})
    summary = convert([path], tmp_path / "a.zarr", cfg)
    data = ReplayBuffer.load(tmp_path / "a.zarr")
    np.testing.assert_array_equal(data.episode_ends, [8, 15])
    np.testing.assert_array_equal(data["action"][8:, 0], 20 + np.arange(7))  # the third demo
    assert summary["episodes_skipped_failed"] == 1
    assert summary["samples_dropped"] == {"episode failed (success not true at its end)": 6}
    with pytest.raises(BagError, match=r"episodes\.success_field to a field"):
        bad = config(tmp_path, episodes={**episodes, "success_field": "succeeded"})
        convert([path], tmp_path / "b.zarr", bad)
    with pytest.raises(ConfigError, match=r"success_field needs episodes\.split=marker"):
        gap = config(tmp_path, episodes={"split": "gap", "success_field": "success"})
        convert([path], tmp_path / "c.zarr", gap)


def test_split_by_gap_and_min_length(tmp_path):
    path = tmp_path / "bag"
    with BagWriter(path) as bag:
        write_demo(bag, 10, start_ns=T0)
        write_demo(bag, 3, start_ns=T0 + 5 * 10**9, first_step=50)  # too short: skipped
        write_demo(bag, 7, start_ns=T0 + 10 * 10**9, first_step=70)
    cfg = config(tmp_path, episodes={"split": "gap", "gap_s": 1.0, "min_length": 5})
    summary = convert([path], tmp_path / "a.zarr", cfg)
    data = ReplayBuffer.load(tmp_path / "a.zarr")
    np.testing.assert_array_equal(data.episode_ends, [10, 17])
    np.testing.assert_array_equal(data["action"][10:, 0], 70 + np.arange(7))
    assert summary["episodes_skipped_short"] == 1
    assert summary["samples_dropped"] == {"episode shorter than episodes.min_length=5": 3}


def test_fixed_rate_clock_with_next_state_actions(tmp_path):
    path = tmp_path / "bag"
    with BagWriter(path) as bag:
        write_demo(bag, 20)  # clouds at 10 Hz; joint states at 50 Hz
    cfg = config(
        tmp_path,
        clock={"rate_hz": 5.0},
        action={"source": "next_state"},
        state={"align": "previous", "tolerance_s": 0.05},
    )
    summary = convert([path], tmp_path / "a.zarr", cfg)
    data = ReplayBuffer.load(tmp_path / "a.zarr")
    # ticks every 200 ms from the first moment all streams have data (the first joint state)
    ticks = T0 + 2 * MS + np.arange(10) * 200 * MS
    assert data.n_steps == 9  # the last tick has no next state
    np.testing.assert_allclose(data["state"][:, 0], ticks[:9] / 1e9)  # previous: exactly at t
    np.testing.assert_array_equal(data["action"][:-1], data["state"][1:])
    np.testing.assert_allclose(data["action"][-1, 0], ticks[9] / 1e9)
    # nearest cloud to t = 2 ms + 200 ms * i is cloud 2i
    np.testing.assert_array_equal(np.floor(data["point_cloud"][:, 0, 0]), 2 * np.arange(9))
    assert summary["samples_dropped"] == {
        "last sample of an episode (no next state for action)": 1
    }


def test_missing_hold_reuses_the_last_value_and_counts_it(tmp_path):
    path = tmp_path / "bag"
    with BagWriter(path) as bag:
        for k in range(10):
            t = T0 + k * 100 * MS
            bag.write_cloud("/points", t, cloud_for(k))
            if k not in (3, 4):  # the arm driver stalls for 200 ms
                bag.write_joint_state("/joint_states", t + 2 * MS, JOINTS, [-k, k, 0])
            bag.write_float64_array("/joint_commands", t + 30 * MS, [k, 10 * k])
    summary = convert([path], tmp_path / "a.zarr", config(tmp_path, state={"missing": "hold"}))
    data = ReplayBuffer.load(tmp_path / "a.zarr")
    np.testing.assert_array_equal(data["state"][:, 0], [0, 1, 2, 2, 2, 5, 6, 7, 8, 9])
    assert summary["samples_held"] == {"state": 2}
    dropped = convert([path], tmp_path / "b.zarr", config(tmp_path))["samples_dropped"]
    assert dropped == {"no state message (/joint_states) within tolerance (nearest)": 2}


# -- append ---------------------------------------------------------------------------------------


def _tree_digest(path: Path) -> str:
    digest = hashlib.sha256()
    for file in sorted(p for p in path.rglob("*") if p.is_file()):
        digest.update(str(file.relative_to(path)).encode() + file.read_bytes())
    return digest.hexdigest()


def test_append_adds_episodes_and_never_damages_the_dataset(tmp_path, three_bags):
    bags, _ = three_bags
    out = tmp_path / "demos.zarr"
    convert(bags[:1], out, config(tmp_path))
    with pytest.raises(DatasetError, match="--append"):
        convert(bags[1:], out, config(tmp_path))
    convert(bags[1:], out, config(tmp_path), append=True)
    appended = ReplayBuffer.load(out)
    whole = ReplayBuffer.load(convert(bags, tmp_path / "whole.zarr", config(tmp_path))["out"])
    np.testing.assert_array_equal(appended.episode_ends, [12, 27, 36])
    for key in ("point_cloud", "state", "action"):
        np.testing.assert_array_equal(appended[key], whole[key])
    before = _tree_digest(out)
    with pytest.raises(DatasetError, match=r"\(32, 3\) do not fit the dataset's \(16, 3\)"):
        convert(bags[:1], out, config(tmp_path), ["point_cloud.num_points=32"], append=True)
    assert _tree_digest(out) == before
    assert sorted(p.name for p in tmp_path.iterdir() if p.name.startswith(".")) == []


# -- bad input ------------------------------------------------------------------------------------


def test_missing_topic_lists_the_bags_topics_and_types(tmp_path, three_bags):
    bags, _ = three_bags
    with pytest.raises(BagError) as err:
        convert(bags, tmp_path / "a.zarr", config(tmp_path, state={"topic": "/arm/joint_states"}))
    message = str(err.value)
    assert "no topic '/arm/joint_states' (state topic)" in message
    assert "/points (sensor_msgs/msg/PointCloud2, 12 msgs)" in message
    assert "/joint_states (sensor_msgs/msg/JointState" in message
    with pytest.raises(BagError, match="has type sensor_msgs/msg/JointState, expected"):
        convert(bags, tmp_path / "a.zarr", config(tmp_path, point_cloud={"topic": "joint_states"}))
    assert not (tmp_path / "a.zarr").exists()


@pytest.mark.parametrize("storage", ["mcap", "sqlite3"])
def test_truncated_or_corrupt_bag_names_the_file_and_writes_nothing(tmp_path, storage):
    good, bad = tmp_path / "good", tmp_path / "bad"
    for path in (good, bad):
        with BagWriter(path, storage=storage) as bag:
            write_demo(bag, 30)
    (file,) = [p for p in bad.iterdir() if p.suffix in (".mcap", ".db3")]
    raw = file.read_bytes()
    if storage == "mcap":
        file.write_bytes(raw[: len(raw) // 2])  # truncated mid-recording
    else:
        file.write_bytes(raw[:4096] + b"\xde\xad" * 2048 + raw[8192:])  # corrupt pages
    out = tmp_path / "a.zarr"
    with pytest.raises(BagError, match=re.escape(f"cannot read bag {bad} (file {file.name}): ")):
        convert([good, bad], out, config(tmp_path))
    assert not out.exists() and not list(tmp_path.glob(".a.zarr*"))


def test_stamps_out_of_order_duplicates_and_empty_clouds(tmp_path):
    path = tmp_path / "bag"
    with BagWriter(path) as bag:
        for k in range(12):
            t = T0 + k * 100 * MS
            # header stamps of clouds 4 and 5 swapped: logged out of stamp order
            stamp = {4: t + 100 * MS, 5: t - 100 * MS}.get(k, t)
            points = np.zeros((0, 3), np.float32) if k == 8 else cloud_for({4: 5, 5: 4}.get(k, k))
            bag.write_cloud("/points", t, points, stamp_ns=stamp)
            if k == 2:
                bag.write_cloud("/points", t + MS, cloud_for(k), stamp_ns=stamp)  # duplicate
            if k == 10:
                bag.write_cloud("/points", t, cloud_for(0), stamp_ns=T0)  # far too late
            bag.write_joint_state("/joint_states", t + 2 * MS, JOINTS, [-k, k, 0])
            bag.write_float64_array("/joint_commands", t + 30 * MS, [k, 10 * k])
    summary = convert([path], tmp_path / "a.zarr", config(tmp_path, state={"tolerance_s": 0.01}))
    data = ReplayBuffer.load(tmp_path / "a.zarr")
    kept = [k for k in range(12) if k != 8]
    np.testing.assert_array_equal(np.floor(data["point_cloud"][:, 0, 0]), kept)  # in order
    np.testing.assert_array_equal(data["state"][:, 0], kept)
    assert summary["samples_dropped"] == {"point_cloud: empty cloud (no finite point)": 1}
    issues = summary["message_issues"]
    assert issues["/points: duplicate stamp, dropped"] == 1
    assert issues["/points: non-monotonic stamp, reordered"] == 1
    assert issues["/points: stamp older than the reorder window, dropped"] == 1


def test_any_cloud_layout_and_images_with_unsupported_encodings(tmp_path):
    path = tmp_path / "bag"
    rgb = np.arange(4 * 6 * 3, dtype=np.uint8).reshape(4, 6, 3)
    with BagWriter(path) as bag:
        types = bag.types
        for k in range(6):
            t = T0 + k * 100 * MS
            # float64 xyz after a padding field, big-endian, at odd offsets
            layout = {
                "i": (0, "u1", 2),
                "x": (1, ">f8", 8),
                "y": (9, ">f8", 8),
                "z": (17, ">f8", 8),
            }
            dtype = np.dtype(
                {
                    "names": list(layout),
                    "formats": [f for _, f, _ in layout.values()],
                    "offsets": [o for o, _, _ in layout.values()],
                    "itemsize": 27,
                }
            )
            records = np.zeros(64, dtype)
            records["x"], records["y"], records["z"] = cloud_for(k).T
            point_field = types["sensor_msgs/msg/PointField"]
            fields = [
                point_field(name=n, offset=o, datatype=d, count=1)
                for n, (o, _, d) in layout.items()
            ]
            msg = types["sensor_msgs/msg/PointCloud2"](
                header=bag.header(t, "camera"),
                height=1,
                width=64,
                fields=fields,
                is_bigendian=True,
                point_step=27,
                row_step=27 * 64,
                data=np.frombuffer(records.tobytes(), np.uint8),
                is_dense=True,
            )
            bag.write("/points", msg, t)
            if k == 3:
                yuv = types["sensor_msgs/msg/Image"](
                    header=bag.header(t + MS),
                    height=4,
                    width=6,
                    encoding="yuv422",
                    is_bigendian=0,
                    step=12,
                    data=np.zeros(48, np.uint8),
                )
                bag.write("/image", yuv, t + MS)
            else:
                bag.write_image("/image", t + MS, rgb, "bgr8")
            depth = np.full((4, 6), 0.25 * k, np.float32)
            bag.write_image("/depth", t + MS, depth, "16UC1" if k % 2 else "32FC1")
            bag.write_joint_state("/joint_states", t + 2 * MS, JOINTS, [-k, k, 0])
            bag.write_float64_array("/joint_commands", t + 30 * MS, [k, 10 * k])
    image = {"topic": "image", "width": 3, "height": 2}
    depth = {"topic": "depth", "width": 3, "height": 2}
    summary = convert([path], tmp_path / "a.zarr", config(tmp_path, image=image, depth=depth))
    data = ReplayBuffer.load(tmp_path / "a.zarr")
    assert data["img"].shape == (5, 2, 3, 3) and data["img"].dtype == np.uint8
    # BGR -> RGB, then area interpolation: the mean of each 2x2 block
    np.testing.assert_allclose(data["img"][0], rgb[::2, ::2] + 10.5, atol=0.5)
    assert data["depth"].shape == (5, 2, 3) and data["depth"].dtype == np.float32
    np.testing.assert_allclose(data["depth"][:, 0, 0], 0.25 * np.array([0, 1, 2, 4, 5]))
    np.testing.assert_array_equal(np.floor(data["point_cloud"][:, 0, 0]), [0, 1, 2, 4, 5])
    (reason,) = summary["samples_dropped"]
    assert reason == (
        "img: unsupported image encoding 'yuv422' for RGB; supported: rgb8, bgr8, rgba8, "
        "bgra8, mono8"
    )


# -- configuration and command line ---------------------------------------------------------------


def test_config_is_strict_and_the_example_configs_load(tmp_path):
    for name in ("metaworld_sim", "real_arm"):
        cfg = load_bag2zarr_config(REPO / "config" / "bag2zarr" / f"{name}.yaml")
        assert cfg.point_cloud is not None
    bad = tmp_path / "bad.yaml"
    bad.write_text("point_cloud:\n  topic: points\n  num_point: 512\n")
    with pytest.raises(ConfigError, match=r"point_cloud.num_point"):
        load_bag2zarr_config(bad)
    with pytest.raises(ConfigError, match="align must be nearest, previous or next"):
        load_bag2zarr_config(None, ["state.align=closest"])
    with pytest.raises(ConfigError, match="tolerance_s is required"):
        load_bag2zarr_config(None, ["action.tolerance_s=null"])
    # the loader and override syntax of `sdm train`: file < overrides, a null section filled
    # in by an override, top-level keys, values parsed as YAML
    cameras = tmp_path / "cameras.yaml"
    cameras.write_text("image: null\nworkers: 1\npoint_cloud:\n  num_points: 64\n")
    cfg = load_bag2zarr_config(
        cameras, ["image.topic=/camera/rgb", "workers=0", "clock.rate_hz=5"]
    )
    assert cfg.image is not None and cfg.image.topic == "/camera/rgb" and cfg.workers == 0
    assert cfg.point_cloud.num_points == 64 and cfg.clock.rate_hz == 5.0
    assert load_bag2zarr_config(cameras).image is None
    with pytest.raises(ConfigError, match=r"override 'workers' must look like section.key=value"):
        load_bag2zarr_config(None, ["workers"])
    with pytest.raises(ConfigError, match=r"override 'workers.count=2': 'workers' is not a"):
        load_bag2zarr_config(cameras, ["workers.count=2"])
    with pytest.raises(ConfigError, match=r"workers must be an integer, got \{'count': 2\}"):
        load_bag2zarr_config(None, ["workers.count=2"])


def test_cli_converts_a_sim_bridge_bag_with_the_example_config(tmp_path, capsys):
    path = tmp_path / "session"
    with BagWriter(path, custom_types={"sdm_msgs/msg/EpisodeStatus": EPISODE_STATUS}) as bag:
        for e in range(2):
            for k in range(12):
                t = T0 + (e * 20 + k) * 50 * MS
                _status(bag, t, e, success=k >= 10)  # the config keeps successful demos
                bag.write_cloud("/points", t + MS, cloud_for(k, 600))
                bag.write_joint_state(
                    "/joint_states", t + MS, [f"q{i}" for i in range(9)], np.full(9, k, float)
                )
                bag.write_float64_array("/joint_commands", t + 10 * MS, [k, 0, 0, -1])
    out = tmp_path / "demos.zarr"
    args = [
        "bag2zarr",
        str(path),
        "--out",
        str(out),
        "--no-progress",
        "--workers",
        "0",
        "--config",
        str(REPO / "config" / "bag2zarr" / "metaworld_sim.yaml"),
    ]
    assert sdm_main(args) == 0
    data = ReplayBuffer.load(out)
    np.testing.assert_array_equal(data.episode_ends, [12, 24])
    assert data["point_cloud"].shape == (24, 512, 3) and data["state"].shape == (24, 9)
    np.testing.assert_array_equal(data["action"][:12, 0], np.arange(12))
    assert "wrote 24 samples in 2 episodes" in capsys.readouterr().out
    assert sdm_main(args) == 2  # exists, no --append
    assert "exists; pass --append" in capsys.readouterr().err
    assert zarr.open_group(str(out), mode="r")["data/point_cloud"].metadata.zarr_format == 2


# -- bags as recorded in the wild (issue 20; the real ones are in test_bag_reading.py) ----------


def _demo_bag(path: Path, storage: str, steps: int = 10, **kwargs) -> Path:
    with BagWriter(path, storage=storage) as bag:
        write_demo(bag, steps, **kwargs)
    return path


def _storage_file(path: Path) -> Path:
    (file,) = [p for p in path.iterdir() if p.suffix in (".mcap", ".db3")]
    return file


def assert_same_dataset(a: Path, b: Path) -> None:
    first, second = ReplayBuffer.load(a), ReplayBuffer.load(b)
    np.testing.assert_array_equal(first.episode_ends, second.episode_ends)
    for key in ("point_cloud", "state", "action"):
        np.testing.assert_array_equal(first[key], second[key])


def _edit_metadata(path: Path, edit) -> None:
    meta_path = path / "metadata.yaml"
    meta = yaml.safe_load(meta_path.read_text())
    edit(meta["rosbag2_bagfile_information"])
    meta_path.write_text(yaml.safe_dump(meta))


@pytest.mark.parametrize("storage", ["mcap", "sqlite3"])
def test_metadata_qos_unlike_the_storage_s_still_yields_every_message(tmp_path, storage):
    """A metadata QoS unlike the storage's still yields every message.

    rosbag2's talker trap: metadata.yaml's QoS differs from the storage's, and rosbags' own
    reader then yields none of the messages.
    """
    from rosbags.highlevel import AnyReader

    path = _demo_bag(tmp_path / "bag", storage)
    convert([path], tmp_path / "reference.zarr", config(tmp_path))
    qos = {
        "history": "keep_last",
        "depth": 10,
        "reliability": "reliable",
        "durability": "volatile",
        "deadline": {"sec": 0, "nsec": 0},
        "lifespan": {"sec": 0, "nsec": 0},
        "liveliness": "automatic",
        "liveliness_lease_duration": {"sec": 0, "nsec": 0},
        "avoid_ros_namespace_conventions": False,
    }

    def set_qos(info):
        for entry in info["topics_with_message_count"]:
            entry["topic_metadata"]["offered_qos_profiles"] = [qos]

    _edit_metadata(path, set_qos)
    with AnyReader([path]) as reader:
        assert reader.message_count == 70 and not list(reader.messages())  # the trap is set
    summary = convert([path], tmp_path / "a.zarr", config(tmp_path))
    assert summary["messages"] == {"/joint_commands": 10, "/joint_states": 50, "/points": 10}
    assert_same_dataset(tmp_path / "reference.zarr", tmp_path / "a.zarr")


@pytest.mark.parametrize("storage", ["mcap", "sqlite3"])
def test_bare_storage_files_and_split_bags_with_or_without_metadata(tmp_path, storage):
    whole = _demo_bag(tmp_path / "whole", storage, steps=12)
    convert([whole], tmp_path / "reference.zarr", config(tmp_path))
    convert([_storage_file(whole)], tmp_path / "bare.zarr", config(tmp_path))
    assert_same_dataset(tmp_path / "reference.zarr", tmp_path / "bare.zarr")
    # The same recording split in two files, as `ros2 bag record --max-bag-duration` leaves it.
    parts = [
        _demo_bag(tmp_path / "part_0", storage, steps=6),
        _demo_bag(tmp_path / "part_1", storage, steps=6, start_ns=T0 + 600 * MS, first_step=6),
    ]
    split = tmp_path / "split"
    split.mkdir()
    infos = []
    for part in parts:
        _storage_file(part).rename(split / _storage_file(part).name)
        infos.append(yaml.safe_load((part / "metadata.yaml").read_text()))
    info = infos[0]["rosbag2_bagfile_information"]
    second = infos[1]["rosbag2_bagfile_information"]
    info["relative_file_paths"] += second["relative_file_paths"]
    info["files"] += second["files"]
    info["message_count"] += second["message_count"]
    end = second["starting_time"]["nanoseconds_since_epoch"] + second["duration"]["nanoseconds"]
    info["duration"]["nanoseconds"] = end - info["starting_time"]["nanoseconds_since_epoch"]
    counts = {
        t["topic_metadata"]["name"]: t["message_count"]
        for t in second["topics_with_message_count"]
    }
    for entry in info["topics_with_message_count"]:
        entry["message_count"] += counts[entry["topic_metadata"]["name"]]
    (split / "metadata.yaml").write_text(yaml.safe_dump(infos[0]))
    summary = convert([split], tmp_path / "split.zarr", config(tmp_path))
    assert summary["episodes_written"] == 1 and summary["warnings"] == []
    assert_same_dataset(tmp_path / "reference.zarr", tmp_path / "split.zarr")
    (split / "metadata.yaml").unlink()  # a crashed recorder leaves the files, no metadata
    summary = convert([split], tmp_path / "no_metadata.zarr", config(tmp_path))
    assert_same_dataset(tmp_path / "reference.zarr", tmp_path / "no_metadata.zarr")
    empty = tmp_path / "empty_dir"
    empty.mkdir()
    with pytest.raises(BagError, match=r"empty_dir is not a rosbag2 bag \(no metadata.yaml, no"):
        convert([empty], tmp_path / "b.zarr", config(tmp_path))


def test_legacy_type_names_of_a_dashing_style_db3(tmp_path):
    """Dashing wrote `sensor_msgs/PointCloud2` and no definitions or hashes."""
    path = _demo_bag(tmp_path / "bag", "sqlite3")
    convert([path], tmp_path / "reference.zarr", config(tmp_path))
    db3 = _storage_file(path)
    with sqlite3.connect(db3) as connection:
        connection.execute("UPDATE topics SET type = replace(type, '/msg/', '/')")
        connection.execute("UPDATE topics SET type_description_hash = ''")
        connection.execute("DELETE FROM message_definitions")
        assert connection.execute("SELECT type FROM topics WHERE name = '/points'").fetchone() == (
            "sensor_msgs/PointCloud2",
        )
    convert([db3], tmp_path / "a.zarr", config(tmp_path))
    assert_same_dataset(tmp_path / "reference.zarr", tmp_path / "a.zarr")


def test_a_topic_whose_definition_does_not_parse_is_left_out_with_a_warning(tmp_path):
    path = tmp_path / "bag"
    with BagWriter(path, storage="sqlite3") as bag:
        write_demo(bag, 10)
        bag.write("/log", bag.types["std_msgs/msg/String"](data="recording"), T0)
    convert([path], tmp_path / "reference.zarr", config(tmp_path))
    with sqlite3.connect(_storage_file(path)) as connection:
        connection.execute(
            "UPDATE message_definitions SET encoded_message_definition = 'int32[ x' "
            "WHERE topic_type = 'std_msgs/msg/String'"
        )
    summary = convert([path], tmp_path / "a.zarr", config(tmp_path))
    assert_same_dataset(tmp_path / "reference.zarr", tmp_path / "a.zarr")
    (warning,) = summary["warnings"]
    assert warning.startswith(
        f"bag {path}: left out 1 topic whose messages cannot be decoded: /log"
    )
    assert "does not parse" in warning
    with sqlite3.connect(_storage_file(path)) as connection:
        connection.execute(
            "UPDATE message_definitions SET encoded_message_definition = 'int32[ x' "
            "WHERE topic_type = 'sensor_msgs/msg/JointState'"
        )
    message = r"topic /joint_states \(state topic\) cannot be read: its message definition"
    with pytest.raises(BagError, match=message):
        convert([path], tmp_path / "b.zarr", config(tmp_path))
    assert not (tmp_path / "b.zarr").exists()


def test_a_stream_that_yields_none_of_its_declared_messages_fails_the_bag(tmp_path):
    path = _demo_bag(tmp_path / "bag", "sqlite3")
    with sqlite3.connect(_storage_file(path)) as connection:
        (topic_id,) = connection.execute(
            "SELECT id FROM topics WHERE name = '/joint_commands'"
        ).fetchone()
        connection.execute(
            "DELETE FROM messages WHERE topic_id = ? AND id IN "
            "(SELECT id FROM messages WHERE topic_id = ? ORDER BY timestamp LIMIT 3)",
            (topic_id, topic_id),
        )
    summary = convert([path], tmp_path / "a.zarr", config(tmp_path))
    assert f"bag {path}: /joint_commands: 7 of 10 messages read" in summary["warnings"]
    with sqlite3.connect(_storage_file(path)) as connection:
        connection.execute("DELETE FROM messages WHERE topic_id = ?", (topic_id,))
    message = "topic /joint_commands yielded none of its 10 messages"
    with pytest.raises(BagError, match=message):
        convert([path], tmp_path / "b.zarr", config(tmp_path))
    assert not (tmp_path / "b.zarr").exists() and not list(tmp_path.glob(".b.zarr*"))


def test_unknown_serialisation_empty_and_ros1_bags_are_refused_in_one_line(tmp_path, capsys):
    from rosbags.rosbag1 import Writer as Ros1Writer
    from rosbags.typesys import Stores, get_typestore

    wrong = _demo_bag(tmp_path / "wrong", "mcap")

    def set_format(info):
        for entry in info["topics_with_message_count"]:
            entry["topic_metadata"]["serialization_format"] = "wrong_format"

    _edit_metadata(wrong, set_format)
    with BagWriter(tmp_path / "empty"):
        pass
    ros1 = tmp_path / "demo.bag"
    store = get_typestore(Stores.ROS1_NOETIC)
    with Ros1Writer(ros1) as writer:
        connection = writer.add_connection("/chatter", "std_msgs/msg/String", typestore=store)
        msg = store.types["std_msgs/msg/String"](data="hi")
        writer.write(connection, T0, store.serialize_ros1(msg, "std_msgs/msg/String"))
    cases = {
        wrong: "messages are serialised as 'wrong_format'",
        tmp_path / "empty": "holds no messages",
        ros1: f"is a ROS 1 bag; bag2zarr reads rosbag2: convert it first with "
        f"`rosbags-convert --src {ros1} --dst {tmp_path / 'demo'}_ros2`",
    }
    out = tmp_path / "a.zarr"
    for bag, expected in cases.items():
        args = [
            "bag2zarr",
            str(bag),
            "--out",
            str(out),
            "--no-progress",
            "--config",
            str(config(tmp_path)),
        ]
        assert sdm_main(args) == 2
        (line,) = capsys.readouterr().err.strip().splitlines()
        assert line.startswith("sdm bag2zarr: error: ") and str(bag) in line and expected in line
        assert not out.exists()
    assert sdm_main(["bag", "info", str(ros1), str(tmp_path / "empty")]) == 0
    text = capsys.readouterr().out
    assert "/chatter  std_msgs/msg/String        1 / 1" in text
    assert "warning: no message could be read: the bag is empty" in text


# -- alignment primitives -------------------------------------------------------------------------


def test_stream_buffer_rules_and_readiness():
    nearest = StreamBuffer(AlignRule("nearest", 10), reorder_ns=5)
    assert [nearest.add(s, s) for s in (0, 20, 15, 20, 9)] == [
        ACCEPTED,
        ACCEPTED,
        REORDERED,
        DUPLICATE,
        LATE,
    ]
    assert nearest.values[nearest.select(12)] == 15 and nearest.select(31) is None
    assert nearest.values[nearest.select(9)] == 15
    assert nearest.select(9, high=14) == 0  # within an episode's span [-inf, 14): 0, not 15
    assert not nearest.ready(6) and nearest.ready(5)  # watermark 15 >= t + 10
    previous = StreamBuffer(AlignRule("previous", None))
    for s in (0, 10, 20):
        previous.add(s, s)
    assert previous.values[previous.select(19)] == 10 and previous.select(-1) is None
    assert previous.ready(19) and not previous.ready(20)
    following = StreamBuffer(AlignRule("next", 5))
    for s in (0, 10, 20):
        following.add(s, s)
    assert following.values[following.select(6)] == 10 and following.select(11) is None
    previous.prune(19)
    assert previous.stamps == [10, 20]  # one before t kept for 'previous'


def test_bench_bag2zarr_writes_the_contract_keys(tmp_path):
    out = tmp_path / "bench.json"
    args = ["bench", "bag2zarr", "--clouds", "40", "--points", "2000", "--num-points", "256"]
    assert sdm_main([*args, "--out", str(out)]) == 0
    result = json.loads(out.read_text())
    assert result["clouds"] == 40 and result["samples_written"] == 40
    assert result["clouds_per_s"] > 0 and 0 < result["peak_rss_mb"] < 1024
    assert result["messages"] == 40 + 40 + result["messages_per_topic"]["/joint_states"]
    # where the time went: the converter's stages (wall) and the workers' (summed)
    converter, workers = result["stages_s"]["converter"], result["stages_s"]["workers"]
    assert {"read", "stream", "align", "wait", "write", "other"} <= set(converter)
    assert set(workers) == {"cloud_decode", "cloud_fps"} and workers["cloud_fps"] > 0
    assert sum(converter.values()) == pytest.approx(result["conversion_wall_s"], abs=0.01)
    # a moving camera's /tf and jpeg images in the generated bag, converted with it
    args += ["--clouds", "20", "--tf", "--images", "64x48", "--out", str(out)]
    assert sdm_main(args) == 0
    result = json.loads(out.read_text())
    assert result["samples_written"] == 20 and result["samples_dropped"] == {}
    assert result["tf"] is True and result["image_size"] == [64, 48]
    assert result["messages_per_topic"]["/image/compressed"] == 20
    assert {"tf", "tf_lookup"} <= set(result["stages_s"]["converter"])
    assert result["stages_s"]["workers"]["img"] > 0


# -- regression: fixed bags -> dataset content hashes (pinned before issue 20's tf / compressed
# image work, /tf and compressed images before the package split; a change in any stored value,
# dtype, shape or episode boundary changes the hash) --


def dataset_digest(path: Path) -> str:
    """sha256 over every array of data/ and meta/ (name, dtype, shape, bytes), sorted."""
    group = zarr.open_group(str(path), mode="r")
    digest = hashlib.sha256()
    for section in ("data", "meta"):
        for name in sorted(group[section].array_keys()):
            array = np.ascontiguousarray(group[section][name][...])
            digest.update(f"{section}/{name} {array.dtype.str} {array.shape}".encode())
            digest.update(array.tobytes())
    return digest.hexdigest()


def _regression_images(bag: BagWriter, steps: int) -> None:
    rng = np.random.default_rng(7)
    for k in range(steps):
        t = T0 + k * 100 * MS
        bag.write_image("/image", t + MS, rng.integers(0, 256, (12, 16, 3), np.uint8), "bgr8")
        depth = rng.uniform(0.2, 3.0, (12, 16)).astype(np.float32)
        bag.write_image("/depth", t + MS, depth, "16UC1" if k % 2 else "32FC1")


def _regression_case(name: str, tmp: Path) -> tuple[list[Path], Path]:
    """Return the bags and config of one pinned conversion."""
    bags = [tmp / f"{name}_{e}" for e in range(3 if name == "three_bags" else 1)]
    if name == "three_bags":
        for e, (path, steps) in enumerate(zip(bags, (12, 15, 9), strict=True)):
            with BagWriter(path, storage="mcap") as bag:
                write_demo(bag, steps, start_ns=T0 + e * 60 * 10**9, first_step=100 * e)
        return bags, config(tmp)
    if name == "tf_dynamic":  # a wrist camera: /tf interpolated at each cloud's stamp
        _wrist_bag(bags[0])
        return bags, config(tmp, point_cloud={"target_frame": "base_link", "num_points": 32})
    if name == "compressed":  # jpeg and png colour, compressedDepth 32FC1 and 16UC1, in a pool
        with BagWriter(bags[0]) as bag:
            write_demo(bag, 6)
            for k in range(6):
                t = T0 + k * 100 * MS + MS
                rgb, depth = _camera_frames(k)
                bgr = np.ascontiguousarray(rgb[:, :, ::-1])
                ext, fmt = (".jpg", "jpeg") if k % 2 else (".png", "png")
                bag.write_compressed_image("/image", t, _encode(ext, bgr), f"rgb8; {fmt} bgr8")
                encoding = "16UC1" if k % 2 else "32FC1"
                depth = np.nan_to_num(depth) if k % 2 else depth
                bag.write_compressed_image(
                    "/depth", t, _compressed_depth(depth, encoding), f"{encoding}; compressedDepth"
                )
        image = {"topic": "image", "width": 32, "height": 24}
        return bags, config(tmp, image=image, depth={"topic": "depth"}, workers=2)
    with BagWriter(
        bags[0], storage="sqlite3", custom_types={"sdm_msgs/msg/EpisodeStatus": EPISODE_STATUS}
    ) as bag:
        if name == "tf_static_crop":
            rotation = [0.0, 0.3, 0.4, (1 - 0.25) ** 0.5]
            bag.write_transform("/tf_static", T0 - MS, "world", "base", [0, 0, 1], [0] * 3 + [1])
            bag.write_transform("/tf_static", T0 - MS, "base", "camera", [1, 2, 0], rotation)
            write_demo(bag, 8)
            pc = {"target_frame": "world", "crop_low": [-5, -5, -20], "crop_high": [5, 5, 0.5]}
            return bags, config(tmp, point_cloud=pc)
        if name == "images":
            write_demo(bag, 6)
            _regression_images(bag, 6)
            image = {"topic": "image", "width": 8, "height": 6}
            return bags, config(tmp, image=image, depth={"topic": "depth"})
        if name == "marker_pool":
            for e, (steps, succeeded) in enumerate(((9, True), (5, False), (11, True))):
                ticks = write_demo(bag, steps, start_ns=T0 + e * 10**9, first_step=10 * e)
                for k, t in enumerate(ticks):
                    _status(bag, t - MS, e, success=succeeded and k >= steps - 2)
            episodes = {
                "split": "marker",
                "marker_topic": "episode_status",
                "marker_field": "episode_id",
                "success_field": "success",
            }
            return bags, config(tmp, episodes=episodes, workers=2, chunk_size=7)
        assert name == "rate_next_state"
        write_demo(bag, 20)
        return bags, config(
            tmp,
            clock={"rate_hz": 7.0},
            action={"source": "next_state"},
            state={"align": "previous", "tolerance_s": 0.05},
        )


REGRESSION_DIGESTS = {
    "three_bags": "a9514266e64893edac5502f41520992d64abccfc85f37650bdfeedc73bde8706",
    "tf_static_crop": "b8bf42966c4a55af6d6d8bad77a381e28f4cd0a4398cbbf8fcb5b7565e60b3d1",
    "images": "6261a68aa70175fbeb397806f014ba1b4c7f5b1c595ebdd6794fc173e6625313",
    "marker_pool": "07508d4ba75631b3879c8ce6f26cd70796d3129d108a80757fbf97a75d03852d",
    "rate_next_state": "c08a844038d023db22b6495d2e53a51380a647a78885c8d92e5d5a95a0c8560b",
    # added before bag2zarr became a package (issue 20 item 5)
    "tf_dynamic": "ab05afd407147d7d04e47dad0922d5e8db956c57071e0d4ccfd2bcd3bcd7508b",
    "compressed": "30fa720f7913bb859d9ebc4221d95aa07cbe9439b200f4640f7ff4c3f902075b",
}


@pytest.mark.parametrize("name", sorted(REGRESSION_DIGESTS))
def test_fixed_bags_convert_to_the_pinned_dataset_content(tmp_path, name):
    bags, cfg = _regression_case(name, tmp_path)
    out = tmp_path / "out.zarr"
    convert(bags, out, cfg)
    assert dataset_digest(out) == REGRESSION_DIGESTS[name]


# -- moving cameras: /tf (dynamic) with /tf_static, each cloud at its own stamp (issue 20) -------


def _rigid(xyz, yaw: float) -> np.ndarray:
    """4x4 pose: rotation `yaw` (rad) about z, then translation xyz (m)."""
    c, s = np.cos(yaw), np.sin(yaw)
    m = np.eye(4)
    m[:3, :3] = [[c, -s, 0], [s, c, 0], [0, 0, 1]]
    m[:3, 3] = xyz
    return m


def _quat_xyzw(matrix: np.ndarray) -> list[float]:
    from transforms3d.quaternions import mat2quat

    w, x, y, z = mat2quat(matrix[:3, :3])
    return [x, y, z, w]


# The wrist sweeps 0.4 m along y while turning 60 deg about z (constant speed: linear
# interpolation and slerp between /tf samples are exact), over 2 s.
def _base_wrist(t_s: float) -> np.ndarray:
    return _rigid([0.4, -0.2 + 0.2 * t_s, 0.5], np.deg2rad(-30 + 30 * t_s))


# The optical frame (REP-103: z forward, x right, y down) looking down from the wrist.
WRIST_CAMERA = np.array([[0, -1, 0, 0.05], [-1, 0, 0, 0], [0, 0, -1, -0.02], [0, 0, 0, 1.0]])
# A fixed object in base_link: 64 points on a 0.1 m x 0.1 m x 0.05 m box on the table.
OBJECT = np.stack(
    np.meshgrid(np.linspace(0.35, 0.45, 4), np.linspace(-0.05, 0.05, 4), [0.0, 0.05]), -1
).reshape(-1, 3)


def _wrist_bag(
    path: Path, clouds: int = 20, tf_until_s: float = 2.0, tf_delay_ms: int = 0
) -> list[int]:
    """Write a bag of a wrist camera's clouds with /tf and /tf_static.

    Clouds of OBJECT seen by the moving wrist camera at 10 Hz; /tf base_link <- wrist at
    50 Hz with stamps 7 ms off the clouds' (interpolation needed), until tf_until_s, logged
    tf_delay_ms after their stamps; /tf_static wrist <- camera_optical. Joint states /
    commands as write_demo's.
    """
    with BagWriter(path) as bag:
        bag.write_transform(
            "/tf_static",
            T0 - MS,
            "wrist_link",
            "camera_optical",
            WRIST_CAMERA[:3, 3],
            _quat_xyzw(WRIST_CAMERA),
        )
        stamps = []
        for j in range(round(tf_until_s * 50) + 1):
            t = T0 - 13 * MS + j * 20 * MS
            pose = _base_wrist((t - T0) / 1e9)
            bag.write_transform(
                "/tf",
                t + tf_delay_ms * MS,
                "base_link",
                "wrist_link",
                pose[:3, 3],
                _quat_xyzw(pose),
                stamp_ns=t,
            )
        for k in range(clouds):
            t = T0 + k * 100 * MS
            camera = _base_wrist(k / 10) @ WRIST_CAMERA
            points = (np.linalg.inv(camera) @ np.c_[OBJECT, np.ones(len(OBJECT))].T).T[:, :3]
            bag.write_cloud(
                "/points", t + 3 * MS, points.astype(np.float32), "camera_optical", stamp_ns=t
            )
            bag.write_joint_state("/joint_states", t + 2 * MS, JOINTS, [-k, k, 0.04])
            bag.write_float64_array("/joint_commands", t + 30 * MS, [k, 10 * k])
            stamps.append(t)
    return stamps


def _distance_to_object(frame: np.ndarray) -> np.ndarray:
    return np.linalg.norm(frame[:, None, :] - OBJECT[None].astype(np.float32), axis=2).min(1)


def test_a_wrist_camera_s_clouds_land_in_the_base_frame_at_their_own_stamps(tmp_path):
    path = tmp_path / "wrist"
    _wrist_bag(path)
    cfg = config(tmp_path, point_cloud={"target_frame": "base_link", "num_points": 32})
    summary = convert([path], tmp_path / "a.zarr", cfg)
    pc = ReplayBuffer.load(tmp_path / "a.zarr")["point_cloud"]
    assert pc.shape == (20, 32, 3) and summary["samples_dropped"] == {}
    for frame in pc:  # every point on the fixed object, every cloud
        assert _distance_to_object(frame).max() < 1e-4
    # the camera really moved: the same object point sits up to 0.4 m apart in its clouds
    raw = convert([path], tmp_path / "raw.zarr", config(tmp_path, point_cloud={"num_points": 64}))[
        "out"
    ]
    raw_pc = ReplayBuffer.load(raw)["point_cloud"]
    assert np.ptp(raw_pc.reshape(-1, 3), axis=0).max() > 0.35
    # the previous configuration key for /tf (`tf_topic: /tf`) gives the same dataset
    explicit = {"target_frame": "base_link", "num_points": 32, "tf_topic": "/tf"}
    convert([path], tmp_path / "b.zarr", config(tmp_path, point_cloud=explicit))
    np.testing.assert_array_equal(pc, ReplayBuffer.load(tmp_path / "b.zarr")["point_cloud"])
    # /tf is read alongside the clouds: with /tf logged 1 s after its stamps (clouds come
    # first in the bag) and chunks of 2 clouds looked up while the bag is read, every cloud
    # still waits for the /tf samples around it (without waiting: no chain for the first)
    late = tmp_path / "late"
    _wrist_bag(late, tf_delay_ms=1000)
    cfg = config(tmp_path, point_cloud={"target_frame": "base_link", "num_points": 32})
    convert([late], tmp_path / "c.zarr", cfg, ["chunk_size=2"])
    np.testing.assert_array_equal(pc, ReplayBuffer.load(tmp_path / "c.zarr")["point_cloud"])


def test_a_missing_chain_or_a_stamp_beyond_the_transforms_stops_the_conversion(tmp_path, capsys):
    path = tmp_path / "wrist"
    _wrist_bag(path, clouds=20, tf_until_s=1.2)  # /tf stops while clouds go on for 0.7 s
    out = tmp_path / "a.zarr"
    args = ["bag2zarr", str(path), "--out", str(out), "--no-progress"]
    cases = {
        "odom": r"no transform from the cloud's frame 'camera_optical' to 'odom' in "
        r"/tf_static, /tf: 'camera_optical' and 'odom' are not connected: 'camera_optical' "
        r"reaches camera_optical -> wrist_link -> base_link, 'odom' reaches odom",
        "base_link": r"no transform from the cloud's frame 'camera_optical' to 'base_link' in "
        r"/tf_static, /tf: 'base_link' <- 'wrist_link' \(from /tf\) has no sample within 0.05 "
        r"s of the stamp 1700000001.300 s: nearest previous 1700000001.187 s \(-0.113 s\); its "
        r"61 samples span 1699999999.987 s to 1700000001.187 s \(point_cloud.tf_tolerance_s "
        r"is 0.05\)",
    }
    for target, expected in cases.items():
        cfg = config(tmp_path, point_cloud={"target_frame": target})
        assert sdm_main([*args, "--config", str(cfg)]) == 2
        (line,) = capsys.readouterr().err.strip().splitlines()
        assert re.search(expected, line), line
        assert line.startswith(f"sdm bag2zarr: error: bag {path}: ")
        assert not out.exists() and not list(tmp_path.glob(".a.zarr*"))
    # a wider tolerance is the user's explicit choice: the last /tf sample is held 0.15 s
    cfg = config(tmp_path, point_cloud={"target_frame": "base_link", "tf_tolerance_s": 0.15})
    with pytest.raises(BagError, match=r"stamp 1700000001.400 s"):
        convert([path], out, cfg)
    # a bag without /tf or /tf_static names both and what to set instead
    bare = _demo_bag(tmp_path / "bare", "mcap", steps=3)
    with pytest.raises(BagError, match=r"has no /tf_static or /tf topic for point_cloud."):
        convert([bare], out, config(tmp_path, point_cloud={"target_frame": "base_link"}))
    with pytest.raises(ConfigError, match=r"tf_tolerance_s must be >= 0"):
        load_bag2zarr_config(None, ["point_cloud.tf_tolerance_s=-1"])


# -- sensor_msgs/CompressedImage: jpeg, png and compressedDepth against their raw twins ---------

DEPTH_MAX, DEPTH_QUANTIZATION = 10.0, 100.0  # compressed_depth_image_transport's defaults


def _encode(ext: str, array: np.ndarray, *params: int) -> bytes:
    import cv2

    ok, data = cv2.imencode(ext, array, list(params))
    assert ok
    return data.tobytes()


def _compressed_depth(depth: np.ndarray, encoding: str) -> bytes:
    """Encode `depth` as compressed_depth_image_transport publishes it.

    What compressed_depth_image_transport publishes: a 12-byte ConfigHeader (int32 format,
    float32 A, B) + a 16-bit PNG (16UC1: the millimetres; 32FC1: the quantised inverse depth
    q = A / d + B, truncated, 0 for no reading or d >= depth_max).
    """
    import struct

    if encoding == "16UC1":
        header = struct.pack("<iff", 0, 0.0, 0.0)
        return header + _encode(".png", np.rint(depth * 1000).astype(np.uint16))
    quant_a = np.float32(DEPTH_QUANTIZATION * (DEPTH_QUANTIZATION + 1.0))
    quant_b = np.float32(1.0 - quant_a / np.float32(DEPTH_MAX))
    valid = np.isfinite(depth) & (depth > 0) & (depth < DEPTH_MAX)
    inverse = np.zeros(depth.shape, np.uint16)
    inverse[valid] = (quant_a / depth[valid] + quant_b).astype(np.uint16)
    return struct.pack("<iff", 0, quant_a, quant_b) + _encode(".png", inverse)


def _camera_frames(k: int) -> tuple[np.ndarray, np.ndarray]:
    """Return the rgb and depth frames of step k.

    (rgb (48, 64, 3) uint8, depth (48, 64) float32 m) of step k: smooth colour ramps with
    red and blue >= 44 levels apart everywhere (a swapped channel order shows), depth
    0.3-4 m with holes (0 in 16UC1, NaN in 32FC1) and a far region beyond depth_max.
    """
    y, x = np.mgrid[0:48, 0:64].astype(np.float32)
    rgb = np.stack([200 - x - 0.2 * k, 40 + 2 * y + k, 60 + x / 2], -1)
    depth = (0.3 + 0.05 * x + 0.02 * y + 0.01 * k).astype(np.float32)
    depth[:4, :4] = np.nan
    depth[-3:, -5:] = 12.0
    return np.clip(np.rint(rgb), 0, 255).astype(np.uint8), depth


def test_compressed_images_and_depth_decode_like_their_raw_twins(tmp_path):
    path = tmp_path / "camera"
    with BagWriter(path) as bag:
        write_demo(bag, 6)
        for k in range(6):
            t = T0 + k * 100 * MS + MS
            rgb, depth = _camera_frames(k)
            bgr = np.ascontiguousarray(rgb[:, :, ::-1])
            bag.write_image("/image", t, rgb, "rgb8")
            jpeg = _encode(".jpg", bgr, 1, 90)  # IMWRITE_JPEG_QUALITY 90 (image_transport's 95)
            bag.write_compressed_image("/image/jpeg", t, jpeg, "rgb8; jpeg compressed bgr8")
            png = _encode(".png", bgr)
            bag.write_compressed_image("/image/png", t, png, "rgb8; png compressed bgr8")
            bag.write_image("/depth_mm", t, np.nan_to_num(depth), "16UC1")
            bag.write_compressed_image(
                "/depth_mm/compressedDepth",
                t,
                _compressed_depth(np.nan_to_num(depth), "16UC1"),
                "16UC1; compressedDepth png",
            )
            bag.write_image("/depth_m", t, depth, "32FC1")
            bag.write_compressed_image(
                "/depth_m/compressedDepth",
                t,
                _compressed_depth(depth, "32FC1"),
                "32FC1; compressedDepth",
            )

    def dataset(name: str, image: str, depth: str, **extra):
        cfg = config(tmp_path, image={"topic": image}, depth={"topic": depth}, **extra)
        summary = convert([path], tmp_path / f"{name}.zarr", cfg)
        assert summary["samples_dropped"] == {}, summary["samples_dropped"]
        return ReplayBuffer.load(tmp_path / f"{name}.zarr")

    raw_mm = dataset("raw_mm", "image", "depth_mm")
    raw_m = dataset("raw_m", "image", "depth_m")
    # png and 16UC1 compressedDepth are lossless: equal to the raw twins, decoded in the pool
    png = dataset("png", "image/png", "depth_mm/compressedDepth", workers=2)
    np.testing.assert_array_equal(png["img"], raw_mm["img"])
    np.testing.assert_array_equal(png["depth"], raw_mm["depth"])
    assert png["img"].shape == (6, 48, 64, 3) and png["depth"].dtype == np.float32
    # jpeg is lossy: quality 90 on these smooth ramps errs by 0.66 levels on average and 4 at
    # most (measured with OpenCV 5.0); a decoding bug errs far more (red and blue swapped: >= 44
    # levels in both channels), so mean <= 1.5 and max <= 10 separate the two with margin.
    jpeg = dataset("jpeg", "image/jpeg", "depth_m/compressedDepth")
    error = np.abs(jpeg["img"].astype(int) - raw_m["img"].astype(int))
    assert error.mean() <= 1.5 and error.max() <= 10, (error.mean(), error.max())
    swapped = np.abs(raw_m["img"][..., ::-1].astype(int) - raw_m["img"])[..., [0, 2]]
    assert swapped.min() >= 44
    # 32FC1 compressedDepth: inverse depth quantised to 16 bits, so a value d comes back within
    # d^2 / A (one quantisation step, A = q (q + 1)); holes and d >= depth_max come back NaN.
    truth, decoded = raw_m["depth"], jpeg["depth"]
    missing = ~np.isfinite(truth) | (truth >= DEPTH_MAX)
    np.testing.assert_array_equal(np.isnan(decoded), missing)
    step = truth[~missing] ** 2 / (DEPTH_QUANTIZATION * (DEPTH_QUANTIZATION + 1))
    assert (np.abs(decoded[~missing] - truth[~missing]) <= 1.001 * step + 1e-6).all()
    assert np.abs(decoded[~missing] - truth[~missing]).max() > 0  # the test sees quantisation
