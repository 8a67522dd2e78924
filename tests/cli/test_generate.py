"""`sd-sim generate`: what it says when the scenes hold fewer agents than asked for."""

from __future__ import annotations

import numpy as np

from sd_sim_plugin.cli.generate import shortfall
from sd_sim_plugin.scene.tokens import AgentToken
from sd_sim_plugin.scene.types import Agents, AgentType, Horizon, MapGeometry, Scene

H = Horizon()


def _scene(types: list[int]) -> Scene:
    n = len(types)
    agents = Agents(types=np.array(types), length=np.full(n, 4.5), width=np.full(n, 1.9),
                    trajectory=np.zeros((n, H.num_steps, 3)), velocity=np.zeros((n, H.num_steps, 2)),
                    valid=np.ones((n, H.num_steps), bool))
    return Scene(MapGeometry(), agents, H, ego_index=-1)


def test_shortfall_names_the_missing_agents_per_type_and_in_all():
    scenes = [_scene([0, 0, 1]), _scene([0, 0, 0])]
    pedestrian_token = [AgentToken(x=5.0, y=3.0, heading=0.0, agent_type=AgentType.PEDESTRIAN)]
    half_a_pedestrian = "pedestrian: 0.5 fewer per scene on average"
    assert shortfall(scenes, {AgentType.VEHICLE: 2, AgentType.PEDESTRIAN: 1}, []) == half_a_pedestrian
    assert shortfall(scenes, {AgentType.VEHICLE: 2}, pedestrian_token) == half_a_pedestrian  # tokens count too
    assert shortfall(scenes, 5, []) == "agents: 2 fewer per scene on average"
    assert shortfall(scenes, 2, []) == "" and shortfall(scenes, None, []) == ""
