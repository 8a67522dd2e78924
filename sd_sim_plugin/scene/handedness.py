"""Which side of the road traffic keeps to, read from a map's lanes, and the mirror image that swaps it.

Singapore (nuScenes) keeps left; Boston, the Waymo cities and MetaDrive's procedural maps keep right. A scene's
mirror image (y -> -y in the ego frame: x forward, y left) is a valid scene of the other handedness, so a model can
learn and generate every scene as right-hand traffic and mirror the left-hand ones in and out.
"""

from __future__ import annotations

from dataclasses import replace
from typing import Literal

import numpy as np
from scipy.spatial import cKDTree

from sd_sim_plugin.scene.geometry import resample_polyline
from sd_sim_plugin.scene.tokens import AgentToken, TurnClass
from sd_sim_plugin.scene.types import Agents, MapGeometry, Scene, wrap_angle

TrafficSide = Literal["right", "left"]

ONCOMING_MIN_DEG = 150.0  # a lane this far from another's heading runs the other way
ONCOMING_MAX_GAP_M = 12.0  # ... and counts as its oncoming neighbour within this distance
MIN_VOTES = 10  # lane points with an oncoming neighbour needed to decide
MIN_MAJORITY = 0.7  # share of those votes the winning side needs


def traffic_side(map: MapGeometry, step_m: float = 2.0) -> TrafficSide | None:
    """The side traffic keeps to on ``map``, or None when its lanes do not say (no two-way roads in view).

    Every lane point votes with the side on which the nearest point of an oncoming lane lies (to the left in
    right-hand traffic); the majority decides when it is clear.
    """
    pts, heads, lane = [], [], []
    for i, centre in enumerate(map.lane_centrelines):
        if len(centre) < 2:
            continue
        p, h, _ = resample_polyline(centre, step_m)
        pts.append(p)
        heads.append(h)
        lane.append(np.full(len(p), i))
    if not pts:
        return None
    p, h, lane = np.concatenate(pts), np.concatenate(heads), np.concatenate(lane)
    pairs = cKDTree(p).query_pairs(ONCOMING_MAX_GAP_M, output_type="ndarray")
    pairs = np.concatenate([pairs, pairs[:, ::-1]])  # each point looks at each neighbour
    i, j = pairs[:, 0], pairs[:, 1]
    keep = (lane[i] != lane[j]) & (np.cos(h[j] - h[i]) <= np.cos(np.deg2rad(ONCOMING_MIN_DEG)))
    i, j = i[keep], j[keep]
    d = p[j] - p[i]
    along = d[:, 0] * np.cos(h[i]) + d[:, 1] * np.sin(h[i])
    lateral = -d[:, 0] * np.sin(h[i]) + d[:, 1] * np.cos(h[i])
    beside = np.abs(along) < np.abs(lateral)  # level with the point, not ahead on a curve
    i, lateral, dist = i[beside], lateral[beside], np.hypot(along, lateral)[beside]
    order = np.lexsort((dist, i))  # by point, nearest neighbour first
    first = order[np.concatenate([[True], np.diff(i[order]) != 0])] if len(order) else order
    left, right = int(np.sum(lateral[first] > 0)), int(np.sum(lateral[first] < 0))
    votes = left + right
    if votes < MIN_VOTES or max(left, right) < MIN_MAJORITY * votes:
        return None
    return "right" if left > right else "left"  # oncoming on the left: traffic keeps right


def _mirror_points(points: np.ndarray) -> np.ndarray:
    out = np.array(points, copy=True)
    out[..., 1] = -out[..., 1]
    return out


def mirror_map(map: MapGeometry) -> MapGeometry:
    """The map's mirror image in its own frame (y -> -y); lanes keep their direction, left and right swap."""
    def m(polys: list[np.ndarray]) -> list[np.ndarray]:
        return [_mirror_points(p) for p in polys]
    return replace(map, lane_centrelines=m(map.lane_centrelines), lane_polygons=m(map.lane_polygons),
                   lane_left={k: list(v) for k, v in map.lane_right.items()},
                   lane_right={k: list(v) for k, v in map.lane_left.items()},
                   road_edges=m(map.road_edges), lane_lines=m(map.lane_lines), crosswalks=m(map.crosswalks))


def mirror_agents(agents: Agents) -> Agents:
    """Agents' mirror image (y -> -y, heading -> -heading, vy -> -vy)."""
    traj = _mirror_points(agents.trajectory)
    traj[..., 2] = wrap_angle(-agents.trajectory[..., 2])
    return Agents(agents.types, agents.length, agents.width, traj, _mirror_points(agents.velocity), agents.valid,
                  list(agents.ids))


def mirror_token(token: AgentToken) -> AgentToken:
    """An agent token's mirror image: the same agent seen in a mirror, so a left turn becomes a right turn."""
    turn = {TurnClass.LEFT: TurnClass.RIGHT, TurnClass.RIGHT: TurnClass.LEFT}.get(TurnClass(token.turn), token.turn)
    return replace(token, y=-token.y, heading=float(wrap_angle(-token.heading)), turn=turn)


def mirror_scene(scene: Scene) -> Scene:
    """A scene's mirror image: map and agents, same horizon, ego and metadata."""
    return Scene(map=mirror_map(scene.map), agents=mirror_agents(scene.agents), horizon=scene.horizon,
                 ego_index=scene.ego_index, meta=dict(scene.meta))
