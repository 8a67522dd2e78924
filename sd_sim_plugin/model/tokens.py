"""Agent tokens and the global scene token as model features, and token dropout for training.

Layout of an agent-token feature vector (all in the ego frame, scaled to roughly unit range):
x, y scaled by the raster half-extent, Fourier features of the position (so the model can place an agent to
within ~1 m), heading cos/sin, length, width, speed now and at the end of the horizon, turn class one-hot,
agent type one-hot.

The global scene token is the number of agents to add beyond the agent tokens: one-hot over 0..MAX_COUNT
(MAX_COUNT means "that many or more") plus one "unset" bucket, so the model picks a count that fits the map, and
log(1 + count). Its next feature says whether the scene is centred on the ego: most training windows are centred on
other vehicles, whose neighbours drive closer (median nearest agent 7.1 m against 12.9 m around the ego in
``data/pg_train``), while the simulator always asks for scenes around the ego. A layout of ``DOMAIN_GLOBAL_DIM``
features adds one more, the domain: whether the window comes from real logs rather than MetaDrive's PG traffic.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from sd_sim_plugin.scene.tokens import AgentToken, TurnClass
from sd_sim_plugin.scene.types import AgentType

POSITION_FREQS = (1.0, 2.0, 4.0, 8.0)  # cycles per half-extent
NUM_TURNS = len(TurnClass)
NUM_TYPES = len(AgentType)
POSITION_DIM = 2 + 4 * len(POSITION_FREQS)  # x, y and sin / cos per frequency
AGENT_TOKEN_DIM = POSITION_DIM + 2 + 2 + 2 + NUM_TURNS + NUM_TYPES
MAX_COUNT = 40
GLOBAL_TOKEN_DIM = MAX_COUNT + 2 + 1 + 1  # one-hot 0..MAX_COUNT, unset bucket, log-count, centred-on-ego flag
DOMAIN_GLOBAL_DIM = GLOBAL_TOKEN_DIM + 1  # ... and the real-data flag (``sd-sim train --domain-flag``)
UNSET = -1


@dataclass(frozen=True)
class TokenLayout:
    """What the feature vectors mean; stored in checkpoints so a mismatch is caught at load time."""

    half_extent_m: float = 40.0
    agent_dim: int = AGENT_TOKEN_DIM
    global_dim: int = GLOBAL_TOKEN_DIM
    max_count: int = MAX_COUNT
    max_tokens: int = 64

    def to_dict(self) -> dict:
        """JSON-friendly form."""
        return {"half_extent_m": self.half_extent_m, "agent_dim": self.agent_dim, "global_dim": self.global_dim,
                "max_count": self.max_count, "max_tokens": self.max_tokens}


def position_features(xy: np.ndarray, half_extent: float) -> np.ndarray:
    """Ego-frame points (..., 2) in metres -> (..., POSITION_DIM): scaled x, y and their Fourier features."""
    pos = np.asarray(xy, np.float64) / half_extent
    fourier = [f(np.pi * k * pos) for k in POSITION_FREQS for f in (np.sin, np.cos)]
    return np.concatenate([pos, *fourier], axis=-1).astype(np.float32)


def agent_token_features(tokens: list[AgentToken], layout: TokenLayout) -> np.ndarray:
    """Agent tokens (human units) -> (N, AGENT_TOKEN_DIM) float32 features."""
    out = np.zeros((len(tokens), AGENT_TOKEN_DIM), np.float32)
    for i, t in enumerate(tokens):
        out[i] = _one_token(t, layout.half_extent_m)
    return out


def _one_token(t: AgentToken, half_extent: float) -> np.ndarray:
    turn = np.zeros(NUM_TURNS)
    turn[int(t.turn)] = 1.0
    kind = np.zeros(NUM_TYPES)
    kind[int(t.agent_type)] = 1.0
    return np.concatenate([
        position_features(np.array([t.x, t.y]), half_extent), [np.cos(t.heading), np.sin(t.heading)],
        [t.length / 5.0, t.width / 2.0],
        [t.speed / 10.0, t.future_speed / 10.0], turn, kind,
    ]).astype(np.float32)


def global_token_features(count: np.ndarray | int, layout: TokenLayout, centre_is_ego: np.ndarray | bool = True,
                          real: np.ndarray | bool = False) -> np.ndarray:
    """Counts of agents to add (UNSET = -1 for "model decides"), whether each scene is centred on the ego and whether
    it is real -> (B, layout.global_dim) features (layouts from before a flag have no such feature)."""
    count = np.atleast_1d(np.asarray(count, np.int64))
    out = np.zeros((len(count), layout.global_dim), np.float32)
    unset = count < 0
    out[np.flatnonzero(unset), layout.max_count + 1] = 1.0
    idx = np.flatnonzero(~unset)
    out[idx, np.minimum(count[idx], layout.max_count)] = 1.0
    out[idx, layout.max_count + 2] = np.log1p(count[idx]) / np.log1p(layout.max_count)
    if layout.global_dim > layout.max_count + 3:
        out[:, layout.max_count + 3] = np.broadcast_to(np.asarray(centre_is_ego, np.float32), len(count))
    if has_domain_flag(layout):
        out[:, layout.max_count + 4] = np.broadcast_to(np.asarray(real, np.float32), len(count))
    return out


def has_domain_flag(layout: TokenLayout) -> bool:
    """Whether the layout's global token carries the real-data flag."""
    return layout.global_dim > layout.max_count + 4


def drop_tokens(num_agents: int, rng: np.random.Generator, *, keep_all_prob: float = 0.4,
                beta: tuple[float, float] = (1.0, 1.0), unset_prob: float = 0.15) -> tuple[np.ndarray, int]:
    """Token dropout of the paper: a keep-mask over a scene's agents and the global token (dropped count or UNSET).

    40% of samples keep all tokens; the rest drop each with a Beta-drawn p_mask. The global token counts the
    dropped agents; with ``unset_prob`` it is left unset so the model learns to pick a count from the map.
    """
    if rng.random() < keep_all_prob:
        keep = np.ones(num_agents, bool)
    else:
        p_mask = rng.beta(*beta)
        keep = rng.random(num_agents) >= p_mask
    dropped = int(num_agents - keep.sum())
    return keep, (UNSET if rng.random() < unset_prob else dropped)
