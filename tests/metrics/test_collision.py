"""Oriented-box overlap and collision flags on touching, overlapping and separate boxes."""

from __future__ import annotations

import numpy as np

from sd_sim_plugin.metrics.collision import collision_flags
from sd_sim_plugin.scene.geometry import boxes_overlap
from sd_sim_plugin.scene.types import Agents, Horizon


def test_touching_boxes_do_not_overlap_overlapping_do_separate_do_not():
    a = np.array([[0.0, 0.0, 0.0, 4.0, 2.0]])
    b = np.array([
        [4.0, 0.0, 0.0, 4.0, 2.0],  # touching end to end
        [0.0, 2.0, 0.0, 4.0, 2.0],  # touching side by side
        [3.9, 0.0, 0.0, 4.0, 2.0],  # 10 cm overlap
        [10.0, 0.0, 0.0, 4.0, 2.0],  # separate
        [0.0, 0.0, np.pi / 2, 4.0, 2.0],  # crossing at the centre
        # rotated 45 deg: its nearest corner is at x = 3 - 0.707 = 2.29 > 2 (separate, although the AABBs overlap)
        [3.0, 3.0, np.pi / 4, 4.0, 2.0],
    ])
    assert boxes_overlap(a, b)[0].tolist() == [False, False, True, False, True, False]
    assert boxes_overlap(b, a)[:, 0].tolist() == [False, False, True, False, True, False]


def test_rotated_overlap_caught_only_by_the_rotated_axis():
    # A diamond whose corner pokes 0.2 m into the box's side.
    half_diag = np.sqrt(2.0)  # a 2 x 2 square rotated 45 deg reaches sqrt(2) from its centre
    a = np.array([[0.0, 0.0, 0.0, 4.0, 2.0]])
    assert boxes_overlap(a, np.array([[0.0, 1.0 + half_diag - 0.2, np.pi / 4, 2.0, 2.0]]))[0, 0]
    assert not boxes_overlap(a, np.array([[0.0, 1.0 + half_diag + 0.2, np.pi / 4, 2.0, 2.0]]))[0, 0]


def _agents(poses: np.ndarray, valid: np.ndarray | None = None) -> Agents:
    n, t = poses.shape[:2]
    return Agents(types=np.zeros(n), length=np.full(n, 4.0), width=np.full(n, 2.0), trajectory=poses,
                  velocity=np.zeros((n, t, 2)), valid=np.ones((n, t), bool) if valid is None else valid)


def test_collision_flags_t0_trajectory_and_ego():
    h = Horizon(1.0, 1.0, 1.0)  # steps at -1, 0, +1 s
    poses = np.zeros((3, 3, 3))
    poses[0, :, 0] = [10.0, 10.0, 10.0]  # parked at x = 10
    poses[1, :, 0] = [20.0, 15.0, 11.0]  # drives into agent 0 at t = +1 only
    poses[2, :, 0] = [-1.0, -1.0, -1.0]  # overlaps the ego at the origin
    flags = collision_flags(_agents(poses), h, ego_box=np.array([0.0, 0.0, 0.0, 4.0, 2.0]))
    assert flags["t0"].tolist() == [False, False, False]
    assert flags["trajectory"].tolist() == [True, True, False]
    assert flags["ego_t0"].tolist() == [False, False, True]


def test_invalid_poses_never_collide():
    h = Horizon(1.0, 1.0, 1.0)
    poses = np.zeros((2, 3, 3))  # both at the origin the whole time
    valid = np.array([[True, True, True], [False, False, False]])
    flags = collision_flags(_agents(poses, valid), h)
    assert not flags["trajectory"].any()


def test_separating_axis_test_agrees_with_shapely_on_random_boxes():
    from shapely.geometry import Polygon

    from sd_sim_plugin.scene.geometry import box_corners

    rng = np.random.default_rng(0)
    a = np.column_stack([rng.uniform(-6, 6, (60, 2)), rng.uniform(-np.pi, np.pi, 60), rng.uniform(1, 6, 60),
                         rng.uniform(0.5, 2.5, 60)])
    got = boxes_overlap(a, a)
    corners = box_corners(a)
    polys = [Polygon(c) for c in corners]
    want = np.array([[p.intersection(q).area > 1e-6 for q in polys] for p in polys])
    assert got.sum() > 100 and (~got).sum() > 100  # both outcomes well represented
    assert np.array_equal(got, want)
