"""Where a generated agent goes once its trajectory ends: snap to a lane, follow exit lanes.

A generated trajectory covers a few seconds; an episode lasts much longer. :class:`ActorPath` replays the
trajectory (linear interpolation between horizon steps) and then continues at the final speed along a lane
route: the last pose snaps to the nearest lane whose heading is within ``SNAP_MAX_HEADING_RAD``, the route follows
exit lanes, and the lateral offset to the lane centre fades out over ``MERGE_DISTANCE_M``. Without such a lane
the agent goes straight on. Works in any frame (world or ego) on a :class:`MapGeometry`.
"""

from __future__ import annotations

import numpy as np
from scipy.spatial import cKDTree

from sd_sim_plugin.scene.geometry import resample_polyline
from sd_sim_plugin.scene.types import MapGeometry, wrap_angle

SNAP_MAX_HEADING_RAD = np.deg2rad(45.0)
SNAP_MAX_DISTANCE_M = 4.0
MERGE_DISTANCE_M = 10.0
STOPPED_SPEED_MPS = 0.1
ROUTE_STEP_M = 1.0
EXIT_JOIN_TOLERANCE_M = 1.0  # an exit lane continues a lane when it starts this close to its end


class LaneGraph:
    """A map's lanes resampled every metre, in a k-d tree, with exit links by index."""

    def __init__(self, map: MapGeometry, step_m: float = ROUTE_STEP_M) -> None:
        index = {lane_id: i for i, lane_id in enumerate(map.lane_ids)}
        self.points: list[np.ndarray] = []
        self.headings: list[np.ndarray] = []
        for centre in map.lane_centrelines:
            p, h, _ = resample_polyline(centre, step_m)
            self.points.append(p)
            self.headings.append(h)
        self.exits = [[index[e] for e in map.lane_exits.get(lid, []) if e in index] for lid in map.lane_ids]
        flat = [(i, j) for i, p in enumerate(self.points) if len(p) >= 2 for j in range(len(p))]
        self._lane_of = np.array([f[0] for f in flat], dtype=np.int64)
        self._point_of = np.array([f[1] for f in flat], dtype=np.int64)
        all_points = np.concatenate([p for p in self.points if len(p) >= 2]) if flat else np.zeros((0, 2))
        self._tree = cKDTree(all_points) if len(all_points) else None

    def snap(self, x: float, y: float, heading: float, max_distance_m: float = SNAP_MAX_DISTANCE_M,
             max_heading_rad: float = SNAP_MAX_HEADING_RAD) -> tuple[int, int] | None:
        """(lane, point index) of the nearest lane point heading within ``max_heading_rad``; None if none is close."""
        if self._tree is None:
            return None
        hits = self._tree.query_ball_point([x, y], max_distance_m)
        if not hits:
            return None
        hits = np.asarray(hits)
        lanes, pts = self._lane_of[hits], self._point_of[hits]
        lane_heading = np.array([self.headings[lane][j] for lane, j in zip(lanes, pts)])
        ok = np.abs(wrap_angle(lane_heading - heading)) <= max_heading_rad
        if not ok.any():
            return None
        d = np.hypot(np.array([self.points[lane][j][0] for lane, j in zip(lanes, pts)]) - x,
                     np.array([self.points[lane][j][1] for lane, j in zip(lanes, pts)]) - y)
        best = int(np.argmin(np.where(ok, d, np.inf)))
        return int(lanes[best]), int(pts[best])

    def _continuing_exits(self, lane: int) -> list[int]:
        """Exit lanes that start where ``lane`` ends (PG maps list every lane of the next road as an exit)."""
        end = self.points[lane][-1]
        exits = [e for e in self.exits[lane] if len(self.points[e]) >= 2]
        gaps = [float(np.linalg.norm(self.points[e][0] - end)) for e in exits]
        return [e for e, g in zip(exits, gaps) if g <= EXIT_JOIN_TOLERANCE_M]

    def follow(self, lane: int, start: int, length_m: float, rng: np.random.Generator) -> np.ndarray:
        """Lane points from point ``start`` of ``lane`` on, through random exit lanes, for about ``length_m``."""
        parts = [self.points[lane][start:]]
        total = len(parts[0])
        while total < length_m:
            nxt = self._continuing_exits(lane)
            if not nxt:
                break
            lane = nxt[int(rng.integers(len(nxt)))]
            parts.append(self.points[lane])
            total += len(self.points[lane])
        route = np.concatenate(parts)
        keep = np.concatenate([[True], np.linalg.norm(np.diff(route, axis=0), axis=1) > 1e-3])
        return route[keep]


def _arc_lengths(poly: np.ndarray) -> np.ndarray:
    """Cumulative arc length at each vertex."""
    return np.concatenate([[0.0], np.cumsum(np.linalg.norm(np.diff(poly, axis=0), axis=1))])


class ActorPath:
    """Pose and velocity of one agent at any time t >= 0: its trajectory, then a lane route at its final speed.

    ``trajectory`` (K, 3) and ``velocity`` (K, 2) are the valid poses from t = 0 on, at ``times`` (K,) seconds.
    """

    def __init__(self, times: np.ndarray, trajectory: np.ndarray, velocity: np.ndarray,
                 lanes: LaneGraph | None, route_length_m: float, rng: np.random.Generator,
                 follow_lanes: bool = True) -> None:
        self.times = np.asarray(times, dtype=np.float64)
        self.trajectory = np.asarray(trajectory, dtype=np.float64).reshape(-1, 3)
        self.velocity = np.asarray(velocity, dtype=np.float64).reshape(-1, 2)
        if len(self.times) == 0 or len(self.times) != len(self.trajectory):
            raise ValueError("an actor path needs at least its pose at t = 0")
        self.end_time = float(self.times[-1])
        self.end_speed = float(np.linalg.norm(self.velocity[-1]))
        x, y, h = self.trajectory[-1]
        snapped = lanes.snap(x, y, h) if (lanes is not None and follow_lanes) else None
        self.on_lane_route = snapped is not None
        if snapped is not None:
            route = lanes.follow(*snapped, length_m=route_length_m, rng=rng)
        else:
            route = np.zeros((0, 2))
        if len(route) >= 2:
            s = _arc_lengths(route)
            # Fade the offset between the trajectory's end and the lane centre out over MERGE_DISTANCE_M.
            fade = np.clip(1.0 - s / MERGE_DISTANCE_M, 0.0, 1.0)[:, None]
            route = route + fade * (np.array([x, y]) - route[0])
            self.route = route
        else:
            ahead = np.array([[x, y], [x + np.cos(h) * route_length_m, y + np.sin(h) * route_length_m]])
            self.route = resample_polyline(ahead, ROUTE_STEP_M)[0] if route_length_m > ROUTE_STEP_M else ahead
        self._route_s = _arc_lengths(self.route)

    def state(self, t: float) -> tuple[np.ndarray, float, np.ndarray]:
        """((x, y), heading, (vx, vy)) at time ``t`` seconds after t = 0."""
        if t <= self.end_time:
            if len(self.times) == 1:
                return self.trajectory[0, :2].copy(), float(self.trajectory[0, 2]), self.velocity[0].copy()
            k = int(np.clip(np.searchsorted(self.times, t, side="right") - 1, 0, len(self.times) - 2))
            t0, t1 = self.times[k], self.times[k + 1]
            f = float(np.clip((t - t0) / (t1 - t0), 0.0, 1.0))
            p0, p1 = self.trajectory[k], self.trajectory[k + 1]
            xy = p0[:2] + f * (p1[:2] - p0[:2])
            heading = float(wrap_angle(p0[2] + f * wrap_angle(p1[2] - p0[2])))
            return xy, heading, (p1[:2] - p0[:2]) / (t1 - t0)
        if self.end_speed < STOPPED_SPEED_MPS:
            return self.trajectory[-1, :2].copy(), float(self.trajectory[-1, 2]), np.zeros(2)
        return self._along_route(self.end_speed * (t - self.end_time))

    def _along_route(self, s: float) -> tuple[np.ndarray, float, np.ndarray]:
        """Pose and velocity at arc length ``s`` along the route (straight on past its end)."""
        cum, poly = self._route_s, self.route
        k = int(np.clip(np.searchsorted(cum, s, side="right") - 1, 0, len(poly) - 2))
        seg = poly[k + 1] - poly[k]
        seg_len = max(float(np.linalg.norm(seg)), 1e-9)
        direction = seg / seg_len
        xy = poly[k] + direction * (s - cum[k])
        heading = float(np.arctan2(direction[1], direction[0]))
        return xy, heading, direction * self.end_speed

    def polyline(self) -> np.ndarray:
        """The whole path as points: trajectory positions from t = 0, then the route (for IDM route following)."""
        pts = np.concatenate([self.trajectory[:, :2], self.route[1:]]) if len(self.route) > 1 else self.trajectory[:, :2]
        keep = np.concatenate([[True], np.linalg.norm(np.diff(pts, axis=0), axis=1) > 0.05])
        return pts[keep]

    def sample(self, times: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Positions (T, 2), headings (T,), velocities (T, 2) at ``times``."""
        states = [self.state(float(t)) for t in times]
        return (np.array([s[0] for s in states]), np.array([s[1] for s in states]),
                np.array([s[2] for s in states]))
