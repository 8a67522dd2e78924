"""``sd-sim collect`` end to end: resume, determinism, corrupt inputs named/skipped/counted, one-line errors."""

from __future__ import annotations

import json

import numpy as np
import pytest

from sd_sim_plugin.cli import main
from sd_sim_plugin.data.store import read_shard, read_shard_info

TINY_PG = ["collect", "--source", "pg", "--seeds", "0:2", "--episode-s", "4", "--no-progress"]


def _manifest(out) -> dict:
    return json.loads((out / "manifest.json").read_text())


def test_pg_collect_resumes_and_is_deterministic(tmp_path, capsys):
    out = tmp_path / "pg"
    assert main([*TINY_PG, "--out", str(out)]) == 0
    m = _manifest(out)
    assert m["status"] == "complete" and m["counts"]["shards"] == 2 and m["counts"]["scenes"] > 4
    assert [u["map_seed"] for u in m["units"]] == [0, 1]
    first = read_shard(out / "pg_000001.npz")

    (out / "pg_000001.npz").unlink()  # an interrupted run: one shard missing, plus a stale temp file
    (out / "pg_000001.npz.tmp").write_bytes(b"partial")
    assert main([*TINY_PG, "--out", str(out)]) == 0
    m2 = _manifest(out)
    assert m2["counts"]["resumed_shards"] == 1 and m2["counts"]["scenes"] == m["counts"]["scenes"]
    assert not list(out.glob("*.tmp"))
    again = read_shard(out / "pg_000001.npz")
    assert [s.meta for s in again] == [s.meta for s in first]
    for a, b in zip(first, again):
        assert a.agents.ids == b.agents.ids
        np.testing.assert_allclose(a.agents.trajectory, b.agents.trajectory, atol=1e-4)

    assert main([*TINY_PG, "--out", str(out)]) == 0
    assert _manifest(out)["counts"]["resumed_shards"] == 2
    # Another config in the same folder is refused rather than mixed in.
    assert main([*TINY_PG, "--episode-s", "6", "--out", str(out)]) == 2
    assert "another config" in capsys.readouterr().err


def test_pg_collect_with_workers_makes_the_same_shards_and_resumes(tmp_path):
    serial, parallel = tmp_path / "serial", tmp_path / "parallel"
    assert main([*TINY_PG, "--out", str(serial)]) == 0
    assert main([*TINY_PG, "--workers", "2", "--out", str(parallel)]) == 0
    m1, m2 = _manifest(serial), _manifest(parallel)
    assert m2["status"] == "complete" and m2["units"] == m1["units"] and m2["counts"]["resumed_shards"] == 0
    for u in m1["units"]:
        a, b = read_shard(serial / u["shard"]), read_shard(parallel / u["shard"])
        assert [s.meta for s in a] == [s.meta for s in b]
        for x, y in zip(a, b):
            np.testing.assert_array_equal(x.agents.trajectory, y.agents.trajectory)

    (parallel / "pg_000000.npz").unlink()
    assert main([*TINY_PG, "--workers", "2", "--out", str(parallel)]) == 0
    m3 = _manifest(parallel)
    assert m3["counts"]["resumed_shards"] == 1 and m3["units"] == m1["units"]


def test_corrupt_scenarionet_file_is_named_skipped_counted(dev_data_dir, tmp_path, capsys):
    data = tmp_path / "in"
    data.mkdir()
    real = "sd_training.tfrecord-00000-of-01000_2a1e44d405a6833f.pkl"
    (data / real).symlink_to(dev_data_dir / real)  # read in place: the data is never copied
    (data / "broken.pkl").write_bytes(np.random.default_rng(0).bytes(4096))
    out = tmp_path / "out"
    args = ["collect", "--source", "scenarionet", "--data-dir", str(data), "--out", str(out), "--no-progress"]
    assert main(args) == 0
    m = _manifest(out)
    assert m["counts"]["skipped"] == 1 and m["skipped"][0]["file"] == "broken.pkl"
    assert "broken.pkl" in m["skipped"][0]["reason"] and "broken.pkl" in capsys.readouterr().out
    assert m["counts"]["shards"] == 1
    assert m["counts"]["scenes"] == read_shard_info(out / m["units"][0]["shard"])["count"] > 0
    # The same from worker processes: the corrupt file is skipped there and named here.
    assert main([*args[:-3], "--out", str(tmp_path / "out2"), "--workers", "2", "--no-progress"]) == 0
    m2 = _manifest(tmp_path / "out2")
    assert m2["skipped"] == m["skipped"] and m2["units"] == m["units"]


@pytest.mark.parametrize("args, message", [
    (["--source", "pg", "--seeds", "100000:100002"], "evaluation seeds"),
    (["--source", "pg", "--seeds", "98990:99001"], "validation seeds"),
    (["--source", "pg", "--split", "train-minus-val"], "is for --source scenarionet"),
    (["--source", "scenarionet", "--data-dir", "/nonexistent/dir", "--split", "val", "--others-per-t0", "2"],
     "logged ego windows as they are"),
    (["--source", "scenarionet", "--data-dir", "/nonexistent/dir", "--split", "eval", "--others-per-t0", "2"],
     "logged ego windows as they are"),
    (["--source", "scenarionet", "--data-dir", "/nonexistent/dir", "--split", "val", "--others-min-speed", "1"],
     "logged ego windows as they are"),
    (["--source", "scenarionet", "--data-dir", "/nonexistent/dir", "--others-min-speed", "-1"], "speed >= 0"),
    (["--source", "pg", "--seeds", "0:1", "--others-min-speed", "1"], "are for --source scenarionet"),
    (["--source", "pg", "--seeds", "0:1", "--min-drivable-share", "0.5"], "are for --source scenarionet"),
    (["--source", "scenarionet", "--data-dir", "/nonexistent/dir", "--min-drivable-share", "1.5"], "in [0, 1]"),
    (["--source", "pg", "--seeds", "5:2"], "A < B"),
    (["--source", "pg", "--split", "val", "--fold", "1"], "are for --source scenarionet"),
    (["--source", "scenarionet", "--data-dir", "/nonexistent/dir", "--split", "eval", "--fold", "1"],
     "--fold goes with --split val"),
    (["--source", "scenarionet", "--data-dir", "/nonexistent/dir", "--split", "val", "--fold", "3"],
     "the validation folds are 0 to 2"),
    (["--source", "scenarionet"], "needs --data-dir"),
    (["--source", "scenarionet", "--data-dir", "/nonexistent/dir"], "no such ScenarioNet folder"),
    (["--source", "pg", "--seeds", "0:1", "--step", "0.7"], "not a multiple"),
    (["--source", "pg", "--seeds", "0:1", "--workers", "0"], "--workers 0: expected at least 1"),
])
def test_bad_input_is_one_line(tmp_path, capsys, args, message):
    assert main(["collect", *args, "--out", str(tmp_path / "o"), "--no-progress"]) == 2
    err = capsys.readouterr().err
    assert message in err and len(err.strip().splitlines()) == 1


def test_splits_are_disjoint_and_named():
    """Training, validation and evaluation PG seeds never overlap; each split name gives its own seeds."""
    from sd_sim_plugin.data.splits import EVAL_PG_SEEDS, VAL_PG_SEEDS, split_seeds

    train, val, test = (set(split_seeds(n)) for n in ("train", "val", "eval"))
    assert val == set(VAL_PG_SEEDS) and test == set(EVAL_PG_SEEDS)
    assert not (train & val or train & test or val & test)
    with pytest.raises(ValueError, match="'train', 'val' or 'eval'"):
        split_seeds("test")
