"""PG rollouts: windows agree with MetaDrive's own vehicle states; the live map is cached per map."""

from __future__ import annotations

import numpy as np
import pytest

from sd_sim_plugin.scene.transform import Pose2D
from sd_sim_plugin.scene.types import Horizon, wrap_angle
from sd_sim_plugin.sources.map_features import live_map
from sd_sim_plugin.sources.pg import PGConfig, rollout, windows

CONFIG = PGConfig(episode_s=6.0, blocks=(2,), traffic_densities=(0.3,), window_stride_s=1.0, others_per_t0=3)


@pytest.fixture(scope="module")
def run_and_log():
    """A short rollout plus MetaDrive's own vehicle states, read independently at every recorded frame."""
    from metadrive.component.vehicle.base_vehicle import BaseVehicle

    log: dict[int, dict[str, tuple[float, float, float]]] = {}
    maps = []

    def observer(frame: int, env) -> None:
        log[frame] = {v.id: (*v.position, v.heading_theta) for v in env.engine.get_objects().values()
                      if isinstance(v, BaseVehicle)}
        if frame == 0:
            maps.extend([live_map(env), live_map(env)])

    return rollout(5, CONFIG, observer=observer), log, maps


def test_window_positions_match_metadrive(run_and_log):
    run, log, _ = run_and_log
    scenes = windows(run, Horizon(), CONFIG)
    assert len(scenes) >= 8 and any(not s.meta["centre_is_ego"] for s in scenes)
    checked = 0
    for scene in scenes:
        frame = int(round(scene.meta["t0_s"] / 0.1))
        pose = Pose2D(*scene.meta["frame"])
        k = scene.horizon.t0_index
        world = pose.to_world(scene.agents.trajectory[:, k, :2])
        heading = pose.heading_to_world(scene.agents.trajectory[:, k, 2])
        by_id = dict(zip(run.tracks.ids, run.metadrive_ids))
        for i, agent_id in enumerate(scene.agents.ids):
            x, y, h = log[frame][by_id[agent_id]]
            assert np.hypot(world[i, 0] - x, world[i, 1] - y) < 0.1
            assert abs(wrap_angle(heading[i] - h)) < 0.01
            checked += 1
        assert np.allclose(scene.agents.trajectory[0, k], 0.0, atol=1e-4)  # the centre is the origin
        assert np.all(np.abs(scene.agents.trajectory[:, k, :2]) <= 40.0)
    assert checked > 3 * len(scenes)


def test_rollout_records_every_vehicle(run_and_log):
    run, log, _ = run_and_log
    tr = run.tracks
    assert tr.ids[tr.ego_index] == "ego"
    for frame in (0, len(tr.times) - 1):
        assert tr.valid[:, frame].sum() == len(log[frame])


def test_live_map_is_cached_and_covers_the_traffic(run_and_log):
    run, log, maps = run_and_log
    assert maps[0] is maps[1] and maps[0].num_lanes > 10 and maps[0].road_edges
    centres = np.concatenate(maps[0].lane_centrelines)
    for x, y, _ in log[0].values():  # every vehicle starts on a lane
        assert np.hypot(*(centres - (x, y)).T).min() < 2.5


def test_rollout_is_deterministic(run_and_log):
    run, _, _ = run_and_log
    again = rollout(5, PGConfig(episode_s=2.0, blocks=(2,), traffic_densities=(0.3,)))
    f = len(again.tracks.times)
    assert again.tracks.ids == run.tracks.ids[: len(again.tracks.ids)]
    np.testing.assert_allclose(again.tracks.pose[:, :f], run.tracks.pose[: len(again.tracks), :f], atol=1e-4)
