"""Hand-made scenes for the raster tests."""

from __future__ import annotations

import numpy as np
import pytest

from sd_sim_plugin.scene.types import Agents, AgentType, Horizon, MapGeometry, Scene


def make_agents(poses: list[tuple[float, float, float]], *, length: float = 4.5, width: float = 2.0,
                types: list[int] | None = None, speed: float = 0.0, horizon: Horizon = Horizon()) -> Agents:
    """Agents at t = 0 poses, driving straight along their heading at ``speed``, valid at every step."""
    n, steps = len(poses), horizon.num_steps
    pose = np.asarray(poses, dtype=np.float64).reshape(n, 3)
    direction = np.stack([np.cos(pose[:, 2]), np.sin(pose[:, 2])], axis=1)
    traj = np.zeros((n, steps, 3))
    traj[..., :2] = pose[:, None, :2] + horizon.times[None, :, None] * speed * direction[:, None, :]
    traj[..., 2] = pose[:, None, 2]
    vel = np.repeat((speed * direction)[:, None, :], steps, axis=1)
    return Agents(types=types if types is not None else [AgentType.VEHICLE] * n, length=[length] * n,
                  width=[width] * n, trajectory=traj, velocity=vel, valid=np.ones((n, steps), bool))


def straight_lane_map() -> MapGeometry:
    """One lane along +x through y = 0.625 m (the centre of column 31), 3.5 m wide, with no polygon."""
    return MapGeometry(lane_ids=["ahead"], lane_centrelines=[np.array([[-60.0, 0.625], [60.0, 0.625]])],
                       lane_widths=[3.5])


@pytest.fixture
def crossing_scene() -> Scene:
    """Two crossing lanes, an edge, a crosswalk, the ego and two agents."""
    geometry = MapGeometry(
        lane_ids=["ahead", "left"],
        lane_centrelines=[np.array([[-60.0, 0.625], [60.0, 0.625]]), np.array([[-10.625, -60.0], [-10.625, 60.0]])],
        lane_widths=[3.5, 3.5],
        road_edges=[np.array([[-60.0, -3.125], [60.0, -3.125]])],
        lane_lines=[np.array([[-60.0, 2.4], [60.0, 2.4]])],
        crosswalks=[np.array([[5.0, -5.0], [7.0, -5.0], [7.0, 5.0], [5.0, 5.0]])],
    )
    agents = Agents.concatenate([make_agents([(0.0, 0.625, 0.0), (15.0, 0.625, 0.0)], speed=8.0),
                                 make_agents([(-12.0, 9.0, np.pi / 2)], length=0.6, width=0.6,
                                             types=[AgentType.PEDESTRIAN], speed=1.2)])
    return Scene(map=geometry, agents=agents, horizon=Horizon(), ego_index=0)


@pytest.fixture
def agents_at():
    """Factory: :func:`make_agents`."""
    return make_agents


@pytest.fixture
def lane_map() -> MapGeometry:
    """:func:`straight_lane_map`."""
    return straight_lane_map()
