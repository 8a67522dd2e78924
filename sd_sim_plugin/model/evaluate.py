"""Quick validation numbers used while training: detection F1 of decoded boxes and count statistics."""

from __future__ import annotations

import numpy as np
from scipy.optimize import linear_sum_assignment

from sd_sim_plugin.scene.types import Agents

MATCH_GATE_M = 2.0


def match_agents(pred: Agents, true: Agents, t0: int, gate_m: float = MATCH_GATE_M) -> list[tuple[int, int]]:
    """Hungarian matching of t = 0 centres, pairs within ``gate_m`` metres."""
    if len(pred) == 0 or len(true) == 0:
        return []
    d = np.linalg.norm(pred.trajectory[:, None, t0, :2] - true.trajectory[None, :, t0, :2], axis=-1)
    rows, cols = linear_sum_assignment(d)
    return [(int(r), int(c)) for r, c in zip(rows, cols) if d[r, c] <= gate_m]


def detection_scores(preds: list[Agents], trues: list[Agents], t0: int) -> dict[str, float]:
    """Precision, recall, F1 over scenes, plus mean centre / heading / speed errors of matched pairs."""
    tp = n_pred = n_true = 0
    centre, heading, speed = [], [], []
    for p, t in zip(preds, trues):
        pairs = match_agents(p, t, t0)
        tp += len(pairs)
        n_pred += len(p)
        n_true += len(t)
        for i, j in pairs:
            centre.append(np.linalg.norm(p.trajectory[i, t0, :2] - t.trajectory[j, t0, :2]))
            dh = np.angle(np.exp(1j * (p.trajectory[i, t0, 2] - t.trajectory[j, t0, 2])))
            heading.append(abs(dh))
            speed.append(np.linalg.norm(p.velocity[i, t0] - t.velocity[j, t0]))
    precision = tp / n_pred if n_pred else float(n_true == 0)
    recall = tp / n_true if n_true else 1.0
    f1 = 2 * precision * recall / (precision + recall) if precision + recall else 0.0
    mean = (lambda v: float(np.mean(v)) if v else float("nan"))
    return {"precision": precision, "recall": recall, "f1": f1, "centre_err_m": mean(centre),
            "heading_err_deg": float(np.rad2deg(mean(heading))), "velocity_err_mps": mean(speed)}


def position_mmd(pred: Agents, true: Agents, t0: int) -> float:
    """Gaussian-kernel MMD of t = 0 positions (TrafficGen estimator: bandwidth = mean pairwise squared distance)."""
    x, y = pred.trajectory[:, t0, :2].astype(np.float64), true.trajectory[:, t0, :2].astype(np.float64)
    if len(x) == 0 or len(y) == 0:
        return float("nan")
    pooled = np.concatenate([x, y])
    h = max(np.mean(np.sum((pooled[:, None] - pooled[None]) ** 2, -1)), 1e-9)

    def k(a: np.ndarray, b: np.ndarray) -> float:
        return float(np.mean(np.exp(-np.sum((a[:, None] - b[None]) ** 2, -1) / h)))

    return k(x, x) + k(y, y) - 2 * k(x, y)
