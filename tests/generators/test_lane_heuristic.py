"""The lane-heuristic baseline: density, tokens, determinism, no overlaps, lane following."""

from __future__ import annotations

import numpy as np
import pytest

from sd_sim_plugin.errors import SdSimError
from sd_sim_plugin.generators.lane_heuristic import LaneHeuristicGenerator
from sd_sim_plugin.scene.geometry import LaneIndex, boxes_overlap
from sd_sim_plugin.scene.tokens import AgentToken, TurnClass, tokens_from_agents
from sd_sim_plugin.scene.types import Agents, AgentType, Horizon


def _boxes(agents: Agents, t: int) -> np.ndarray:
    return np.concatenate([agents.trajectory[:, t], agents.length[:, None], agents.width[:, None]], axis=1)


def test_density_gives_exact_count(two_way_road):
    gen = LaneHeuristicGenerator()
    for density in (0, 1, 5, 10):
        scenes = gen.generate(two_way_road, density=density, seed=density, count=3)
        assert [len(s.agents) for s in scenes] == [density] * 3
        assert all(s.ego_index == -1 for s in scenes)


def test_per_type_density_takes_the_vehicles_and_refuses_types_it_cannot_make(two_way_road):
    """A per-type density gives the same scenes as the plain vehicle count; asking for pedestrians is an error."""
    gen = LaneHeuristicGenerator()
    plain = gen.generate(two_way_road, density=4, seed=3)[0].agents
    typed = gen.generate(two_way_road, density={AgentType.VEHICLE: 4, AgentType.PEDESTRIAN: 0}, seed=3)[0].agents
    np.testing.assert_array_equal(plain.trajectory, typed.trajectory)
    with pytest.raises(SdSimError, match="asks for pedestrian, but this generator makes vehicle only"):
        gen.generate(two_way_road, density={"vehicle": 4, "pedestrian": 2})


def test_same_seed_same_scene_other_seed_differs(two_way_road):
    gen = LaneHeuristicGenerator()
    a = gen.generate(two_way_road, density=6, seed=7)[0].agents
    b = gen.generate(two_way_road, density=6, seed=7)[0].agents
    c = gen.generate(two_way_road, density=6, seed=8)[0].agents
    np.testing.assert_array_equal(a.trajectory, b.trajectory)
    assert not np.array_equal(a.trajectory, c.trajectory)


def test_no_overlap_with_each_other_or_ego(two_way_road):
    gen = LaneHeuristicGenerator()
    ego = Agents(types=[0], length=[6.0], width=[2.5], trajectory=np.zeros((1, 5, 3)), velocity=np.zeros((1, 5, 2)),
                 valid=np.ones((1, 5), bool))
    for seed in range(20):
        agents = gen.generate(two_way_road, ego=ego, density=12, seed=seed)[0].agents
        for t in range(gen.horizon.num_steps):  # clear of each other along the whole trajectories
            boxes = _boxes(agents, t)
            pair = boxes_overlap(boxes, boxes)
            np.fill_diagonal(pair, False)
            assert not pair.any()
            assert not boxes_overlap(boxes, np.array([[0, 0, 0, 6.0, 2.5]])).any()  # the ego stands still
        assert np.all(np.abs(_boxes(agents, gen.horizon.t0_index)[:, :2]) <= 40.0)


def test_agents_sit_on_lanes_with_lane_heading_and_move_along_them(two_way_road):
    gen = LaneHeuristicGenerator(horizon=Horizon(2.0, 2.0, 1.0))
    agents = gen.generate(two_way_road, density=10, seed=3)[0].agents
    index = LaneIndex(two_way_road)
    q = index.query(agents.trajectory[:, 2, :2], agents.trajectory[:, 2, 2])
    assert q["on_lane"].all() and np.all(q["lateral"] < 0.05) and np.all(q["heading_gap"] < 1e-3)
    speed = np.linalg.norm(agents.velocity, axis=-1)
    step = np.linalg.norm(np.diff(agents.trajectory[..., :2], axis=1), axis=-1)
    # Constant speed: each 1 s step covers the speed's distance (straight lanes here).
    np.testing.assert_allclose(step, speed[:, 1:], atol=0.15)
    assert np.ptp(speed, axis=1).max() == 0.0


def test_follows_exit_lane_past_the_lane_end(two_way_road):
    gen = LaneHeuristicGenerator(horizon=Horizon(0.0, 3.0, 1.0))
    token = AgentToken(x=50.0, y=0.0, heading=0.0, speed=8.0, future_speed=8.0, turn=TurnClass.RIGHT)
    agents = gen.generate(two_way_road, agent_tokens=[token], density=0)[0].agents
    end = agents.trajectory[0, -1]
    # 24 m from x = 50: 10 m to the lane end, then onto the right-turn lane, which ends heading south.
    assert end[0] > 60.0 and end[1] < -2.0 and end[2] < -0.5


def test_tokens_are_placed_as_described(two_way_road):
    gen = LaneHeuristicGenerator()
    tokens = [AgentToken(x=12.0, y=0.1, heading=0.02, length=5.0, width=2.0, speed=6.0, future_speed=10.0),
              AgentToken(x=-20.0, y=3.5, heading=np.pi, length=4.0, width=1.8, speed=0.0, future_speed=0.0,
                         turn=TurnClass.STOP),
              AgentToken(x=0.0, y=30.0, heading=1.0, speed=3.0, future_speed=3.0)]  # off the map: straight line
    scene = gen.generate(two_way_road, agent_tokens=tokens, density=4, seed=1)[0]
    assert len(scene.agents) == 7
    back = tokens_from_agents(scene.agents.select(np.arange(3)), gen.horizon)
    for want, got in zip(tokens, back):
        assert np.allclose([got.x, got.y, got.length, got.width, got.speed, got.future_speed],
                           [want.x, want.y, want.length, want.width, want.speed, want.future_speed], atol=1e-4)
        assert abs(np.angle(np.exp(1j * (got.heading - want.heading)))) < 1e-5
    assert back[1].turn == TurnClass.STOP
    # Off-lane token: straight along its heading.
    traj = scene.agents.trajectory[2]
    step = np.tile([3 * np.cos(1.0), 3 * np.sin(1.0)], (4, 1))
    np.testing.assert_allclose(np.diff(traj[:, :2], axis=0), step, atol=1e-4)


def test_default_count_grows_with_lane_length(two_way_road):
    gen = LaneHeuristicGenerator(metres_per_vehicle=20.0)
    counts = [len(s.agents) for s in gen.generate(two_way_road, seed=0, count=40)]
    # About 160 m of lane in the box (4 x 80 m, minus the ego's) / 20 m = 8 per scene on average.
    assert 6.0 < np.mean(counts) < 10.0
    sparse = LaneHeuristicGenerator(metres_per_vehicle=80.0)
    assert np.mean([len(s.agents) for s in sparse.generate(two_way_road, seed=0, count=40)]) < 3.0
