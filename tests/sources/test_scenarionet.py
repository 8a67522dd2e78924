"""ScenarioNet source: windows agree with the log; data quirks are fixed; broken files raise a named SdSimError."""

from __future__ import annotations

import numpy as np
import pytest

from sd_sim_plugin.data.splits import HELDOUT_REAL_SCENES, REAL_VAL_FOLDS, VAL_REAL_SCENES, split_scene_files
from sd_sim_plugin.errors import SdSimError
from sd_sim_plugin.scene.transform import Pose2D
from sd_sim_plugin.scene.types import AgentType, Horizon
from sd_sim_plugin.sources.scenarionet import (
    ScenarioNetConfig,
    drivable_share,
    load_scenario,
    read_windows,
    scenario_files,
    scenario_tracks,
    scenario_windows,
    scenarionet_units,
)

WAYMO_IRREGULAR = "sd_waymo_v0.3_b36a6d0bc9e525bc.pkl"  # first step is 0.089 s
NUSCENES = "sd_nuscenes_v1.0-mini_scene-0757.pkl"


def _check_against_log(scenario: dict, scenes: list, horizon: Horizon) -> int:
    tracks = scenario["tracks"]
    ts = np.asarray(scenario["metadata"]["ts"], float)
    checked = 0
    for scene in scenes:
        f = scene.meta["frame_index"]
        ego = tracks[scenario["metadata"]["sdc_id"]]["state"]
        frame = Pose2D(*ego["position"][f, :2], float(ego["heading"][f]))
        for i, agent_id in enumerate(scene.agents.ids):
            st = tracks[agent_id]["state"]
            for k, dt in enumerate(horizon.times):
                j = int(np.argmin(np.abs(ts - (ts[f] + dt))))
                if not scene.agents.valid[i, k] or abs(ts[j] - ts[f] - dt) > 1e-3:
                    continue
                assert st["valid"][j]
                np.testing.assert_allclose(scene.agents.trajectory[i, k, :2], frame.to_local(st["position"][j, :2]),
                                           atol=1e-3)
                assert abs(np.angle(np.exp(1j * (scene.agents.trajectory[i, k, 2] - st["heading"][j]
                                                  + frame.heading)))) < 1e-3
                checked += 1
    return checked


@pytest.mark.parametrize("name", [WAYMO_IRREGULAR, NUSCENES])
def test_windows_agree_with_log(dev_data_dir, name):
    scenario = load_scenario(dev_data_dir / name)
    horizon = Horizon(2, 2, 1)
    scenes = scenario_windows(scenario, horizon, name=name)
    assert len(scenes) >= 10
    assert _check_against_log(scenario, scenes, horizon) > 20 * len(scenes)
    for scene in scenes:
        assert scene.agents.ids[0] == str(scenario["metadata"]["sdc_id"]) and scene.meta["centre_is_ego"]
        heading = scene.agents.trajectory[..., 2][scene.agents.valid]
        assert np.all(np.abs(heading) <= np.pi)  # Waymo stores unwrapped headings
        assert scene.agents.length[0] > scene.agents.width[0]  # nuScenes ego has them swapped
        assert set(scene.agents.types.tolist()) <= {int(t) for t in AgentType}
        assert scene.agents.valid.sum(axis=1).min() >= 3


def test_irregular_first_step_uses_real_timestamps(dev_data_dir):
    scenario = load_scenario(dev_data_dir / WAYMO_IRREGULAR)
    scenes = scenario_windows(scenario, Horizon(2, 2, 1))
    assert scenes[0].meta["frame_index"] == 21  # frame 20 is at 1.989 s: its 2 s past would precede the log
    scenes = scenario_windows(scenario, Horizon(0.5, 4.0, 0.5))
    assert _check_against_log(scenario, scenes, Horizon(0.5, 4.0, 0.5)) > 0


def test_all_dev_files_read(dev_data_dir):
    files = scenario_files(dev_data_dir)
    assert len(files) == 17
    for path in files:
        tracks = scenario_tracks(load_scenario(path))
        assert tracks.ego_index >= 0 and len(tracks) > 10


def test_broken_files_name_themselves(tmp_path):
    garbage = tmp_path / "garbage.pkl"
    garbage.write_bytes(b"\x80\x04this is not a pickle at all")
    with pytest.raises(SdSimError, match="garbage.pkl"):
        read_windows(garbage)
    import pickle

    not_scenario = tmp_path / "list.pkl"
    not_scenario.write_bytes(pickle.dumps([1, 2, 3]))
    with pytest.raises(SdSimError, match="list.pkl.*not a ScenarioNet scenario"):
        read_windows(not_scenario)
    no_ego = tmp_path / "no_ego.pkl"
    no_ego.write_bytes(pickle.dumps({"tracks": {}, "map_features": {}, "metadata": {"sdc_id": "x", "ts": []}}))
    with pytest.raises(SdSimError, match="no_ego.pkl"):
        read_windows(no_ego)
    empty = tmp_path / "empty"
    empty.mkdir()
    with pytest.raises(SdSimError, match="no ScenarioNet .pkl files"):
        scenario_files(empty)


def test_windows_around_other_vehicles(dev_data_dir):
    """``others_per_t0`` adds windows centred on other logged vehicles, reproducibly; the ego windows are unchanged."""
    scenario = load_scenario(dev_data_dir / NUSCENES)
    horizon = Horizon(2, 2, 1)
    ego_only = scenario_windows(scenario, horizon, name=NUSCENES)
    more = scenario_windows(scenario, horizon, ScenarioNetConfig(others_per_t0=3), name=NUSCENES)
    again = scenario_windows(scenario, horizon, ScenarioNetConfig(others_per_t0=3), name=NUSCENES)
    ego_again = [s for s in more if s.meta["centre_is_ego"]]
    others = [s for s in more if not s.meta["centre_is_ego"]]
    assert len(ego_again) == len(ego_only) and len(others) > len(ego_only)
    for a, b in zip(ego_again, ego_only):
        np.testing.assert_array_equal(a.agents.trajectory, b.agents.trajectory)
    assert [s.meta["centre_id"] for s in more] == [s.meta["centre_id"] for s in again]
    for scene in others:
        assert scene.agents.types[0] == int(AgentType.VEHICLE) and scene.agents.valid[0].all()
        assert scene.meta["centre_id"] != str(scenario["metadata"]["sdc_id"])
        np.testing.assert_allclose(scene.agents.trajectory[0, horizon.t0_index], 0.0, atol=1e-4)  # float32


def test_other_centres_can_be_limited_to_moving_vehicles(dev_data_dir):
    """With a speed floor, every other centre moves at least that fast at t = 0 (parked cars are dropped as
    centres, not as neighbours), while the ego windows stay; scene-0916 is mostly parked cars."""
    name = "sd_nuscenes_v1.0-mini_scene-0916.pkl"
    scenario = load_scenario(dev_data_dir / name)
    horizon = Horizon(2, 2, 1)
    t0 = horizon.t0_index
    every = scenario_windows(scenario, horizon, ScenarioNetConfig(others_per_t0=8), name=name)
    moving = scenario_windows(scenario, horizon, ScenarioNetConfig(others_per_t0=8, others_min_speed_mps=1.0),
                              name=name)
    speed = {id(s): float(np.linalg.norm(s.agents.velocity[0, t0])) for s in every + moving}
    assert sum(speed[id(s)] < 1.0 for s in every if not s.meta["centre_is_ego"]) > 0
    others = [s for s in moving if not s.meta["centre_is_ego"]]
    assert others and all(speed[id(s)] >= 1.0 for s in others)
    assert len([s for s in moving if s.meta["centre_is_ego"]]) == len([s for s in every if s.meta["centre_is_ego"]])
    stopped_neighbours = sum(int((np.linalg.norm(s.agents.velocity[1:, t0], axis=1) < 0.5).sum()) for s in others)
    assert stopped_neighbours > 0
    assert "others_min_speed_mps" not in ScenarioNetConfig(others_per_t0=8).to_dict()  # old manifests still resume
    assert ScenarioNetConfig(others_min_speed_mps=1.0).to_dict()["others_min_speed_mps"] == 1.0


def test_car_park_scenes_can_be_skipped(dev_data_dir):
    """``min_drivable_share`` skips a file whose logged vehicles stand mostly off the drivable area (scene-0916: a car
    park) with a one-line reason, and keeps a street scene (scene-1077) unchanged."""
    horizon = Horizon(2, 2, 1)
    strict = ScenarioNetConfig(min_drivable_share=0.5)
    street = dev_data_dir / "sd_nuscenes_v1.0-mini_scene-1077.pkl"
    kept = read_windows(street, horizon, strict)
    assert drivable_share(kept) > 0.9 and len(kept) == len(read_windows(street, horizon))
    car_park = dev_data_dir / "sd_nuscenes_v1.0-mini_scene-0916.pkl"
    assert drivable_share(read_windows(car_park, horizon)) < 0.1
    with pytest.raises(SdSimError, match=r"scene-0916.pkl: \d+% of its logged vehicles are on the drivable area, "
                                         r"under --min-drivable-share 0.5"):
        read_windows(car_park, horizon, strict)
    assert "min_drivable_share" not in ScenarioNetConfig().to_dict() and strict.to_dict()["min_drivable_share"] == 0.5


def test_held_out_real_scenes_are_named_and_split_off(dev_data_dir):
    """The evaluation split is the six named development scenes; training gets the other eleven, never those, and
    three of the eleven are the validation scenes."""
    files = scenario_files(dev_data_dir)
    held, train = split_scene_files(files, "eval"), split_scene_files(files, "train")
    assert sorted(p.name for p in held) == sorted(HELDOUT_REAL_SCENES)
    assert len(train) == 11 and not {p.name for p in train} & set(HELDOUT_REAL_SCENES)
    val, rest = split_scene_files(files, "val"), split_scene_files(files, "train-minus-val")
    assert sorted(p.name for p in val) == sorted(VAL_REAL_SCENES)  # the validation scenes are training scenes
    assert sorted(val + rest) == sorted(train) and not set(val) & set(rest)
    units = scenarionet_units(dev_data_dir, split="eval")
    assert [u.source["file"] for u in units] == sorted(HELDOUT_REAL_SCENES)
    with pytest.raises(ValueError, match="unknown split"):
        split_scene_files(files, "test")
    # cross-validation folds: each fold's validation scenes are training scenes, and its training files the others
    folds = [split_scene_files(files, "val", k) for k in range(len(REAL_VAL_FOLDS))]
    assert [sorted(p.name for p in f) for f in folds] == [sorted(f) for f in REAL_VAL_FOLDS]
    assert len({p for f in folds for p in f}) == 8 and {p for f in folds for p in f} <= set(train)
    for k, fold in enumerate(folds):
        assert sorted(fold + split_scene_files(files, "train-minus-val", k)) == sorted(train)
    assert [u.source["file"] for u in scenarionet_units(dev_data_dir, split="val", fold=2)] == sorted(
        REAL_VAL_FOLDS[2])
    with pytest.raises(ValueError, match="unknown validation fold 3"):
        split_scene_files(files, "val", 3)
