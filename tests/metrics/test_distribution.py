"""MMD and Jensen-Shannon divergence on hand-made samples with known answers."""

from __future__ import annotations

import numpy as np
import pytest

from sd_sim_plugin.metrics.distribution import JSD_BINS, histogram, jsd, mmd, per_scene_mmd


def test_mmd_of_a_set_with_itself_is_zero():
    x = np.random.default_rng(0).normal(size=(30, 2))
    assert mmd(x, x) == pytest.approx(0.0, abs=1e-12)


def test_mmd_grows_as_one_set_is_shifted():
    x = np.random.default_rng(1).normal(size=(40, 2))
    values = [mmd(x, x + [shift, 0.0]) for shift in (0.0, 0.5, 1.0, 2.0, 4.0)]
    assert values[0] == pytest.approx(0.0, abs=1e-12)
    assert all(b > a for a, b in zip(values, values[1:]))


def test_mmd_of_two_constant_sets_saturates_at_known_value():
    # h = mean squared distance over all pairs = D / 2, so K_xy = e^-2 and MMD = 2 (1 - e^-2) at any distance.
    for d in (1.0, 100.0):
        assert mmd(np.zeros((5, 2)), np.full((5, 2), d)) == pytest.approx(2 * (1 - np.exp(-2)))


def test_mmd_hand_computed_case():
    x, y = np.array([[0.0]]), np.array([[1.0], [3.0]])
    d2 = np.array([[0, 1, 9], [1, 0, 4], [9, 4, 0]], float)
    k = np.exp(-d2 / d2.mean())
    want = k[0, 0] + k[1:, 1:].mean() - 2 * k[0, 1:].mean()
    assert mmd(x, y) == pytest.approx(want)


def test_per_scene_mmd_skips_empty_scenes_and_averages():
    a = np.array([[0.0, 0.0], [1.0, 1.0]])
    value, used = per_scene_mmd([a, np.zeros((0, 2)), a], [a, a, a + 1.0])
    assert used == 2
    assert value == pytest.approx((0.0 + mmd(a, a + 1.0)) / 2)


def test_jsd_identical_is_zero_disjoint_is_ln2():
    x = np.random.default_rng(2).uniform(0, 40, 500)
    assert jsd(x, x, JSD_BINS["speed_mps"]) == pytest.approx(0.0, abs=1e-12)
    assert jsd(np.full(10, 1.5), np.full(10, 30.5), JSD_BINS["speed_mps"]) == pytest.approx(np.log(2))


def test_jsd_clips_values_into_the_edge_bins():
    # 60 m/s and 70 m/s both land in the last bin [49, 50], so they look identical.
    assert jsd([60.0], [70.0], JSD_BINS["speed_mps"]) == pytest.approx(0.0, abs=1e-12)
    h = histogram([-3.0, 0.05, 2.0], JSD_BINS["lateral_deviation_m"])
    assert len(h) == 15 and h[0] == pytest.approx(2 / 3) and h[-1] == pytest.approx(1 / 3)


def test_jsd_of_an_empty_sample_is_nan():
    assert np.isnan(jsd([], [1.0], JSD_BINS["width_m"]))
