# Copyright 2026 sdm-policy-ros maintainers
# SPDX-License-Identifier: MIT
"""A policy deployed on a robot, without ROS.

`session.ControlSession` (the loaded model, the enable / hold / fault state machine, the stale
watch, the step), `inputs.SensorInputs` (decoding and state assembly of the sensor messages)
and `loop.ControlLoop` (the control thread: a step per timer tick or per new observation).
`sdm_policy_ros.policy_node` is a thin ROS face over them; the per-tick decisions (limits,
re-planning, tracking) are `sdm_policy_core.control.PolicyController`'s.
"""
