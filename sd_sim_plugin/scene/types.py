"""The scene model: one traffic snapshot around an ego vehicle, in the ego frame.

Conventions (used everywhere in the package):
- ego frame: origin at the ego's centre at t = 0, x forward, y left, metres, radians;
- headings are wrapped to (-pi, pi];
- agent trajectories hold poses (x, y, heading) at the times of a :class:`Horizon`, with a validity mask;
- agent 0 is the ego whenever ``Scene.ego_index`` is 0 (sources put it first; generators may omit it: -1).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import IntEnum

import numpy as np


def wrap_angle(angle: np.ndarray | float) -> np.ndarray | float:
    """Wrap angles to (-pi, pi]."""
    wrapped = np.mod(np.asarray(angle) + np.pi, 2.0 * np.pi) - np.pi
    wrapped = np.where(wrapped == -np.pi, np.pi, wrapped)
    return float(wrapped) if np.ndim(wrapped) == 0 else wrapped


class AgentType(IntEnum):
    """Agent classes the package knows (the paper stops at vehicles; we don't)."""

    VEHICLE = 0
    PEDESTRIAN = 1
    CYCLIST = 2


@dataclass(frozen=True)
class Horizon:
    """Time grid of a trajectory: ``past_s`` before t = 0 and ``future_s`` after, every ``step_s``."""

    past_s: float = 2.0
    future_s: float = 2.0
    step_s: float = 1.0

    def __post_init__(self) -> None:
        if self.step_s <= 0 or self.past_s < 0 or self.future_s < 0:
            raise ValueError(f"invalid horizon {self}: step must be > 0 and horizons >= 0")
        for name in ("past_s", "future_s"):
            n = getattr(self, name) / self.step_s
            if abs(n - round(n)) > 1e-6:
                raise ValueError(f"horizon {name}={getattr(self, name)} is not a multiple of step_s={self.step_s}")

    @property
    def num_past(self) -> int:
        """Number of poses strictly before t = 0."""
        return int(round(self.past_s / self.step_s))

    @property
    def num_future(self) -> int:
        """Number of poses strictly after t = 0."""
        return int(round(self.future_s / self.step_s))

    @property
    def num_steps(self) -> int:
        """Total poses, t = 0 included."""
        return self.num_past + 1 + self.num_future

    @property
    def t0_index(self) -> int:
        """Index of t = 0 in a trajectory."""
        return self.num_past

    @property
    def times(self) -> np.ndarray:
        """Time of each pose in seconds, relative to t = 0."""
        return (np.arange(self.num_steps) - self.num_past) * self.step_s

    def to_dict(self) -> dict:
        """JSON-friendly form."""
        return {"past_s": self.past_s, "future_s": self.future_s, "step_s": self.step_s}


@dataclass
class Agents:
    """A set of N agents with trajectories over a horizon of T poses.

    Arrays: ``types`` (N,) int, ``length``/``width`` (N,) metres, ``trajectory`` (N, T, 3) poses
    (x, y, heading), ``velocity`` (N, T, 2) m/s in the same frame, ``valid`` (N, T) bool.
    """

    types: np.ndarray
    length: np.ndarray
    width: np.ndarray
    trajectory: np.ndarray
    velocity: np.ndarray
    valid: np.ndarray
    ids: list[str] = field(default_factory=list)

    def __post_init__(self) -> None:
        self.types = np.asarray(self.types, dtype=np.int64).reshape(-1)
        n = len(self.types)
        self.length = np.asarray(self.length, dtype=np.float32).reshape(n)
        self.width = np.asarray(self.width, dtype=np.float32).reshape(n)
        traj = np.asarray(self.trajectory, dtype=np.float32)
        # reshape(0, -1, 3) is ambiguous for an empty set: keep its horizon from the given shape.
        self.trajectory = traj.reshape(n, traj.shape[1] if traj.size == 0 and traj.ndim == 3 else -1, 3)
        t = self.trajectory.shape[1]
        self.velocity = np.asarray(self.velocity, dtype=np.float32).reshape(n, t, 2)
        self.valid = np.asarray(self.valid, dtype=bool).reshape(n, t)
        if not self.ids:
            self.ids = [str(i) for i in range(n)]
        if len(self.ids) != n:
            raise ValueError(f"{len(self.ids)} agent ids for {n} agents")

    @classmethod
    def empty(cls, num_steps: int) -> Agents:
        """No agents, on a horizon of ``num_steps`` poses."""
        return cls(
            types=np.zeros(0, np.int64),
            length=np.zeros(0),
            width=np.zeros(0),
            trajectory=np.zeros((0, num_steps, 3)),
            velocity=np.zeros((0, num_steps, 2)),
            valid=np.zeros((0, num_steps), bool),
        )

    def __len__(self) -> int:
        return len(self.types)

    @property
    def num_steps(self) -> int:
        """Poses per trajectory."""
        return self.trajectory.shape[1]

    def select(self, mask_or_index: np.ndarray) -> Agents:
        """A subset of agents, by boolean mask or index array."""
        idx = np.asarray(mask_or_index)
        if idx.dtype == bool:
            idx = np.flatnonzero(idx)
        return Agents(
            types=self.types[idx],
            length=self.length[idx],
            width=self.width[idx],
            trajectory=self.trajectory[idx],
            velocity=self.velocity[idx],
            valid=self.valid[idx],
            ids=[self.ids[i] for i in idx],
        )

    @staticmethod
    def concatenate(parts: list[Agents]) -> Agents:
        """Agents of several sets, in order."""
        return Agents(
            types=np.concatenate([p.types for p in parts]),
            length=np.concatenate([p.length for p in parts]),
            width=np.concatenate([p.width for p in parts]),
            trajectory=np.concatenate([p.trajectory for p in parts]),
            velocity=np.concatenate([p.velocity for p in parts]),
            valid=np.concatenate([p.valid for p in parts]),
            ids=[i for p in parts for i in p.ids],
        )


@dataclass
class MapGeometry:
    """Vector map in one frame (world or ego).

    Lanes: centreline polylines (K, 2), their ids, widths, connectivity (entry/exit/left/right ids) and
    polygons (may be empty where the source has none: rasterisers then widen the centreline by ``width``).
    Other features are lists of polylines (road edges, lane lines) or polygons (crosswalks).
    """

    lane_ids: list[str] = field(default_factory=list)
    lane_centrelines: list[np.ndarray] = field(default_factory=list)
    lane_widths: np.ndarray = field(default_factory=lambda: np.zeros(0, np.float32))
    lane_polygons: list[np.ndarray] = field(default_factory=list)
    lane_entries: dict[str, list[str]] = field(default_factory=dict)
    lane_exits: dict[str, list[str]] = field(default_factory=dict)
    lane_left: dict[str, list[str]] = field(default_factory=dict)
    lane_right: dict[str, list[str]] = field(default_factory=dict)
    road_edges: list[np.ndarray] = field(default_factory=list)
    lane_lines: list[np.ndarray] = field(default_factory=list)
    crosswalks: list[np.ndarray] = field(default_factory=list)

    def __post_init__(self) -> None:
        self.lane_widths = np.asarray(self.lane_widths, dtype=np.float32).reshape(-1)
        if len(self.lane_ids) != len(self.lane_centrelines) or len(self.lane_widths) != len(self.lane_ids):
            raise ValueError("lane_ids, lane_centrelines and lane_widths must have one entry per lane")
        if len(self.lane_polygons) not in (0, len(self.lane_ids)):
            raise ValueError("lane_polygons must be empty or have one entry per lane")

    @property
    def num_lanes(self) -> int:
        """Number of lanes."""
        return len(self.lane_ids)

    def lane_headings(self, index: int) -> np.ndarray:
        """Heading of each segment of lane ``index`` (K - 1,)."""
        d = np.diff(self.lane_centrelines[index], axis=0)
        return np.arctan2(d[:, 1], d[:, 0])


@dataclass
class Scene:
    """A traffic snapshot in the ego frame: map, agents (ego first when present), horizon, metadata."""

    map: MapGeometry
    agents: Agents
    horizon: Horizon = field(default_factory=Horizon)
    ego_index: int = 0
    meta: dict = field(default_factory=dict)

    def __post_init__(self) -> None:
        if self.agents.num_steps != self.horizon.num_steps:
            raise ValueError(
                f"agents have {self.agents.num_steps} poses but the horizon needs {self.horizon.num_steps}"
            )
        if not -1 <= self.ego_index < len(self.agents):
            raise ValueError(f"ego_index {self.ego_index} out of range for {len(self.agents)} agents")

    @property
    def others(self) -> Agents:
        """All agents except the ego."""
        if self.ego_index < 0:
            return self.agents
        keep = np.ones(len(self.agents), bool)
        keep[self.ego_index] = False
        return self.agents.select(keep)
