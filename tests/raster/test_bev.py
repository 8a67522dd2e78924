"""BEV rasteriser: pixel geometry, map channels and agent channels on hand-made scenes, and on real maps."""

from __future__ import annotations

import numpy as np
import pytest

from sd_sim_plugin.raster.bev import (
    AGENT_CHANNELS, MAP_CHANNELS, SIZE_SCALE_M, SPEED_SCALE_MPS, RasterConfig, agent_channels, fill_polygons,
    rasterise_agents, rasterise_map, rasterise_scene,
)
from sd_sim_plugin.scene.types import Agents, AgentType, Horizon, MapGeometry

CFG = RasterConfig()
A = AGENT_CHANNELS.index
M = MAP_CHANNELS.index


def lit(image: np.ndarray) -> set[tuple[int, int]]:
    """The (row, col) pixels that are non-zero."""
    return {(int(r), int(c)) for r, c in np.argwhere(image != 0)}


# --- grid ------------------------------------------------------------------------------------------------------------

def test_default_grid_covers_80_m() -> None:
    assert CFG.size_px == 64 and CFG.resolution_m == 1.25 and CFG.extent_m == 80.0


def test_pixel_centres_follow_the_contract() -> None:
    # Pixel (r, c) centre: x = (H/2 - r - 0.5) * res, y = (W/2 - c - 0.5) * res.
    np.testing.assert_allclose(CFG.pixel_to_ego(np.array([0, 0])), [39.375, 39.375])
    np.testing.assert_allclose(CFG.pixel_to_ego(np.array([63, 63])), [-39.375, -39.375])
    np.testing.assert_allclose(CFG.pixel_to_ego(np.array([31, 32])), [0.625, -0.625])
    np.testing.assert_allclose(CFG.pixel_centres()[10, 20], CFG.pixel_to_ego(np.array([10, 20])))


def test_pixel_ego_round_trip() -> None:
    rng = np.random.default_rng(0)
    rc = rng.uniform(-5, 70, size=(100, 2))
    np.testing.assert_allclose(CFG.ego_to_pixel(CFG.pixel_to_ego(rc)), rc, atol=1e-9)
    xy = rng.uniform(-60, 60, size=(7, 3, 2))
    np.testing.assert_allclose(CFG.pixel_to_ego(CFG.ego_to_pixel(xy)), xy, atol=1e-9)
    assert CFG.ego_to_pixel(xy).shape == (7, 3, 2)


def test_pixel_index_holds_the_point() -> None:
    rng = np.random.default_rng(1)
    xy = rng.uniform(-39.9, 39.9, size=(200, 2))
    rc = CFG.pixel_index(xy)
    assert np.all(np.abs(CFG.pixel_to_ego(rc) - xy) <= CFG.resolution_m / 2 + 1e-9)
    assert rc.dtype == np.int64


def test_odd_size_is_rejected() -> None:
    with pytest.raises(ValueError):
        RasterConfig(size_px=63)


# --- agents ----------------------------------------------------------------------------------------------------------

def test_box_lights_exactly_the_expected_pixels(agents_at) -> None:
    # A 5 m x 2.5 m box at x = 10, y = 0 covers x in [7.5, 12.5], y in [-1.25, 1.25]: pixel centres in rows 22-25
    # (x = 11.875 ... 8.125) and columns 31-32 (y = 0.625, -0.625).
    raster = rasterise_agents(agents_at([(10.0, 0.0, 0.0)], length=5.0, width=2.5))
    expected = {(r, c) for r in range(22, 26) for c in (31, 32)}
    assert lit(raster[A("occupancy")]) == expected
    assert raster.dtype == np.float32 and raster.shape == (len(AGENT_CHANNELS), 64, 64)


def test_rotated_box_and_heading_channels(agents_at) -> None:
    # Heading +90 deg (pointing left) at y = -10: the 5 m length lies along y in [-12.5, -7.5] -> columns 38-41.
    raster = rasterise_agents(agents_at([(0.0, -10.0, np.pi / 2)], length=5.0, width=2.5))
    expected = {(r, c) for r in (31, 32) for c in range(38, 42)}
    assert lit(raster[A("occupancy")]) == expected
    rows, cols = zip(*expected)
    np.testing.assert_allclose(raster[A("heading_cos"), rows, cols], 0.0, atol=1e-6)
    np.testing.assert_allclose(raster[A("heading_sin"), rows, cols], 1.0)


def test_orientation_ahead_is_up_and_left_is_left(agents_at) -> None:
    ahead = np.argwhere(rasterise_agents(agents_at([(10.0, 0.0, 0.0)]))[A("occupancy")] > 0)
    left = np.argwhere(rasterise_agents(agents_at([(0.0, 10.0, 0.0)]))[A("occupancy")] > 0)
    assert ahead[:, 0].max() < 31.5 and np.all(np.abs(ahead[:, 1] - 31.5) < 2)  # above the centre
    assert left[:, 1].max() < 31.5 and np.all(np.abs(left[:, 0] - 31.5) < 3)  # left of the centre


def test_tiny_pedestrian_lights_its_pixel_with_its_type(agents_at) -> None:
    peds = agents_at([(5.3, -7.1, 0.3)], length=0.4, width=0.4, types=[AgentType.PEDESTRIAN])
    raster = rasterise_agents(peds)
    r, c = CFG.pixel_index(np.array([5.3, -7.1]))
    assert lit(raster[A("occupancy")]) == {(r, c)}
    assert raster[A("is_pedestrian"), r, c] == 1 and raster[A("is_cyclist"), r, c] == 0
    cyclist = rasterise_agents(agents_at([(5.3, -7.1, 0.3)], length=1.8, width=0.6, types=[AgentType.CYCLIST]))
    assert cyclist[A("is_cyclist")].max() == 1 and cyclist[A("is_pedestrian")].max() == 0


def test_state_and_trajectory_values(agents_at) -> None:
    # Heading +90 deg at 5 m/s: velocity along +y in the ego frame; displacement along the agent's own heading.
    raster = rasterise_agents(agents_at([(20.0, 20.0, np.pi / 2)], length=4.0, width=2.0, speed=5.0))
    r, c = CFG.pixel_index(np.array([20.0, 20.0]))
    px = raster[:, r, c]
    np.testing.assert_allclose(px[A("velocity_x")], 0.0, atol=1e-6)
    np.testing.assert_allclose(px[A("velocity_y")], 5.0 / SPEED_SCALE_MPS)
    np.testing.assert_allclose(px[[A("length"), A("width")]], [4.0 / SIZE_SCALE_M, 2.0 / SIZE_SCALE_M])
    for t in (-2, -1, 1, 2):
        np.testing.assert_allclose(px[A(f"traj_dx@{t:+d}s")], np.sign(t) * 5.0 / SPEED_SCALE_MPS, rtol=1e-5)
        np.testing.assert_allclose(px[A(f"traj_dy@{t:+d}s")], 0.0, atol=1e-5)
        assert px[A(f"traj_dheading@{t:+d}s")] == 0 and px[A(f"traj_valid@{t:+d}s")] == 1


def test_turning_and_missing_poses(agents_at) -> None:
    agents = agents_at([(0.0, 0.0, 0.0)])
    agents.trajectory[0, 4] = (10.0, 4.0, np.pi / 2)  # +2 s: 10 m ahead, 4 m left, turned left
    agents.valid[0, 0] = False  # -2 s missing
    raster = rasterise_agents(agents)
    px = raster[:, 31, 31]
    np.testing.assert_allclose(px[[A("traj_dx@+2s"), A("traj_dy@+2s")]], [10 / 20, 4 / 20], rtol=1e-5)
    np.testing.assert_allclose(px[A("traj_dheading@+2s")], 0.5, rtol=1e-5)
    assert np.all(px[[A(f"{f}@-2s") for f in ("traj_dx", "traj_dy", "traj_dheading", "traj_valid")]] == 0)


def test_agent_missing_at_t0_is_not_drawn(agents_at) -> None:
    agents = agents_at([(10.0, 0.0, 0.0)])
    agents.valid[0, Horizon().t0_index] = False
    assert not rasterise_agents(agents).any()
    assert not rasterise_agents(Agents.empty(5)).any()


def test_overlapping_boxes_each_keep_their_centre_pixel(agents_at) -> None:
    # Two 4.5 m cars 2 m apart along x: their boxes share pixels; each keeps the pixel of its centre and the
    # shared pixels go to the nearer centre.
    agents = agents_at([(10.0, 0.625, 0.0), (12.0, 0.625, 0.0)], speed=0.0)
    agents.velocity[1, :, 0] = 3.0  # tell them apart
    raster = rasterise_agents(agents)
    owner = raster[A("velocity_x")]
    for k, x in enumerate((10.0, 12.0)):
        r, c = CFG.pixel_index(np.array([x, 0.625]))
        assert owner[r, c] == pytest.approx(k * 3.0 / SPEED_SCALE_MPS)
    rows = np.flatnonzero(raster[A("occupancy"), :, 31])
    for r in rows:
        x = CFG.pixel_to_ego(np.array([r, 31]))[0]
        nearer = 0 if abs(x - 10.0) < abs(x - 12.0) else 1
        assert owner[r, 31] == pytest.approx(nearer * 3.0 / SPEED_SCALE_MPS)


def test_agent_channels_follow_the_horizon(agents_at) -> None:
    horizon = Horizon(past_s=2.0, future_s=4.0, step_s=0.5)
    names = agent_channels(horizon)
    assert len(names) == 9 + 4 * (4 + 8) and len(set(names)) == len(names)
    assert names[:9] == AGENT_CHANNELS[:9] and "traj_dx@+0.5s" in names and "traj_valid@+4s" in names
    raster = rasterise_agents(agents_at([(0.0, 0.0, 0.0)], speed=10.0, horizon=horizon), horizon)
    assert raster.shape == (len(names), 64, 64)
    np.testing.assert_allclose(raster[names.index("traj_dx@+4s"), 31, 31], 1.0, rtol=1e-5)
    with pytest.raises(ValueError):
        rasterise_agents(agents_at([(0.0, 0.0, 0.0)]), horizon)


# --- map -------------------------------------------------------------------------------------------------------------

def test_lane_without_polygon_is_widened_with_its_heading(lane_map) -> None:
    raster = rasterise_map(lane_map)
    assert raster.shape == (len(MAP_CHANNELS), 64, 64) and raster.dtype == np.float32
    # Centreline through the centre of column 31; 3.5 m wide -> y in [-1.125, 2.375] -> columns 30-32.
    assert lit(raster[M("centreline")]) == {(r, 31) for r in range(64)}
    assert lit(raster[M("drivable")]) == {(r, c) for r in range(64) for c in (30, 31, 32)}
    np.testing.assert_allclose(raster[M("lane_heading_cos"), :, 30:33], 1.0)
    np.testing.assert_allclose(raster[M("lane_heading_sin"), :, 30:33], 0.0, atol=1e-6)
    assert not raster[[M("lane_heading_cos"), M("lane_heading_sin")]][:, :, :30].any()


def test_lane_polygon_is_used_when_present() -> None:
    lane = MapGeometry(lane_ids=["l"], lane_centrelines=[np.array([[0.0, 10.625], [0.0, -9.0]])], lane_widths=[3.0],
                       lane_polygons=[np.array([[-1.2, 10.625], [1.2, 10.625], [1.2, -9.0], [-1.2, -9.0]])])
    raster = rasterise_map(lane)
    # x in [-1.2, 1.2] -> rows 31, 32; y in [-9, 10.625] -> columns 23 (y = 10.625) to 38 (y = -8.125).
    assert lit(raster[M("drivable")]) == {(r, c) for r in (31, 32) for c in range(23, 39)}
    # The lane points right (-y): heading -90 deg.
    np.testing.assert_allclose(raster[M("lane_heading_sin"), 31, 23:39], -1.0)
    assert lit(raster[M("centreline")]) >= {(32, c) for c in range(24, 38)}


def test_other_map_channels(crossing_scene) -> None:
    raster = rasterise_map(crossing_scene.map)
    assert raster.min() >= -1 and raster.max() <= 1
    assert lit(raster[M("road_edge")]) == {(r, 34) for r in range(64)}  # y = -3.125 is column 34's centre
    assert lit(raster[M("lane_line")]) == {(r, 30) for r in range(64)}  # y = 2.4 lies in column 30 (29.58)
    # Crosswalk x in [5, 7] -> rows 26, 27; y in [-5, 5] -> columns 28-35.
    assert lit(raster[M("crosswalk")]) == {(r, c) for r in (26, 27) for c in range(28, 36)}
    # The crossing lane at x = -10.625 (row 40) points left: sin = 1 away from the junction.
    np.testing.assert_allclose(raster[M("lane_heading_sin"), 40, :25], 1.0)
    assert raster[M("drivable"), 40].all()


def test_fill_polygons_unites_overlaps_and_keeps_thin_polygons() -> None:
    image = np.zeros((64, 64), np.float32)
    square = np.array([[0.0, 0.0], [10.0, 0.0], [10.0, 10.0], [0.0, 10.0]])
    fill_polygons(image, [square, square + 5.0], CFG)
    assert image.sum() == 64 + 64 - 16  # 8 x 8 pixels each, 4 x 4 shared: no even-odd hole
    thin = np.zeros((64, 64), np.float32)
    fill_polygons(thin, [np.array([[0.4, -20.0], [0.9, -20.0], [0.9, 20.0], [0.4, 20.0]])], CFG)
    assert lit(thin) == {(31, c) for c in range(16, 48)}  # a 0.5 m strip over row 31's centre line (x = 0.625)


def test_empty_map_is_all_zero() -> None:
    assert not rasterise_map(MapGeometry()).any()


def test_rasterise_scene(crossing_scene) -> None:
    map_raster, agent_raster = rasterise_scene(crossing_scene)
    assert map_raster.shape[0] == len(MAP_CHANNELS) and agent_raster.shape[0] == len(AGENT_CHANNELS)
    # Every agent moves along its lane: its pixels are drivable and carry the lane heading.
    on = agent_raster[A("occupancy")] > 0
    assert map_raster[M("drivable")][on].all()
    for m, a in (("lane_heading_cos", "heading_cos"), ("lane_heading_sin", "heading_sin")):
        np.testing.assert_allclose(map_raster[M(m)][on], agent_raster[A(a)][on], atol=1e-6)


# --- real maps -------------------------------------------------------------------------------------------------------

def test_real_scenarionet_map_under_the_logged_ego(dev_data_dir) -> None:
    """On real logs the ego drives on a lane: its pixel is drivable and the lane heading agrees with its heading."""
    import pickle

    from sd_sim_plugin.scene.transform import Pose2D, map_to_local
    from sd_sim_plugin.sources.map_features import map_features_to_geometry

    agree = []
    for path in sorted(dev_data_dir.glob("sd_waymo_*.pkl"))[:2]:
        with open(path, "rb") as f:  # trusted shared development data
            scenario = pickle.load(f)
        state = scenario["tracks"][scenario["metadata"]["sdc_id"]]["state"]
        k = len(state["position"]) // 2
        pose = Pose2D(float(state["position"][k][0]), float(state["position"][k][1]), float(state["heading"][k]))
        raster = rasterise_map(map_to_local(map_features_to_geometry(scenario["map_features"]), pose, radius=60.0))
        assert raster[M("drivable")].mean() > 0.05 and raster[M("centreline")].any()
        assert raster.min() >= -1 and raster.max() <= 1
        centre = raster[:, 31:33, 31:33]  # the four pixels around the ego's centre
        on = centre[M("drivable")] > 0
        assert on.any()
        agree.append(centre[M("lane_heading_cos")][on].mean())
    assert min(agree) > 0.9


def test_live_pg_map_under_the_ego() -> None:
    """A MetaDrive PG map, taken live from the engine: the spawned ego stands on a lane pointing its way."""
    from metadrive.envs.metadrive_env import MetaDriveEnv

    from sd_sim_plugin.scene.transform import Pose2D, map_to_local
    from sd_sim_plugin.sources.map_features import live_map

    env = MetaDriveEnv({"use_render": False, "log_level": 50, "map": 3, "traffic_density": 0.0, "start_seed": 3,
                        "num_scenarios": 1})
    try:
        env.reset(seed=3)
        ego = env.agent
        pose = Pose2D(float(ego.position[0]), float(ego.position[1]), float(ego.heading_theta))
        raster = rasterise_map(map_to_local(live_map(env), pose, radius=60.0))
    finally:
        env.close()
    centre = raster[:, 31:33, 31:33]
    assert (centre[M("drivable")] > 0).all()
    assert centre[M("lane_heading_cos")].min() > 0.95
    assert raster[M("road_edge")].any() and raster[M("lane_line")].any()
    assert not raster[M("crosswalk")].any()  # PG maps have none
