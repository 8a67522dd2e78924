"""Exported generated scenes load and replay in a plain MetaDrive ScenarioEnv (no sd_sim_plugin code involved)."""

from __future__ import annotations

import pickle

import numpy as np
from metadrive.envs.scenario_env import ScenarioEnv
from metadrive.policy.replay_policy import ReplayEgoCarPolicy
from metadrive.scenario.scenario_description import ScenarioDescription

from sd_sim_plugin.scene.types import Agents, AgentType, Horizon, MapGeometry, Scene
from sd_sim_plugin.sim.envs import ScenarioDiffusionEnv
from sd_sim_plugin.sim.export import EGO_ID, export_scenes


def _replay(folder, steps: int) -> tuple[dict, float, float]:
    """Replay the first scenario of a folder in ScenarioEnv; largest distance of any agent / the ego to its track."""
    env = ScenarioEnv(dict(data_directory=str(folder), num_scenarios=1, use_render=False, log_level=50,
                           agent_policy=ReplayEgoCarPolicy))
    try:
        env.reset(seed=0)
        scenario = env.engine.data_manager.current_scenario
        traffic = env.engine.traffic_manager
        worst_agent = worst_ego = 0.0
        for k in range(1, steps):
            env.step([0.0, 0.0])
            for track_id, obj_id in traffic._scenario_id_to_obj_id.items():
                expected = scenario["tracks"][track_id]["state"]["position"][k, :2]
                worst_agent = max(worst_agent, float(np.linalg.norm(traffic.spawned_objects[obj_id].position - expected)))
            ego_expected = scenario["tracks"][EGO_ID]["state"]["position"][k, :2]
            worst_ego = max(worst_ego, float(np.linalg.norm(env.agent.position - ego_expected)))
        replayed = dict(traffic._scenario_id_to_obj_id)
    finally:
        env.close()
    return replayed, worst_agent, worst_ego


def test_exported_env_scene_replays_in_plain_scenario_env(tmp_path, placement, agent_rows):
    rows = [{"x": 15.0, "y": 0.0, "speed": 6.0}, {"x": -12.0, "y": 3.5, "speed": 9.0, "accel": 0.5},
            {"x": 8.0, "y": -7.0, "heading": 1.2, "speed": 1.2, "type": AgentType.PEDESTRIAN, "length": 0.6,
             "width": 0.6}]
    env = ScenarioDiffusionEnv(generator=placement(agent_rows(rows)), map="SS", num_scenarios=1)
    try:
        env.reset(seed=0)
        folder = env.export_scene(tmp_path / "exported", length_steps=60)
    finally:
        env.close()
    files = sorted(p.name for p in folder.iterdir())
    assert "dataset_summary.pkl" in files and "dataset_mapping.pkl" in files
    scenario_file = next(folder.glob("sd_*.pkl"))
    with scenario_file.open("rb") as f:
        scenario = pickle.load(f)
    ScenarioDescription.sanity_check(scenario, check_self_type=True, valid_check=True)
    assert scenario["metadata"]["sdc_id"] == EGO_ID and scenario["length"] == 60
    assert {t["type"] for t in scenario["tracks"].values()} == {"VEHICLE", "PEDESTRIAN"}

    replayed, worst_agent, worst_ego = _replay(folder, 60)
    assert set(replayed) == {"agent_0", "agent_1", "agent_2"}  # the ego is the sdc, not traffic
    assert worst_agent < 0.05 and worst_ego < 0.05


def test_export_adds_to_an_existing_folder(tmp_path):
    horizon = Horizon()
    lane = np.stack([np.linspace(-50, 150, 201), np.zeros(201)], axis=1)
    road = MapGeometry(lane_ids=["l"], lane_centrelines=[lane], lane_widths=[3.5])
    scene = Scene(map=road, agents=Agents.empty(horizon.num_steps), horizon=horizon, ego_index=-1)
    export_scenes([scene], tmp_path, names=["one"], length_steps=10)
    export_scenes([scene, scene], tmp_path, names=["two", "three"], length_steps=10)
    with (tmp_path / "dataset_summary.pkl").open("rb") as f:
        summary = pickle.load(f)
    assert len(summary) == 3 and all(name.startswith("sd_") for name in summary)
