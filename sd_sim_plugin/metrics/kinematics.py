"""Kinematic plausibility: trajectories whose acceleration or yaw rate exceed what a car can do."""

from __future__ import annotations

import numpy as np

from sd_sim_plugin.scene.types import Agents, Horizon, wrap_angle

MAX_ACCEL_MPS2 = 8.0  # |longitudinal acceleration|: ~0.8 g, beyond hard braking on dry asphalt
MAX_YAW_RATE_RADPS = 1.0  # ~57 deg/s: a tight turn at walking pace
MAX_LATERAL_ACCEL_MPS2 = 8.0  # speed x yaw rate: beyond tyre grip
MIN_SPEED_FOR_YAW_MPS = 1.0  # below this, headings of stopped cars are noise


def kinematic_violations(agents: Agents, horizon: Horizon) -> dict[str, np.ndarray]:
    """Per agent (n,) bools: acceleration above the limit; yaw rate above the limit; either.

    Speeds come from displacements between consecutive valid poses (not from the velocity channel), so the check
    covers what the trajectory itself does. Acceleration: |v_{k+1} - v_k| / dt > 8 m/s^2. Yaw rate (while moving
    faster than 1 m/s): |dheading| / dt > min(1 rad/s, 8 m/s^2 / v).
    """
    dt = horizon.step_s
    xy = agents.trajectory[..., :2].astype(np.float64)
    pair = agents.valid[:, 1:] & agents.valid[:, :-1]
    speed = np.linalg.norm(np.diff(xy, axis=1), axis=-1) / dt  # (n, T - 1)
    yaw_rate = np.abs(wrap_angle(np.diff(agents.trajectory[..., 2].astype(np.float64), axis=1))) / dt
    yaw_limit = np.minimum(MAX_YAW_RATE_RADPS, MAX_LATERAL_ACCEL_MPS2 / np.maximum(speed, 1e-6))
    yaw_bad = pair & (speed > MIN_SPEED_FOR_YAW_MPS) & (yaw_rate > yaw_limit)
    accel = np.abs(np.diff(speed, axis=1)) / dt
    accel_bad = pair[:, 1:] & pair[:, :-1] & (accel > MAX_ACCEL_MPS2)
    out = {"acceleration": accel_bad.any(axis=1), "yaw_rate": yaw_bad.any(axis=1)}
    out["any"] = out["acceleration"] | out["yaw_rate"]
    return out
