"""Closed-loop criticality signals between oriented boxes: box-to-box gap and time-to-collision (TTC).

Boxes are (x, y, heading, length, width) rows, as in :mod:`sd_sim_plugin.scene.geometry`; velocities are (vx, vy)
in the same frame. TTC assumes both boxes keep their velocity and heading (constant-velocity prediction) and is
exact for that model (swept separating-axis test), so it needs no time grid.
Used by the simulator's ``info`` and reusable by specs, search and metrics.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from sd_sim_plugin.scene.geometry import box_corners, boxes_overlap

TTC_HORIZON_S = 10.0  # beyond this a collision course is not "critical": TTC is reported as inf


def _point_segment_distance(p: np.ndarray, a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Distance from points ``p`` to segments ``a``-``b`` (broadcast over leading dims, last dim 2)."""
    ab = b - a
    denom = np.maximum(np.einsum("...d,...d->...", ab, ab), 1e-12)
    t = np.clip(np.einsum("...d,...d->...", p - a, ab) / denom, 0.0, 1.0)
    closest = a + t[..., None] * ab
    return np.linalg.norm(p - closest, axis=-1)


def box_gaps(box: np.ndarray, others: np.ndarray) -> np.ndarray:
    """Shortest distance (m) between ``box`` (5,) and each of ``others`` (N, 5); 0 where they overlap."""
    others = np.asarray(others, dtype=np.float64).reshape(-1, 5)
    if len(others) == 0:
        return np.zeros(0)
    a = box_corners(np.asarray(box, dtype=np.float64))  # (4, 2)
    b = box_corners(others)  # (N, 4, 2)
    a_next, b_next = np.roll(a, -1, axis=0), np.roll(b, -1, axis=1)
    # Corners of b against edges of a, and corners of a against edges of b: (N, 4 corners, 4 edges).
    d_ba = _point_segment_distance(b[:, :, None, :], a[None, None, :, :], a_next[None, None, :, :])
    d_ab = _point_segment_distance(a[None, :, None, :], b[:, None, :, :], b_next[:, None, :, :])
    gap = np.minimum(d_ba.min(axis=(1, 2)), d_ab.min(axis=(1, 2)))
    return np.where(boxes_overlap(np.asarray(box, dtype=np.float64)[None], others)[0], 0.0, gap)


def time_to_collision(box: np.ndarray, velocity: np.ndarray, others: np.ndarray, other_velocities: np.ndarray,
                      horizon_s: float = TTC_HORIZON_S) -> np.ndarray:
    """Seconds until ``box`` moving at ``velocity`` first touches each of ``others``; inf if not within ``horizon_s``.

    Overlapping boxes give 0. Each separating axis (the edge normals of both boxes) bounds the time interval in
    which the projections overlap; the boxes touch when all intervals intersect.
    """
    others = np.asarray(others, dtype=np.float64).reshape(-1, 5)
    n = len(others)
    if n == 0:
        return np.zeros(0)
    box = np.asarray(box, dtype=np.float64)
    rel_v = np.asarray(other_velocities, dtype=np.float64).reshape(n, 2) - np.asarray(velocity, dtype=np.float64)
    a = box_corners(box)  # (4, 2)
    b = box_corners(others)  # (N, 4, 2)
    axes = [np.broadcast_to(np.array([np.cos(box[2]), np.sin(box[2])]), (n, 2)),
            np.broadcast_to(np.array([-np.sin(box[2]), np.cos(box[2])]), (n, 2)),
            np.stack([np.cos(others[:, 2]), np.sin(others[:, 2])], axis=-1),
            np.stack([-np.sin(others[:, 2]), np.cos(others[:, 2])], axis=-1)]
    enter = np.full(n, -np.inf)
    leave = np.full(n, np.inf)
    for axis in axes:
        pa = np.einsum("kd,nd->nk", a, axis)
        pb = np.einsum("nkd,nd->nk", b, axis)
        a_lo, a_hi, b_lo, b_hi = pa.min(1), pa.max(1), pb.min(1), pb.max(1)
        w = np.einsum("nd,nd->n", rel_v, axis)
        moving = np.abs(w) > 1e-9
        safe_w = np.where(moving, w, 1.0)
        t1, t2 = (a_lo - b_hi) / safe_w, (a_hi - b_lo) / safe_w
        lo = np.where(moving, np.minimum(t1, t2), np.where((b_lo < a_hi) & (b_hi > a_lo), -np.inf, np.inf))
        hi = np.where(moving, np.maximum(t1, t2), np.where((b_lo < a_hi) & (b_hi > a_lo), np.inf, -np.inf))
        enter, leave = np.maximum(enter, lo), np.minimum(leave, hi)
    hit = (enter <= leave) & (leave >= 0.0) & (enter <= horizon_s)
    return np.where(hit, np.maximum(enter, 0.0), np.inf)


@dataclass(frozen=True)
class Criticality:
    """The ego's most critical relations: nearest agent by box gap, and the agent with the smallest TTC."""

    min_gap_m: float
    min_gap_agent: str | None
    ttc_s: float
    ttc_agent: str | None

    def to_info(self) -> dict:
        """Flat dict for a Gymnasium ``info`` (plain Python types; TTC is inf when nothing is on a collision course)."""
        return {"min_gap_m": self.min_gap_m, "min_gap_agent": self.min_gap_agent,
                "ttc_s": self.ttc_s, "ttc_agent": self.ttc_agent}


def ego_criticality(ego_box: np.ndarray, ego_velocity: np.ndarray, boxes: np.ndarray, velocities: np.ndarray,
                    ids: list[str], horizon_s: float = TTC_HORIZON_S) -> Criticality:
    """Gap and TTC between the ego and the nearest / most imminent of N agents (inf gap and TTC when N = 0)."""
    if len(ids) == 0:
        return Criticality(float("inf"), None, float("inf"), None)
    gaps = box_gaps(ego_box, boxes)
    ttc = time_to_collision(ego_box, ego_velocity, boxes, velocities, horizon_s)
    g, t = int(np.argmin(gaps)), int(np.argmin(ttc))
    return Criticality(float(gaps[g]), str(ids[g]), float(ttc[t]), str(ids[t]) if np.isfinite(ttc[t]) else None)
