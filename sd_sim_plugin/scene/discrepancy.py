"""The kernel discrepancy between two sets of agent features: the realism metrics' MMD (metrics/distribution.py),
and the risk the diffusion model's most-typical-draw selection minimises (model/pipeline.py), so both layers use one
estimator without the model depending on the metrics."""

from __future__ import annotations

import numpy as np


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
