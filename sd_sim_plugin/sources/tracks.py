"""World-frame agent tracks of a log or rollout, and cutting them into ego-frame scene windows.

Both sources (PG rollouts and ScenarioNet logs) produce :class:`Tracks` at their own frame times; a window resamples
every track to the scene's :class:`Horizon` around a time t0 and expresses it in the frame of a centre agent.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np

from sd_sim_plugin.scene.transform import Pose2D, agents_to_local, map_to_local
from sd_sim_plugin.scene.types import Agents, AgentType, Horizon, MapGeometry, Scene, wrap_angle
from sd_sim_plugin.sources.map_features import crop_map


@dataclass
class Tracks:
    """N agents over F frames (world frame).

    ``times`` (F,) seconds; ``pose`` (N, F, 3) x, y, heading; ``velocity`` (N, F, 2) m/s; ``valid`` (N, F);
    ``length``/``width``/``types`` (N,); ``ids`` N strings; ``ego_index``: the logged/simulated ego, -1 if none.
    """

    times: np.ndarray
    pose: np.ndarray
    velocity: np.ndarray
    valid: np.ndarray
    length: np.ndarray
    width: np.ndarray
    types: np.ndarray
    ids: list[str] = field(default_factory=list)
    ego_index: int = -1

    def __len__(self) -> int:
        return len(self.ids)


@dataclass(frozen=True)
class WindowConfig:
    """How windows are cut: agent box, map crop radius and the minimum number of valid poses per agent."""

    box_half_m: float = 40.0  # agents within the 80 m x 80 m box around the centre
    map_radius_m: float = 60.0  # map kept with a margin beyond the box
    min_valid_fraction: float = 0.5  # of the horizon's poses; t = 0 must always be valid

    def min_valid(self, horizon: Horizon) -> int:
        """Minimum valid poses an agent needs to be kept."""
        return max(1, math.ceil(self.min_valid_fraction * horizon.num_steps))

    def to_dict(self) -> dict:
        """JSON-friendly form."""
        return {"box_half_m": self.box_half_m, "map_radius_m": self.map_radius_m,
                "min_valid_fraction": self.min_valid_fraction}


def resample(tracks: Tracks, query_times: np.ndarray, max_gap_s: float | None = None) -> tuple[np.ndarray, ...]:
    """Tracks at ``query_times`` (Q,): pose (N, Q, 3), velocity (N, Q, 2), valid (N, Q).

    A query time on a frame (within 1 ms) takes that frame; between two valid frames no further apart than
    ``max_gap_s`` (default 1.5 x the median frame step) it interpolates linearly, headings along the short arc.
    """
    t = np.asarray(tracks.times, np.float64)
    q = np.asarray(query_times, np.float64)
    n = len(tracks)
    if max_gap_s is None:
        max_gap_s = 1.5 * float(np.median(np.diff(t))) if len(t) > 1 else 0.0
    hi = np.clip(np.searchsorted(t, q), 0, len(t) - 1)
    lo = np.clip(hi - 1, 0, len(t) - 1)
    exact_hi = np.abs(t[hi] - q) <= 1e-3
    exact_lo = np.abs(t[lo] - q) <= 1e-3
    lo = np.where(exact_hi, hi, lo)
    hi = np.where(exact_lo & ~exact_hi, lo, hi)
    exact = exact_hi | exact_lo
    span = t[hi] - t[lo]
    inside = (q >= t[0] - 1e-3) & (q <= t[-1] + 1e-3) & (exact | ((span > 0) & (span <= max_gap_s + 1e-6)))
    w = np.where(span > 0, (q - t[lo]) / np.where(span > 0, span, 1.0), 0.0)  # (Q,)
    p_lo, p_hi = tracks.pose[:, lo].astype(np.float64), tracks.pose[:, hi].astype(np.float64)
    xy = p_lo[..., :2] + w[None, :, None] * (p_hi[..., :2] - p_lo[..., :2])
    heading = wrap_angle(p_lo[..., 2] + w[None, :] * wrap_angle(p_hi[..., 2] - p_lo[..., 2]))
    v_lo, v_hi = tracks.velocity[:, lo].astype(np.float64), tracks.velocity[:, hi].astype(np.float64)
    vel = v_lo + w[None, :, None] * (v_hi - v_lo)
    valid = tracks.valid[:, lo] & tracks.valid[:, hi] & inside[None, :]
    pose = np.concatenate([xy, np.reshape(heading, (n, len(q), 1))], axis=-1)
    return pose, vel, valid


def window_centres(tracks: Tracks, valid: np.ndarray, others_per_t0: int, rng: np.random.Generator,
                   speed: np.ndarray | None = None, others_min_speed: float = 0.0) -> list[int]:
    """The ego (when there is one) plus up to ``others_per_t0`` other vehicles valid at every pose of the window.

    ``valid``: (N, Q) validity of :func:`resample` at the window's poses. Windows around other vehicles multiply the
    training data a log or rollout yields; pedestrians and cyclists are never centres (the package generates around a
    vehicle). With ``others_min_speed`` > 0, other centres must move at least that fast (``speed``, (N,) m/s at
    t = 0): a parked car is no stand-in for an ego in traffic. The ego is kept whatever its speed.
    """
    ok = valid.all(axis=1) & (tracks.types == int(AgentType.VEHICLE))
    if others_min_speed > 0:
        if speed is None:
            raise ValueError("others_min_speed needs the speeds at t = 0")
        ok &= speed >= others_min_speed
    others = [int(i) for i in np.flatnonzero(ok) if i != tracks.ego_index]
    centres = [tracks.ego_index] if tracks.ego_index >= 0 else []
    if others and others_per_t0 > 0:
        pick = rng.choice(others, size=min(others_per_t0, len(others)), replace=False)
        centres += sorted(int(i) for i in pick)
    return centres


def cut_window(tracks: Tracks, world_map: MapGeometry, centre: int, t0: float, horizon: Horizon,
               config: WindowConfig = WindowConfig(), meta: dict | None = None,
               resampled: tuple[np.ndarray, ...] | None = None) -> Scene | None:
    """The scene around agent ``centre`` at time ``t0`` in its frame; None if the centre has too few valid poses.

    Kept agents are valid at t = 0, inside the box and valid at >= ``config.min_valid`` poses; the centre is agent 0.
    ``resampled``: :func:`resample` of ``tracks`` at ``t0 + horizon.times`` when the caller already has it.
    """
    pose, vel, valid = resampled if resampled is not None else resample(tracks, t0 + horizon.times)
    k = horizon.t0_index
    need = config.min_valid(horizon)
    if not valid[centre, k] or valid[centre].sum() < need:
        return None
    cx, cy, ch = (float(v) for v in pose[centre, k])
    frame = Pose2D(cx, cy, ch)
    world_agents = Agents(types=tracks.types, length=tracks.length, width=tracks.width, trajectory=pose,
                          velocity=np.where(valid[..., None], vel, 0.0), valid=valid, ids=list(tracks.ids))
    local = agents_to_local(world_agents, frame)
    xy0 = local.trajectory[:, k, :2]
    keep = valid[:, k] & (valid.sum(axis=1) >= need) & np.all(np.abs(xy0) <= config.box_half_m, axis=1)
    keep[centre] = False
    order = np.concatenate([[centre], np.flatnonzero(keep)])
    agents = local.select(order)
    agents.trajectory[~agents.valid] = 0.0  # invalid poses carry no data
    scene_map = crop_map(map_to_local(world_map, frame), config.map_radius_m)
    info = {"t0_s": float(t0), "centre_id": tracks.ids[centre], "frame": [cx, cy, ch],
            "centre_is_ego": bool(centre == tracks.ego_index), **(meta or {})}
    return Scene(map=scene_map, agents=agents, horizon=horizon, ego_index=0, meta=info)
