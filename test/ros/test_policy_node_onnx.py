# Copyright 2026 sdm-policy-ros maintainers
# SPDX-License-Identifier: MIT
"""policy_node with `backend: onnxruntime`: an exported model drives the robot.

policy_node with `backend: onnxruntime`: an exported model drives the robot through real DDS
with no torch in the node's process, and a model that does not fit is refused with what
differs while the loaded one stays.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np

from sdm_policy_core.export import export_policy
from test.conftest import PYTHON, wait_for
from test.ros.conftest import (
    LIMIT,
    NODE_EXE,
    POLICY_YAML,
    ROBOT_PEER,
    call_service,
    enable_node,
    recorded,
    start_node,
    start_recorder,
)

CHUNK_PEER = str(Path(__file__).with_name("chunk_peer.py"))


def _load(processes, path: Path, name: str) -> dict:
    request = {"path": str(path)}
    service = "/sdm_policy_node/load_checkpoint"
    return call_service(processes, "sdm_msgs/srv/LoadCheckpoint", service, request, name)


def test_onnxruntime_node_commands_without_torch(processes, robot_yaml, sdm_ckpt, tmp_path):
    ckpt = tmp_path / "sdm" / "checkpoints" / "latest"
    shutil.copytree(sdm_ckpt, ckpt)
    export_policy(ckpt, ckpt / "policy.onnx", "onnx")
    node = start_node(processes, robot_yaml, ckpt, "backend:=onnxruntime", "control_rate_hz:=20.0")
    assert f"loading {ckpt} (onnxruntime)" in processes.log(node)
    recorder = start_recorder(processes)
    processes.start([PYTHON, ROBOT_PEER, "stream", "--rate", "30"], "stream")
    status = wait_for(lambda: recorded(processes, recorder, "STATUS"), 20, what="status")[-1]
    assert status["policy_id"] == "sdm/latest@20"  # the exported checkpoint's id, as torch's
    enable_node(processes)
    commands = wait_for(
        lambda: (c := recorded(processes, recorder, "CMD")) and len(c) >= 10 and c,
        30,
        what="commands from the onnxruntime node",
    )
    for c in commands:
        assert len(c["points"]) == 1 and np.all(np.abs(c["points"][0]) <= LIMIT + 1e-9)
    # The node's process mapped onnxruntime's library and never torch's.
    maps = Path(f"/proc/{node.pid}/maps").read_text()
    assert "onnxruntime" in maps and "libtorch" not in maps
    # Refused with what differs; the loaded model stays.
    other = tmp_path / "other"
    other.mkdir()
    for name in ("policy.onnx", "policy.onnx.json", "config.json"):
        shutil.copy(ckpt / name, other / name)
    config = json.loads((other / "config.json").read_text())
    config["obs"]["point_cloud_shape"] = [64, 3]
    (other / "config.json").write_text(json.dumps(config))
    refused = _load(processes, other, "refuse_points")
    assert not refused["success"]
    assert "points 32 in the model, 64 in config.json" in refused["message"], refused
    (other / "policy.onnx.json").unlink()
    refused = _load(processes, other / "policy.onnx", "refuse_sidecar")
    assert not refused["success"] and "no sidecar policy.onnx.json" in refused["message"]
    assert refused["policy_id"] == "sdm/latest@20"
    assert processes.stop(node) == 0, processes.log(node)


def test_bench_node_onnxruntime_reports_start_memory_and_no_torch(tmp_path):
    from sdm_policy_core.cli import main as sdm

    out = tmp_path / "node.json"
    args = ["bench", "node", "--backend", "onnxruntime", "--points", "256", "--duration", "2"]
    assert sdm([*args, "--out", str(out)]) == 0
    result = json.loads(out.read_text())
    for key in ("one_step", "teacher"):
        r = result["backends"]["onnxruntime"][key]
        assert r == result[key] and r["backend"] == "onnxruntime"
        assert r["latency_ms"]["p50"] > 0 and r["rate_hz"] > 5 and r["chunks"] > 0
        assert 0 < r["ready_s"] <= r["first_command_s"]
        assert 0 < r["rss_mb"] <= r["peak_rss_mb"] and r["torch_mapped"] is False


def test_bench_node_quantize_int8_runs_the_node_on_the_int8_file(tmp_path, capsys):
    from sdm_policy_core.cli import main as sdm

    out = tmp_path / "node.json"
    args = ["bench", "node", "--points", "256", "--duration", "2", "--out", str(out)]
    assert sdm([*args, "--quantize", "int8"]) == 2  # torch alone: nothing to quantise for
    assert "with the onnxruntime backend" in capsys.readouterr().err and not out.exists()
    assert sdm([*args, "--backend", "onnxruntime", "--quantize", "int8"]) == 0
    result = json.loads(out.read_text())
    assert list(result["backends"]) == ["onnxruntime", "onnxruntime:int8"]
    for key, name in (("one_step", "sdm"), ("teacher", "teacher")):
        float_run = result["backends"]["onnxruntime"][key]
        int8_run = result["backends"]["onnxruntime:int8"][key]
        # the file each node logged loading: the checkpoint's graph, then the int8 export
        assert float_run["model"] == "policy.onnx" and int8_run["model"] == f"{name}.int8.onnx"
        assert 0 < int8_run["model_mb"] < float_run["model_mb"]
        assert int8_run["backend"] == "onnxruntime" and int8_run["torch_mapped"] is False
        assert int8_run["chunks"] > 0 and 0 < int8_run["ready_s"] <= int8_run["first_command_s"]


def test_torch_and_onnxruntime_nodes_plan_equal_chunks(processes, sdm_ckpt, tmp_path):
    """Torch and onnxruntime nodes plan equal chunks.

    Two nodes side by side on the same observations: torch (numpy noise) and onnxruntime,
    the same sampler_seed: every chunk equal within the export tolerance.
    """
    ckpt = tmp_path / "sdm" / "checkpoints" / "latest"
    shutil.copytree(sdm_ckpt, ckpt)
    export_policy(ckpt, ckpt / "policy.onnx", "onnx")
    robot = tmp_path / "raw_arm.yaml"
    robot.write_text(
        json.dumps(
            {
                "state_names": ["j1", "j2", "j3", "j4"],
                "action_names": ["j1", "j2", "j3", "j4"],
                "action_kind": "raw",
                "output": "joint_commands",
                "lower": [-1.0] * 4,
                "upper": [1.0] * 4,
                "camera": {"frame_id": "camera"},
            }
        )
    )
    nodes = {}
    for ns, backend in (("a", "torch"), ("b", "onnxruntime")):
        cmd = [str(NODE_EXE), "--ros-args", "--params-file", POLICY_YAML, "-r", f"__ns:=/{ns}"]
        cmd += ["-r", "points:=/points", "-r", "joint_states:=/joint_states"]
        for param in (
            f"robot:={robot}",
            f"checkpoint:={ckpt}",
            f"backend:={backend}",
            "sampler_noise:=numpy",
            "sampler_seed:=3",
            "autostart:=active",
            "trigger:=observation",
            "observation_sync_s:=0.2",
            "sensor_qos:=reliable",
            "stale_age_s:=2.0",
        ):
            cmd += ["-p", param]
        nodes[ns] = processes.start(cmd, f"node_{backend}")
    for node in nodes.values():
        wait_for(
            lambda n=node: "started enabled" in processes.log(n) or n.poll() is not None,
            90,
            what="policy nodes",
        )
        assert node.poll() is None, processes.log(node)
    peer = processes.start([PYTHON, CHUNK_PEER, "--namespaces", "a,b", "--count", "12"], "peer")
    assert peer.wait(120) == 0, processes.log(peer)
    chunks: dict[str, dict[float, list[float]]] = {"a": {}, "b": {}}
    for line in processes.log(peer).splitlines():
        if line.startswith("CHUNK "):
            c = json.loads(line[len("CHUNK ") :])
            chunks[c["ns"]][round(c["stamp"], 6)] = c["actions"]
    assert len(chunks["a"]) == len(chunks["b"]) == 3, chunks  # 12 observations, 4 per chunk
    assert sorted(chunks["a"]) == sorted(chunks["b"])  # planned from the same observations
    for stamp, actions in chunks["a"].items():
        np.testing.assert_allclose(chunks["b"][stamp], actions, rtol=0, atol=1e-4)
    first, *rest = chunks["a"].values()
    assert all(np.abs(np.subtract(first, r)).max() > 1e-3 for r in rest)  # not a constant
    for node in nodes.values():
        assert processes.stop(node) == 0, processes.log(node)
