"""The lane-heuristic baseline: what hand-written traffic generators do.

Vehicles are dropped at random lane points (weighted by lane length) inside the 80 m x 80 m box around the ego,
with the lane's heading, a size and a speed from simple priors, and drive at constant speed along the lane (following
exit lanes past its end, entry lanes before its start; straight on where the map ends). Placements whose trajectory
overlaps the ego's (at t = 0 only, when the ego has no trajectory) or an earlier vehicle's at any step are redrawn.
Agent tokens are placed exactly as described, first, whatever they overlap.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from sd_sim_plugin.scene.geometry import boxes_overlap, resample_polyline
from sd_sim_plugin.scene.tokens import AgentToken, Density, TurnClass, density_by_type, total_density
from sd_sim_plugin.scene.types import Agents, AgentType, Horizon, MapGeometry, Scene, wrap_angle

BOX_HALF_EXTENT_M = 40.0  # the 80 m x 80 m box of the BEV raster
DEFAULT_EGO_BOX = (4.5, 1.9)  # length, width when no ego is given
PLACEMENT_TRIES = 50
# Default count: one vehicle per this much lane in the box (Poisson). Measured on PG training windows
# (seeds 0-13, 979 windows: 895 m of lane and 5.9 vehicles per window on average).
METRES_PER_VEHICLE = 150.0
JOIN_MAX_GAP_M = 1.0  # an exit lane must start this close to the lane's (resampled) end
TOKEN_LANE_MAX_DIST_M = 2.5  # a token follows a lane only when it sits on it ...
TOKEN_LANE_MAX_HEADING_RAD = np.deg2rad(30.0)  # ... and points along it


@dataclass(frozen=True)
class SpeedPrior:
    """Speed prior: stopped with probability ``p_stopped``, else uniform in [``low``, ``high``] m/s."""

    p_stopped: float = 0.2
    low: float = 2.0
    high: float = 15.0

    def sample(self, rng: np.random.Generator) -> float:
        """One speed in m/s."""
        return 0.0 if rng.random() < self.p_stopped else float(rng.uniform(self.low, self.high))


@dataclass(frozen=True)
class SizePrior:
    """Car sizes: normal length and width (metres), clipped to a plausible range."""

    length_mean: float = 4.7
    length_std: float = 0.4
    length_range: tuple[float, float] = (3.8, 5.8)
    width_mean: float = 1.95
    width_std: float = 0.1
    width_range: tuple[float, float] = (1.7, 2.2)

    def sample(self, rng: np.random.Generator) -> tuple[float, float]:
        """(length, width) in metres."""
        length = float(np.clip(rng.normal(self.length_mean, self.length_std), *self.length_range))
        width = float(np.clip(rng.normal(self.width_mean, self.width_std), *self.width_range))
        return length, width


class _LaneNetwork:
    """The map's lanes resampled every metre, with links by index, for sampling and following lanes."""

    def __init__(self, map: MapGeometry, step_m: float = 1.0) -> None:
        self.step_m = step_m
        index = {lane_id: i for i, lane_id in enumerate(map.lane_ids)}
        self.points, self.headings = [], []
        for centre in map.lane_centrelines:
            p, h, _ = resample_polyline(centre, step_m)
            self.points.append(p)
            self.headings.append(h)
        # Follow only links that really join (a cropped map trims lanes, and links may skip to a far lane).
        exits = [[index[e] for e in map.lane_exits.get(lid, []) if e in index] for lid in map.lane_ids]
        entries = [[index[e] for e in map.lane_entries.get(lid, []) if e in index] for lid in map.lane_ids]
        self.exits = [[j for j in links if self._joins(i, j)] for i, links in enumerate(exits)]
        self.entries = [[j for j in links if self._joins(j, i)] for i, links in enumerate(entries)]
        # Candidate spawn points: resampled points inside the box, each standing for step_m of lane.
        cand = [(i, j) for i, p in enumerate(self.points) if len(p) >= 2
                for j in np.flatnonzero(np.all(np.abs(p) <= BOX_HALF_EXTENT_M, axis=1))]
        self.candidates = np.array(cand, dtype=np.int64).reshape(-1, 2)

    def _joins(self, a: int, b: int) -> bool:
        """Whether lane ``b`` starts where lane ``a`` ends, heading on within 60 degrees."""
        pa, pb = self.points[a], self.points[b]
        if len(pa) < 2 or len(pb) < 2:
            return False
        gap = math.hypot(pb[0, 0] - pa[-1, 0], pb[0, 1] - pa[-1, 1])
        turn = abs(math.remainder(self.headings[b][0] - self.headings[a][-1], 2 * math.pi))
        return gap <= JOIN_MAX_GAP_M + self.step_m and turn <= math.radians(60.0)

    @property
    def length_in_box_m(self) -> float:
        """Total lane length inside the box."""
        return len(self.candidates) * self.step_m

    def path(self, lane: int, rng: np.random.Generator, back_m: float, ahead_m: float,
             turn: TurnClass | None = None) -> tuple[np.ndarray, float]:
        """A polyline through ``lane`` extended by entry lanes behind and exit lanes ahead, and where ``lane`` starts."""
        pts = [self.points[lane]]
        behind, cur = 0.0, lane
        while behind < back_m and self.entries[cur]:
            cur = self.entries[cur][rng.integers(len(self.entries[cur]))]
            if len(self.points[cur]) < 2:
                break
            pts.insert(0, self.points[cur])
            behind += len(self.points[cur]) * self.step_m
        n_before = sum(len(p) for p in pts[:-1])  # points before ``lane``'s own
        ahead, cur = len(self.points[lane]) * self.step_m, lane
        while ahead < ahead_m and self.exits[cur]:
            cur = self._pick_exit(cur, rng, turn)
            if len(self.points[cur]) < 2:
                break
            pts.append(self.points[cur])
            ahead += len(self.points[cur]) * self.step_m
        poly = np.concatenate(pts)
        # Consecutive lanes share their joint point: drop the duplicate.
        keep = np.concatenate([[True], np.linalg.norm(np.diff(poly, axis=0), axis=1) > 1e-3])
        cum = np.concatenate([[0.0], np.cumsum(np.linalg.norm(np.diff(poly[keep], axis=0), axis=1))])
        start = float(cum[int(keep[: n_before + 1].sum()) - 1])  # the lane's first point, or its dropped twin
        return poly[keep], start

    def _pick_exit(self, lane: int, rng: np.random.Generator, turn: TurnClass | None) -> int:
        """An exit lane: random, or the one whose heading change best matches ``turn``."""
        exits = self.exits[lane]
        if turn is None or turn == TurnClass.STOP or len(exits) == 1:
            return exits[rng.integers(len(exits))]
        h0 = self.headings[lane][-1] if len(self.headings[lane]) else 0.0
        change = np.array([wrap_angle(self.headings[e][-1] - h0) if len(self.headings[e]) else 0.0 for e in exits])
        score = {TurnClass.LEFT: -change, TurnClass.RIGHT: change, TurnClass.STRAIGHT: np.abs(change)}[TurnClass(turn)]
        return exits[int(np.argmin(score))]


def _row_boxes(row: tuple) -> np.ndarray:
    """Boxes (1, T, 5) of a placed agent's row (box, poses, speeds, type) at every step."""
    box, poses = row[0], row[1]
    return np.concatenate([poses, np.broadcast_to(box[3:5], (len(poses), 2))], axis=1)[None]


def _poses_along(poly: np.ndarray, s: np.ndarray) -> np.ndarray:
    """Poses (len(s), 3) at arc lengths ``s`` along a polyline; beyond its ends, straight on along the end heading."""
    if len(poly) < 2:
        raise ValueError("a path needs two points")
    seg = np.diff(poly, axis=0)
    seg_len = np.linalg.norm(seg, axis=1)
    cum = np.concatenate([[0.0], np.cumsum(seg_len)])
    idx = np.clip(np.searchsorted(cum, s, side="right") - 1, 0, len(seg) - 1)
    frac = (s - cum[idx]) / seg_len[idx]  # < 0 or > 1 past the ends: linear extrapolation
    xy = poly[idx] + seg[idx] * frac[:, None]
    heading = np.arctan2(seg[idx, 1], seg[idx, 0])
    return np.concatenate([xy, heading[:, None]], axis=1)


def _straight_poses(x: float, y: float, heading: float, s: np.ndarray) -> np.ndarray:
    """Poses at signed distances ``s`` along a straight line through (x, y) with ``heading``."""
    return np.stack([x + s * np.cos(heading), y + s * np.sin(heading), np.full_like(s, heading)], axis=1)


class LaneHeuristicGenerator:
    """Random lane placement with constant-speed lane following (see the module docstring)."""

    name = "lane"

    def __init__(self, horizon: Horizon = Horizon(), metres_per_vehicle: float = METRES_PER_VEHICLE,
                 speed_prior: SpeedPrior = SpeedPrior(), size_prior: SizePrior = SizePrior()) -> None:
        self.horizon = horizon
        self.metres_per_vehicle = metres_per_vehicle
        self.speed_prior = speed_prior
        self.size_prior = size_prior
        self._network: tuple[MapGeometry, _LaneNetwork] | None = None

    def generate(self, map: MapGeometry, *, ego: Agents | None = None, agent_tokens: list[AgentToken] | None = None,
                 density: Density = None, seed: int = 0, count: int = 1) -> list[Scene]:
        """``count`` scenes: agent tokens first, then ``density`` lane-placed vehicles (None: Poisson by lane length)."""
        density_by_type(density, (AgentType.VEHICLE,))  # refuses types it cannot make
        density = total_density(density)
        rng = np.random.default_rng(seed)
        if self._network is None or self._network[0] is not map:  # callers often reuse one map: keep its lanes
            self._network = (map, _LaneNetwork(map))
        lanes = self._network[1]
        return [self._one(map, lanes, ego, agent_tokens or [], density, rng, seed, k) for k in range(count)]

    def _one(self, map: MapGeometry, lanes: _LaneNetwork, ego: Agents | None, tokens: list[AgentToken],
             density: int | None, rng: np.random.Generator, seed: int, k: int) -> Scene:
        """One scene."""
        h = self.horizon
        # Boxes already taken, per step (M, T, 5) with validity (M, T): the ego, then every agent placed so far.
        ego_boxes = np.zeros((1, h.num_steps, 5))
        ego_valid = np.zeros((1, h.num_steps), bool)
        if ego is not None and len(ego) and ego.num_steps == h.num_steps:
            ego_boxes[0, :, :3] = ego.trajectory[0]
            ego_boxes[0, :, 3:] = (ego.length[0], ego.width[0])
            ego_valid[0] = ego.valid[0]
        else:  # only the ego's pose now is known
            e = ego.trajectory[0, 0] if ego is not None and len(ego) else (0.0, 0.0, 0.0)
            size = (ego.length[0], ego.width[0]) if ego is not None and len(ego) else DEFAULT_EGO_BOX
            ego_boxes[0, h.t0_index] = (*e, *size)
            ego_valid[0, h.t0_index] = True
        rows = [self._token_agent(t, lanes, rng) for t in tokens]
        taken = [ego_boxes] + [_row_boxes(r) for r in rows]
        taken_valid = [ego_valid] + [np.ones((1, h.num_steps), bool) for _ in rows]
        target = density if density is not None else int(rng.poisson(lanes.length_in_box_m / self.metres_per_vehicle))
        placed = 0
        while placed < target and len(lanes.candidates):
            row = self._lane_agent(lanes, rng, np.concatenate(taken), np.concatenate(taken_valid))
            if row is None:
                break  # the map is full: fewer vehicles than asked
            rows.append(row)
            taken.append(_row_boxes(row))
            taken_valid.append(np.ones((1, h.num_steps), bool))
            placed += 1
        agents = self._assemble(rows)
        meta = {"generator": self.name, "seed": int(seed), "index": int(k), "requested_density": density,
                "num_token_agents": len(tokens), "num_added": placed}
        return Scene(map=map, agents=agents, horizon=h, ego_index=-1, meta=meta)

    def _lane_agent(self, lanes: _LaneNetwork, rng: np.random.Generator, taken: np.ndarray,
                    taken_valid: np.ndarray) -> tuple | None:
        """A vehicle at a random lane point whose trajectory stays clear of the ``taken`` boxes (M, T, 5) wherever
        they are valid (M, T); None after many tries."""
        h = self.horizon
        for _ in range(PLACEMENT_TRIES):
            lane, j = lanes.candidates[rng.integers(len(lanes.candidates))]
            length, width = self.size_prior.sample(rng)
            s0 = (j + rng.uniform(-0.5, 0.5)) * lanes.step_m
            speed = self.speed_prior.sample(rng)
            poly, start = lanes.path(lane, rng, back_m=speed * h.past_s - s0 + 1.0,
                                     ahead_m=s0 + speed * h.future_s + 1.0)
            poses = _poses_along(poly, start + s0 + speed * h.times)
            if not np.all(np.abs(poses[h.t0_index, :2]) <= BOX_HALF_EXTENT_M):
                continue
            row = (np.array([*poses[h.t0_index], length, width]), poses, np.full(h.num_steps, speed), AgentType.VEHICLE)
            mine = _row_boxes(row)[0]
            # t = 0 first: most rejections happen there, and it is one step instead of T.
            steps = [h.t0_index] + [t for t in range(h.num_steps) if t != h.t0_index]
            if not any((boxes_overlap(mine[t][None], taken[:, t])[0] & taken_valid[:, t]).any() for t in steps):
                return row
        return None

    def _token_agent(self, token: AgentToken, lanes: _LaneNetwork, rng: np.random.Generator) -> tuple:
        """The agent a token describes: its pose, size and speeds, moving along its lane when it sits on one."""
        h = self.horizon
        t = h.times
        fut = max(h.future_s, 1e-9)
        v0, v1 = float(token.speed), float(token.future_speed)
        if token.turn == TurnClass.STOP:
            v1 = 0.0
        # Past at the current speed; future with speed changing linearly from v0 to v1.
        speed = np.where(t <= 0, v0, v0 + (v1 - v0) * t / fut)
        ds = np.where(t <= 0, v0 * t, v0 * t + (v1 - v0) * t**2 / (2 * fut))
        lane, s0 = self._snap(token, lanes)
        if lane is None:
            poses = _straight_poses(token.x, token.y, token.heading, ds)
        else:
            poly, start = lanes.path(lane, rng, back_m=v0 * h.past_s - s0 + 1.0, ahead_m=s0 + ds.max() + 1.0,
                                     turn=token.turn)
            poses = _poses_along(poly, start + s0 + ds)
            # The token pose is exact at t = 0; the lane only shapes the motion around it.
            offset = np.array([token.x, token.y]) - poses[h.t0_index, :2]
            poses[:, :2] += offset
            poses[:, 2] = wrap_angle(poses[:, 2] + wrap_angle(token.heading - poses[h.t0_index, 2]))
        poses[h.t0_index] = (token.x, token.y, token.heading)
        box = np.array([token.x, token.y, token.heading, token.length, token.width])
        return box, poses, speed, AgentType(token.agent_type)

    @staticmethod
    def _snap(token: AgentToken, lanes: _LaneNetwork) -> tuple[int | None, float]:
        """The lane a token sits on and points along, with its arc length there; (None, 0) if none."""
        best, best_d = (None, 0.0), TOKEN_LANE_MAX_DIST_M
        for i, (p, hd) in enumerate(zip(lanes.points, lanes.headings)):
            if len(p) < 2:
                continue
            d = np.hypot(p[:, 0] - token.x, p[:, 1] - token.y)
            ok = np.abs(wrap_angle(hd - token.heading)) <= TOKEN_LANE_MAX_HEADING_RAD
            if not ok.any():
                continue
            j = int(np.argmin(np.where(ok, d, np.inf)))
            if d[j] < best_d:
                best, best_d = (i, j * lanes.step_m), d[j]
        return best

    def _assemble(self, rows: list[tuple]) -> Agents:
        """Agents from (box, poses, speeds, type) rows."""
        t = self.horizon.num_steps
        if not rows:
            return Agents.empty(t)
        boxes = np.stack([r[0] for r in rows])
        poses = np.stack([r[1] for r in rows])
        speeds = np.stack([r[2] for r in rows])
        velocity = speeds[..., None] * np.stack([np.cos(poses[..., 2]), np.sin(poses[..., 2])], axis=-1)
        poses[..., 2] = wrap_angle(poses[..., 2])
        return Agents(types=np.array([int(r[3]) for r in rows]), length=boxes[:, 3], width=boxes[:, 4],
                      trajectory=poses, velocity=velocity, valid=np.ones((len(rows), t), bool))
