"""The whole realism suite on small constructed scenes."""

from __future__ import annotations

import numpy as np
import pytest

from sd_sim_plugin.metrics.features import nearest_neighbour_distances
from sd_sim_plugin.metrics.suite import evaluate
from sd_sim_plugin.scene.types import Agents, AgentType, Horizon, MapGeometry, Scene

H = Horizon(1.0, 1.0, 1.0)


def _scene(rows: list[tuple[float, float, float, float]], types: list[int] | None = None) -> Scene:
    """Ego at the origin plus agents (x, y, heading, speed) driving straight on a 3-lane road along x."""
    xs = np.linspace(-60, 60, 121)
    road = MapGeometry(lane_ids=[f"l{k}" for k in range(3)],
                       lane_centrelines=[np.stack([xs, np.full_like(xs, 3.5 * k)], 1) for k in (-1, 0, 1)],
                       lane_widths=[3.5] * 3)
    rows = [(0.0, 0.0, 0.0, 0.0), *rows]
    n = len(rows)
    traj = np.zeros((n, 3, 3))
    vel = np.zeros((n, 3, 2))
    for i, (x, y, h, v) in enumerate(rows):
        for k, t in enumerate(H.times):
            traj[i, k] = (x + v * t * np.cos(h), y + v * t * np.sin(h), h)
            vel[i, k] = (v * np.cos(h), v * np.sin(h))
    agents = Agents(types=[0] + (types or [0] * (n - 1)), length=np.full(n, 4.5), width=np.full(n, 1.9),
                    trajectory=traj, velocity=vel, valid=np.ones((n, 3), bool))
    return Scene(road, agents, H, ego_index=0)


def _generated(scene: Scene, shift: float = 0.0) -> Scene:
    others = scene.others
    others.trajectory[..., 1] += shift
    return Scene(scene.map, others, scene.horizon, ego_index=-1)


def test_a_set_against_itself_scores_zero_distance():
    refs = [_scene([(10, 0, 0, 5), (-12, 3.5, 0, 8), (25, -3.5, 0, 0)]), _scene([(15, 3.5, 0, 10), (30, 0, 0, 3)])]
    out = evaluate([_generated(s) for s in refs], refs)
    for name in ("position", "heading_vector", "velocity", "size"):
        assert out["mmd"][name] == pytest.approx(0.0, abs=1e-12)
    assert all(v == pytest.approx(0.0, abs=1e-12) for v in out["jsd"].values())
    assert out["generated"] == out["reference"]
    assert out["reference"]["vehicles_per_scene"] == 2.5
    assert out["reference"]["compliance"]["drivable_fraction"] == 1.0


def test_shifted_agents_move_position_mmd_and_lane_deviation():
    refs = [_scene([(10, 0, 0, 5), (-12, 3.5, 0, 8), (25, -3.5, 0, 0)])]
    near = evaluate([_generated(refs[0], 0.5)], refs)
    far = evaluate([_generated(refs[0], 1.6)], refs)
    assert 0 < near["mmd"]["position"] < far["mmd"]["position"]
    assert near["mmd"]["velocity"] == pytest.approx(0.0, abs=1e-12)
    assert near["generated"]["compliance"]["drivable_fraction"] == 1.0
    assert far["generated"]["compliance"]["drivable_fraction"] == 1.0  # 1.6 m < 1.75 m half-width
    assert far["jsd"]["lateral_deviation_m"] > 0.5


def test_only_vehicles_in_the_box_count_and_collisions_with_ego():
    ref = _scene([(10, 0, 0, 5), (50, 0, 0, 5), (5, 3.5, 0, 1)], types=[0, 0, int(AgentType.PEDESTRIAN)])
    gen = _generated(_scene([(1.0, 0.5, 0.0, 0.0), (10, 0, 0, 5)]))
    out = evaluate([gen], [ref])
    assert out["reference"]["vehicles_per_scene"] == 1.0  # x = 50 is outside, the pedestrian is not a vehicle
    assert out["generated"]["collision_rate"]["ego_t0"] == 0.5
    assert out["reference"]["collision_rate"]["ego_t0"] == 0.0


def test_nearest_neighbour_includes_the_ego():
    d = nearest_neighbour_distances(np.array([[3.0, 4.0], [20.0, 0.0]]), ego_xy=np.zeros(2))
    np.testing.assert_allclose(d, [5.0, np.hypot(17, 4)])
    assert np.isnan(nearest_neighbour_distances(np.array([[1.0, 1.0]]))[0])
