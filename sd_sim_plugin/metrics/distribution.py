"""Distribution distances: per-scene MMD (TrafficGen's estimator) and Jensen-Shannon divergences of histograms."""

from __future__ import annotations

import numpy as np
from scipy.spatial.distance import jensenshannon

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


def mmd(x: np.ndarray, y: np.ndarray) -> float:
    """Squared MMD between samples x (n, d) and y (m, d) with one Gaussian kernel (TrafficGen's estimator).

    K(a, b) = exp(-|a - b|^2 / h), h = mean squared distance over all pairs of the pooled set (self-pairs included);
    MMD = mean K_xx + mean K_yy - 2 mean K_xy. Two constant sets score 2 (1 - e^-2) = 1.73 however far apart.
    """
    x = np.asarray(x, dtype=np.float64).reshape(len(x), -1)
    y = np.asarray(y, dtype=np.float64).reshape(len(y), -1)
    if len(x) == 0 or len(y) == 0:
        raise ValueError("MMD needs at least one sample in each set")
    z = np.concatenate([x, y])
    sq = np.sum(z**2, axis=1)
    d2 = np.maximum(sq[:, None] + sq[None, :] - 2.0 * z @ z.T, 0.0)
    h = d2.mean()
    if h <= 0.0:
        return 0.0  # every sample identical
    k = np.exp(-d2 / h)
    n = len(x)
    return float(k[:n, :n].mean() + k[n:, n:].mean() - 2.0 * k[:n, n:].mean())


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
