"""ros2 launch sdm_policy_ros sim_record.launch.py bag:=DIR [task:=T episodes:=N seed:=S ...]

Records scripted-expert demonstrations through ROS 2: the embedded MetaWorld sim bridge
(lockstep), the expert teleoperator, bag_recorder (rosbag2, mcap) and the driver in demos mode,
which resets `sdm demos`' placements one after the other until N demonstrations succeeded and
then ends the launch; the recorder closes the bag. Convert it with
`sdm bag2zarr DIR --out D.zarr --config config/bag2zarr/metaworld_sim.yaml`. Thin over
sdm_policy_ros.launch_spec (`python -m sdm_policy_ros.launch_runner sim_record ...` starts the
same processes where `launch` is not installed).
"""

from launch import LaunchDescription
from launch.actions import DeclareLaunchArgument, EmitEvent, OpaqueFunction, RegisterEventHandler
from launch.event_handlers import OnProcessExit
from launch.events import Shutdown
from launch.substitutions import LaunchConfiguration
from launch_ros.actions import Node

from sdm_policy_ros.launch_spec import PACKAGE, SIM_RECORD_ARGUMENTS, sim_record_nodes


def _nodes(context, *args, **kwargs):
    values = {a.name: LaunchConfiguration(a.name).perform(context) for a in SIM_RECORD_ARGUMENTS}
    actions = []
    for spec in sim_record_nodes(values):
        node = Node(
            package=PACKAGE,
            executable=spec.executable,
            name=spec.name,
            namespace=spec.namespace or None,
            parameters=[*spec.params_files, spec.parameters],
            remappings=spec.remappings,
            output="screen",
            emulate_tty=True,
        )
        actions.append(node)
        if spec.executable == "sim_eval_driver":  # all demonstrations recorded: stop everything
            actions.append(
                RegisterEventHandler(
                    OnProcessExit(target_action=node, on_exit=[EmitEvent(event=Shutdown())])
                )
            )
    return actions


def generate_launch_description() -> LaunchDescription:
    return LaunchDescription(
        [
            DeclareLaunchArgument(a.name, default_value=a.default, description=a.description)
            for a in SIM_RECORD_ARGUMENTS
        ]
        + [OpaqueFunction(function=_nodes)]
    )
