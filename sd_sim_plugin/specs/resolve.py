"""Turn a fixed-value spec into agent tokens on a map, in the ego frame.

Lane-relative placements walk lane centrelines: from the point of the ego's lane nearest the ego, along the lane
and its straightest successors (or predecessors, behind the ego), then sideways to the requested lane.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from sd_sim_plugin.errors import SdSimError
from sd_sim_plugin.scene.tokens import AgentToken, TurnClass
from sd_sim_plugin.scene.types import AgentType, MapGeometry, wrap_angle
from sd_sim_plugin.specs.leaves import Choice, Range
from sd_sim_plugin.specs.schema import SIZE_PRESETS, AgentSpec, Spec

ALIGNED_RAD = np.deg2rad(35.0)  # a lane "runs the same way" when its heading is within this of the reference
LINK_GAP_M = 1.0  # lanes connect geometrically when one ends within this of the other's start
LANE_CHANGE_LATERAL_MPS = 1.2  # typical lateral speed of a lane change; sets the token's heading tilt
LANE_CHANGE_TILT_RAD = (np.deg2rad(4.0), np.deg2rad(10.0))  # stays under the 0.2 rad matching gate and turn threshold
DEFAULT_LANE_WIDTH = 3.5
_TURNS = {"straight": TurnClass.STRAIGHT, "left": TurnClass.LEFT, "right": TurnClass.RIGHT, "stop": TurnClass.STOP,
          "lane_change": TurnClass.STRAIGHT, "lane_change_left": TurnClass.STRAIGHT,
          "lane_change_right": TurnClass.STRAIGHT}
_SIDE_STEPS = {"left": 1, "right": -1, "left2": 2, "right2": -2}


@dataclass
class LanePoint:
    """A point on a lane centreline: lane index, arc length, position and heading."""

    lane: int
    s: float
    xy: np.ndarray
    heading: float


class LaneWalker:
    """Queries on the lanes of a map in the ego frame."""

    def __init__(self, geometry: MapGeometry):
        self.map = geometry
        self.polys = [np.asarray(c, np.float64).reshape(-1, 2) for c in geometry.lane_centrelines]
        self.polys = [_dedupe(p) for p in self.polys]
        self.cum = [np.concatenate([[0.0], np.cumsum(np.linalg.norm(np.diff(p, axis=0), axis=1))]) for p in self.polys]
        self.index = {lane_id: i for i, lane_id in enumerate(geometry.lane_ids)}

    def length(self, lane: int) -> float:
        """Arc length of a lane."""
        return float(self.cum[lane][-1])

    def width(self, lane: int) -> float:
        """Lane width (default 3.5 m where the source has none)."""
        w = float(self.map.lane_widths[lane]) if len(self.map.lane_widths) > lane else 0.0
        return w if w > 0.5 else DEFAULT_LANE_WIDTH

    def at(self, lane: int, s: float) -> LanePoint:
        """The point at arc length ``s`` (clamped to the lane)."""
        poly, cum = self.polys[lane], self.cum[lane]
        s = float(np.clip(s, 0.0, cum[-1]))
        k = int(np.clip(np.searchsorted(cum, s, side="right") - 1, 0, len(poly) - 2))
        seg = poly[k + 1] - poly[k]
        t = (s - cum[k]) / max(cum[k + 1] - cum[k], 1e-9)
        return LanePoint(lane, s, poly[k] + t * seg, float(np.arctan2(seg[1], seg[0])))

    def project(self, lane: int, p: np.ndarray) -> tuple[float, LanePoint]:
        """Distance from ``p`` to a lane and the nearest point on it."""
        poly, cum = self.polys[lane], self.cum[lane]
        a, b = poly[:-1], poly[1:]
        ab = b - a
        t = np.clip(np.einsum("ij,ij->i", p - a, ab) / np.maximum(np.einsum("ij,ij->i", ab, ab), 1e-12), 0, 1)
        closest = a + t[:, None] * ab
        d = np.linalg.norm(closest - p, axis=1)
        k = int(np.argmin(d))
        s = cum[k] + t[k] * (cum[k + 1] - cum[k])
        return float(d[k]), LanePoint(lane, float(s), closest[k], float(np.arctan2(ab[k, 1], ab[k, 0])))

    def nearest(self, p: np.ndarray, heading: float, max_dist: float, opposite: bool = False) -> LanePoint | None:
        """Nearest lane point to ``p`` whose lane runs along ``heading`` (or against it), within ``max_dist``."""
        best, best_d = None, max_dist
        ref = heading + (np.pi if opposite else 0.0)
        for lane in range(len(self.polys)):
            if len(self.polys[lane]) < 2:
                continue
            d, point = self.project(lane, p)
            if d < best_d and abs(wrap_angle(point.heading - ref)) < ALIGNED_RAD:
                best, best_d = point, d
        return best

    def next_lane(self, lane: int, forward: bool) -> int | None:
        """The straightest successor (``forward``) or predecessor of a lane, from links or from geometry."""
        table = self.map.lane_exits if forward else self.map.lane_entries
        candidates = [self.index[i] for i in table.get(self.map.lane_ids[lane], []) if i in self.index]
        if not candidates:
            end = self.polys[lane][-1] if forward else self.polys[lane][0]
            for other in range(len(self.polys)):
                if other != lane and len(self.polys[other]) >= 2:
                    start = self.polys[other][0] if forward else self.polys[other][-1]
                    if np.linalg.norm(start - end) < LINK_GAP_M:
                        candidates.append(other)
        end_point = self.at(lane, self.length(lane) if forward else 0.0)
        # Links may list every lane of the next road: prefer the one that continues this lane (nearest start),
        # then the straightest (at a junction all exits start at the same point).
        best, best_cost = None, np.inf
        for other in candidates:
            if len(self.polys[other]) < 2:
                continue
            start = self.at(other, 0.0 if forward else self.length(other))
            turn = abs(wrap_angle(start.heading - end_point.heading))
            cost = float(np.linalg.norm(start.xy - end_point.xy)) + 2.0 * turn
            if turn < np.deg2rad(60.0) and cost < best_cost:
                best, best_cost = other, cost
        return best

    def walk(self, start: LanePoint, distance: float) -> LanePoint:
        """Move ``distance`` metres along the lane (negative: backwards), across lane connections."""
        lane, s = start.lane, start.s + distance
        for _ in range(64):
            if s > self.length(lane):
                nxt = self.next_lane(lane, forward=True)
                if nxt is None:
                    raise SdSimError(f"the lane ends {self.length(lane) - start.s:.0f} m ahead of the start point; "
                                     f"cannot place an agent {distance:.0f} m along it")
                s -= self.length(lane)
                lane = nxt
            elif s < 0:
                prv = self.next_lane(lane, forward=False)
                if prv is None:
                    raise SdSimError(f"the lane starts {start.s:.0f} m behind the start point; "
                                     f"cannot place an agent {-distance:.0f} m behind")
                lane = prv
                s += self.length(lane)
            else:
                return self.at(lane, s)
        raise SdSimError(f"cannot walk {distance:.0f} m along the lanes (too many short lanes)")


def _dedupe(poly: np.ndarray) -> np.ndarray:
    """Drop repeated vertices (real maps have zero-length segments)."""
    if len(poly) < 2:
        return poly
    keep = np.concatenate([[True], np.linalg.norm(np.diff(poly, axis=0), axis=1) > 1e-6])
    return poly[keep]


def ego_lane_point(walker: LaneWalker) -> LanePoint:
    """The point of the ego's lane nearest the ego (origin of the ego frame, heading 0)."""
    point = walker.nearest(np.zeros(2), 0.0, max_dist=4.0)
    if point is None:
        raise SdSimError("the ego is not on a lane running its way (no lane within 4 m heading within 35 deg)")
    return point


def _fixed(value: object, where: str) -> object:
    if isinstance(value, (Range, Choice)):
        raise ValueError(f"{where} is still open ({value}); concretize the spec first")
    return value


def agent_token(agent: AgentSpec, walker: LaneWalker, ego_point: LanePoint, where: str) -> AgentToken:
    """The agent token of one key agent of a fixed-value spec."""
    size = _fixed(agent.size, where + ".size")
    length, width, type_name = SIZE_PRESETS[size]
    length = float(_fixed(agent.length, where + ".length") or length)
    width = float(_fixed(agent.width, where + ".width") or width)
    type_name = _fixed(agent.type, where + ".type") or type_name
    heading_offset = np.deg2rad(float(_fixed(agent.heading, where + ".heading")))
    place = agent.placement
    if place.lane_relative:
        lane = _fixed(place.lane, where + ".placement.lane")
        distance = float(_fixed(place.distance, where + ".placement.distance"))
        offset = float(_fixed(place.offset, where + ".placement.offset") or 0.0)
        on_ego_lane = walker.walk(ego_point, distance)
        point = _side_lane(walker, on_ego_lane, lane, where)
        normal = np.array([-np.sin(point.heading), np.cos(point.heading)])
        xy = point.xy + offset * normal
        heading = point.heading + heading_offset
    else:
        xy = np.array([float(_fixed(place.x, where + ".placement.x")), float(_fixed(place.y, where + ".placement.y"))])
        heading = heading_offset
    manoeuvre = _fixed(agent.manoeuvre, where + ".manoeuvre")
    speed = float(_fixed(agent.speed, where + ".speed"))
    speed_2s = _fixed(agent.speed_2s, where + ".speed_2s")
    speed_2s = speed if speed_2s is None else float(speed_2s)
    if manoeuvre == "stop":
        speed = speed_2s = 0.0
    if manoeuvre.startswith("lane_change"):
        heading += _lane_change_tilt(manoeuvre, xy, heading, speed, walker, ego_point, where)
    return AgentToken(x=float(xy[0]), y=float(xy[1]), heading=float(wrap_angle(heading)), length=length, width=width,
                      speed=speed, future_speed=speed_2s, turn=_TURNS[manoeuvre],
                      agent_type=AgentType[type_name.upper()])


def _side_lane(walker: LaneWalker, point: LanePoint, lane: str, where: str) -> LanePoint:
    if lane == "ego":
        return point
    w = walker.width(point.lane)
    normal = np.array([-np.sin(point.heading), np.cos(point.heading)])
    if lane == "oncoming":
        for k in range(1, 5):  # nearest lane running against the ego's, on its left (right-hand traffic)
            found = walker.nearest(point.xy + k * w * normal, point.heading, max_dist=0.6 * w, opposite=True)
            if found is not None:
                return found
        raise SdSimError(f"{where}.placement.lane: no oncoming lane within {4 * w:.0f} m left of the ego's lane "
                         f"at ({point.xy[0]:.0f}, {point.xy[1]:.0f}) m in the ego frame")
    steps = _SIDE_STEPS[lane]
    found = walker.nearest(point.xy + steps * w * normal, point.heading, max_dist=0.6 * w)
    if found is None:
        raise SdSimError(f"{where}.placement.lane: the map has no lane '{lane}' of the ego's lane at "
                         f"({point.xy[0]:.0f}, {point.xy[1]:.0f}) m in the ego frame")
    return found


def _lane_change_tilt(manoeuvre: str, xy: np.ndarray, heading: float, speed: float, walker: LaneWalker,
                      ego_point: LanePoint, where: str) -> float:
    """Heading change that makes the token point into the target lane."""
    tilt = float(np.clip(np.arctan2(LANE_CHANGE_LATERAL_MPS, max(speed, 1.0)), *LANE_CHANGE_TILT_RAD))
    if manoeuvre == "lane_change_left":
        return tilt
    if manoeuvre == "lane_change_right":
        return -tilt
    # "towards the ego's lane": which side of the agent the ego's lane lies on
    target = walker.project(ego_point.lane, xy)[1].xy
    rel = target - xy
    lateral = -np.sin(heading) * rel[0] + np.cos(heading) * rel[1]
    if abs(lateral) < 0.5:
        raise SdSimError(f"{where}.manoeuvre: 'lane_change' is towards the ego's lane but the agent is already on it")
    return tilt if lateral > 0 else -tilt


def spec_tokens(spec: Spec, geometry: MapGeometry) -> list[AgentToken]:
    """Agent tokens of every key agent of a fixed-value spec, on ``geometry`` (ego frame)."""
    if not spec.agents:
        return []
    walker = LaneWalker(geometry)
    needs_lane = any(a.placement.lane_relative or str(a.manoeuvre).startswith("lane_change") for a in spec.agents)
    ego_point = ego_lane_point(walker) if needs_lane else None
    return [agent_token(a, walker, ego_point, f"agents[{i}]") for i, a in enumerate(spec.agents)]
