"""Synthetic objectives for search tests: a 2-D function with a known maximum."""

from __future__ import annotations

import numpy as np
import pytest

from sd_sim_plugin.search.loop import Evaluation

PEAK = np.array([0.7, 0.25])  # global maximum, value 1.0 (plus a 0.6 decoy bump at DECOY)
DECOY = np.array([0.2, 0.8])


def two_bumps(u: np.ndarray) -> float:
    """Known maximum 1.0 at PEAK (width 0.15), a decoy local maximum of about 0.6 at DECOY."""
    u = np.asarray(u, dtype=float)
    return float(np.exp(-np.sum((u - PEAK) ** 2) / (2 * 0.15**2))
                 + 0.6 * np.exp(-np.sum((u - DECOY) ** 2) / (2 * 0.15**2)))


@pytest.fixture
def noisy_two_bumps():
    """``two_bumps`` observed with N(0, 0.02^2) noise drawn from the evaluation seed (a noisy objective)."""

    def objective(u: np.ndarray, seed: int) -> Evaluation:
        value = two_bumps(u) + 0.02 * np.random.default_rng(seed).standard_normal()
        return Evaluation(value=value, collision=bool(two_bumps(u) > 0.9), metrics={"true": two_bumps(u)})

    return objective
