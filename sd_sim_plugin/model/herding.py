"""One scene composed from several draws by kernel herding: agents that cover the model's own pooled layout evenly.

The draws of one scene, pooled, are the model's marginal on that map; a single draw scatters around it. Herding
(Welling 2009; Chen, Welling and Smola 2010) picks agents from the pool one at a time, each the one that brings the
chosen set's kernel mean closest to the pool's, so the scene spreads over the pool's layout instead of committing to
one draw's. Features and kernel are those of the most-typical-draw selection (position, heading vector and velocity
at t = 0, Gaussian kernels whose width is the pool's mean squared distance); it never sees a log. Chosen agents never
overlap (the decoder's overlap rule), so the same car rendered by several draws is taken at most once.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from sd_sim_plugin.model.boxes import NUM_TYPES, overlap_matrix
from sd_sim_plugin.scene.types import Agents, AgentType, Horizon

# Vehicles first: they are what the realism measures count, and the scarcest room on the road goes to them.
TYPE_ORDER = (AgentType.VEHICLE, AgentType.CYCLIST, AgentType.PEDESTRIAN)


def _kernels(agents: Agents, t0: int) -> list[np.ndarray]:
    """Per feature (position, heading vector, velocity at ``t0``): the (N, N) Gaussian kernel over ``agents``."""
    pose = agents.trajectory[:, t0].astype(np.float64)
    feats = (pose[:, :2], np.stack([np.cos(pose[:, 2]), np.sin(pose[:, 2])], 1),
             agents.velocity[:, t0].astype(np.float64))
    out = []
    for x in feats:
        d2 = np.sum((x[:, None] - x[None]) ** 2, axis=-1)
        h = d2.mean()
        out.append(np.exp(-d2 / h) if h > 0 else np.ones_like(d2))
    return out


def herded_scene(draws: Sequence[Agents], horizon: Horizon, quota: np.ndarray, overlap_scale: float,
                 along_trajectories: bool) -> Agents:
    """Agents chosen from all ``draws`` by kernel herding, at most ``quota[t]`` of each agent type, none overlapping
    another (boxes scaled by ``overlap_scale`` at t = 0; at their own size at every step with
    ``along_trajectories``), in the order chosen."""
    pool = Agents.concatenate(list(draws))
    if len(pool) == 0:
        return pool
    t0 = horizon.t0_index
    types = np.asarray(pool.types, np.int64)
    blocked = overlap_matrix(pool.trajectory[:, t0], pool.length, pool.width, overlap_scale,
                             np.delete(pool.trajectory, t0, axis=1) if along_trajectories else None)
    taken = np.zeros(len(pool), bool)
    order: list[int] = []
    quota = np.asarray(quota, np.int64).reshape(NUM_TYPES)
    for agent_type in TYPE_ORDER:
        idx = np.flatnonzero(types == int(agent_type))
        if quota[int(agent_type)] <= 0 or len(idx) == 0:
            continue
        kernels = _kernels(pool.select(idx), t0)
        target = [k.mean(axis=1) for k in kernels]  # each candidate's mean kernel to the pool: the pool's embedding
        to_chosen = [np.zeros(len(idx)) for _ in kernels]  # sum of kernels to the chosen agents
        within = [0.0] * len(kernels)  # per feature: sum of kernels among the chosen ...
        toward = [0.0] * len(kernels)  # ... and of their targets
        m = 0
        for _ in range(quota[int(agent_type)]):
            free = ~taken[idx]
            if not free.any():
                break
            # squared MMD of (chosen + candidate) to the pool, less the pool's constant self-term, summed over features
            cost = sum(((within_f + 2 * c + np.diag(k)) / (m + 1) ** 2 - 2 * (toward_f + t) / (m + 1))
                       for k, c, t, within_f, toward_f in zip(kernels, to_chosen, target, within, toward, strict=True))
            best = int(np.argmin(np.where(free, cost, np.inf)))
            within = [w + 2 * c[best] + k[best, best] for w, c, k in zip(within, to_chosen, kernels, strict=True)]
            toward = [w + t[best] for w, t in zip(toward, target, strict=True)]
            to_chosen = [c + k[:, best] for c, k in zip(to_chosen, kernels, strict=True)]
            m += 1
            order.append(int(idx[best]))
            taken |= blocked[idx[best]]
            taken[idx[best]] = True
    return pool.select(np.array(order, np.int64))
