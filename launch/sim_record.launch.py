# Copyright 2026 sdm-policy-ros maintainers
# SPDX-License-Identifier: MIT
"""Record scripted-expert demonstrations through ROS 2 into a rosbag2 bag.

ros2 launch sdm_policy_ros sim_record.launch.py bag:=DIR [task:=T episodes:=N seed:=S ...]

Records scripted-expert demonstrations through ROS 2: the embedded MetaWorld sim bridge
(lockstep), the expert teleoperator, bag_recorder (rosbag2, mcap) and the driver in demos mode,
which resets `sdm demos`' placements one after the other until N demonstrations succeeded and
then ends the launch; the recorder closes the bag. Convert it with
`sdm bag2zarr DIR --out D.zarr --config config/bag2zarr/metaworld_sim.yaml`. Thin over
sdm_policy_ros.launch_spec (`python -m sdm_policy_ros.launch_runner sim_record ...` starts the
same processes where `launch` is not installed).
"""

from sdm_policy_ros.launch_actions import launch_description
from sdm_policy_ros.launch_spec import SIM_RECORD_ARGUMENTS, sim_record_nodes


def generate_launch_description():
    return launch_description(SIM_RECORD_ARGUMENTS, sim_record_nodes)
