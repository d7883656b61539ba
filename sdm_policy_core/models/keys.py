"""Batch keys shared by datasets, encoders, policies and the ROS layer (one place only).

Shapes as they appear in a training batch (B: batch, To: n_obs_steps, T: horizon):

- `POINT_CLOUD`: (B, To, P, C) float32, xyz in metres (+ rgb in [0, 1] when C = 6).
- `AGENT_POS`: (B, To, state_dim) float32, the robot state.
- `IMAGE`: (B, To, 3, H, W) uint8 RGB in [0, 255] (float in [0, 1] is accepted too).
- `ACTION`: (B, T, action_dim) float32.

The observation encoder sees the time axis folded into the batch: (B * To, ...).
"""

from __future__ import annotations

POINT_CLOUD = "point_cloud"
AGENT_POS = "agent_pos"
IMAGE = "image"
ACTION = "action"

OBSERVATION_KEYS = (POINT_CLOUD, AGENT_POS, IMAGE)
