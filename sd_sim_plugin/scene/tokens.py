"""Agent tokens in human units: what a user (or a data scene) says about one agent.

The model turns these into feature vectors (see ``sd_sim_plugin.model``); generators, specs and metrics only
see this type, so they never depend on the model.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import asdict, dataclass
from enum import IntEnum

import numpy as np

from sd_sim_plugin.errors import SdSimError
from sd_sim_plugin.scene.types import Agents, AgentType, Horizon, wrap_angle

# The global scene token as a caller gives it: agents to add beyond the agent tokens, in all or per agent type.
Density = int | Mapping[AgentType, int] | None


class TurnClass(IntEnum):
    """Coarse manoeuvre over the future horizon, from the heading change."""

    STRAIGHT = 0
    LEFT = 1
    RIGHT = 2
    STOP = 3


TURN_THRESHOLD_RAD = np.deg2rad(15.0)
STOP_SPEED_MPS = 0.5


@dataclass
class AgentToken:
    """One agent described in the ego frame: pose, size, speed now and at the end of the horizon, manoeuvre."""

    x: float
    y: float
    heading: float
    length: float = 4.5
    width: float = 1.9
    speed: float = 0.0
    future_speed: float = 0.0
    turn: TurnClass = TurnClass.STRAIGHT
    agent_type: AgentType = AgentType.VEHICLE

    def to_dict(self) -> dict:
        """JSON-friendly form."""
        d = asdict(self)
        d["turn"] = TurnClass(self.turn).name.lower()
        d["agent_type"] = AgentType(self.agent_type).name.lower()
        return d

    @classmethod
    def from_dict(cls, d: dict) -> AgentToken:
        """Inverse of :meth:`to_dict`."""
        d = dict(d)
        d["turn"] = TurnClass[str(d.get("turn", "straight")).upper()]
        d["agent_type"] = AgentType[str(d.get("agent_type", "vehicle")).upper()]
        return cls(**d)


def turn_class(trajectory: np.ndarray, valid: np.ndarray, speeds: np.ndarray, horizon: Horizon) -> TurnClass:
    """Manoeuvre of one agent from its poses (T, 3) from t = 0 on: stop, left, right or straight."""
    t0 = horizon.t0_index
    future = np.flatnonzero(valid[t0:]) + t0
    if len(future) == 0 or speeds[future].max(initial=0.0) < STOP_SPEED_MPS:
        return TurnClass.STOP
    dh = wrap_angle(trajectory[future[-1], 2] - trajectory[t0, 2])
    if dh > TURN_THRESHOLD_RAD:
        return TurnClass.LEFT
    if dh < -TURN_THRESHOLD_RAD:
        return TurnClass.RIGHT
    return TurnClass.STRAIGHT


def tokens_from_agents(agents: Agents, horizon: Horizon) -> list[AgentToken]:
    """Describe each agent of a scene by its token (used for training and for token-following metrics)."""
    t0 = horizon.t0_index
    speeds = np.linalg.norm(agents.velocity, axis=-1)
    tokens = []
    for i in range(len(agents)):
        valid_future = np.flatnonzero(agents.valid[i, t0:]) + t0
        last = valid_future[-1] if len(valid_future) else t0
        tokens.append(AgentToken(
            x=float(agents.trajectory[i, t0, 0]), y=float(agents.trajectory[i, t0, 1]),
            heading=float(agents.trajectory[i, t0, 2]), length=float(agents.length[i]), width=float(agents.width[i]),
            speed=float(speeds[i, t0]), future_speed=float(speeds[i, last]),
            turn=turn_class(agents.trajectory[i], agents.valid[i], speeds[i], horizon),
            agent_type=AgentType(int(agents.types[i])),
        ))
    return tokens


def density_by_type(density: Density, types: tuple[AgentType, ...] | None = None) -> dict[AgentType, int] | None:
    """``density`` as {agent type: count} (None for a plain number or None); refuses negative counts, and with
    ``types`` (what the generator makes) a positive count of any other type."""
    if density is None or not isinstance(density, Mapping):
        return None
    out: dict[AgentType, int] = {}
    for key, value in density.items():
        try:
            agent_type = key if isinstance(key, AgentType) else AgentType[str(key).upper()]
        except KeyError:
            names = ", ".join(t.name.lower() for t in AgentType)
            raise SdSimError(f"density: unknown agent type {key!r} (expected {names})") from None
        if isinstance(value, bool) or not isinstance(value, int) or value < 0:
            raise SdSimError(f"density: {agent_type.name.lower()} must be a whole number of agents >= 0, "
                             f"got {value!r}")
        out[agent_type] = out.get(agent_type, 0) + value
    if types is not None:
        extra = [t.name.lower() for t, n in out.items() if n and t not in types]
        if extra:
            makes = ", ".join(t.name.lower() for t in types)
            raise SdSimError(f"density asks for {', '.join(extra)}, but this generator makes {makes} only")
    return out


def total_density(density: Density) -> int | None:
    """How many agents ``density`` asks for in all (None: the generator chooses)."""
    per_type = density_by_type(density)
    if per_type is not None:
        return sum(per_type.values())
    return None if density is None else max(int(density), 0)


def parse_density(text: str) -> Density:
    """A density from the command line: ``N`` (agents of any types) or ``TYPE=N,...`` (``vehicle=10,pedestrian=2``)."""
    text = text.strip()
    if "=" not in text:
        try:
            value = int(text)
        except ValueError:
            raise SdSimError(f"density {text!r}: expected a whole number or TYPE=N pairs such as vehicle=10,"
                             "pedestrian=2") from None
        if value < 0:
            raise SdSimError(f"density must be >= 0 (got {value})")
        return value
    pairs: dict[str, int] = {}
    for item in text.split(","):
        name, _, number = item.partition("=")
        try:
            pairs[name.strip()] = int(number)
        except ValueError:
            raise SdSimError(f"density {text!r}: {item.strip()!r} is not TYPE=N with a whole number N") from None
    return density_by_type(pairs)


def density_json(density: Density) -> int | dict[str, int] | None:
    """``density`` as JSON can hold it: a number, {type name: number} or None."""
    per_type = density_by_type(density)
    return density if per_type is None else {t.name.lower(): n for t, n in per_type.items()}
