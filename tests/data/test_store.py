"""Shards: scenes round-trip exactly; damaged shards raise a clear SdSimError; the Dataset indexes across shards."""

from __future__ import annotations

import numpy as np
import pytest

from sd_sim_plugin.data.dataset import SceneDataset
from sd_sim_plugin.data.store import ShardReader, iter_scenes, read_shard, read_shard_info, write_shard
from sd_sim_plugin.errors import SdSimError
from sd_sim_plugin.scene.types import Agents, Horizon, MapGeometry, Scene


def _scene(seed: int) -> Scene:
    rng = np.random.default_rng(seed)
    n, h = 3, Horizon(2, 2, 1)
    agents = Agents(types=[0, 1, 2], length=rng.uniform(1, 5, n), width=rng.uniform(1, 2, n),
                    trajectory=rng.normal(size=(n, h.num_steps, 3)), velocity=rng.normal(size=(n, h.num_steps, 2)),
                    valid=rng.random((n, h.num_steps)) > 0.3, ids=["ego", "x", "y"])
    lanes = [rng.normal(size=(k, 2)) for k in (4, 7)]
    geometry = MapGeometry(lane_ids=["1", "2"], lane_centrelines=lanes, lane_widths=[3.5, 3.0],
                           lane_polygons=[rng.normal(size=(5, 2)), rng.normal(size=(6, 2))],
                           lane_exits={"1": ["2"], "2": []}, lane_entries={"1": [], "2": ["1"]},
                           lane_left={"1": [], "2": []}, lane_right={"1": [], "2": []},
                           road_edges=[rng.normal(size=(9, 2))], lane_lines=[], crosswalks=[rng.normal(size=(4, 2))])
    return Scene(map=geometry, agents=agents, horizon=h, ego_index=0, meta={"source": "test", "seed": seed})


def _assert_same(a: Scene, b: Scene) -> None:
    assert a.meta == b.meta and a.horizon == b.horizon and a.ego_index == b.ego_index
    assert a.agents.ids == b.agents.ids
    for name in ("types", "length", "width", "trajectory", "velocity", "valid"):
        np.testing.assert_array_equal(getattr(a.agents, name), getattr(b.agents, name))
    assert a.map.lane_ids == b.map.lane_ids and a.map.lane_exits == b.map.lane_exits
    for name in ("lane_centrelines", "lane_polygons", "road_edges", "lane_lines", "crosswalks"):
        got, want = getattr(b.map, name), getattr(a.map, name)
        assert len(got) == len(want)
        for x, y in zip(got, want):
            np.testing.assert_array_equal(np.asarray(x, np.float32), np.asarray(y, np.float32))


def test_shard_round_trip(tmp_path):
    scenes = [_scene(i) for i in range(3)]
    path = write_shard(tmp_path / "a.npz", scenes, {"source": {"map_seed": 1}})
    assert read_shard_info(path)["count"] == 3 and read_shard_info(path)["agents"] == 9
    for a, b in zip(scenes, read_shard(path)):
        _assert_same(a, b)
    assert not list(tmp_path.glob("*.tmp"))  # written via a temp file, then renamed


def test_dataset_indexes_across_shards(tmp_path):
    write_shard(tmp_path / "a.npz", [_scene(0), _scene(1)], {})
    write_shard(tmp_path / "b.npz", [], {})
    write_shard(tmp_path / "c.npz", [_scene(2)], {})
    ds = SceneDataset(tmp_path, max_open_shards=1)
    assert len(ds) == 3
    assert [ds[i].meta["seed"] for i in (2, 0, 1, -1)] == [2, 0, 1, 2]
    _assert_same(ds[1], _scene(1))
    assert [s.meta["seed"] for s in iter_scenes(tmp_path)] == [0, 1, 2]
    assert SceneDataset(tmp_path, transform=lambda s: len(s.agents))[0] == 3
    with pytest.raises(IndexError):
        ds[3]


def test_truncated_shard_is_a_clear_error(tmp_path):
    path = write_shard(tmp_path / "t.npz", [_scene(0), _scene(1)], {})
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2])
    with pytest.raises(SdSimError, match="t.npz"):
        read_shard(path)
    with pytest.raises(SdSimError, match="t.npz"):
        SceneDataset(tmp_path)
    path.write_bytes(b"garbage")
    with pytest.raises(SdSimError, match="t.npz: not a readable shard"):
        ShardReader(path)
