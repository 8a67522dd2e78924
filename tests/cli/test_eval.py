"""``sd-sim eval``: a small run end to end, resume, and one-line errors for bad input."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from sd_sim_plugin.cli import main
from sd_sim_plugin.data.store import write_shard
from sd_sim_plugin.errors import SdSimError
from sd_sim_plugin.generators.lane_heuristic import LaneHeuristicGenerator
from sd_sim_plugin.scene.types import Agents, MapGeometry, Scene


def _road() -> MapGeometry:
    xs = np.linspace(-60, 60, 121)
    return MapGeometry(lane_ids=["e", "w"], lane_widths=[3.5, 3.5],
                       lane_centrelines=[np.stack([xs, 0 * xs], 1), np.stack([xs[::-1], 0 * xs + 3.5], 1)])


def _reference_scenes(n: int) -> list[Scene]:
    """Scenes with an ego at the origin and lane-placed vehicles, standing in for collected windows."""
    scenes = []
    for i in range(n):
        m = _road()
        m.lane_centrelines[0] = m.lane_centrelines[0] + [0.0, 0.01 * i]  # a distinct map per scene
        others = LaneHeuristicGenerator().generate(m, density=3 + i % 3, seed=100 + i)[0].agents
        ego = Agents(types=[0], length=[4.5], width=[1.9], trajectory=np.zeros((1, 5, 3)),
                     velocity=np.zeros((1, 5, 2)), valid=np.ones((1, 5), bool), ids=["ego"])
        scenes.append(Scene(m, Agents.concatenate([ego, others]), ego_index=0,
                            meta={"source": "test", "file": f"scene_{i % 2}.pkl"}))
    return scenes


@pytest.fixture
def data_dir(tmp_path: Path) -> Path:
    d = tmp_path / "refs"
    write_shard(d / "a.npz", _reference_scenes(4), {"unit": "a"})
    return d


def test_eval_writes_report_json_and_plots_and_resumes(data_dir: Path, tmp_path: Path, capsys):
    out = tmp_path / "report"
    argv = ["eval", "--generator", "lane,log,metadrive", "--data", str(data_dir), "--out", str(out), "--no-progress",
            "--samples", "2"]
    assert main(argv) == 0
    metrics = json.loads((out / "metrics.json").read_text())
    res = metrics["sets"]["refs"]
    assert set(res["generators"]) == {"lane", "log"} and "metadrive" in res["skipped"]
    assert res["generators"]["log"]["mmd"]["position"] == 0.0
    assert res["generators"]["lane"]["token_following"]["match_rate"] == 1.0
    assert res["reference"]["vehicles_per_scene"] == pytest.approx(np.mean([3, 4, 5, 3]))
    by_source = res["generators"]["lane"]["by_source"]  # each source file's windows alone
    assert set(by_source) == {"scene_0.pkl", "scene_1.pkl"} and by_source["scene_0.pkl"]["scenes_used"] == 2
    assert res["generators"]["log"]["by_source"]["scene_1.pkl"]["position"] == 0.0
    for k in ("position", "heading_vector", "velocity"):  # per-scene means: the files' weighted mean is the set's
        weighted = sum(v[k] * v["scenes_used"] for v in by_source.values()) / sum(
            v["scenes_used"] for v in by_source.values())
        assert weighted == pytest.approx(res["generators"]["lane"]["mmd"][k])
    report = (out / "report.md").read_text()
    assert "| `lane` |" in report and "PG maps only" in report
    assert "### Realism by source scene" in report and "| `scene_1.pkl` | 2 |" in report
    for png in ("histograms.png", "samples_lane.png", "samples_log.png"):
        assert (out / "refs" / png).stat().st_size > 1000
    stored = out / "generated" / "refs" / "lane" / "density_reference.npz"
    mtime = stored.stat().st_mtime_ns
    assert main(argv) == 0  # rerun: generated scenes are reused, numbers identical
    assert stored.stat().st_mtime_ns == mtime
    assert json.loads((out / "metrics.json").read_text())["sets"] == metrics["sets"]


def test_samples_zero_writes_no_picture_grid(data_dir: Path, tmp_path: Path):
    out = tmp_path / "report"
    assert main(["eval", "--generator", "lane", "--data", str(data_dir), "--out", str(out), "--no-progress",
                 "--samples", "0"]) == 0
    assert (out / "refs" / "histograms.png").exists() and not (out / "refs" / "samples_lane.png").exists()
    assert "samples_lane" not in (out / "report.md").read_text()


@pytest.mark.parametrize("case", ["unknown_generator", "empty_folder", "missing_folder", "no_map", "precision",
                                  "negative_samples"])
def test_bad_input_is_one_line_exit_2(case: str, data_dir: Path, tmp_path: Path, capsys):
    data, gen = data_dir, "lane"
    if case == "unknown_generator":
        gen = "lane,gan"
    elif case == "empty_folder":
        data = tmp_path / "empty"
        data.mkdir()
    elif case == "missing_folder":
        data = tmp_path / "nowhere"
    elif case == "no_map":
        data = tmp_path / "nomap"
        write_shard(data / "a.npz", [Scene(MapGeometry(), _reference_scenes(1)[0].agents)], {"unit": "a"})
    extra = {"precision": ["--precision", "bfloat16"], "negative_samples": ["--samples", "-1"]}.get(case, [])
    code = main(["eval", "--generator", gen, "--data", str(data), "--out", str(tmp_path / "o"), "--no-progress",
                 *extra])
    err = capsys.readouterr().err.strip()
    assert code == 2 and "\n" not in err and err.startswith("sd-sim eval: error:")
    expected = {"unknown_generator": "unknown generator 'gan'", "empty_folder": "no scenes",
                "missing_folder": "no such dataset folder", "no_map": "has no map",
                "precision": "--precision is for the diffusion generator",
                "negative_samples": "--samples -1: must be 0"}[case]
    assert expected in err


def test_generator_list_takes_several_diffusion_checkpoints(tmp_path: Path):
    """``diffusion@DIR`` adds a checkpoint as its own labelled generator; bad entries are one clear error."""
    from sd_sim_plugin.cli.eval import _generator_specs

    specs = _generator_specs("diffusion, diffusion@checkpoints/real,lane", tmp_path / "mine")
    assert specs == {"diffusion": tmp_path / "mine", "diffusion@real": Path("checkpoints/real"), "lane": None}
    with pytest.raises(SdSimError, match="unknown generator 'lane@x'"):
        _generator_specs("lane@x", None)
    with pytest.raises(SdSimError, match="listed twice"):
        _generator_specs("diffusion@a/real,diffusion@b/real", None)
