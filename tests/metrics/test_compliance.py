"""Map compliance and lane deviations on a hand-made lane."""

from __future__ import annotations

import numpy as np
import pytest

from sd_sim_plugin.metrics.compliance import compliance_poses, summarise_compliance
from sd_sim_plugin.scene.geometry import LaneIndex
from sd_sim_plugin.scene.types import Agents, MapGeometry


@pytest.fixture
def lane() -> LaneIndex:
    """One eastbound lane along y = 0, 4 m wide, from x = -50 to 50 (repeated points, as nuScenes has)."""
    xs = np.repeat(np.linspace(-50, 50, 11), 2)
    return LaneIndex(MapGeometry(lane_ids=["a"], lane_centrelines=[np.stack([xs, np.zeros_like(xs)], 1)],
                                 lane_widths=[4.0]))


def test_lateral_and_heading_deviation(lane):
    q = lane.query(np.array([[0.3, 1.5], [7.77, -2.5], [60.0, 0.0]]), np.array([0.1, -np.pi, 0.0]))
    np.testing.assert_allclose(q["lateral"], [1.5, 2.5, 10.0], atol=1e-9)  # past the end: Euclidean
    assert q["on_lane"].tolist() == [True, False, False]
    np.testing.assert_allclose(np.abs(q["heading_dev"]), [0.1, np.pi, 0.0], atol=1e-9)
    np.testing.assert_allclose(q["heading_gap"], np.abs(q["heading_dev"]))


def test_compliance_fraction_and_heading_gaps(lane):
    # Agent 0 drives on the lane (3 poses), agent 1 is on the lane facing backwards (1 valid pose),
    # agent 2 is 3 m off the lane, agent 3's only pose is outside the 80 m box (ignored).
    traj = np.zeros((4, 3, 3))
    traj[0, :, 0] = [-10, 0, 10]
    traj[1, :, :] = [5.0, 0.5, np.pi]
    traj[2, :, 1] = 3.0
    traj[3, :, 0] = 45.0
    valid = np.array([[1, 1, 1], [0, 1, 0], [1, 1, 1], [0, 1, 0]], bool)
    agents = Agents(types=np.zeros(4), length=np.full(4, 4.5), width=np.full(4, 1.9), trajectory=traj,
                    velocity=np.zeros((4, 3, 2)), valid=valid)
    on_lane, gap = compliance_poses(agents, lane)
    assert len(on_lane) == 7
    s = summarise_compliance(on_lane, gap)
    assert s["drivable_fraction"] == pytest.approx(4 / 7)
    assert np.isnan(gap[~on_lane]).all()  # off the lanes there is no lane heading
    assert s["heading_gap_mean_deg"] == pytest.approx(180.0 / 4)
    assert s["heading_gap_median_deg"] == pytest.approx(0.0)


def test_heading_gap_takes_the_best_of_overlapping_lanes():
    # Two opposite lanes sharing the same centreline area (a two-way single lane): a westbound car follows one.
    xs = np.linspace(-20, 20, 41)
    m = MapGeometry(lane_ids=["e", "w"], lane_centrelines=[np.stack([xs, 0 * xs], 1), np.stack([xs[::-1], 0 * xs], 1)],
                    lane_widths=[3.5, 3.5])
    q = LaneIndex(m).query(np.array([[0.2, 0.5]]), np.array([np.pi - 0.05]))
    assert q["heading_gap"][0] == pytest.approx(0.05, abs=1e-9)
