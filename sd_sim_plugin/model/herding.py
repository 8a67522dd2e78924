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
# draw_selection herding_groups: a stopped queue's or parked row's spacing (a car length and a gap) and neighbouring
# lanes fall within this, moving traffic's headways do not (docs/model.md, *Herding whole groups*).
GROUP_LINK_M = 8.0


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


def vehicle_groups(draw_sizes: Sequence[int], xy: np.ndarray, is_vehicle: np.ndarray,
                   link_m: float) -> list[np.ndarray]:
    """Pool indices of each draw's vehicle groups: vehicles of one draw whose centres ``xy`` (pool order) are within
    ``link_m`` of each other, chained (connected components); every vehicle alone with ``link_m`` 0."""
    groups: list[np.ndarray] = []
    start = 0
    for size in draw_sizes:
        idx = np.arange(start, start + size)[is_vehicle[start:start + size]]
        start += size
        near = np.linalg.norm(xy[idx, None] - xy[None, idx], axis=-1) <= link_m
        label = np.arange(len(idx))
        for _ in range(len(idx)):  # label propagation: each vehicle takes its group's smallest index
            new = np.where(near, label[None, :], len(idx)).min(axis=1)
            if np.array_equal(new, label):
                break
            label = new
        groups += [idx[label == g] for g in np.unique(label)]
    return groups


def herded_scene(draws: Sequence[Agents], horizon: Horizon, quota: np.ndarray, overlap_scale: float,
                 along_trajectories: bool, group_m: float = 0.0) -> Agents:
    """Agents chosen from all ``draws`` by kernel herding, at most ``quota[t]`` of each agent type, none overlapping
    another (boxes scaled by ``overlap_scale`` at t = 0; at their own size at every step with
    ``along_trajectories``), in the order chosen. With ``group_m`` > 0, vehicles are added a whole group at a time
    (:func:`vehicle_groups`), single vehicles only once no free group fits the quota left."""
    pool = Agents.concatenate(list(draws))
    if len(pool) == 0:
        return pool
    t0 = horizon.t0_index
    types = np.asarray(pool.types, np.int64)
    blocked = overlap_matrix(pool.trajectory[:, t0], pool.length, pool.width, overlap_scale,
                             np.delete(pool.trajectory, t0, axis=1) if along_trajectories else None)
    groups = vehicle_groups([len(d) for d in draws], pool.trajectory[:, t0, :2], types == int(AgentType.VEHICLE),
                            group_m) if group_m > 0 else []
    taken = np.zeros(len(pool), bool)
    order: list[int] = []
    quota = np.asarray(quota, np.int64).reshape(NUM_TYPES)
    for agent_type in TYPE_ORDER:
        idx = np.flatnonzero(types == int(agent_type))
        left = int(quota[int(agent_type)])
        if left <= 0 or len(idx) == 0:
            continue
        local = np.full(len(pool), -1)
        local[idx] = np.arange(len(idx))
        units = [local[g] for g in groups] if agent_type == AgentType.VEHICLE else []  # a lone vehicle is a group
        kernels = _kernels(pool.select(idx), t0)
        target = [k.mean(axis=1) for k in kernels]  # each candidate's mean kernel to the pool: the pool's embedding
        to_chosen = [np.zeros(len(idx)) for _ in kernels]  # per feature: sum of kernels to the chosen agents ...
        within = [0.0] * len(kernels)  # ... sum of kernels among the chosen ...
        toward = [0.0] * len(kernels)  # ... and of their targets
        m = 0
        while left > 0:
            free = ~taken[idx]
            fits = [u for u in units if len(u) <= left and free[u].all()]
            if fits:
                # squared MMD of (chosen + group) to the pool, less the pool's constant self-term, over features
                cost = [sum((w + 2 * c[u].sum() + k[np.ix_(u, u)].sum()) / (m + len(u)) ** 2
                            - 2 * (tw + t[u].sum()) / (m + len(u))
                            for k, c, t, w, tw in zip(kernels, to_chosen, target, within, toward, strict=True))
                        for u in fits]
                best = fits[int(np.argmin(cost))]
            elif free.any():  # the same for every free single agent at once
                cost = sum((w + 2 * c + np.diag(k)) / (m + 1) ** 2 - 2 * (tw + t) / (m + 1)
                           for k, c, t, w, tw in zip(kernels, to_chosen, target, within, toward, strict=True))
                best = np.array([int(np.argmin(np.where(free, cost, np.inf)))])
            else:
                break
            within = [w + 2 * c[best].sum() + k[np.ix_(best, best)].sum()
                      for w, c, k in zip(within, to_chosen, kernels, strict=True)]
            toward = [w + t[best].sum() for w, t in zip(toward, target, strict=True)]
            to_chosen = [c + k[:, best].sum(axis=1) for c, k in zip(to_chosen, kernels, strict=True)]
            m += len(best)
            left -= len(best)
            order += idx[best].tolist()
            taken |= blocked[idx[best]].any(axis=0)
            taken[idx[best]] = True
    return pool.select(np.array(order, np.int64))
