# Copyright 2026 sdm-policy-ros maintainers
# SPDX-License-Identifier: MIT
"""The vocabulary of observation and action keys, defined here once (issue 22).

Every name a datum carries between a dataset, a model and a robot, defined here once. Pure
strings: this module imports neither torch nor rclpy, so the dataset tools, the message
conversions and the ROS layer stand on it as the training code does
(test/core/test_key_vocabulary.py holds the package to it).

Three namespaces, and the two maps between them:

- model inputs: the keys of an observation / a training batch (`POINT_CLOUD`, `AGENT_POS`,
  `IMAGE`, `DEPTH`, `ACTION`; a batch nests the observation under `OBS`);
- dataset arrays: the zarr arrays `data/<name>` of a demonstration dataset, named as DP3's
  datasets name them (`ARRAY_STATE` is "state", `ARRAY_IMAGE` is "img"). These names are a file
  contract: datasets written by DP3, Diffusion Policy and older versions of this package use them;
- ROS topics: the topic names of the ROS 2 contract (ARCHITECTURE.md), relative so that a
  namespace or a remapping moves them.

`DATASET_ARRAYS` maps a model input to its dataset array, `ROS_TOPICS` a model input to the
topics that carry it (a robot profile picks one where there are several).

Shapes as they appear in a training batch (B: batch, To: n_obs_steps, T: horizon):

- `POINT_CLOUD`: (B, To, P, C) float32, xyz in metres (+ rgb in [0, 1] when C = 6).
- `AGENT_POS`: (B, To, state_dim) float32, the robot state.
- `IMAGE`: (B, To, 3, H, W) uint8 RGB in [0, 255] (float in [0, 1] is accepted too).
- `DEPTH`: (B, To, H, W) float32 metres.
- `ACTION`: (B, T, action_dim) float32.

The observation encoder sees the time axis folded into the batch: (B * To, ...).
"""

from __future__ import annotations

# -- model inputs: observation and batch keys ----------------------------------------------------
POINT_CLOUD = "point_cloud"
AGENT_POS = "agent_pos"
IMAGE = "image"
DEPTH = "depth"
ACTION = "action"
# A simulator's full state (MetaWorld's qpos/qvel), kept in observations and datasets for
# replaying an episode; no policy reads it.
FULL_STATE = "full_state"
# The entry of a training batch holding the observation dict ({OBS: {...}, ACTION: ...}).
OBS = "obs"

OBSERVATION_KEYS = (POINT_CLOUD, AGENT_POS, IMAGE)

# -- encoders: the observation modality of `model.encoder` (a config value users write) ----------
ENCODER_AUTO = "auto"
ENCODER_DP3 = "dp3"  # point cloud + state
ENCODER_IMAGE = "image"  # RGB + state (Diffusion Policy)
ENCODER_STATE = "state"  # agent_pos only
ENCODERS = (ENCODER_AUTO, ENCODER_DP3, ENCODER_IMAGE, ENCODER_STATE)

# -- policy runtime: the values of the runtime's backend and noise settings ----------------------
# The per-tick policy runtimes: PolicyRuntime (torch) and OnnxPolicyRuntime (onnxruntime).
RUNTIME_BACKENDS = ("torch", "onnxruntime")
# Where the sampler's initial noise is drawn: torch's generator or numpy's (onnxruntime's).
NOISE_SOURCES = ("torch", "numpy")

# -- dataset arrays: zarr `data/<name>` ----------------------------------------------------------
ARRAY_POINT_CLOUD = "point_cloud"
ARRAY_STATE = "state"
ARRAY_IMAGE = "img"
ARRAY_DEPTH = "depth"
ARRAY_ACTION = "action"
ARRAY_FULL_STATE = "full_state"

# model input -> the dataset array it is stored in
DATASET_ARRAYS: dict[str, str] = {
    POINT_CLOUD: ARRAY_POINT_CLOUD,
    AGENT_POS: ARRAY_STATE,
    IMAGE: ARRAY_IMAGE,
    DEPTH: ARRAY_DEPTH,
    ACTION: ARRAY_ACTION,
    FULL_STATE: ARRAY_FULL_STATE,
}

# -- ROS topics of the contract ------------------------------------------------------------------
TOPIC_POINTS = "points"
TOPIC_IMAGE = "image"
TOPIC_DEPTH = "depth"  # read by bag2zarr only
TOPIC_JOINT_STATES = "joint_states"
TOPIC_EE_POSE = "ee_pose"
TOPIC_JOINT_TRAJECTORY = "joint_trajectory"
TOPIC_JOINT_COMMANDS = "joint_commands"
TOPIC_EE_TARGET = "ee_target"
TOPIC_EPISODE_STATUS = "episode_status"  # a simulator's episode boundaries (sdm_msgs)

# The topics of the ROS 2 contract (ARCHITECTURE.md) the policy node uses, with their message
# types: the node subscribes the inputs and publishes the outputs; a simulator profile may remap
# any of them. The node resolves the types from these names (sdm_policy_ros.policy_messages).
CONTRACT_INPUTS: dict[str, str] = {
    TOPIC_POINTS: "sensor_msgs/msg/PointCloud2",
    TOPIC_IMAGE: "sensor_msgs/msg/Image",
    TOPIC_JOINT_STATES: "sensor_msgs/msg/JointState",
    TOPIC_EE_POSE: "geometry_msgs/msg/PoseStamped",
}
CONTRACT_OUTPUTS: dict[str, str] = {
    TOPIC_JOINT_TRAJECTORY: "trajectory_msgs/msg/JointTrajectory",
    TOPIC_JOINT_COMMANDS: "std_msgs/msg/Float64MultiArray",
    TOPIC_EE_TARGET: "geometry_msgs/msg/PoseStamped",
    "action_chunk": "sdm_msgs/msg/ActionChunk",
    "status": "sdm_msgs/msg/PolicyStatus",
}

# model input -> the topics that carry it. A robot profile reads its state from joint_states
# or ee_pose (its `state` entries) and writes its action to the topic named by its `output`.
ROS_TOPICS: dict[str, tuple[str, ...]] = {
    POINT_CLOUD: (TOPIC_POINTS,),
    IMAGE: (TOPIC_IMAGE,),
    DEPTH: (TOPIC_DEPTH,),
    AGENT_POS: (TOPIC_JOINT_STATES, TOPIC_EE_POSE),
    ACTION: (TOPIC_JOINT_TRAJECTORY, TOPIC_JOINT_COMMANDS, TOPIC_EE_TARGET),
}
