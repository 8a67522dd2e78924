"""Spec fidelity: was each key agent generated as described? Hungarian match of key-agent tokens to generated agents."""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
from scipy.optimize import linear_sum_assignment

from sd_sim_plugin.scene.tokens import AgentToken
from sd_sim_plugin.scene.types import Agents, Horizon, wrap_angle

POSITION_GATE_M = 2.2  # the paper's token-following gates
HEADING_GATE_RAD = 0.2


@dataclass
class Fidelity:
    """Per key agent: matched or not, and the matched agent's position / heading / speed errors."""

    matched: list[bool] = field(default_factory=list)
    position_error_m: list[float | None] = field(default_factory=list)
    heading_error_rad: list[float | None] = field(default_factory=list)
    speed_error_mps: list[float | None] = field(default_factory=list)

    @property
    def rate(self) -> float:
        """Fraction of key agents matched (1.0 when the spec has none)."""
        return float(np.mean(self.matched)) if self.matched else 1.0

    @property
    def all_matched(self) -> bool:
        """True when every key agent was generated as described."""
        return all(self.matched)


def spec_fidelity(tokens: list[AgentToken], agents: Agents, horizon: Horizon) -> Fidelity:
    """Match each key-agent token to a generated agent at t = 0 (same type, within 2.2 m and 0.2 rad)."""
    out = Fidelity()
    if not tokens:
        return out
    t0 = horizon.t0_index
    valid = agents.valid[:, t0] if len(agents) else np.zeros(0, bool)
    pos = agents.trajectory[:, t0, :2].astype(np.float64)
    head = agents.trajectory[:, t0, 2].astype(np.float64)
    speed = np.linalg.norm(agents.velocity[:, t0], axis=-1) if len(agents) else np.zeros(0)
    want_pos = np.array([[t.x, t.y] for t in tokens])
    want_head = np.array([t.heading for t in tokens])
    dist = np.linalg.norm(want_pos[:, None, :] - pos[None, :, :], axis=-1)
    dh = np.abs(wrap_angle(want_head[:, None] - head[None, :])) if len(agents) else np.zeros((len(tokens), 0))
    same_type = np.array([[int(t.agent_type) == int(a) for a in agents.types] for t in tokens]).reshape(dist.shape)
    ok = (dist <= POSITION_GATE_M) & (dh <= HEADING_GATE_RAD) & same_type & valid[None, :]
    cost = np.where(ok, dist / POSITION_GATE_M + dh / HEADING_GATE_RAD, 1e6)
    pairs = dict(zip(*linear_sum_assignment(cost))) if cost.size else {}
    for i, token in enumerate(tokens):
        j = pairs.get(i)
        hit = j is not None and bool(ok[i, j])
        out.matched.append(hit)
        out.position_error_m.append(float(dist[i, j]) if hit else None)
        out.heading_error_rad.append(float(dh[i, j]) if hit else None)
        out.speed_error_mps.append(float(abs(speed[j] - token.speed)) if hit else None)
    return out
