"""Cutting world-frame tracks into ego-frame windows, on hand-made cases with known answers."""

from __future__ import annotations

import numpy as np

from sd_sim_plugin.scene.types import Horizon, MapGeometry
from sd_sim_plugin.sources.tracks import Tracks, WindowConfig, cut_window, resample


def _tracks() -> Tracks:
    """Centre agent at (10, 5) heading +90 deg moving +y at 2 m/s; agent B 3 m ahead of it, agent C far away."""
    t = np.arange(0, 4.01, 0.5)
    f = len(t)
    pose = np.zeros((3, f, 3))
    pose[0, :, 0], pose[0, :, 1], pose[0, :, 2] = 10.0, 5.0 + 2.0 * (t - 2.0), np.pi / 2
    pose[1, :, 0], pose[1, :, 1], pose[1, :, 2] = 10.0, 8.0, np.pi  # parked, facing -x
    pose[2, :, 0], pose[2, :, 1] = 500.0, 500.0
    vel = np.zeros((3, f, 2))
    vel[0, :, 1] = 2.0
    valid = np.ones((3, f), bool)
    valid[1, :2] = False  # B appears at t = 1 s
    return Tracks(times=t, pose=pose, velocity=vel, valid=valid, length=np.array([4.5, 4.0, 4.0]),
                  width=np.array([2.0, 1.8, 1.8]), types=np.zeros(3, int), ids=["a", "b", "c"], ego_index=0)


def test_ego_frame_transform_hand_made():
    lane = MapGeometry(lane_ids=["l"], lane_centrelines=[np.array([[10.0, 0.0], [10.0, 20.0]])], lane_widths=[3.5])
    scene = cut_window(_tracks(), lane, 0, 2.0, Horizon(2, 2, 1))
    assert scene.agents.ids == ["a", "b"]  # c is outside the 80 m box
    a, b = scene.agents.trajectory
    np.testing.assert_allclose(a[:, 0], [-4, -2, 0, 2, 4], atol=1e-5)  # x forward
    np.testing.assert_allclose(a[:, 1:], 0.0, atol=1e-5)
    np.testing.assert_allclose(b[2], [3.0, 0.0, np.pi / 2], atol=1e-5)  # ahead, facing left
    assert list(scene.agents.valid[1]) == [False, True, True, True, True]
    np.testing.assert_allclose(scene.agents.velocity[0, 2], [2.0, 0.0], atol=1e-5)
    # The lane runs along the ego's heading: in the ego frame it lies on the x axis.
    np.testing.assert_allclose(scene.map.lane_centrelines[0][:, 1], 0.0, atol=1e-5)
    np.testing.assert_allclose(scene.map.lane_headings(0), 0.0, atol=1e-5)


def test_resample_interpolates_between_frames_and_marks_gaps():
    tr = _tracks()
    pose, vel, valid = resample(tr, np.array([2.25, 0.25, 9.0]))
    np.testing.assert_allclose(pose[0, 0, :2], [10.0, 5.5])
    assert valid[0, 0] and valid[0, 1] and not valid[0, 2]  # 9 s lies outside the log
    assert not valid[1, 1]  # b is invalid at 0 s and 0.5 s


def test_too_few_valid_poses_drops_agent_and_centre():
    tr = _tracks()
    tr.valid[1, :] = False
    tr.valid[1, 4] = True  # b valid only at t = 2 s: 1 pose of 5 < half
    scene = cut_window(tr, MapGeometry(), 0, 2.0, Horizon(2, 2, 1), WindowConfig(min_valid_fraction=0.5))
    assert scene.agents.ids == ["a"]
    assert cut_window(tr, MapGeometry(), 1, 2.0, Horizon(2, 2, 1)) is None
