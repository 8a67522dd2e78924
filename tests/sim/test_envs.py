"""Generated traffic in real MetaDrive: replay and IDM actors, IDM ego, seeding, overlap removal, bad config."""

from __future__ import annotations

import numpy as np
import pytest
from metadrive.component.traffic_participants.cyclist import Cyclist
from metadrive.component.traffic_participants.pedestrian import Pedestrian
from metadrive.policy.idm_policy import IDMPolicy

from sd_sim_plugin.errors import SdSimError
from sd_sim_plugin.scene.tokens import AgentToken
from sd_sim_plugin.scene.types import AgentType, Horizon
from sd_sim_plugin.sim.criticality import box_gaps
from sd_sim_plugin.sim.envs import ScenarioDiffusionEnv
from sd_sim_plugin.sim.manager import ego_box
from sd_sim_plugin.sources.metadrive_assets import assets_are_stub


HORIZON = Horizon()


def _actor(env, agent_id: str):
    return next(a for a in env.traffic.actors if a.agent_id == agent_id)


def test_replay_actors_follow_their_trajectory(make_env, placement, agent_rows):
    rows = [{"x": 12.0, "y": 3.5, "heading": 0.0, "speed": 6.0, "accel": 1.0, "yaw_rate": 0.05},
            {"x": -15.0, "y": -3.5, "heading": 0.0, "speed": 3.0}]
    agents = agent_rows(rows)
    env = make_env(ScenarioDiffusionEnv, generator=placement(agents), actor_mode="replay", map="SS")
    env.reset(seed=0)
    frame, t0 = env.traffic.frame, HORIZON.t0_index
    times = HORIZON.times[t0:]
    for step in range(0, 21):
        if step:
            env.step([0.0, 0.0])
        t = step * 0.1
        for i, agent_id in enumerate(agents.ids):
            local = np.array([np.interp(t, times, agents.trajectory[i, t0:, k]) for k in (0, 1)])
            expected = frame.to_world(local)
            assert np.linalg.norm(np.asarray(_actor(env, agent_id).obj.position) - expected) < 0.1, (step, agent_id)
    # At the horizon steps the pose is the generated pose itself, heading included.
    obj = _actor(env, "0").obj
    np.testing.assert_allclose(obj.position, frame.to_world(agents.trajectory[0, -1, :2]), atol=0.1)
    assert obj.heading_theta == pytest.approx(frame.heading_to_world(agents.trajectory[0, -1, 2]), abs=1e-3)
    # After its trajectory the agent keeps driving along its lane.
    for _ in range(20):
        env.step([0.0, 0.0])
    assert obj.position[0] > frame.to_world(agents.trajectory[0, -1, :2])[0] + 10.0


def test_idm_actors_start_at_the_generated_state(make_env, placement, agent_rows):
    agents = agent_rows([{"x": 20.0, "y": -3.5, "heading": 0.02, "speed": 8.0, "length": 5.2, "width": 2.1}])
    env = make_env(ScenarioDiffusionEnv, generator=placement(agents), actor_mode="idm", map="SS")
    env.reset(seed=0)
    frame = env.traffic.frame
    actor = _actor(env, "0")
    obj = actor.obj
    assert not actor.replay and env.engine.get_policy(obj.id) is not None
    np.testing.assert_allclose(obj.position, frame.to_world([20.0, -3.5]), atol=1e-3)
    assert obj.heading_theta == pytest.approx(frame.heading_to_world(0.02), abs=1e-3)
    np.testing.assert_allclose(obj.velocity, frame.rotate_to_world(agents.velocity[0, HORIZON.t0_index]), atol=0.05)
    assert (obj.LENGTH, obj.WIDTH) == pytest.approx((5.2, 2.1))
    start = np.asarray(obj.position)
    for _ in range(10):
        env.step([0.0, 0.0])
    assert np.linalg.norm(np.asarray(obj.position) - start) > 5.0  # it drives on at about its speed


def test_idm_ego_brakes_for_a_stopped_generated_vehicle(make_env, placement, agent_rows):
    # One-lane road: the IDM ego cannot change lanes, it has to stop. A pedestrian and a cyclist stand nearby:
    # MetaDrive's IDM ignores *every* object when one lacks a ``lane``, so this also checks they carry one.
    agents = agent_rows([{"x": 45.0, "y": 0.0, "speed": 0.0},
                         {"x": 25.0, "y": 6.0, "heading": 1.5, "speed": 0.0, "type": AgentType.PEDESTRIAN,
                          "length": 0.7, "width": 0.7},
                         {"x": 30.0, "y": -6.0, "heading": 0.0, "speed": 0.0, "type": AgentType.CYCLIST,
                          "length": 1.8, "width": 0.6}])
    env = make_env(ScenarioDiffusionEnv, generator=placement(agents), actor_mode="replay",
                   map_config={"type": "block_sequence", "config": "SS", "lane_num": 1}, agent_policy=IDMPolicy)
    _, info = env.reset(seed=0)
    assert info["num_agents"] == 3
    assert {type(a.obj) for a in env.traffic.actors} >= {Pedestrian, Cyclist}
    start = np.asarray(env.agent.position)
    max_speed = 0.0
    for _ in range(300):
        _, _, terminated, truncated, info = env.step([0.0, 0.0])
        max_speed = max(max_speed, env.agent.speed)
        assert not info["crash_vehicle"] and not info["crash"]
        if terminated or truncated:
            break
    assert max_speed > 5.0  # it drove towards the stopped car ...
    assert env.agent.speed < 0.5  # ... and stopped behind it
    car = _actor(env, "0").obj
    gap = box_gaps(ego_box(env.agent), np.array([[*car.position, car.heading_theta, car.LENGTH, car.WIDTH]]))[0]
    assert 0.5 < gap < 15.0
    assert info["min_gap_m"] <= gap
    assert np.linalg.norm(np.asarray(env.agent.position) - start) > 15.0
    assert isinstance(info["crash_vehicle"], bool)


def test_same_seed_same_scene(make_env):
    env = make_env(ScenarioDiffusionEnv, generator="lane", density=6, num_scenarios=3)

    def scene_at(seed):
        _, info = env.reset(seed=seed)
        states = env.traffic.actor_states()
        return info["map_index"], info["scene_seed"], {k: np.concatenate([p, [h], v]) for k, (p, h, v) in states.items()}

    first, other, again = scene_at(11), scene_at(12), scene_at(11)
    assert first[:2] == again[:2] and first[0] in range(3)
    assert first[2].keys() == again[2].keys() and len(first[2]) == 6
    for key in first[2]:
        np.testing.assert_array_equal(first[2][key], again[2][key])
    assert first[1] != other[1]
    # Unseeded resets continue the stream: a new scene each time.
    _, info_a = env.reset()
    _, info_b = env.reset()
    assert info_a["scene_seed"] != info_b["scene_seed"]


def test_agents_overlapping_the_ego_are_removed_and_counted(make_env, placement, agent_rows):
    agents = agent_rows([{"x": 0.5, "y": 0.3, "speed": 0.0}, {"x": 30.0, "y": 0.0, "speed": 5.0}])
    env = make_env(ScenarioDiffusionEnv, generator=placement(agents), map="SS")
    _, info = env.reset(seed=0)
    assert (info["num_generated"], info["num_agents"], info["num_removed_overlap"]) == (2, 1, 1)
    assert [a.agent_id for a in env.traffic.actors] == ["1"]
    _, _, _, _, info = env.step([0.0, 0.0])
    assert not info["crash_vehicle"]


def test_agent_tokens_and_density_reach_the_generator(make_env, placement, agent_rows):
    gen = placement(agent_rows([]))
    token = AgentToken(x=25.0, y=0.0, heading=0.0, speed=4.0)
    env = make_env(ScenarioDiffusionEnv, generator=gen, agent_tokens=[token.to_dict()], density=3, map="SS")
    _, info = env.reset(seed=0)
    assert gen.calls[-1]["agent_tokens"] == [token] and gen.calls[-1]["density"] == 3
    assert info["num_agents"] == 1
    # The ego-frame map handed to the generator has the ego's lanes; the ego state is at the origin.
    call = gen.calls[-1]
    assert call["map"].num_lanes > 0 and call["ego"].trajectory[0, HORIZON.t0_index].tolist() == [0.0, 0.0, 0.0]
    env.reset(seed=0, options={"agent_tokens": [], "density": 0})
    assert gen.calls[-1]["agent_tokens"] == [] and gen.calls[-1]["density"] == 0
    env.set_scene_request(agent_tokens=[token, token], density=None)
    env.reset(seed=0)
    assert len(gen.calls[-1]["agent_tokens"]) == 2 and gen.calls[-1]["density"] is None
    env.reset(seed=0, options={"density": {"vehicle": 2, "pedestrian": 1}})  # a count per agent type
    assert gen.calls[-1]["density"] == {AgentType.VEHICLE: 2, AgentType.PEDESTRIAN: 1}


@pytest.mark.parametrize("kwargs, words", [
    ({"actor_mode": "teleport"}, ["teleport", "replay", "idm"]),
    ({"checkpoint": "/nonexistent/checkpoint"}, ["/nonexistent/checkpoint", "not found"]),
    ({"generator": "nope"}, ["nope", "lane"]),
    ({"density": -2}, ["density"]),
    ({"density": {"bus": 2}}, ["density", "unknown agent type 'bus'"]),
])
def test_bad_config_is_one_clear_line(make_env, kwargs, words):
    with pytest.raises(SdSimError) as err:
        make_env(ScenarioDiffusionEnv, **kwargs)
    message = str(err.value)
    assert "\n" not in message and all(w in message for w in words)


def test_bad_reset_option_is_one_clear_line(make_env, placement, agent_rows):
    env = make_env(ScenarioDiffusionEnv, generator=placement(agent_rows([])))
    with pytest.raises(SdSimError, match="teleport"):
        env.reset(seed=0, options={"teleport": True})
    with pytest.raises(SdSimError, match="map_index"):
        env.reset(seed=0, options={"map_index": 5})


@pytest.mark.skipif(not assets_are_stub(), reason="real MetaDrive assets are installed here")
def test_3d_rendering_with_stub_assets_says_so(make_env):
    with pytest.raises(SdSimError, match="real assets"):
        make_env(ScenarioDiffusionEnv, use_render=True)


def test_generation_runs_with_one_torch_thread_and_restores_it(make_env, placement, agent_rows):
    import torch

    seen = []

    class ThreadProbe(placement):
        def generate(self, map, **kwargs):
            seen.append(torch.get_num_threads())
            return super().generate(map, **kwargs)

    before = torch.get_num_threads()
    torch.set_num_threads(2)
    try:
        env = make_env(ScenarioDiffusionEnv, generator=ThreadProbe(agent_rows([])))
        env.reset(seed=0)
        assert seen == [1] and torch.get_num_threads() == 2
    finally:
        torch.set_num_threads(before)
