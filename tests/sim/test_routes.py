"""Actor paths: trajectory interpolation, then lane continuation through exits that really join."""

from __future__ import annotations

import numpy as np
import pytest

from sd_sim_plugin.scene.types import MapGeometry
from sd_sim_plugin.sim.routes import MERGE_DISTANCE_M, ActorPath, LaneGraph


def straight(x0: float, x1: float, y: float) -> np.ndarray:
    """A straight centreline every metre."""
    xs = np.arange(x0, x1 + 0.5, 1.0) if x1 > x0 else np.arange(x0, x1 - 0.5, -1.0)
    return np.stack([xs, np.full_like(xs, y, dtype=float)], axis=1)


@pytest.fixture
def pg_like_road() -> MapGeometry:
    """Two lanes east, in two road sections; like PG maps, each lane lists *both* next lanes as exits."""
    return MapGeometry(
        lane_ids=["a0", "a1", "b0", "b1"],
        lane_centrelines=[straight(0, 50, 0.0), straight(0, 50, 3.5), straight(50, 150, 0.0), straight(50, 150, 3.5)],
        lane_widths=[3.5] * 4,
        lane_exits={"a0": ["b0", "b1"], "a1": ["b0", "b1"]},
    )


def test_trajectory_interpolation_is_exact_at_horizon_steps():
    times = np.array([0.0, 1.0, 2.0])
    traj = np.array([[0.0, 0.0, 0.0], [5.0, 1.0, 0.2], [9.0, 3.0, 0.4]])
    vel = np.array([[5.0, 0.0], [4.0, 2.0], [4.0, 2.0]])
    path = ActorPath(times, traj, vel, None, 100.0, np.random.default_rng(0))
    for t, pose in zip(times, traj):
        xy, heading, _ = path.state(t)
        np.testing.assert_allclose([*xy, heading], pose, atol=1e-12)
    xy, heading, v = path.state(0.5)
    np.testing.assert_allclose(xy, [2.5, 0.5])
    assert heading == pytest.approx(0.1)
    np.testing.assert_allclose(v, [5.0, 1.0])


def test_continuation_stays_in_lane_across_pg_style_exits(pg_like_road):
    # Ends its trajectory in the left lane (y = 3.5) heading east at 10 m/s, 0.5 m off the centre.
    traj = np.array([[20.0, 3.0, 0.0], [30.0, 3.0, 0.0], [40.0, 3.0, 0.0]])
    vel = np.tile([10.0, 0.0], (3, 1))
    for seed in range(5):
        path = ActorPath(np.array([0.0, 1.0, 2.0]), traj, vel, LaneGraph(pg_like_road), 200.0,
                         np.random.default_rng(seed))
        assert path.on_lane_route
        # Continuous at the trajectory's end, merged onto the centre after MERGE_DISTANCE_M, never jumping lanes.
        np.testing.assert_allclose(path.state(2.0)[0], [40.0, 3.0], atol=1e-9)
        later = [path.state(2.0 + k * 0.5)[0] for k in range(1, 20)]
        ys = np.array([p[1] for p in later])
        assert np.all((ys > 2.9) & (ys < 3.6))
        assert path.state(2.0 + 2 * MERGE_DISTANCE_M / 10.0)[0][1] == pytest.approx(3.5, abs=1e-6)
        assert path.state(10.0)[0][0] == pytest.approx(40.0 + 80.0, abs=0.5)  # 8 s at 10 m/s along the lane


def test_no_lane_within_heading_goes_straight_on(pg_like_road):
    # Heading north across the eastbound lanes: no lane within 45 degrees, so it keeps going straight.
    traj = np.array([[10.0, -10.0, np.pi / 2], [10.0, -5.0, np.pi / 2], [10.0, 0.0, np.pi / 2]])
    path = ActorPath(np.array([0.0, 1.0, 2.0]), traj, np.tile([0.0, 5.0], (3, 1)), LaneGraph(pg_like_road), 100.0,
                     np.random.default_rng(0))
    assert not path.on_lane_route
    xy, heading, v = path.state(4.0)
    np.testing.assert_allclose(xy, [10.0, 10.0], atol=1e-6)
    assert heading == pytest.approx(np.pi / 2)
    np.testing.assert_allclose(v, [0.0, 5.0], atol=1e-9)


def test_stopped_agent_stays_put(pg_like_road):
    traj = np.array([[10.0, 0.0, 0.0]] * 3)
    path = ActorPath(np.array([0.0, 1.0, 2.0]), traj, np.zeros((3, 2)), LaneGraph(pg_like_road), 100.0,
                     np.random.default_rng(0))
    xy, heading, v = path.state(30.0)
    np.testing.assert_allclose(xy, [10.0, 0.0])
    assert heading == 0.0 and not v.any()
