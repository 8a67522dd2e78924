"""Token following: do the generated agents match the agent tokens they were asked for?"""

from __future__ import annotations

import numpy as np
from scipy.optimize import linear_sum_assignment

from sd_sim_plugin.scene.tokens import AgentToken, tokens_from_agents
from sd_sim_plugin.scene.types import Agents, Horizon, wrap_angle

MATCH_MAX_DISTANCE_M = 2.2
MATCH_MAX_ANGLE_RAD = 0.2


def match_tokens(tokens: list[AgentToken], agents: Agents, horizon: Horizon,
                 max_distance_m: float = MATCH_MAX_DISTANCE_M,
                 max_angle_rad: float = MATCH_MAX_ANGLE_RAD) -> list[tuple[int, int]]:
    """Hungarian matching of tokens to agents (at t = 0), gated: pairs (token index, agent index) within both gates.

    Cost of a pair: distance / max_distance + angle / max_angle; pairs outside a gate cannot be matched.
    """
    if not tokens or not len(agents):
        return []
    t0 = horizon.t0_index
    tok = np.array([[t.x, t.y, t.heading] for t in tokens], dtype=np.float64)
    pose = agents.trajectory[:, t0].astype(np.float64)
    dist = np.linalg.norm(tok[:, None, :2] - pose[None, :, :2], axis=-1)
    angle = np.abs(wrap_angle(tok[:, None, 2] - pose[None, :, 2]))
    ok = (dist <= max_distance_m) & (angle <= max_angle_rad) & agents.valid[None, :, t0]
    cost = np.where(ok, dist / max_distance_m + angle / max_angle_rad, 1e6)
    rows, cols = linear_sum_assignment(cost)
    return [(int(r), int(c)) for r, c in zip(rows, cols) if ok[r, c]]


def token_following(tokens: list[AgentToken], density: int | None, agents: Agents,
                    horizon: Horizon) -> dict[str, float | list[float]]:
    """For one generated scene: tokens matched, agents beyond the matched ones against the requested density, and
    the absolute speed errors (now and at the end of the horizon) of matched pairs."""
    pairs = match_tokens(tokens, agents, horizon)
    got = tokens_from_agents(agents, horizon)
    extra = len(agents) - len(pairs)
    return {
        "tokens": len(tokens),
        "matched": len(pairs),
        "extra_agents": extra,
        "density": density,
        "extra_minus_density": None if density is None else extra - density,
        "speed_error_now": [abs(tokens[i].speed - got[j].speed) for i, j in pairs],
        "speed_error_future": [abs(tokens[i].future_speed - got[j].future_speed) for i, j in pairs],
    }


def summarise_token_following(results: list[dict]) -> dict[str, float]:
    """Pooled over scenes: match rate, mean extra agents and mean |extra - density|, speed MAE now and future."""
    tokens = sum(r["tokens"] for r in results)
    matched = sum(r["matched"] for r in results)
    now = [e for r in results for e in r["speed_error_now"]]
    fut = [e for r in results for e in r["speed_error_future"]]
    gaps = [r["extra_minus_density"] for r in results if r["extra_minus_density"] is not None]
    nan = float("nan")
    return {
        "match_rate": matched / tokens if tokens else nan,
        "tokens": tokens,
        "extra_agents_mean": float(np.mean([r["extra_agents"] for r in results])) if results else nan,
        "requested_density_mean": float(np.mean([r["density"] for r in results if r["density"] is not None]))
        if gaps else nan,
        "extra_minus_density_mean": float(np.mean(gaps)) if gaps else nan,
        "extra_minus_density_mae": float(np.mean(np.abs(gaps))) if gaps else nan,
        "speed_mae_now": float(np.mean(now)) if now else nan,
        "speed_mae_future": float(np.mean(fut)) if fut else nan,
    }
