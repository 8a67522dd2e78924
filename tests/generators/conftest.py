"""Hand-made maps for generator tests."""

from __future__ import annotations

import numpy as np
import pytest

from sd_sim_plugin.scene.types import MapGeometry


def straight(x0: float, x1: float, y: float, n: int = 61) -> np.ndarray:
    """A straight centreline from (x0, y) to (x1, y)."""
    xs = np.linspace(x0, x1, n)
    return np.stack([xs, np.full_like(xs, y)], axis=1)


@pytest.fixture
def two_way_road() -> MapGeometry:
    """A straight two-way road through the ego, 120 m long, one lane each way, split in two lanes per direction
    at x = 0 (so lanes link by exits/entries), plus a right-turn exit at the far end of the eastbound lane."""
    turn = np.array([[60.0, 0.0], [65.0, -1.0], [68.0, -4.0], [69.0, -9.0], [69.0, -20.0]])
    return MapGeometry(
        lane_ids=["e1", "e2", "w1", "w2", "e2_right"],
        lane_centrelines=[straight(-60, 0, 0.0), straight(0, 60, 0.0), straight(60, 0, 3.5), straight(0, -60, 3.5),
                          turn],
        lane_widths=[3.5] * 5,
        lane_exits={"e1": ["e2"], "w1": ["w2"], "e2": ["e2_right"]},
        lane_entries={"e2": ["e1"], "w2": ["w1"], "e2_right": ["e2"]},
    )
