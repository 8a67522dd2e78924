"""A synthetic 2-D function with a known maximum, for search tests (unique module name, unlike conftest)."""

from __future__ import annotations

import numpy as np

PEAK = np.array([0.7, 0.25])  # global maximum, value 1.0 (plus a 0.6 decoy bump at DECOY)
DECOY = np.array([0.2, 0.8])


def two_bumps(u: np.ndarray) -> float:
    """Known maximum 1.0 at PEAK (width 0.15), a decoy local maximum of about 0.6 at DECOY."""
    u = np.asarray(u, dtype=float)
    return float(np.exp(-np.sum((u - PEAK) ** 2) / (2 * 0.15**2))
                 + 0.6 * np.exp(-np.sum((u - DECOY) ** 2) / (2 * 0.15**2)))
