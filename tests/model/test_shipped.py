"""The shipped checkpoints load with the settings their model cards describe and generate seeded scenes."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import numpy as np

from sd_sim_plugin.metrics.collision import collision_flags
from sd_sim_plugin.model.pipeline import ScenarioDiffusionGenerator
from sd_sim_plugin.model.tokens import has_domain_flag
from sd_sim_plugin.scene.geometry import LaneIndex
from sd_sim_plugin.scene.types import AgentType, Horizon
from sd_sim_plugin.sources.scenarionet import load_scenario, scenario_windows

CHECKPOINTS = Path(__file__).resolve().parents[2] / "checkpoints"
BOSTON_HELD_OUT = "sd_nuscenes_v1.0-mini_scene-0757.pkl"


def test_real_checkpoint_asks_for_real_traffic_on_a_real_map(dev_data_dir):
    gen = ScenarioDiffusionGenerator.from_checkpoint(CHECKPOINTS / "real")
    assert has_domain_flag(gen.cfg.tokens) and gen.cfg.real_flag and not gen.cfg.ego_flag
    # three training seeds' denoisers, each scene herded by groups from eight draws split among them (docs/model.md)
    assert gen.cfg.denoisers == 3 and len(gen.denoisers) == 3 and gen.cfg.draws_per_scene == 8
    assert gen.cfg.draw_selection == "herding_groups"
    window = scenario_windows(load_scenario(dev_data_dir / BOSTON_HELD_OUT), Horizon(2, 2, 1),
                              name=BOSTON_HELD_OUT)[0]
    ego = window.agents.select(np.array([0]))
    first, again = (gen.generate(window.map, ego=ego, density=8, seed=3)[0] for _ in range(2))
    np.testing.assert_array_equal(first.agents.trajectory, again.agents.trajectory)
    # a total count: as many of each type as the most typical draw has, here 6 of 8 (its other proposals overlap;
    # docs/model.md, *Density per agent type*)
    assert 6 <= len(first.agents) <= 8 and set(first.agents.types.tolist()) <= {int(t) for t in AgentType}
    # a count per type: one draw keeps fewer vehicles, the eight draws together have room for all
    cars = {AgentType.VEHICLE: 8}
    herded = gen.generate(window.map, ego=ego, density=cars, seed=3)[0].agents
    assert (herded.types == int(AgentType.VEHICLE)).sum() == 8
    gen.cfg = replace(gen.cfg, draw_selection="most_typical")
    assert len(gen.generate(window.map, ego=ego, density=cars, seed=3)[0].agents) < 8
    gen.cfg = replace(gen.cfg, draw_selection="herding_groups")
    # every vehicle on a lane follows the lane it is on (alignment at 180 degrees), and trajectories do not cross
    assert gen.cfg.lane_snap_deg == 180 and gen.cfg.trajectory_overlap
    t0, vehicle = first.horizon.t0_index, first.agents.types == int(AgentType.VEHICLE)
    pose = first.agents.trajectory[vehicle, t0]
    q = LaneIndex(window.map).query(pose[:, :2], pose[:, 2])
    assert q["on_lane"].any() and np.all(q["heading_gap"][q["on_lane"]] < 1e-3)
    assert not collision_flags(first.agents, first.horizon)["trajectory"].any()
    gen.cfg = replace(gen.cfg, real_flag=False)  # the flag reaches the network: PG traffic is another scene
    as_pg = gen.generate(window.map, ego=ego, density=8, seed=3)[0]
    assert not np.array_equal(as_pg.agents.trajectory, first.agents.trajectory)


def test_default_checkpoint_is_for_pg_maps():
    gen = ScenarioDiffusionGenerator.from_checkpoint(CHECKPOINTS / "default")
    assert not has_domain_flag(gen.cfg.tokens) and not gen.cfg.real_flag and gen.cfg.ego_flag
    assert gen.cfg.lane_snap_deg == 20 and gen.cfg.trajectory_overlap
