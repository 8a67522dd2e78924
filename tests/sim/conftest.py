"""Simulator test helpers: a generator that places given agents, and env fixtures that always close MetaDrive."""

from __future__ import annotations

from collections.abc import Iterator

import numpy as np
import pytest

from sd_sim_plugin.scene.tokens import AgentToken
from sd_sim_plugin.scene.types import Agents, AgentType, Horizon, MapGeometry, Scene

HORIZON = Horizon()


def agent_rows(rows: list[dict], horizon: Horizon = HORIZON) -> Agents:
    """Agents in the ego frame from rows of x, y, heading, speed (m/s), optional yaw_rate (rad/s), accel (m/s^2),
    length, width, type; poses integrated with a unicycle model on the horizon's times."""
    if not rows:
        return Agents.empty(horizon.num_steps)
    t = horizon.times
    types, lengths, widths, trajs, vels = [], [], [], [], []
    for r in rows:
        speed = np.maximum(r.get("speed", 0.0) + r.get("accel", 0.0) * t, 0.0)
        heading = r.get("heading", 0.0) + r.get("yaw_rate", 0.0) * t
        # Integrate from t = 0 in both directions on a fine grid, then sample at the horizon's times.
        fine = np.linspace(t[0], t[-1], 401)
        v_f = np.maximum(r.get("speed", 0.0) + r.get("accel", 0.0) * fine, 0.0)
        h_f = r.get("heading", 0.0) + r.get("yaw_rate", 0.0) * fine
        dx, dy = v_f * np.cos(h_f), v_f * np.sin(h_f)
        dt = np.diff(fine)
        x_f = np.concatenate([[0.0], np.cumsum((dx[1:] + dx[:-1]) / 2 * dt)])
        y_f = np.concatenate([[0.0], np.cumsum((dy[1:] + dy[:-1]) / 2 * dt)])
        x0, y0 = np.interp(0.0, fine, x_f), np.interp(0.0, fine, y_f)
        x = r["x"] + np.interp(t, fine, x_f) - x0
        y = r["y"] + np.interp(t, fine, y_f) - y0
        trajs.append(np.stack([x, y, heading], axis=1))
        vels.append(np.stack([speed * np.cos(heading), speed * np.sin(heading)], axis=1))
        types.append(int(r.get("type", AgentType.VEHICLE)))
        lengths.append(r.get("length", 4.5))
        widths.append(r.get("width", 1.9))
    return Agents(types=types, length=lengths, width=widths, trajectory=np.array(trajs), velocity=np.array(vels),
                  valid=np.ones((len(rows), horizon.num_steps), bool))


class PlacementGenerator:
    """A deterministic Generator: returns the given agents (ego frame) on whatever map it is handed.

    Agent tokens become extra straight-driving agents; ``density`` and ``seed`` do not change the scene.
    """

    name = "placement"

    def __init__(self, agents: Agents, horizon: Horizon = HORIZON) -> None:
        self.agents = agents
        self.horizon = horizon
        self.calls: list[dict] = []

    def generate(self, map: MapGeometry, *, ego: Agents | None = None, agent_tokens: list[AgentToken] | None = None,
                 density: int | None = None, seed: int = 0, count: int = 1) -> list[Scene]:
        """The placed agents, plus one straight agent per token."""
        self.calls.append({"map": map, "ego": ego, "agent_tokens": agent_tokens, "density": density, "seed": seed})
        agents = self.agents
        if agent_tokens:
            extra = agent_rows([{"x": k.x, "y": k.y, "heading": k.heading, "speed": k.speed, "length": k.length,
                                 "width": k.width, "type": int(k.agent_type)} for k in agent_tokens], self.horizon)
            agents = Agents.concatenate([agents, extra])
        return [Scene(map=map, agents=agents, horizon=self.horizon, ego_index=-1,
                      meta={"generator": self.name, "seed": seed}) for _ in range(count)]


@pytest.fixture
def make_env() -> Iterator:
    """Factory for sim envs; closes the one it made (MetaDrive allows one engine per process)."""
    made = []

    def factory(cls, **kwargs):
        kwargs.setdefault("num_scenarios", 1)
        env = cls(**kwargs)
        made.append(env)
        return env

    yield factory
    for env in made:
        env.close()


@pytest.fixture
def placement() -> type[PlacementGenerator]:
    """The placing generator class (tests build it with their agents)."""
    return PlacementGenerator


@pytest.fixture(name="agent_rows")
def agent_rows_fixture():
    """The row -> Agents helper (see :func:`agent_rows`)."""
    return agent_rows
