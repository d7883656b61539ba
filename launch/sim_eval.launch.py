# Copyright 2026 sdm-policy-ros maintainers
# SPDX-License-Identifier: MIT
"""Evaluate a checkpoint in simulation over ROS 2 (MuJoCo bridge, Gazebo or Isaac Sim).

ros2 launch sdm_policy_ros sim_eval.launch.py sim:=mujoco|gazebo|isaac checkpoint:=... [...]

sim:=mujoco starts the embedded MetaWorld sim bridge (`sim_bridge_node`, lockstep), the policy
node on sim time, and with episodes:=N the evaluation driver (`sim_eval_driver`), which runs
N episodes per seed, writes result:=FILE.json and ends the launch. sim:=gazebo / sim:=isaac
start the policy node against a running simulator, with the topic remappings, robot profile and
parameters of config/gazebo or config/isaac. Thin over sdm_policy_ros.launch_spec, which the
tests start as real processes where `launch` is not installed
(`python -m sdm_policy_ros.launch_runner sim_eval ...`).
"""

from sdm_policy_ros.launch_actions import launch_description
from sdm_policy_ros.launch_spec import SIM_EVAL_ARGUMENTS, sim_eval_nodes


def generate_launch_description():
    return launch_description(SIM_EVAL_ARGUMENTS, sim_eval_nodes)
