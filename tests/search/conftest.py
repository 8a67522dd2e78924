"""Synthetic objectives for search tests: a 2-D function with a known maximum."""

from __future__ import annotations

import numpy as np
import pytest

from sd_sim_plugin.search.loop import Evaluation

from search_fixtures import two_bumps  # tests/search is on sys.path


@pytest.fixture
def noisy_two_bumps():
    """``two_bumps`` observed with N(0, 0.02^2) noise drawn from the evaluation seed (a noisy objective)."""

    def objective(u: np.ndarray, seed: int) -> Evaluation:
        value = two_bumps(u) + 0.02 * np.random.default_rng(seed).standard_normal()
        return Evaluation(value=value, collision=bool(two_bumps(u) > 0.9), metrics={"true": two_bumps(u)})

    return objective
