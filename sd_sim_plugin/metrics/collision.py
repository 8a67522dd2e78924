"""Collisions: oriented-box overlaps between agents at t = 0 and along trajectories, and with the ego box."""

from __future__ import annotations

import numpy as np

from sd_sim_plugin.metrics.selection import boxes_at
from sd_sim_plugin.scene.geometry import boxes_overlap
from sd_sim_plugin.scene.types import Agents, Horizon


def collision_flags(vehicles: Agents, horizon: Horizon, ego_box: np.ndarray | None = None) -> dict[str, np.ndarray]:
    """Per agent (n,) bools: overlaps another agent at t = 0; at any step where both are valid; overlaps the ego box
    at t = 0. Boxes that only touch do not collide (see :func:`boxes_overlap`)."""
    n, t0 = len(vehicles), horizon.t0_index
    along = np.zeros(n, bool)
    at_t0 = np.zeros(n, bool)
    for t in range(vehicles.num_steps):
        hit = boxes_overlap(boxes_at(vehicles, t), boxes_at(vehicles, t))
        hit &= vehicles.valid[:, t, None] & vehicles.valid[None, :, t]
        np.fill_diagonal(hit, False)
        step_hit = hit.any(axis=1)
        along |= step_hit
        if t == t0:
            at_t0 = step_hit
    with_ego = (boxes_overlap(boxes_at(vehicles, t0), np.asarray(ego_box)[None])[:, 0]
                if ego_box is not None and n else np.zeros(n, bool))
    return {"t0": at_t0, "trajectory": along, "ego_t0": with_ego & vehicles.valid[:, t0]}
