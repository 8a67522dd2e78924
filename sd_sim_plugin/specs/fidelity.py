"""Spec fidelity: was each key agent generated as described? Token-following Hungarian matching (shared with the
metrics), plus the agent type."""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from sd_sim_plugin.metrics.token_following import match_tokens
from sd_sim_plugin.scene.tokens import AgentToken
from sd_sim_plugin.scene.types import Agents, Horizon, wrap_angle


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
    """Match key-agent tokens to agents at t = 0 (2.2 m and 0.2 rad gates, the paper's); a match needs the same type."""
    out = Fidelity()
    pairs = dict(match_tokens(tokens, agents, horizon))
    t0 = horizon.t0_index
    for i, token in enumerate(tokens):
        j = pairs.get(i)
        hit = j is not None and int(agents.types[j]) == int(token.agent_type)
        out.matched.append(hit)
        if not hit:
            out.position_error_m.append(None)
            out.heading_error_rad.append(None)
            out.speed_error_mps.append(None)
            continue
        pose = agents.trajectory[j, t0]
        out.position_error_m.append(float(np.hypot(pose[0] - token.x, pose[1] - token.y)))
        out.heading_error_rad.append(float(abs(wrap_angle(pose[2] - token.heading))))
        out.speed_error_mps.append(float(abs(np.linalg.norm(agents.velocity[j, t0]) - token.speed)))
    return out
