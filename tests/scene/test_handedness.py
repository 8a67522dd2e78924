"""Traffic handedness read from lanes, and mirror images of maps, agents, tokens and scenes."""

from __future__ import annotations

import numpy as np
import pytest

from sd_sim_plugin.scene.handedness import mirror_scene, mirror_token, traffic_side
from sd_sim_plugin.scene.tokens import AgentToken, TurnClass
from sd_sim_plugin.scene.types import Agents, Horizon, MapGeometry, Scene
from sd_sim_plugin.sources.scenarionet import load_scenario, scenario_windows


def two_way_road(keep: str, angle: float = 0.4) -> MapGeometry:
    """A straight two-lane road at ``angle``: each lane's traffic keeps to ``keep`` ('right' or 'left')."""
    d = np.array([np.cos(angle), np.sin(angle)])
    n = np.array([-d[1], d[0]])  # to the left of d
    s = np.linspace(-50, 50, 51)[:, None]
    side = -1.75 if keep == "right" else 1.75  # where the lane along d lies
    along = (s * d + side * n).astype(np.float32)
    against = (s[::-1] * d - side * n).astype(np.float32)
    return MapGeometry(lane_ids=["a", "b"], lane_centrelines=[along, against], lane_widths=np.full(2, 3.5),
                       lane_left={"a": ["x"]}, road_edges=[(s * d + 4 * n).astype(np.float32)])


@pytest.mark.parametrize("keep", ["right", "left"])
def test_traffic_side_reads_which_side_oncoming_lanes_lie(keep):
    """Oncoming lanes to the left mean right-hand traffic, and the mirror image keeps the other side."""
    road = two_way_road(keep)
    assert traffic_side(road) == keep
    mirrored = mirror_scene(Scene(map=road, agents=Agents.empty(Horizon().num_steps), ego_index=-1)).map
    assert traffic_side(mirrored) == {"right": "left", "left": "right"}[keep]
    assert mirrored.lane_right == {"a": ["x"]} and mirrored.lane_left == {}


def test_one_way_or_empty_maps_have_no_side():
    """Without two-way roads the lanes do not say."""
    road = two_way_road("right")
    one_way = MapGeometry(lane_ids=["a", "c"], lane_widths=np.full(2, 3.5),
                          lane_centrelines=[road.lane_centrelines[0], road.lane_centrelines[0] + 3.5])
    assert traffic_side(one_way) is None
    assert traffic_side(MapGeometry()) is None


def test_mirror_is_its_own_inverse_and_flips_headings():
    """Mirroring twice gives the scene back; once, y, heading, lateral velocity and turn direction change sign."""
    h = Horizon()
    n = h.num_steps
    traj = np.zeros((1, n, 3), np.float32)
    traj[0, :, 0] = np.arange(n) * 5.0
    traj[0, :, 1] = 2.0 + np.arange(n) * 0.5
    traj[0, :, 2] = 0.3
    vel = np.tile(np.array([5.0, 0.5], np.float32), (1, n, 1))
    agents = Agents([0], [4.5], [1.9], traj, vel, np.ones((1, n), bool))
    scene = Scene(map=two_way_road("left"), agents=agents, horizon=h, ego_index=-1, meta={"k": 1})
    once = mirror_scene(scene)
    np.testing.assert_allclose(once.agents.trajectory[0, :, 1], -traj[0, :, 1])
    np.testing.assert_allclose(once.agents.trajectory[0, :, 2], -0.3, rtol=1e-6)
    np.testing.assert_allclose(once.agents.velocity[0, :, 1], -0.5)
    twice = mirror_scene(once)
    np.testing.assert_allclose(twice.agents.trajectory, traj, atol=1e-6)
    for a, b in zip(twice.map.lane_centrelines, scene.map.lane_centrelines):
        np.testing.assert_allclose(a, b)
    assert twice.meta == {"k": 1}
    token = AgentToken(x=10.0, y=3.0, heading=0.5, speed=4.0, turn=TurnClass.LEFT)
    mirrored = mirror_token(token)
    assert (mirrored.y, mirrored.heading, mirrored.turn) == (-3.0, -0.5, TurnClass.RIGHT)
    assert mirror_token(mirrored) == token
    assert mirror_token(AgentToken(x=1.0, y=0.0, heading=0.0, turn=TurnClass.STOP)).turn == TurnClass.STOP


@pytest.mark.parametrize(("name", "side"), [("sd_nuscenes_v1.0-mini_scene-0061.pkl", "left"),  # Singapore
                                            ("sd_nuscenes_v1.0-mini_scene-0553.pkl", "right"),  # Boston
                                            ("sd_waymo_v0.3_b36a6d0bc9e525bc.pkl", "right")])
def test_real_maps_keep_to_their_country_side(dev_data_dir, name, side):
    """Singapore's nuScenes maps keep left; Boston's and Waymo's keep right, window after window."""
    scenes = scenario_windows(load_scenario(dev_data_dir / name), Horizon(), name=name)
    assert [traffic_side(s.map) for s in scenes[::10]] == [side] * len(scenes[::10])
