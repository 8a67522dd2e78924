"""Box gap and time-to-collision against hand-computed cases and a brute-force time scan."""

from __future__ import annotations

import numpy as np
import pytest

from sd_sim_plugin.scene.geometry import boxes_overlap
from sd_sim_plugin.sim.criticality import box_gaps, ego_criticality, time_to_collision

EGO = np.array([0.0, 0.0, 0.0, 4.0, 2.0])  # x, y, heading, length, width


def test_gap_of_boxes_in_line_and_side_by_side():
    others = np.array([[10.0, 0.0, 0.0, 4.0, 2.0],   # 10 - 2 - 2 = 6 m ahead
                       [0.0, 5.0, 0.0, 4.0, 2.0],    # 5 - 1 - 1 = 3 m to the left
                       [1.0, 0.5, 0.3, 4.0, 2.0]])   # overlapping
    np.testing.assert_allclose(box_gaps(EGO, others), [6.0, 3.0, 0.0], atol=1e-9)


def test_gap_corner_to_corner():
    # A 2 x 2 square up and to the right of the ego, its corner d metres from the ego's corner (2, 1) diagonally.
    d = 3.0
    centre = np.array([2.0, 1.0]) + np.array([1.0, 1.0]) * (d / np.sqrt(2) + 1.0)
    gap = box_gaps(EGO, np.array([[centre[0], centre[1], 0.0, 2.0, 2.0]]))[0]
    assert gap == pytest.approx(d, abs=1e-9)


def test_ttc_head_on_and_rear_end():
    others = np.array([[30.0, 0.0, np.pi, 4.0, 2.0], [-20.0, 0.0, 0.0, 4.0, 2.0]])
    # Ego at 10 m/s; oncoming at 10 m/s: gap 26 m closes at 20 m/s; follower at 15 m/s: gap 16 m at 5 m/s.
    ttc = time_to_collision(EGO, [10.0, 0.0], others, [[-10.0, 0.0], [15.0, 0.0]], horizon_s=10.0)
    np.testing.assert_allclose(ttc, [1.3, 3.2], atol=1e-9)


def test_ttc_is_inf_for_diverging_parallel_and_far_future():
    others = np.array([[10.0, 0.0, 0.0, 4.0, 2.0], [0.0, 4.0, 0.0, 4.0, 2.0], [200.0, 0.0, np.pi, 4.0, 2.0]])
    ttc = time_to_collision(EGO, [10.0, 0.0], others, [[12.0, 0.0], [10.0, 0.0], [-5.0, 0.0]], horizon_s=10.0)
    assert np.all(np.isinf(ttc))


def test_ttc_zero_when_overlapping():
    assert time_to_collision(EGO, [0.0, 0.0], np.array([[1.0, 0.0, 0.0, 4.0, 2.0]]), [[0.0, 0.0]])[0] == 0.0


def test_ttc_matches_brute_force_scan_on_random_crossings():
    rng = np.random.default_rng(0)
    times = np.arange(0.0, 10.0, 0.005)
    for _ in range(20):
        box = np.array([rng.uniform(-25, 25), rng.uniform(-25, 25), rng.uniform(-np.pi, np.pi), 4.5, 1.9])
        if boxes_overlap(EGO[None], box[None])[0, 0]:
            continue
        v_ego = rng.uniform(-10, 10, 2)
        v_other = rng.uniform(-10, 10, 2)
        ttc = time_to_collision(EGO, v_ego, box[None], v_other[None])[0]
        moved_ego = np.tile(EGO, (len(times), 1))
        moved_ego[:, :2] += times[:, None] * v_ego
        moved = np.tile(box, (len(times), 1))
        moved[:, :2] += times[:, None] * v_other
        touching = np.array([boxes_overlap(a[None], b[None])[0, 0] for a, b in zip(moved_ego, moved)])
        expected = times[np.argmax(touching)] if touching.any() else np.inf
        if np.isinf(expected):
            assert np.isinf(ttc) or ttc > 9.99
        else:
            assert ttc == pytest.approx(expected, abs=6e-3)


def test_ego_criticality_names_the_agents():
    others = np.array([[10.0, 0.0, 0.0, 4.0, 2.0], [0.0, 3.5, 0.0, 4.0, 2.0]])
    c = ego_criticality(EGO, np.array([10.0, 0.0]), others, np.zeros((2, 2)), ["ahead", "beside"])
    assert (c.min_gap_agent, c.ttc_agent) == ("beside", "ahead")
    assert c.min_gap_m == pytest.approx(1.5) and c.ttc_s == pytest.approx(0.6)
    empty = ego_criticality(EGO, np.zeros(2), np.zeros((0, 5)), np.zeros((0, 2)), [])
    assert empty.to_info() == {"min_gap_m": float("inf"), "min_gap_agent": None, "ttc_s": float("inf"),
                               "ttc_agent": None}
