"""Per-agent features of one scene at t = 0, the inputs of the distribution metrics."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from sd_sim_plugin.scene.geometry import LaneIndex
from sd_sim_plugin.scene.types import Agents, Horizon


@dataclass
class SceneFeatures:
    """Features of a scene's vehicles at t = 0, one row per vehicle."""

    position: np.ndarray  # (n, 2) m
    heading_vector: np.ndarray  # (n, 2) unit
    velocity: np.ndarray  # (n, 2) m/s
    size: np.ndarray  # (n, 2) length, width in m
    speed: np.ndarray  # (n,) m/s
    nearest_neighbour: np.ndarray  # (n,) m, to the nearest other vehicle or the ego (NaN when alone)
    lateral_deviation: np.ndarray  # (n,) m from the nearest lane centreline
    angular_deviation: np.ndarray  # (n,) deg, signed heading - lane heading

    def __len__(self) -> int:
        return len(self.speed)


def nearest_neighbour_distances(xy: np.ndarray, ego_xy: np.ndarray | None = None) -> np.ndarray:
    """For each point (n, 2), the distance to the nearest other point or to ``ego_xy``; NaN when there is none."""
    xy = np.asarray(xy, dtype=np.float64).reshape(-1, 2)
    pts = xy if ego_xy is None else np.concatenate([xy, np.asarray(ego_xy, np.float64).reshape(1, 2)])
    d = np.linalg.norm(xy[:, None, :] - pts[None, :, :], axis=-1)
    d[np.arange(len(xy)), np.arange(len(xy))] = np.inf
    out = d.min(axis=1) if pts.shape[0] > 1 else np.full(len(xy), np.inf)
    return np.where(np.isfinite(out), out, np.nan)


def scene_features(vehicles: Agents, horizon: Horizon, lanes: LaneIndex, ego_xy: np.ndarray | None) -> SceneFeatures:
    """Features at t = 0 of ``vehicles`` (already selected), with lane deviations from ``lanes``."""
    t0 = horizon.t0_index
    pose = vehicles.trajectory[:, t0].astype(np.float64)
    velocity = vehicles.velocity[:, t0].astype(np.float64)
    q = lanes.query(pose[:, :2], pose[:, 2])
    return SceneFeatures(
        position=pose[:, :2],
        heading_vector=np.stack([np.cos(pose[:, 2]), np.sin(pose[:, 2])], axis=1),
        velocity=velocity,
        size=np.stack([vehicles.length, vehicles.width], axis=1).astype(np.float64),
        speed=np.linalg.norm(velocity, axis=1),
        nearest_neighbour=nearest_neighbour_distances(pose[:, :2], ego_xy),
        lateral_deviation=q["lateral"],
        angular_deviation=np.rad2deg(q["heading_dev"]),
    )
