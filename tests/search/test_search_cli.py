"""sd-sim search on a shipped spec in MetaDrive: outputs, and a reported critical scenario replays its collision."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import yaml

from sd_sim_plugin.cli import main

SPEC = Path(__file__).resolve().parents[2] / "scenario_specs" / "oncoming_in_ego_lane.yaml"


def _cli(argv: list[str], capsys) -> tuple[int, str, str]:
    code = main(argv)
    out, err = capsys.readouterr()
    return code, out, err


def test_search_outputs_and_critical_replay(tmp_path: Path, capsys) -> None:
    spec = yaml.safe_load(SPEC.read_text())
    spec["duration"] = 3.0  # short episodes: the wrong-way car meets the ego within 3 s in most of the box
    spec_path = tmp_path / "spec.yaml"
    spec_path.write_text(yaml.safe_dump(spec))
    out = tmp_path / "search"
    code, stdout, err = _cli(["search", str(spec_path), "--budget", "4", "--method", "gp-ucb", "--seed", "1",
                              "--generator", "lane", "--out", str(out), "--top", "2"], capsys)
    assert code == 0, err
    rows = list(csv.DictReader(open(out / "runs.csv")))
    assert len(rows) == 4 and {"value", "collision", "min_ttc_s", "u0", "ego.speed", "density"} <= set(rows[0])
    summary = json.loads((out / "summary.json").read_text())
    assert summary["evaluations"] == 4 and summary["collisions"] >= 1
    assert summary["first_collision_at"] == 1 + next(i for i, r in enumerate(rows) if r["collision"] == "True")
    for name in ("criticality.png", "best_so_far.png", "posterior.png"):
        assert (out / name).stat().st_size > 1000
    critical = out / "critical" / "rank1.yaml"
    fixed = yaml.safe_load(critical.read_text())
    assert isinstance(fixed["seed"], int) and fixed["generator"] == "lane"
    assert not any(isinstance(v, dict) for v in fixed["ego"].values())  # fixed values only
    best = max(rows, key=lambda r: float(r["value"]))
    assert best["collision"] == "True" and int(best["seed"]) == fixed["seed"]

    code, stdout, err = _cli(["run", str(critical), "--episodes", "1", "--out", str(tmp_path / "replay"),
                              "--no-gif", "--no-export"], capsys)
    assert code == 0, err
    (episode,) = json.loads((tmp_path / "replay" / "episodes.json").read_text())
    assert episode["collision"] is True and episode["seed"] == fixed["seed"]
    journal = [json.loads(line) for line in (out / "journal.jsonl").read_text().splitlines()[1:]]
    found = next(r for r in journal if r["i"] == int(best["i"]))
    assert episode["steps"] == found["metrics"]["steps"]  # the collision happens at the same step
