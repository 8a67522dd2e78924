"""All realism metrics for generated scenes against reference scenes on the same maps."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from sd_sim_plugin.metrics.collision import collision_flags
from sd_sim_plugin.metrics.compliance import compliance_poses, summarise_compliance
from sd_sim_plugin.metrics.distribution import JSD_BINS, jsd, per_scene_mmd
from sd_sim_plugin.metrics.features import SceneFeatures, scene_features
from sd_sim_plugin.metrics.kinematics import kinematic_violations
from sd_sim_plugin.metrics.selection import ego_box, scene_vehicles
from sd_sim_plugin.scene.geometry import LaneIndex
from sd_sim_plugin.scene.types import Scene

MMD_FEATURES = ("position", "heading_vector", "velocity", "size")
_JSD_FEATURES = {"nearest_neighbour_m": "nearest_neighbour", "lateral_deviation_m": "lateral_deviation",
                 "angular_deviation_deg": "angular_deviation", "length_m": None, "width_m": None, "speed_mps": "speed"}


@dataclass
class SceneStats:
    """Everything the metrics need from one scene: t = 0 features and per-pose / per-agent flags."""

    features: SceneFeatures
    on_lane: np.ndarray
    heading_gap_deg: np.ndarray
    collision: dict[str, np.ndarray]
    kinematics: dict[str, np.ndarray]

    @property
    def count(self) -> int:
        """Vehicles in the box at t = 0."""
        return len(self.features)


def scene_stats(scene: Scene, lanes: LaneIndex, ego: np.ndarray) -> SceneStats:
    """Stats of ``scene``'s vehicles, against the lanes of its map and the ego box (x, y, heading, length, width)."""
    vehicles = scene_vehicles(scene)
    on_lane, gap = compliance_poses(vehicles, lanes)
    return SceneStats(
        features=scene_features(vehicles, scene.horizon, lanes, ego[:2]),
        on_lane=on_lane,
        heading_gap_deg=gap,
        collision=collision_flags(vehicles, scene.horizon, ego),
        kinematics=kinematic_violations(vehicles, scene.horizon),
    )


def _share(flags: list[np.ndarray]) -> float:
    """Pooled share of True among per-agent flags."""
    total = sum(len(f) for f in flags)
    return float(sum(int(f.sum()) for f in flags) / total) if total else float("nan")


def summarise(stats: list[SceneStats]) -> dict:
    """Values of one set of scenes on its own: counts, compliance, collision and kinematic rates."""
    counts = np.array([s.count for s in stats], dtype=np.float64)
    return {
        "scenes": len(stats),
        "vehicles_per_scene": float(counts.mean()) if len(counts) else float("nan"),
        "compliance": summarise_compliance(
            np.concatenate([s.on_lane for s in stats]) if stats else np.zeros(0, bool),
            np.concatenate([s.heading_gap_deg for s in stats]) if stats else np.zeros(0)),
        "collision_rate": {k: _share([s.collision[k] for s in stats]) for k in ("t0", "trajectory", "ego_t0")},
        "kinematic_violation_rate": {k: _share([s.kinematics[k] for s in stats])
                                     for k in ("acceleration", "yaw_rate", "any")},
    }


def pooled_feature(stats: list[SceneStats], name: str) -> np.ndarray:
    """One JSD quantity (a key of JSD_BINS) pooled over scenes, NaN dropped; ``agents_per_scene``: the counts."""
    if name == "agents_per_scene":
        return np.array([s.count for s in stats], dtype=np.float64)
    if name in ("length_m", "width_m"):
        col = 0 if name == "length_m" else 1
        values = [s.features.size[:, col] for s in stats]
    else:
        values = [getattr(s.features, _JSD_FEATURES[name]) for s in stats]
    v = np.concatenate(values) if values else np.zeros(0)
    return v[np.isfinite(v)]


def compare(generated: list[SceneStats], reference: list[SceneStats]) -> dict:
    """Distances between paired generated and reference scenes: per-scene MMD (averaged) and pooled JSDs."""
    out: dict = {"mmd": {}, "jsd": {}}
    for name in MMD_FEATURES:
        value, used = per_scene_mmd([getattr(g.features, name) for g in generated],
                                    [getattr(r.features, name) for r in reference])
        out["mmd"][name] = value
        out["mmd"]["scenes_used"] = used
    for name in JSD_BINS:
        out["jsd"][name] = jsd(pooled_feature(generated, name), pooled_feature(reference, name), JSD_BINS[name])
    return out


class LaneCache:
    """One :class:`LaneIndex` per map object, so a reference and its generated scenes share it."""

    def __init__(self) -> None:
        self._cache: dict[int, tuple[object, LaneIndex]] = {}

    def get(self, scene: Scene) -> LaneIndex:
        """The lane index of ``scene``'s map."""
        hit = self._cache.get(id(scene.map))
        if hit is None or hit[0] is not scene.map:
            hit = (scene.map, LaneIndex(scene.map))
            self._cache[id(scene.map)] = hit
        return hit[1]


def evaluate(generated: list[Scene], reference: list[Scene]) -> dict:
    """Realism of ``generated[i]`` against ``reference[i]`` (same map): distances, and each side's own values."""
    if len(generated) != len(reference):
        raise ValueError(f"{len(generated)} generated scenes for {len(reference)} reference scenes")
    lanes = LaneCache()
    ref_stats, gen_stats = [], []
    for g, r in zip(generated, reference):
        index, ego = lanes.get(r), ego_box(r)
        ref_stats.append(scene_stats(r, index, ego))
        gen_stats.append(scene_stats(g, index, ego))
    return {**compare(gen_stats, ref_stats), "generated": summarise(gen_stats), "reference": summarise(ref_stats)}
