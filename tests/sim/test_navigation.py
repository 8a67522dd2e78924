"""Generated vehicles get a MetaDrive navigation module on PG maps: spawning must never trip MetaDrive 0.4.3's own
destination pick or localisation asserts (regressions: intersection maps, vehicles recycled across resets)."""

from __future__ import annotations

import numpy as np

from sd_sim_plugin.scene.types import Agents, Horizon, MapGeometry, Scene
from sd_sim_plugin.sim.envs import ScenarioDiffusionEnv
from sd_sim_plugin.sim.objects import OFF_LANE


class LaneFillGenerator:
    """A stopped car at the middle of every lane of the map it is handed (both directions, junction lanes too)."""

    name = "lane_fill"
    horizon = Horizon()

    def __init__(self, agent_rows) -> None:
        self.agent_rows = agent_rows

    def generate(self, map: MapGeometry, *, ego=None, agent_tokens=None, density=None, seed: int = 0,
                 count: int = 1) -> list[Scene]:
        """One car per lane, at its middle, heading along it."""
        rows = []
        for centre in map.lane_centrelines:
            if len(centre) < 2:
                continue
            k = len(centre) // 2
            d = centre[min(k + 1, len(centre) - 1)] - centre[max(k - 1, 0)]
            rows.append({"x": float(centre[k][0]), "y": float(centre[k][1]),
                         "heading": float(np.arctan2(d[1], d[0])), "speed": 0.0})
        agents: Agents = self.agent_rows(rows)
        return [Scene(map=map, agents=agents, horizon=self.horizon, ego_index=-1, meta={"seed": seed})] * count


def test_vehicles_on_every_intersection_road_spawn_with_a_route(make_env, agent_rows):
    # MetaDrive's auto_assign_task raised "list.remove(x): x not in list" for a vehicle on one of the
    # intersection's socket roads whenever its random socket was that one; a car on every road hits it for sure.
    env = make_env(ScenarioDiffusionEnv, generator=LaneFillGenerator(agent_rows),
                   map_config={"type": "block_sequence", "config": "X", "lane_num": 2})
    for seed in (0, 1):
        _, info = env.reset(seed=seed)
        assert info["num_agents"] >= 20
        for _ in range(3):
            env.step([0.0, 0.0])
        for actor in env.traffic.actors:
            nav = actor.obj.navigation
            assert len(nav.checkpoints) >= 2
            assert actor.obj.lane is not OFF_LANE  # every car stands on its lane


def test_vehicle_recycled_from_off_road_localises_on_a_lane(make_env, placement, agent_rows):
    # Episode 1 parks a car off the road (OFF_LANE); episode 2 reuses that MetaDrive object for a wrong-way car,
    # whose first localisation finds no lane of its heading and falls back to the vehicle's ``lane``: a stale
    # OFF_LANE there raised "lane index mismatch!".
    gen = placement(agent_rows([{"x": 30.0, "y": 25.0, "speed": 0.0}]))
    env = make_env(ScenarioDiffusionEnv, generator=gen, map="SS")
    env.reset(seed=0)
    parked = env.traffic.actors[0].obj
    assert parked.lane is OFF_LANE
    env.step([0.0, 0.0])
    gen.agents = agent_rows([{"x": 25.0, "y": 0.0, "heading": np.pi, "speed": 5.0}])
    _, info = env.reset(seed=0)
    assert info["num_agents"] == 1
    wrong_way = env.traffic.actors[0].obj
    assert wrong_way is parked  # MetaDrive recycled the object
    assert wrong_way.lane is not OFF_LANE
    for _ in range(3):
        env.step([0.0, 0.0])
