"""Map features (ScenarioNet / MetaDrive dict) -> MapGeometry, on hand-made and real maps."""

from __future__ import annotations

import pickle

import numpy as np
from shapely.geometry import Polygon

from sd_sim_plugin.sources.map_features import clean_polyline, crop_map, map_features_to_geometry


def _straight_lane(y: float, fid: str, **links) -> dict:
    xs = np.array([0.0, 0.0, 5.0, 10.0, 10.0])  # repeated points, as in nuScenes
    line = np.stack([xs, np.full_like(xs, y), np.zeros_like(xs)], axis=1)  # 3-D, as in Waymo
    poly = [[0, y - 1.75], [10, y - 1.75], [10, y + 1.75], [0, y + 1.75]]
    return {"type": "LANE_SURFACE_STREET", "polyline": line, "polygon": poly, **links}


def test_clean_polyline_drops_repeats_and_resamples_to_1m():
    p = clean_polyline([[0, 0], [0, 0], [3.5, 0], [3.5, 0]])
    assert np.allclose(p[:, 1], 0) and p[0, 0] == 0 and p[-1, 0] == 3.5
    assert np.all(np.diff(p[:, 0]) > 0) and np.all(np.diff(p[:, 0]) <= 1.0 + 1e-9)


def test_hand_made_map():
    features = {
        "a": _straight_lane(0.0, "a", left_neighbor=[{"feature_id": "b"}], exit_lanes=[7]),
        "b": _straight_lane(3.5, "b", right_neighbor=["a"]),
        "line": {"type": "ROAD_LINE_BROKEN_SINGLE_WHITE", "polyline": [[0, 1.75], [10, 1.75]]},
        "cw": {"type": "CROSS_WALK", "polyline": [[2, -2], [4, -2], [4, 5], [2, 5]]},
        "bike": {"type": "LANE_BIKE_LANE", "polyline": [[0, 9], [10, 9]]},
        "sign": {"type": "STOP_SIGN", "position": [1, 1, 0]},
    }
    g = map_features_to_geometry(features)
    assert g.lane_ids == ["a", "b"]
    assert g.lane_left == {"a": ["b"], "b": []} and g.lane_right["b"] == ["a"]
    assert g.lane_exits["a"] == []  # lane 7 is not on the map
    assert len(g.lane_centrelines[0]) == 11 and g.lane_centrelines[0].shape[1] == 2
    np.testing.assert_allclose(g.lane_headings(0), 0.0)
    np.testing.assert_allclose(g.lane_widths, 3.5, atol=1e-5)
    assert len(g.lane_lines) == 1 and len(g.crosswalks) == 1
    # No edge features: one edge ring around the two touching lanes (10 m x 7 m).
    assert len(g.road_edges) == 1
    ring = Polygon(g.road_edges[0])
    assert abs(ring.area - 70.0) < 0.5


def test_missing_polygon_widens_centreline_by_width_field():
    lane = {"type": "LANE_SURFACE_STREET", "polyline": [[0, 0], [20, 0]], "width": np.full((3, 2), 1.6)}
    g = map_features_to_geometry({"x": lane})
    assert abs(g.lane_widths[0] - 3.2) < 1e-5
    assert abs(Polygon(g.lane_polygons[0]).area - 20 * 3.2) < 0.1


def test_crop_map_trims_long_polylines():
    features = {"e": {"type": "ROAD_EDGE_BOUNDARY", "polyline": [[-500, 3], [500, 3]]}, "a": _straight_lane(0, "a")}
    g = crop_map(map_features_to_geometry(features), radius=20.0)
    assert len(g.road_edges) == 1 and np.abs(g.road_edges[0][:, 0]).max() <= 21.0
    assert g.lane_ids == ["a"]
    assert crop_map(map_features_to_geometry(features), radius=1.0).num_lanes == 1
    far = crop_map(map_features_to_geometry({"a": _straight_lane(50, "a")}), radius=20.0)
    assert far.num_lanes == 0


def test_real_maps_have_lanes_edges_and_lines(dev_data_dir):
    for name in ["sd_nuscenes_v1.0-mini_scene-0061.pkl", "sd_waymo_v0.3_b36a6d0bc9e525bc.pkl"]:
        with open(dev_data_dir / name, "rb") as f:  # trusted, shared project data
            g = map_features_to_geometry(pickle.load(f)["map_features"])
        assert g.num_lanes > 100 and len(g.road_edges) > 10 and len(g.lane_lines) > 50
        for c in g.lane_centrelines:
            step = np.linalg.norm(np.diff(c, axis=0), axis=1)
            assert step.min() > 1e-3 and step.max() <= 1.0 + 1e-3


def test_live_map_of_a_scenario_env(dev_data_dir):
    from metadrive.envs.scenario_env import ScenarioEnv

    from sd_sim_plugin.sources.map_features import live_map

    env = ScenarioEnv(dict(use_render=False, log_level=50, data_directory=str(dev_data_dir), num_scenarios=17))
    try:
        env.reset(seed=16)  # sd_waymo_v0.3_4d320edc9cb801a3: 79 vehicle lanes
        g = live_map(env)
        assert live_map(env) is g and g.num_lanes == 79 and len(g.road_edges) > 10 and g.crosswalks
        centres = np.concatenate(g.lane_centrelines)  # same frame as the env's vehicles
        assert np.hypot(*(centres - np.asarray(env.agent.position)).T).min() < 2.0
    finally:
        env.close()
