# Copyright 2026 sdm-policy-ros maintainers
# SPDX-License-Identifier: MIT
"""policy_node as a managed node: lifecycle states, refusals, services and errors.

policy_node as a managed node: commands counted in each lifecycle state, transitions asked
in the wrong state refused with the node still up, ~/enable and ~/load_checkpoint driving the
same transitions, an error inside a transition handled by error processing.
"""

from __future__ import annotations

import time

from test.conftest import PYTHON, wait_for
from test.ros.conftest import (
    ROBOT_PEER,
    call_service,
    enable_node,
    recorded,
    start_node,
    start_recorder,
)

# lifecycle_msgs/msg/Transition ids and State ids
CONFIGURE, CLEANUP, ACTIVATE, DEACTIVATE = 1, 2, 3, 4
UNCONFIGURED, INACTIVE, ACTIVE = 1, 2, 3


def _change(processes, transition: int, name: str) -> bool:
    request = {"transition": {"id": transition}}
    service = "/sdm_policy_node/change_state"
    return call_service(processes, "lifecycle_msgs/srv/ChangeState", service, request, name)[
        "success"
    ]


def _lifecycle(processes, name: str) -> int:
    service = "/sdm_policy_node/get_state"
    return call_service(processes, "lifecycle_msgs/srv/GetState", service, {}, name)[
        "current_state"
    ]["id"]


def _commands_between(processes, recorder, t0: float, t1: float) -> int:
    return len([c for c in recorded(processes, recorder, "CMD") if t0 <= c["t"] <= t1])


def test_commands_only_while_active_in_every_lifecycle_state(processes, robot_yaml, sdm_ckpt):
    node = start_node(
        processes, robot_yaml, sdm_ckpt, "control_rate_hz:=20.0", "autostart:=unconfigured"
    )
    assert "started disabled (lifecycle unconfigured)" in processes.log(node)
    recorder = start_recorder(processes)
    processes.start([PYTHON, ROBOT_PEER, "stream", "--rate", "30"], "stream")
    counts: dict[str, int] = {}

    def dwell(state: str, seconds: float = 1.5) -> None:
        time.sleep(0.3)  # transitions and messages in flight settle
        t0 = time.time()
        time.sleep(seconds)
        counts[state] = _commands_between(processes, recorder, t0, time.time())

    status = wait_for(lambda: recorded(processes, recorder, "STATUS"), 20, what="status")[-1]
    assert status["state"] == 0 and status["lifecycle_state"] == "unconfigured"
    dwell("unconfigured")
    # Activate before configure: refused with a reason in the log, the node carries on.
    assert not _change(processes, ACTIVATE, "activate_early")
    assert node.poll() is None
    assert "Unable to start transition 3" in processes.log(node)
    assert _change(processes, CONFIGURE, "configure")
    assert _lifecycle(processes, "get1") == INACTIVE
    dwell("inactive")
    assert not _change(processes, CONFIGURE, "configure_again")  # already configured
    assert _change(processes, ACTIVATE, "activate")
    dwell("active")
    assert _change(processes, DEACTIVATE, "deactivate")
    dwell("deactivated")
    assert counts["active"] >= 15, counts  # 20 Hz for 1.5 s on two loaded cores
    assert counts["inactive"] == counts["deactivated"] == counts["unconfigured"] == 0, counts

    # ~/enable drives the same state machine: true activates, false deactivates.
    enable_node(processes)
    assert _lifecycle(processes, "get2") == ACTIVE
    dwell("enabled", 1.0)
    off = call_service(
        processes, "std_srvs/srv/SetBool", "/sdm_policy_node/enable", {"data": False}, "off"
    )
    assert off["success"] and _lifecycle(processes, "get3") == INACTIVE
    dwell("disabled", 1.0)
    assert counts["enabled"] > 0 and counts["disabled"] == 0, counts

    # cleanup unloads; ~/enable then configures (the checkpoint parameter) and activates.
    assert _change(processes, CLEANUP, "cleanup")
    assert _lifecycle(processes, "get4") == UNCONFIGURED
    time.sleep(0.5)
    status = recorded(processes, recorder, "STATUS")[-1]
    assert status["state"] == 0 and status["policy_id"] == "", status
    enable_node(processes)
    assert _lifecycle(processes, "get5") == ACTIVE
    t_on = time.time()
    wait_for(
        lambda: _commands_between(processes, recorder, t_on, time.time() + 1),
        20,
        what="commands after cleanup and ~/enable",
    )
    assert processes.stop(node) == 0, processes.log(node)


def test_a_checkpoint_loaded_while_active_leaves_the_node_inactive(
    processes, robot_yaml, sdm_ckpt, teacher_ckpt
):
    """A checkpoint loaded while active leaves the node inactive.

    As before lifecycle: `checkpoint` loads at start (inactive); a hot swap never inherits
    permission: an active node becomes inactive, and commands stop until ~/enable.
    """
    node = start_node(processes, robot_yaml, sdm_ckpt, "control_rate_hz:=20.0")
    assert _lifecycle(processes, "get1") == INACTIVE
    recorder = start_recorder(processes)
    processes.start([PYTHON, ROBOT_PEER, "stream", "--rate", "30"], "stream")
    enable_node(processes)
    wait_for(lambda: recorded(processes, recorder, "CMD"), 30, what="commands")
    swapped = call_service(
        processes,
        "sdm_msgs/srv/LoadCheckpoint",
        "/sdm_policy_node/load_checkpoint",
        {"path": str(teacher_ckpt), "sampler": "ddim", "steps": 2},
        "swap",
    )
    assert swapped["success"] and "disabled until ~/enable" in swapped["message"], swapped
    t_swapped = time.time()
    assert _lifecycle(processes, "get2") == INACTIVE
    time.sleep(1.0)
    assert _commands_between(processes, recorder, t_swapped + 0.3, time.time()) == 0
    assert processes.stop(node) == 0, processes.log(node)


def test_bad_autostart_and_unloadable_checkpoints_are_refused(processes, robot_yaml, tmp_path):
    """Bad autostart values and unloadable checkpoints are refused.

    Start-up: a wrong autostart value or autostart without a checkpoint stops the node with
    one line (status 2). Running: configure with a checkpoint that cannot load fails, the node
    stays unconfigured and up, and says why.
    """
    for params, why in (
        ("autostart:=on", "autostart must be one of ['auto', 'unconfigured', 'inactive'"),
        ("autostart:=active", "autostart active needs the checkpoint parameter"),
    ):
        robot = ["-p", f"robot:={robot_yaml}"]
        bad = processes.start(
            [PYTHON, "-m", "sdm_policy_ros", "policy_node", "--ros-args", *robot, "-p", params],
            "bad_" + params.split("=")[1],
        )
        assert bad.wait(60) == 2, processes.log(bad)
        assert why in processes.log(bad) and "Traceback" not in processes.log(bad)
    broken = tmp_path / "broken"
    broken.mkdir()
    (broken / "config.json").write_text("{}")
    node = start_node(
        processes, robot_yaml, None, f"checkpoint:={broken}", "autostart:=unconfigured"
    )
    assert not _change(processes, CONFIGURE, "configure")
    assert node.poll() is None and _lifecycle(processes, "get") == UNCONFIGURED
    assert f"configure refused {broken}" in processes.log(node)
    reply = call_service(
        processes, "std_srvs/srv/SetBool", "/sdm_policy_node/enable", {"data": True}, "enable"
    )
    assert not reply["success"] and "configure refused" in reply["message"], reply
    assert processes.stop(node) == 0, processes.log(node)


def test_an_unexpected_error_in_a_transition_goes_through_error_processing(
    robot_yaml, sdm_ckpt, monkeypatch
):
    """An unexpected error in a transition goes through error processing.

    In-process: configure raising something unforeseen is no crash: on_error unloads and the
    node is unconfigured again, ready for the next configure.
    """
    import rclpy
    from rclpy.lifecycle import TransitionCallbackReturn

    from sdm_policy_ros.policy_node import PolicyNode

    args = ["--ros-args", "-p", f"robot:={robot_yaml}", "-p", f"checkpoint:={sdm_ckpt}"]
    rclpy.init(args=[*args, "-p", "autostart:=unconfigured"])
    node = None
    try:
        node = PolicyNode()
        real_load = node._load

        def failing_load(*_args, **_kwargs):
            raise RuntimeError("the disk went away")

        monkeypatch.setattr(node, "_load", failing_load)
        assert node.trigger_configure() == TransitionCallbackReturn.ERROR
        assert node.lifecycle_state() == "unconfigured" and node.session.controller is None
        assert "error in a transition from unconfigured" in node.session.message
        assert "the disk went away" in node.session.message  # the cause is not swallowed
        monkeypatch.setattr(node, "_load", real_load)
        assert node.trigger_configure() == TransitionCallbackReturn.SUCCESS
        assert node.lifecycle_state() == "inactive" and node.session.controller is not None
        # Asked again in the wrong state: refused, nothing changes.
        assert node.trigger_configure() != TransitionCallbackReturn.SUCCESS
        assert node.lifecycle_state() == "inactive"
        assert node.trigger_activate() == TransitionCallbackReturn.SUCCESS
        assert node.session.controller.enabled
        assert node.trigger_cleanup() != TransitionCallbackReturn.SUCCESS  # active: refused
        assert node.trigger_deactivate() == TransitionCallbackReturn.SUCCESS
        assert not node.session.controller.enabled
        assert node.trigger_cleanup() == TransitionCallbackReturn.SUCCESS
        assert node.session.controller is None and node.lifecycle_state() == "unconfigured"
    finally:
        if node is not None:
            node.close()
            node.destroy_node()
        rclpy.try_shutdown()
