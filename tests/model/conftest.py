"""Fixtures for the model tests: small synthetic scenes on straight roads (fast, no simulator needed)."""

from __future__ import annotations

import numpy as np
import pytest

from sd_sim_plugin.model.config import ModelConfig
from sd_sim_plugin.scene.types import Agents, AgentType, Horizon, MapGeometry, Scene


def road_scene(seed: int, horizon: Horizon = Horizon()) -> Scene:
    """A 4-lane road through the ego at a random angle, with the ego and 3-8 cars (and a pedestrian) on it."""
    rng = np.random.default_rng(seed)
    angle = rng.uniform(-0.3, 0.3)
    d = np.array([np.cos(angle), np.sin(angle)])
    n = np.array([-d[1], d[0]])
    offsets = [-5.25, -1.75, 1.75, 5.25]
    s = np.linspace(-60, 60, 121)[:, None]
    centres = [(s * d + o * n).astype(np.float32) for o in offsets]
    geometry = MapGeometry(lane_ids=[f"l{i}" for i in range(4)], lane_centrelines=centres,
                           lane_widths=np.full(4, 3.5))
    k = int(rng.integers(3, 9))
    lanes = rng.choice(4, size=k)
    along = np.sort(rng.choice(np.arange(-32, 33, 8), size=k, replace=False)) + rng.uniform(-1, 1, k)
    types = np.zeros(k + 1, np.int64)
    speed = rng.uniform(3, 12, k + 1)
    starts = [np.zeros(2)] + [a * d + offsets[lane] * n for a, lane in zip(along, lanes)]
    heading = np.full(k + 1, angle)
    if seed % 2:  # a pedestrian crossing beside the road
        types = np.append(types, AgentType.PEDESTRIAN)
        starts.append(rng.uniform(-20, 20) * d + 9.0 * n)
        heading = np.append(heading, angle - np.pi / 2)
        speed = np.append(speed, 1.2)
    m = len(types)
    times = horizon.times
    dirs = np.stack([np.cos(heading), np.sin(heading)], -1)
    xy = np.stack(starts)[:, None] + dirs[:, None] * speed[:, None, None] * times[None, :, None]
    traj = np.concatenate([xy, np.repeat(heading[:, None, None], len(times), 1)], -1)
    vel = np.repeat((dirs * speed[:, None])[:, None], len(times), 1)
    length = np.where(types == AgentType.PEDESTRIAN, 0.6, rng.uniform(4.0, 5.0, m))
    width = np.where(types == AgentType.PEDESTRIAN, 0.6, rng.uniform(1.8, 2.1, m))
    agents = Agents(types, length, width, traj, vel, np.ones((m, len(times)), bool))
    return Scene(map=geometry, agents=agents, horizon=horizon, ego_index=0)


@pytest.fixture(scope="session")
def tiny_config() -> ModelConfig:
    """A small model over the default raster (64 px at 1.25 m), for tests that train in seconds."""
    from sd_sim_plugin.raster.bev import AGENT_CHANNELS, MAP_CHANNELS

    return ModelConfig(map_channels=len(MAP_CHANNELS), agent_channels=len(AGENT_CHANNELS), ae_width=32,
                       unet_channels=(16, 32), token_dim=32, sampler_steps=4)


@pytest.fixture(scope="session")
def road_scenes() -> list[Scene]:
    """Six synthetic road scenes."""
    return [road_scene(i) for i in range(6)]
