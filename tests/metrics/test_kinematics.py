"""Kinematic limits on hand-made trajectories."""

from __future__ import annotations

import numpy as np

from sd_sim_plugin.metrics.kinematics import MAX_ACCEL_MPS2, kinematic_violations
from sd_sim_plugin.scene.types import Agents, Horizon

H = Horizon(2.0, 2.0, 1.0)


def _agent(x: list[float], heading: list[float], y: list[float] | None = None) -> Agents:
    pose = np.stack([x, y or [0.0] * len(x), heading], axis=-1)[None]
    return Agents(types=[0], length=[4.5], width=[1.9], trajectory=pose, velocity=np.zeros((1, 5, 2)),
                  valid=np.ones((1, 5), bool))


def test_constant_speed_straight_is_plausible():
    flags = kinematic_violations(_agent([0, 10, 20, 30, 40], [0.0] * 5), H)
    assert not flags["any"][0]


def test_acceleration_above_the_limit_is_flagged_below_is_not():
    ok = _agent(np.cumsum([0, 5, 5 + MAX_ACCEL_MPS2 - 0.5, 13, 13]).tolist(), [0.0] * 5)
    bad = _agent(np.cumsum([0, 5, 5 + MAX_ACCEL_MPS2 + 0.5, 13, 13]).tolist(), [0.0] * 5)
    assert not kinematic_violations(ok, H)["acceleration"][0]
    assert kinematic_violations(bad, H)["acceleration"][0]


def test_yaw_rate_limit_depends_on_speed_and_ignores_stopped_cars():
    # 0.8 rad/s at 3 m/s: a tight but possible turn; at 15 m/s it needs 12 m/s^2 of lateral acceleration.
    slow = _agent([0, 3, 6, 9, 12], [0.0, 0.8, 1.6, 2.4, 3.2])
    fast = _agent([0, 15, 30, 45, 60], [0.0, 0.8, 1.6, 2.4, 3.2])
    stopped = _agent([0, 0, 0, 0, 0], [0.0, 2.0, -2.0, 1.0, 0.0])
    spin = _agent([0, 3, 6, 9, 12], [0.0, 1.5, 3.0, -1.78, -0.28])
    assert not kinematic_violations(slow, H)["yaw_rate"][0]
    assert kinematic_violations(fast, H)["yaw_rate"][0]
    assert not kinematic_violations(stopped, H)["any"][0]
    assert kinematic_violations(spin, H)["yaw_rate"][0]


def test_heading_wrap_is_not_a_spin():
    flags = kinematic_violations(_agent([0, -5, -10, -15, -20], [3.1, -3.1, 3.1, -3.1, 3.1]), H)
    assert not flags["yaw_rate"][0]
