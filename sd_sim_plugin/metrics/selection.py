"""Which agents the realism metrics look at: vehicles valid at t = 0 inside the 80 m x 80 m box around the ego."""

from __future__ import annotations

import numpy as np

from sd_sim_plugin.scene.types import Agents, AgentType, Scene

BOX_HALF_EXTENT_M = 40.0


def in_box(xy: np.ndarray, half_extent_m: float = BOX_HALF_EXTENT_M) -> np.ndarray:
    """Whether points (..., 2) lie inside the square box centred on the ego."""
    return np.all(np.abs(np.asarray(xy)[..., :2]) <= half_extent_m, axis=-1)


def scene_agents(scene: Scene, types: tuple[AgentType, ...], half_extent_m: float = BOX_HALF_EXTENT_M) -> Agents:
    """The scene's non-ego agents of ``types`` that are valid at t = 0 inside the box."""
    agents = scene.others
    t0 = scene.horizon.t0_index
    keep = (np.isin(agents.types, [int(t) for t in types]) & agents.valid[:, t0]
            & in_box(agents.trajectory[:, t0, :2], half_extent_m))
    return agents.select(keep)


def scene_vehicles(scene: Scene, half_extent_m: float = BOX_HALF_EXTENT_M) -> Agents:
    """The scene's non-ego vehicles that are valid at t = 0 inside the box."""
    return scene_agents(scene, (AgentType.VEHICLE,), half_extent_m)


def ego_box(scene: Scene) -> np.ndarray:
    """The ego's box (x, y, heading, length, width) at t = 0; a 4.5 m x 1.9 m car at the origin when absent."""
    if scene.ego_index < 0:
        return np.array([0.0, 0.0, 0.0, 4.5, 1.9])
    t0 = scene.horizon.t0_index
    a = scene.agents
    return np.array([*a.trajectory[scene.ego_index, t0], a.length[scene.ego_index], a.width[scene.ego_index]],
                    dtype=np.float64)


def boxes_at(agents: Agents, t: int) -> np.ndarray:
    """Boxes (N, 5) of the agents at step ``t``."""
    return np.concatenate([agents.trajectory[:, t], agents.length[:, None], agents.width[:, None]], axis=1)

