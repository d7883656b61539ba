"""sdm_policy_ros: the ROS 2 layer (nodes and message conversions) over sdm_policy_core."""
