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


def map_to_local(geometry: MapGeometry, frame: Pose2D, radius: float | None = None) -> MapGeometry:
    """Express a world-frame map in ``frame``; with ``radius``, keep only features with a point within it."""

    def near(poly: np.ndarray) -> bool:
        return radius is None or (len(poly) > 0 and bool(np.all(np.abs(poly) <= radius, axis=-1).any()))

    def convert(polys: list[np.ndarray]) -> list[np.ndarray]:
        out = [frame.to_local(p).astype(np.float32) for p in polys]
        return [p for p in out if near(p)]

    centres = [frame.to_local(c).astype(np.float32) for c in geometry.lane_centrelines]
    keep = [i for i, c in enumerate(centres) if near(c)]
    kept_ids = {geometry.lane_ids[i] for i in keep}

    def links(table: dict[str, list[str]]) -> dict[str, list[str]]:
        return {k: list(v) for k, v in table.items() if k in kept_ids}

    return MapGeometry(
        lane_ids=[geometry.lane_ids[i] for i in keep],
        lane_centrelines=[centres[i] for i in keep],
        lane_widths=geometry.lane_widths[keep] if len(keep) else np.zeros(0, np.float32),
        lane_polygons=[frame.to_local(geometry.lane_polygons[i]).astype(np.float32) for i in keep]
        if geometry.lane_polygons
        else [],
        lane_entries=links(geometry.lane_entries),
        lane_exits=links(geometry.lane_exits),
        lane_left=links(geometry.lane_left),
        lane_right=links(geometry.lane_right),
        road_edges=convert(geometry.road_edges),
        lane_lines=convert(geometry.lane_lines),
        crosswalks=convert(geometry.crosswalks),
    )
