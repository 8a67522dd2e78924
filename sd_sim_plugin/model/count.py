"""The count model: how many agents a map carries, for scenes whose global scene token is left unset.

Sampling with the "unset" global token under-generates (1.4-2.2 vehicles per scene against 5.1 on held-out PG,
docs/model.md): the existence threshold misses the weak peaks of an uncertain sample. Instead, the expected number of
agents is regressed on the map raster's channel means (least squares on ego-centred training windows), a count is
drawn from a Poisson around it, and generation proceeds as if the caller had asked for that many.
"""

from __future__ import annotations

import numpy as np

from sd_sim_plugin.model.cache import TrainingArrays


def map_statistics(maps: np.ndarray) -> np.ndarray:
    """Map rasters (B, C, H, W) -> (B, 1 + C): a constant and each channel's mean."""
    maps = np.asarray(maps, np.float32)
    return np.concatenate([np.ones((len(maps), 1), np.float32), maps.reshape(len(maps), maps.shape[1], -1).mean(-1)],
                          axis=1)


def fit_count_model(arrays: TrainingArrays) -> tuple[float, ...]:
    """Least-squares coefficients from map statistics to the number of agents in view (ego-centred windows when there
    are any, since generation always centres on the ego)."""
    ego = np.asarray(arrays.centre_is_ego, bool)
    rows = np.flatnonzero(ego) if ego.any() else np.arange(len(arrays))
    stats = np.concatenate([map_statistics(arrays.map[rows[i:i + 2048]]) for i in range(0, len(rows), 2048)])
    coef = np.linalg.lstsq(stats.astype(np.float64), np.asarray(arrays.num_tokens)[rows].astype(np.float64),
                           rcond=None)[0]
    return tuple(float(c) for c in coef)


def expected_count(coefficients: tuple[float, ...], maps: np.ndarray) -> np.ndarray:
    """Expected agents in view per map raster (>= 0)."""
    return np.maximum(map_statistics(maps) @ np.asarray(coefficients, np.float32), 0.0)
