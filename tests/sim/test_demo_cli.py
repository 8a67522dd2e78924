"""``sd-sim demo``: GIF + summary, resuming, and one-line errors."""

from __future__ import annotations

import json

import imageio.v2 as imageio

from sd_sim_plugin.cli import main


def test_demo_writes_gif_and_summary_and_resumes(tmp_path, capsys):
    out = tmp_path / "demo"
    args = ["demo", "--generator", "lane", "--episodes", "1", "--max-steps", "12", "--density", "3", "--out", str(out)]
    assert main(args) == 0
    summary = json.loads((out / "summary.json").read_text())
    assert summary["summary"]["episodes"] == 1 and summary["settings"]["actor_mode"] == "idm"
    episode = summary["episodes"][0]
    assert episode["num_agents"] + episode["num_removed_overlap"] == 3 and 1 <= episode["steps"] <= 12
    assert len(imageio.mimread(out / "demo.gif")) >= 6
    printed = capsys.readouterr().out
    assert "outcome" in printed and "demo.gif" in printed

    # A rerun keeps the finished episode and only adds the new one.
    first = (out / "episodes" / "000.json").stat().st_mtime_ns
    args[args.index("--episodes") + 1] = "2"
    assert main(args) == 0
    assert (out / "episodes" / "000.json").stat().st_mtime_ns == first
    assert json.loads((out / "summary.json").read_text())["summary"]["episodes"] == 2


def test_demo_errors_are_one_line(tmp_path, capsys):
    out = tmp_path / "demo"
    (out).mkdir()
    (out / "settings.json").write_text(json.dumps({"generator": "other"}))
    assert main(["demo", "--generator", "lane", "--episodes", "1", "--out", str(out)]) == 2
    assert main(["demo", "--checkpoint", str(tmp_path / "missing"), "--out", str(tmp_path / "x")]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 2 and "other settings" in err[0] and "not found" in err[1]
    assert not (tmp_path / "x").exists()  # nothing half-made


def test_demo_default_runs_the_shipped_checkpoint(tmp_path):
    """The README's main job: no generator flag means the shipped diffusion checkpoint (here asked for vehicles
    only, a count per agent type)."""
    out = tmp_path / "demo"
    assert main(["demo", "--episodes", "1", "--max-steps", "5", "--density", "vehicle=4", "--out", str(out)]) == 0
    summary = json.loads((out / "summary.json").read_text())
    assert summary["settings"]["generator"] == "diffusion" and summary["settings"]["density"] == {"vehicle": 4}
    episode = summary["episodes"][0]
    # the global scene token asks for 4 agents; overlap with the ego may remove some, none may be invented
    assert 1 <= episode["num_agents"] + episode["num_removed_overlap"] <= 4
