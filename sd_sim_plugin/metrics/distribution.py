"""Distribution distances: per-scene MMD (TrafficGen's estimator) and Jensen-Shannon divergences of histograms."""

from __future__ import annotations

import numpy as np
from scipy.spatial.distance import jensenshannon

from sd_sim_plugin.scene.discrepancy import mmd

# Histogram ranges and bin widths (Scenario Dreamer's, see docs/evaluation.md); values outside are clipped in.
JSD_BINS: dict[str, tuple[float, float, float]] = {
    "nearest_neighbour_m": (0.0, 50.0, 1.0),
    "lateral_deviation_m": (0.0, 1.5, 0.1),
    "angular_deviation_deg": (-200.0, 200.0, 5.0),
    "length_m": (0.0, 25.0, 0.1),
    "width_m": (0.0, 5.0, 0.1),
    "speed_mps": (0.0, 50.0, 1.0),
    "agents_per_scene": (0.0, 100.0, 1.0),
}


def per_scene_mmd(generated: list[np.ndarray], reference: list[np.ndarray]) -> tuple[float, int]:
    """Mean of :func:`mmd` over scene pairs where both sets are non-empty, and how many pairs that was."""
    values = [mmd(g, r) for g, r in zip(generated, reference, strict=True) if len(g) and len(r)]
    return (float(np.mean(values)) if values else float("nan")), len(values)


def histogram(values: np.ndarray, bins: tuple[float, float, float]) -> np.ndarray:
    """Normalised histogram of ``values`` clipped into [low, high] with bins of the given width."""
    low, high, width = bins
    edges = np.linspace(low, high, int(round((high - low) / width)) + 1)
    v = np.clip(np.asarray(values, dtype=np.float64).reshape(-1), low, high)
    counts, _ = np.histogram(v[np.isfinite(v)], bins=edges)
    total = counts.sum()
    return counts / total if total else counts.astype(np.float64)


def jsd(generated: np.ndarray, reference: np.ndarray, bins: tuple[float, float, float]) -> float:
    """Jensen-Shannon divergence (natural log, in [0, ln 2]) between the clipped histograms of two samples.

    It is scipy's ``jensenshannon`` distance squared; NaN when either sample is empty.
    """
    p, q = histogram(generated, bins), histogram(reference, bins)
    if p.sum() == 0 or q.sum() == 0:
        return float("nan")
    return float(jensenshannon(p, q) ** 2)
