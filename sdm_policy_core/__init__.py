"""sdm_policy_core: ROS-free models, SDM distillation, training, data and evaluation."""
