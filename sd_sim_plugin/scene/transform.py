"""Rigid 2-D transforms between the world frame of a source and the ego frame."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from sd_sim_plugin.scene.types import Agents, MapGeometry, wrap_angle


@dataclass(frozen=True)
class Pose2D:
    """A 2-D pose (x, y, heading) of a frame's origin, in world coordinates."""

    x: float
    y: float
    heading: float

    def to_local(self, points: np.ndarray) -> np.ndarray:
        """World points (..., 2) -> this frame (x forward, y left)."""
        c, s = np.cos(self.heading), np.sin(self.heading)
        d = np.asarray(points, dtype=np.float64)[..., :2] - (self.x, self.y)
        return np.stack([c * d[..., 0] + s * d[..., 1], -s * d[..., 0] + c * d[..., 1]], axis=-1)

    def to_world(self, points: np.ndarray) -> np.ndarray:
        """Points (..., 2) in this frame -> world."""
        c, s = np.cos(self.heading), np.sin(self.heading)
        p = np.asarray(points, dtype=np.float64)[..., :2]
        return np.stack([c * p[..., 0] - s * p[..., 1] + self.x, s * p[..., 0] + c * p[..., 1] + self.y], axis=-1)

    def rotate_to_local(self, vectors: np.ndarray) -> np.ndarray:
        """World vectors (..., 2), e.g. velocities -> this frame (rotation only)."""
        c, s = np.cos(self.heading), np.sin(self.heading)
        v = np.asarray(vectors, dtype=np.float64)
        return np.stack([c * v[..., 0] + s * v[..., 1], -s * v[..., 0] + c * v[..., 1]], axis=-1)

    def rotate_to_world(self, vectors: np.ndarray) -> np.ndarray:
        """Vectors (..., 2) in this frame -> world (rotation only)."""
        c, s = np.cos(self.heading), np.sin(self.heading)
        v = np.asarray(vectors, dtype=np.float64)
        return np.stack([c * v[..., 0] - s * v[..., 1], s * v[..., 0] + c * v[..., 1]], axis=-1)

    def heading_to_local(self, heading: np.ndarray | float) -> np.ndarray | float:
        """World heading -> heading in this frame, wrapped."""
        return wrap_angle(np.asarray(heading) - self.heading)

    def heading_to_world(self, heading: np.ndarray | float) -> np.ndarray | float:
        """Heading in this frame -> world heading, wrapped."""
        return wrap_angle(np.asarray(heading) + self.heading)


def agents_to_local(agents: Agents, frame: Pose2D) -> Agents:
    """Express world-frame agents in ``frame``."""
    traj = np.concatenate(
        [frame.to_local(agents.trajectory[..., :2]), frame.heading_to_local(agents.trajectory[..., 2])[..., None]],
        axis=-1,
    )
    return Agents(agents.types, agents.length, agents.width, traj, frame.rotate_to_local(agents.velocity),
                  agents.valid, list(agents.ids))


def agents_to_world(agents: Agents, frame: Pose2D) -> Agents:
    """Express agents given in ``frame`` in world coordinates."""
    traj = np.concatenate(
        [frame.to_world(agents.trajectory[..., :2]), frame.heading_to_world(agents.trajectory[..., 2])[..., None]],
        axis=-1,
    )
    return Agents(agents.types, agents.length, agents.width, traj, frame.rotate_to_world(agents.velocity),
                  agents.valid, list(agents.ids))


def _polylines_to_local(polys: list[np.ndarray], frame: Pose2D, radius: float | None) -> tuple[list[np.ndarray], list[int]]:
    """Transform many polylines in one vectorised call; return those with a point in the box and their indices."""
    if not polys:
        return [], []
    lengths = np.array([len(p) for p in polys])
    points = frame.to_local(np.concatenate([np.asarray(p, np.float64).reshape(-1, 2) for p in polys])).astype(np.float32)
    offsets = np.concatenate([[0], np.cumsum(lengths)])
    if radius is None:
        keep = np.flatnonzero(lengths > 0) if len(points) else np.zeros(0, int)
    else:
        inside = np.all(np.abs(points) <= radius, axis=-1)
        # a polyline is kept when any of its points lies in the box
        hits = np.add.reduceat(inside.astype(np.int64), offsets[:-1]) if len(points) else np.zeros(len(polys), int)
        keep = np.flatnonzero((hits > 0) & (lengths > 0))
    return [points[offsets[i]: offsets[i + 1]] for i in keep], keep.tolist()


def map_to_local(geometry: MapGeometry, frame: Pose2D, radius: float | None = None) -> MapGeometry:
    """Express a world-frame map in ``frame``; with ``radius``, keep only features with a point in that square box."""
    centres, keep = _polylines_to_local(geometry.lane_centrelines, frame, radius)
    kept_ids = {geometry.lane_ids[i] for i in keep}

    def links(table: dict[str, list[str]]) -> dict[str, list[str]]:
        return {k: list(v) for k, v in table.items() if k in kept_ids}

    polygons: list[np.ndarray] = []
    if geometry.lane_polygons:
        polygons, _ = _polylines_to_local([geometry.lane_polygons[i] for i in keep], frame, None)
        if len(polygons) != len(keep):  # empty polygons are dropped by the helper; keep one entry per lane
            polygons = [frame.to_local(geometry.lane_polygons[i]).astype(np.float32) for i in keep]
    return MapGeometry(
        lane_ids=[geometry.lane_ids[i] for i in keep],
        lane_centrelines=centres,
        lane_widths=geometry.lane_widths[keep] if keep else np.zeros(0, np.float32),
        lane_polygons=polygons,
        lane_entries=links(geometry.lane_entries),
        lane_exits=links(geometry.lane_exits),
        lane_left=links(geometry.lane_left),
        lane_right=links(geometry.lane_right),
        road_edges=_polylines_to_local(geometry.road_edges, frame, radius)[0],
        lane_lines=_polylines_to_local(geometry.lane_lines, frame, radius)[0],
        crosswalks=_polylines_to_local(geometry.crosswalks, frame, radius)[0],
    )
