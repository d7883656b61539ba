# Copyright 2026 sdm-policy-ros maintainers
# SPDX-License-Identifier: MIT
"""One vocabulary of keys (issue 22): key strings are written only in `sdm_policy_core/keys.py`.

One vocabulary of keys (issue 22): the observation/action keys, dataset array names and ROS
topic names are written as strings only in `sdm_policy_core/keys.py`; the packages' code names
them through it, so renaming a key or finding every reader of one is a change of one file and
a search for one name. Checked on the source with `ast` (string constants; docstrings and
comments do not count), and the vocabulary loads neither torch nor rclpy, so every layer can
stand on it.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

from sdm_policy_core import keys
from test.conftest import REPO
from test.core.conftest import imports_of, loaded_after

VOCABULARY = REPO / "sdm_policy_core" / "keys.py"
PACKAGES = (REPO / "sdm_policy_core", REPO / "sdm_policy_ros")

# Strings of the vocabulary that are not policed, and why.
UNPOLICED = {
    # The batch's observation entry shares its name with the config section `obs` (the
    # ObservationSpec), which checkpoints' config.json and the CLIs read by that name.
    keys.OBS: "also the config section name",
    # Generic words: "auto" is the value of many settings (device, sizes), "dp3" also names an
    # architecture preset; encoders are compared through the vocabulary's names all the same.
    keys.ENCODER_AUTO: "a generic setting value",
    keys.ENCODER_DP3: "also a preset name",
}

# (file, string) -> (how many times, why the literal is not the vocabulary's key). The counts
# must match exactly, so a new literal in one of these files fails the test as anywhere else,
# and a stale entry fails it too.
BAG2ZARR_SECTION = "a section of the bag2zarr config it writes (the config's YAML contract)"
ALLOWED = {
    ("sdm_policy_core/checkpoint.py", "state"): (3, "training_state.json's state-dict entry"),
    ("sdm_policy_core/sim/pusht_env.py", "state"): (1, "gym-pusht's obs_type argument"),
    ("sdm_policy_core/control.py", "state"): (1, "the rejected-input counter's label"),
    ("sdm_policy_core/deploy/inputs.py", "state"): (2, "the rejected-input counter's label"),
    ("sdm_policy_core/conversions.py", "points"): (1, "JointTrajectory's field `points`"),
    ("sdm_policy_core/onnx_runtime.py", "points"): (1, "a label in the parity report"),
    ("sdm_policy_core/message_decoding.py", "image"): (1, "a label in a decoding error"),
    ("sdm_policy_core/data/bag2zarr/decoding.py", "depth"): (1, "ImageSettings' kind (vs rgb)"),
    ("sdm_policy_ros/bench_peer.py", "points"): (1, "the result's points-per-cloud field"),
    ("sdm_policy_core/bench/bag2zarr.py", "point_cloud"): (2, BAG2ZARR_SECTION),
    ("sdm_policy_core/bench/bag2zarr.py", "image"): (1, BAG2ZARR_SECTION),
    ("sdm_policy_core/bench/bag2zarr.py", "state"): (1, BAG2ZARR_SECTION),
    ("sdm_policy_core/bench/bag2zarr.py", "action"): (1, BAG2ZARR_SECTION),
}


def _vocabulary() -> set[str]:
    names = {
        value
        for name, value in vars(keys).items()
        if name.isupper() and isinstance(value, str) and value not in UNPOLICED
    }
    assert {keys.POINT_CLOUD, keys.ARRAY_STATE, keys.TOPIC_JOINT_STATES} <= names
    return names


def _docstrings(tree: ast.AST) -> set[int]:
    """Return the ids of the constants that are docstrings (module, class, function)."""
    found = set()
    for node in ast.walk(tree):
        if isinstance(node, (ast.Module, ast.ClassDef, ast.FunctionDef, ast.AsyncFunctionDef)):
            body = node.body
            if body and isinstance(body[0], ast.Expr) and isinstance(body[0].value, ast.Constant):
                found.add(id(body[0].value))
    return found


def literal_keys(path: Path, vocabulary: set[str]) -> list[tuple[int, str]]:
    """(line, string) of each string constant in `path` that is a key of the vocabulary."""
    tree = ast.parse(path.read_text(), str(path))
    skip = _docstrings(tree)
    return [
        (node.lineno, node.value)
        for node in ast.walk(tree)
        if isinstance(node, ast.Constant)
        and isinstance(node.value, str)
        and node.value in vocabulary
        and id(node) not in skip
    ]


def _offenders() -> dict[str, list[tuple[int, str]]]:
    """Return the literal keys found outside ALLOWED, by file.

    file -> (line, string) of its literal keys, less those ALLOWED (when their count is
    exact); an ALLOWED entry whose count differs is reported as its file's hits.
    """
    vocabulary, offenders = _vocabulary(), {}
    for package in PACKAGES:
        for path in sorted(package.rglob("*.py")):
            if path == VOCABULARY:
                continue
            rel = str(path.relative_to(REPO))
            hits = literal_keys(path, vocabulary)
            for value in {v for _, v in hits}:
                count = sum(v == value for _, v in hits)
                if ALLOWED.get((rel, value), (None,))[0] == count:
                    hits = [h for h in hits if h[1] != value]
            if hits:
                offenders[rel] = sorted(hits)
    return offenders


def test_no_literal_key_outside_the_vocabulary():
    assert _offenders() == {}, "name these through sdm_policy_core.keys (or justify in ALLOWED)"
    for (rel, value), (count, _) in ALLOWED.items():
        found = [v for _, v in literal_keys(REPO / rel, _vocabulary())].count(value)
        assert found == count, f"ALLOWED[{rel!r}, {value!r}] says {count}, the file has {found}"


def test_a_planted_literal_is_found(tmp_path):
    planted = tmp_path / "planted.py"
    planted.write_text(
        '"""A docstring naming "agent_pos" does not count."""\n'
        "# nor does a comment: 'point_cloud'\n"
        "def f(obs):\n"
        '    """Nor "img" here."""\n'
        '    return obs["agent_pos"], f"data/{obs}", {"img": 1}\n'
    )
    assert literal_keys(planted, _vocabulary()) == [(5, "agent_pos"), (5, "img")]


def test_the_maps_speak_the_vocabulary():
    assert set(keys.DATASET_ARRAYS) <= {
        *keys.OBSERVATION_KEYS,
        keys.DEPTH,
        keys.ACTION,
        keys.FULL_STATE,
    }
    assert keys.DATASET_ARRAYS[keys.AGENT_POS] == "state"  # DP3's datasets: a file contract
    assert keys.DATASET_ARRAYS[keys.IMAGE] == "img"
    topics = [t for ts in keys.ROS_TOPICS.values() for t in ts]
    assert len(topics) == len(set(topics)), "a topic carries one model input"


@pytest.mark.parametrize("module", ["sdm_policy_core.keys", "sdm_policy_core.models.keys"])
def test_the_vocabulary_loads_neither_torch_nor_rclpy(module):
    assert imports_of(VOCABULARY) <= {"__future__", "__future__.annotations"}
    heavy = [m for m in loaded_after(module) if m.split(".")[0] in ("torch", "rclpy")]
    assert heavy == [], f"{module} loads {heavy[:3]}"
