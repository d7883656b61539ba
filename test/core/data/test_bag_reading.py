# Copyright 2026 sdm-policy-ros maintainers
# SPDX-License-Identifier: MIT
"""Real bags recorded by other people's tools: read, reported, or refused with one line.

Real bags recorded by other people's tools (../shared/external, see its SOURCES.md): every
readable one opens with its exact topics and counts, `sdm bag info` reports them, and the ones
that cannot be converted are refused by `sdm bag2zarr` with one line and nothing written.
"""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

from sdm_policy_core.cli import main as sdm_main
from sdm_policy_core.data.bag_reading import BagError, BagReader, bag_info, normalize_msgtype

REPO = Path(__file__).resolve().parents[3]
EXTERNAL = REPO.parent / "shared" / "external"
ROSBAG2 = EXTERNAL / "ros2_rosbag2"
pytestmark = pytest.mark.skipif(
    not EXTERNAL.is_dir(),
    reason=f"the external test bags are not at {EXTERNAL} (../shared/external beside the repo)",
)

# bag -> (layout, storage, files, {topic: (type, messages read = declared)}, undecodable topics)
READABLE = {
    "ros2_rosbag2/rosbag2_py/test/resources/mcap/talker": (
        "directory",
        "mcap",
        1,
        {
            "/topic": ("std_msgs/msg/String", 10),
            "/rosout": ("rcl_interfaces/msg/Log", 10),
            "/parameter_events": ("rcl_interfaces/msg/ParameterEvent", 0),
        },
        set(),
    ),
    # The db3's own message_definitions are placeholders ("uint8 level" for Log).
    "ros2_rosbag2/rosbag2_py/test/resources/sqlite3/talker": (
        "directory",
        "sqlite3",
        1,
        {
            "/topic": ("std_msgs/msg/String", 10),
            "/rosout": ("rcl_interfaces/msg/Log", 10),
            "/parameter_events": ("rcl_interfaces/msg/ParameterEvent", 0),
        },
        {"/rosout"},
    ),
    **{
        f"ros2_rosbag2/rosbag2_tests/resources/{storage}/cdr_test": (
            "directory",
            storage,
            1,
            {
                "/array_topic": ("test_msgs/msg/Arrays", 4),
                "/test_topic": ("test_msgs/msg/BasicTypes", 3),
            },
            set(),
        )
        for storage in ("mcap", "sqlite3")
    },
    **{
        f"ros2_rosbag2/rosbag2_tests/resources/{storage}/bag_with_topics_and_service_events": (
            "directory",
            storage,
            1,
            {
                "/test_topic1": ("test_msgs/msg/Strings", 1),
                "/test_topic2": ("test_msgs/msg/Strings", 1),
                "/test_service1/_service_event": ("test_msgs/srv/BasicTypes_Event", 4),
                "/test_service2/_service_event": ("test_msgs/srv/BasicTypes_Event", 4),
                "/events/write_split": ("rosbag2_interfaces/msg/WriteSplitEvent", 0),
            },
            {"/test_service1/_service_event", "/test_service2/_service_event"},
        )
        for storage in ("mcap", "sqlite3")
    },
    "ros2_rosbag2/rosbag2_py/test/resources/mcap/wbag": (
        "directory",
        "mcap",
        5,
        {
            "AAA": ("std_msgs/msg/String", 804),
            "BBB": ("std_msgs/msg/String", 742),
            "CCC": ("std_msgs/msg/String", 742),
            "DDD": ("std_msgs/msg/String", 753),
            "EEE": ("std_msgs/msg/String", 804),
            "FFF": ("std_msgs/msg/String", 772),
            "GGG": ("std_msgs/msg/String", 731),
            "HHH": ("std_msgs/msg/String", 726),
        },
        set(),
    ),
    "ros2_rosbag2/rosbag2_py/test/resources/mcap/reindex_test_bags/multiple_files": (
        "directory without metadata.yaml",
        "mcap",
        3,
        {"/chatter": ("std_msgs/msg/String", 1324 + 1324 + 529)},
        set(),
    ),
    "ros2_rosbag2/ros2bag/test/resources/empty_bag": (
        "directory",
        "sqlite3",
        1,
        {
            "/rosout": ("rcl_interfaces/msg/Log", 0),
            "/parameter_events": ("rcl_interfaces/msg/ParameterEvent", 0),
        },
        set(),
    ),
    "MichaelGrupp_evo/test/data/nav2_turtlebot.mcap": (
        "bare file",
        "mcap",
        1,
        {
            "/tf": ("tf2_msgs/msg/TFMessage", 5422),
            "/tf_static": ("tf2_msgs/msg/TFMessage", 1),
            "/odom": ("nav_msgs/msg/Odometry", 2639),
            "/amcl_pose": ("geometry_msgs/msg/PoseWithCovarianceStamped", 135),
        },
        set(),
    ),
    "MichaelGrupp_evo/test/data/tf_example": (
        "directory",
        "sqlite3",
        1,
        {"/tf": ("tf2_msgs/msg/TFMessage", 517), "/tf_static": ("tf2_msgs/msg/TFMessage", 1)},
        set(),
    ),
    "MichaelGrupp_evo/test/data/tf_example.bag": (
        "ROS 1 bag file",
        "rosbag1",
        1,
        {"/tf": ("tf2_msgs/msg/TFMessage", 517), "/tf_static": ("tf2_msgs/msg/TFMessage", 1)},
        set(),
    ),
    "klintan_rosbag2.js/examples/sample.db3": (
        "bare file",
        "sqlite3",
        1,
        {
            "/text": ("std_msgs/msg/String", 1),
            "/image": ("sensor_msgs/msg/Image", 1),
            "/image/compressed": ("sensor_msgs/msg/CompressedImage", 1),
            "/fix": ("sensor_msgs/msg/NavSatFix", 1),
            "/imu": ("sensor_msgs/msg/Imu", 1),
        },
        set(),
    ),
}


@pytest.mark.parametrize("name", sorted(READABLE))
def test_every_readable_external_bag_with_its_exact_counts(name):
    layout, storage, n_files, topics, undecodable = READABLE[name]
    info = bag_info(EXTERNAL / name)
    assert (info["layout"], info["storage"], len(info["files"])) == (layout, storage, n_files)
    got = {t["name"]: (t["type"], t["messages_read"]) for t in info["topics"]}
    assert got == topics
    for t in info["topics"]:
        assert t["messages_declared"] == t["messages_read"], t["name"]
        assert (t["decodes"] is False) == (t["name"] in undecodable), t
        if t["name"] not in undecodable:  # its first message decodes (none: not tried)
            assert t["decodes"] is (True if t["messages_read"] else None), t
    assert info["messages_read"] == info["messages_declared"] == sum(c for _, c in topics.values())
    if info["messages_read"]:
        assert info["end_ns"] >= info["start_ns"] and info["duration_s"] >= 0
    else:  # the empty bag: no start, no end (rosbags would say a duration of -9.2e9 s)
        assert info["start_ns"] is None and info["duration_s"] is None
        assert "no message could be read: the bag is empty" in info["warnings"]
    json.dumps(info)  # --json prints it


def test_talker_bag_whose_metadata_qos_differs_yields_all_20_messages():
    """The talker bag yields all 20 messages though its metadata QoS differs.

    rosbags' own reader matches metadata.yaml's topics to the storage's by QoS too and
    yields none of this bag's 20 messages; read through the storage they all come, in order.
    """
    from rosbags.highlevel import AnyReader
    from rosbags.typesys import Stores, get_typestore

    for storage in ("sqlite3", "mcap"):
        path = ROSBAG2 / f"rosbag2_py/test/resources/{storage}/talker"
        with AnyReader([path], default_typestore=get_typestore(Stores.ROS2_KILTED)) as reader:
            assert reader.message_count == 20 and not list(reader.messages())  # the trap
        with BagReader(path) as bag:
            texts = [
                bag.deserialize(raw, msgtype).data
                for _, msgtype, _, raw in bag.messages(["/topic"])
            ]
            assert texts == [f"Hello, world! {i}" for i in range(10)]
            assert bag.read_counts == {"/topic": 10}
            assert any("/topic: metadata.yaml's QoS differs" in note for note in bag.notes)
            stamps = [t for _, _, t, _ in bag.messages()]
            assert len(stamps) == 20 and stamps == sorted(stamps)


def test_legacy_type_names_of_a_dashing_db3_are_normalised_and_decode():
    assert normalize_msgtype("sensor_msgs/Image") == "sensor_msgs/msg/Image"
    assert normalize_msgtype("sensor_msgs/msg/Image") == "sensor_msgs/msg/Image"
    with BagReader(EXTERNAL / "klintan_rosbag2.js/examples/sample.db3") as bag:
        assert bag.topics["/image"].recorded_type == "sensor_msgs/Image"
        messages = {t: bag.deserialize(raw, m) for t, m, _, raw in bag.messages()}
    image = messages["/image"]
    assert (image.width, image.height, image.encoding, image.step) == (640, 480, "bgr8", 1920)
    assert len(image.data) == 480 * 1920
    jpeg = messages["/image/compressed"]
    assert jpeg.format == "bgr8; jpeg compressed bgr8" and len(jpeg.data) == 73470
    assert bytes(jpeg.data[:2]) == b"\xff\xd8" and bytes(jpeg.data[-2:]) == b"\xff\xd9"  # JPEG


def test_a_schema_that_does_not_parse_leaves_the_other_topics_readable():
    """AnyReader (rosbags) refuses the whole mcap; here only the service-event topics are out."""
    path = ROSBAG2 / "rosbag2_tests/resources/mcap/bag_with_topics_and_service_events"
    with BagReader(path) as bag:
        assert bag.undecodable().keys() == {
            "/test_service1/_service_event",
            "/test_service2/_service_event",
        }
        assert "does not parse" in bag.topics["/test_service1/_service_event"].problem
        strings = [bag.deserialize(raw, m) for _, m, _, raw in bag.messages(["/test_topic1"])]
        assert len(strings) == 1 and hasattr(strings[0], "string_value")
        with pytest.raises(
            BagError, match=r"topic /test_service1/_service_event .*does not parse"
        ):
            bag.resolve("/test_service1/_service_event", "state topic")


def test_bag_info_cli_text_json_and_a_bag_it_cannot_open(capsys):
    nav2 = EXTERNAL / "MichaelGrupp_evo/test/data/nav2_turtlebot.mcap"
    talker = ROSBAG2 / "rosbag2_py/test/resources/sqlite3/talker"
    assert sdm_main(["bag", "info", str(nav2), str(talker)]) == 0
    out = capsys.readouterr().out
    assert "/tf         tf2_msgs/msg/TFMessage" in out and "5422 / 5422" in out
    assert "duration:    97.355296 s" in out
    assert "warning: /topic: metadata.yaml's QoS differs from the storage's" in out
    wrong = ROSBAG2 / "rosbag2_tests/resources/mcap/wrong_rmw_test"
    assert sdm_main(["bag", "info", "--json", str(wrong), str(nav2)]) == 2
    captured = capsys.readouterr()
    result = json.loads(captured.out)
    assert [b["messages_read"] for b in result["bags"]] == [8197]
    assert result["errors"][0]["path"] == str(wrong)
    (line,) = captured.err.strip().splitlines()
    assert str(wrong) in line and "'wrong_format'" in line and "CDR" in line


@pytest.mark.parametrize(
    ("name", "expected"),
    [
        ("rosbag2_tests/resources/mcap/wrong_rmw_test", "serialised as 'wrong_format'"),
        ("ros2bag/test/resources/empty_bag", "holds no messages"),
        ("../MichaelGrupp_evo/test/data/tf_example.bag", "is a ROS 1 bag; .*rosbags-convert"),
    ],
)
def test_bag2zarr_refuses_with_one_line_and_writes_nothing(tmp_path, capsys, name, expected):
    bag = (ROSBAG2 / name).resolve()
    out = tmp_path / "data.zarr"
    assert sdm_main(["bag2zarr", str(bag), "--out", str(out), "--no-progress"]) == 2
    err = capsys.readouterr().err
    (line,) = err.strip().splitlines()
    assert line.startswith("sdm bag2zarr: error: ") and str(bag) in line
    assert re.search(expected, line)
    assert not out.exists() and not list(tmp_path.iterdir())
