"""Plane geometry shared by generators and metrics: oriented boxes, lane resampling, nearest-lane queries."""

from __future__ import annotations

import numpy as np
from scipy.spatial import cKDTree

from sd_sim_plugin.scene.types import MapGeometry, wrap_angle

DEFAULT_HALF_LANE_WIDTH_M = 1.75  # used where a source gives no lane width


def clean_polyline(points: np.ndarray, min_step_m: float = 1e-3) -> np.ndarray:
    """Drop repeated points (nuScenes centrelines repeat vertices), keeping the first and the order."""
    p = np.asarray(points, dtype=np.float64).reshape(-1, 2)
    if len(p) < 2:
        return p
    keep = np.concatenate([[True], np.linalg.norm(np.diff(p, axis=0), axis=1) > min_step_m])
    return p[keep]


def resample_polyline(points: np.ndarray, step_m: float = 1.0) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Points every ``step_m`` along a polyline: (M, 2) points, (M,) headings, (M,) arc lengths from its start."""
    p = clean_polyline(points)
    if len(p) < 2:
        return p, np.zeros(len(p)), np.zeros(len(p))
    seg = np.diff(p, axis=0)
    seg_len = np.linalg.norm(seg, axis=1)
    cum = np.concatenate([[0.0], np.cumsum(seg_len)])
    s = np.arange(0.0, cum[-1] + 1e-9, step_m)
    idx = np.clip(np.searchsorted(cum, s, side="right") - 1, 0, len(seg) - 1)
    frac = (s - cum[idx]) / seg_len[idx]
    pts = p[idx] + seg[idx] * frac[:, None]
    return pts, np.arctan2(seg[idx, 1], seg[idx, 0]), s


def box_corners(boxes: np.ndarray) -> np.ndarray:
    """Corners (..., 4, 2) of oriented boxes (..., 5) = (x, y, heading, length, width), counter-clockwise."""
    b = np.asarray(boxes, dtype=np.float64)
    c, s = np.cos(b[..., 2]), np.sin(b[..., 2])
    hl, hw = b[..., 3] / 2, b[..., 4] / 2
    signs = np.array([[1, 1], [-1, 1], [-1, -1], [1, -1]], dtype=np.float64)
    lx = signs[:, 0] * hl[..., None]
    ly = signs[:, 1] * hw[..., None]
    x = b[..., 0, None] + c[..., None] * lx - s[..., None] * ly
    y = b[..., 1, None] + s[..., None] * lx + c[..., None] * ly
    return np.stack([x, y], axis=-1)


def boxes_overlap(a: np.ndarray, b: np.ndarray, tol_m: float = 1e-6) -> np.ndarray:
    """(N, M) bool: whether oriented boxes ``a`` (N, 5) and ``b`` (M, 5) intersect with positive area.

    Separating-axis test on the four edge normals, run only on pairs whose bounding circles meet; boxes that only
    touch (penetration <= ``tol_m``) do not overlap.
    """
    a = np.asarray(a, dtype=np.float64).reshape(-1, 5)
    b = np.asarray(b, dtype=np.float64).reshape(-1, 5)
    out = np.zeros((len(a), len(b)), bool)
    if len(a) == 0 or len(b) == 0:
        return out
    ra, rb = 0.5 * np.hypot(a[:, 3], a[:, 4]), 0.5 * np.hypot(b[:, 3], b[:, 4])
    dist = np.hypot(a[:, None, 0] - b[None, :, 0], a[:, None, 1] - b[None, :, 1])
    ia, ib = np.nonzero(dist < ra[:, None] + rb[None, :])
    if len(ia) == 0:
        return out
    pa, pb = a[ia], b[ib]
    ca, cb = box_corners(pa), box_corners(pb)  # (K, 4, 2)
    hit = np.ones(len(ia), bool)
    for h in (pa[:, 2], pb[:, 2]):
        for axis in (np.stack([np.cos(h), np.sin(h)], -1), np.stack([-np.sin(h), np.cos(h)], -1)):
            proj_a = np.einsum("kcd,kd->kc", ca, axis)
            proj_b = np.einsum("kcd,kd->kc", cb, axis)
            penetration = np.minimum(proj_a.max(-1), proj_b.max(-1)) - np.maximum(proj_a.min(-1), proj_b.min(-1))
            hit &= penetration > tol_m
    out[ia, ib] = hit
    return out


class LaneIndex:
    """Nearest-lane queries on a map: every lane resampled every ``step_m``, in a k-d tree.

    Distances are measured perpendicular to the nearest resampled centreline point's heading (exact beside
    straight lanes; on curves the error is about ``step_m**2 / (8 * radius)``).
    """

    def __init__(self, map: MapGeometry, step_m: float = 0.5) -> None:
        pts, heads, lane_of, s_of = [], [], [], []
        for i, centre in enumerate(map.lane_centrelines):
            p, h, s = resample_polyline(centre, step_m)
            if len(p) < 2:
                continue
            pts.append(p)
            heads.append(h)
            lane_of.append(np.full(len(p), i))
            s_of.append(s)
        self.step_m = step_m
        self.points = np.concatenate(pts) if pts else np.zeros((0, 2))
        self.headings = np.concatenate(heads) if heads else np.zeros(0)
        self.lane = np.concatenate(lane_of) if lane_of else np.zeros(0, np.int64)
        self.s = np.concatenate(s_of) if s_of else np.zeros(0)
        widths = np.asarray(map.lane_widths, dtype=np.float64)
        half = np.where(widths > 0.5, widths / 2, DEFAULT_HALF_LANE_WIDTH_M)
        self.half_width = half[self.lane] if len(self.lane) else np.zeros(0)
        self.tree = cKDTree(self.points) if len(self.points) else None

    def __len__(self) -> int:
        return len(self.points)

    def query(self, xy: np.ndarray, heading: np.ndarray | None = None, k: int = 8) -> dict[str, np.ndarray]:
        """For poses (P, 2) [+ headings (P,)]: distance to the nearest centreline, whether on a lane, heading gap.

        ``heading_dev`` is the signed heading - lane heading (wrapped) for the lane, among those whose area holds the
        point, that the heading follows best (the nearest lane when none holds it); ``heading_gap`` is its absolute
        value; both NaN without headings. ``lateral`` is the distance to the nearest centreline.
        """
        xy = np.asarray(xy, dtype=np.float64).reshape(-1, 2)
        n = len(xy)
        if self.tree is None or n == 0:
            nan = np.full(n, np.nan)
            return {"lateral": nan, "on_lane": np.zeros(n, bool), "heading_gap": nan.copy(), "heading_dev": nan.copy(),
                    "nearest": np.full(n, -1)}
        k = min(k, len(self.points))
        _, idx = self.tree.query(xy, k=k)
        idx = idx.reshape(n, k)
        # Distance to the centreline: perpendicular to the sample's heading beside it, Euclidean past a lane end.
        d = xy[:, None, :] - self.points[idx]
        c, s = np.cos(self.headings[idx]), np.sin(self.headings[idx])
        along, perp = c * d[..., 0] + s * d[..., 1], -s * d[..., 0] + c * d[..., 1]
        beside = np.abs(along) <= self.step_m / 2 + 1e-6
        dist = np.where(beside, np.abs(perp), np.hypot(along, perp))
        order = np.argsort(dist, axis=1)
        dist, idx = np.take_along_axis(dist, order, 1), np.take_along_axis(idx, order, 1)
        inside = dist <= self.half_width[idx] + 1e-9
        out = {"lateral": dist[:, 0], "on_lane": inside.any(axis=1), "nearest": idx[:, 0]}
        if heading is None:
            out["heading_gap"] = np.full(n, np.nan)
            out["heading_dev"] = np.full(n, np.nan)
        else:
            dev = wrap_angle(np.asarray(heading, dtype=np.float64).reshape(n, 1) - self.headings[idx])
            # Among the lanes holding the point, the one it follows best; the nearest lane when none holds it.
            best = np.argmin(np.where(inside, np.abs(dev), np.inf), axis=1)
            best = np.where(inside.any(axis=1), best, 0)
            out["heading_dev"] = np.take_along_axis(dev, best[:, None], 1)[:, 0]
            out["heading_gap"] = np.abs(out["heading_dev"])
        return out
