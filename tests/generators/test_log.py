"""The log baseline: the reference's own agents, or a random other scene's."""

from __future__ import annotations

import copy

import numpy as np

from sd_sim_plugin.generators.lane_heuristic import LaneHeuristicGenerator
from sd_sim_plugin.generators.log import LogGenerator
from sd_sim_plugin.scene.io import scene_from_arrays, scene_to_arrays
from sd_sim_plugin.scene.types import Agents, Scene


def _with_ego(scene: Scene) -> Scene:
    ego = Agents(types=[0], length=[4.5], width=[1.9], trajectory=np.zeros((1, 5, 3)), velocity=np.zeros((1, 5, 2)),
                 valid=np.ones((1, 5), bool), ids=["ego"])
    return Scene(scene.map, Agents.concatenate([ego, scene.agents]), scene.horizon, ego_index=0)


def test_same_returns_the_reference_agents_without_ego(two_way_road):
    ref = [_with_ego(s) for s in LaneHeuristicGenerator().generate(two_way_road, density=4, seed=2, count=1)]
    moved = two_way_road.lane_centrelines[0] + 0.0
    other_map = type(two_way_road)(lane_ids=["x"], lane_centrelines=[moved], lane_widths=[3.5])
    ref.append(_with_ego(LaneHeuristicGenerator().generate(other_map, density=2, seed=3)[0]))
    gen = LogGenerator(ref)
    reloaded_map = scene_from_arrays(scene_to_arrays(ref[0])).map  # the fingerprint survives save/load
    out = gen.generate(reloaded_map)[0]
    assert out.ego_index == -1 and len(out.agents) == 4
    np.testing.assert_array_equal(out.agents.trajectory, ref[0].agents.trajectory[1:])
    rnd = LogGenerator(ref, mode="random").generate(two_way_road, seed=0)[0]
    assert len(rnd.agents) == 2  # the other scene's agents


def test_random_picks_another_recording(two_way_road):
    scenes = []
    for rec in ("a", "a", "a", "b"):
        road = copy.deepcopy(two_way_road)
        road.lane_centrelines[0] = road.lane_centrelines[0] + [0.0, 0.01 * len(scenes)]  # a distinct map per window
        s = _with_ego(LaneHeuristicGenerator().generate(road, density=3 if rec == "a" else 5, seed=len(scenes))[0])
        s.meta["scenario_id"] = rec
        scenes.append(s)
    gen = LogGenerator(scenes, mode="random")
    for seed in range(5):  # windows of recording "a" always borrow from "b"
        assert len(gen.generate(scenes[0].map, seed=seed)[0].agents) == 5
