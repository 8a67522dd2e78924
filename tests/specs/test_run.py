"""Specs closed loop in MetaDrive: every shipped spec runs; sd-sim run writes its outputs; replays are exact."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import numpy as np
import pytest

from sd_sim_plugin.generators.registry import make_generator
from sd_sim_plugin.specs.load import load_spec
from sd_sim_plugin.specs.runner import SpecRunner, draw_point
from sd_sim_plugin.specs.space import concretize

SPECS = sorted((Path(__file__).resolve().parents[2] / "scenario_specs").glob("*.yaml"))


def test_at_least_eight_specs_with_one_line_descriptions() -> None:
    assert len(SPECS) >= 8
    for path in SPECS:
        spec = load_spec(path)
        assert spec.name == path.stem and "\n" not in spec.description
        assert path.read_text().startswith("# "), f"{path.name}: first line must be a one-line comment"


def test_every_shipped_spec_runs() -> None:
    with SpecRunner(make_generator("lane")) as runner:
        for path in SPECS:
            spec = load_spec(path).model_copy(update={"duration": 1.0})  # short: this checks set-up, not outcomes
            concrete = concretize(spec, draw_point(spec, 0), seed=0)
            result = runner.run(concrete, 0)
            assert result.status == "ok" and result.steps >= 1, path.name
            assert result.fidelity == 1.0, (path.name, result.key_agents_matched)  # lane generator places tokens


def test_run_cli_outputs_and_resume(run_cli, tmp_path: Path) -> None:
    out = tmp_path / "run"
    spec = str(SPECS[0].parent / "oncoming_in_ego_lane.yaml")
    args = ["run", spec, "--episodes", "2", "--ego", "idm", "--out", str(out), "--generator", "lane", "--seed", "5"]
    code, stdout, err = run_cli(args[:3] + ["1"] + args[4:])
    assert code == 0, err
    code, stdout, err = run_cli(args)
    assert code == 2 and "--resume" in err  # the folder holds a run: never overwritten silently
    code, stdout, err = run_cli(args + ["--resume"])
    assert code == 0, err
    rows = list(csv.DictReader(open(out / "episodes.csv")))
    assert [r["seed"] for r in rows] == ["5", "6"] and all(r["status"] == "ok" for r in rows)
    assert {"collision", "min_ttc_s", "min_gap_m", "route_completion", "fidelity", "ego.speed"} <= set(rows[0])
    episodes = json.loads((out / "episodes.json").read_text())
    summary = json.loads((out / "summary.json").read_text())
    assert summary["episodes"] == 2 and summary["spec_fidelity"] == 1.0
    assert summary["collisions"] == sum(e["collision"] for e in episodes)
    assert sorted(p.name for p in (out / "gifs").iterdir()) == ["ep0000.gif", "ep0001.gif"]
    exported = sorted(p.name for p in (out / "scenarios").iterdir())
    assert "dataset_summary.pkl" in exported and len([n for n in exported if n.startswith("sd_")]) == 2
    assert "spec fidelity 100.0%" in stdout


def test_same_seed_same_outcome() -> None:
    spec = load_spec(SPECS[0].parent / "lead_braking.yaml").model_copy(update={"duration": 3.0})
    concrete = concretize(spec, np.full(6, 0.3), seed=11)
    with SpecRunner(make_generator("lane")) as runner:
        first = runner.run(concrete, 11)
        runner.run(concretize(spec, np.full(6, 0.9), seed=12), 12)  # another episode in between
        again = runner.run(concrete, 11)
    a, b = (r.to_dict() | {"episode_s": 0, "generation_s": 0} for r in (first, again))
    assert a.keys() == b.keys()
    for key in a:  # MetaDrive's physics drifts ~1e-5 m between identical runs: floats within a tolerance
        assert a[key] == (pytest.approx(b[key], rel=1e-6, abs=1e-4) if isinstance(b[key], float) else b[key]), key


def test_bad_placement_is_a_failed_episode_not_a_crash(run_cli, tmp_path: Path, dump_yaml, base_spec: dict) -> None:
    base_spec["agents"] = [{"placement": {"lane": "left2", "distance": 10.0}, "speed": 5.0}]  # no such lane
    base_spec["duration"] = 1.0
    spec = dump_yaml(tmp_path / "s.yaml", base_spec)
    code, stdout, err = run_cli(["run", str(spec), "--episodes", "1", "--out", str(tmp_path / "o"), "--no-gif",
                                 "--no-export"])
    assert code == 0
    row = next(csv.DictReader(open(tmp_path / "o" / "episodes.csv")))
    assert row["status"] == "failed" and "no lane 'left2'" in row["error"]
    assert "0/1 episodes ran (1 failed)" in stdout


@pytest.mark.parametrize("command", ["run", "search"])
def test_density_of_a_type_the_generator_cannot_make_is_refused_up_front(run_cli, tmp_path: Path, dump_yaml,
                                                                       command: str) -> None:
    """A spec asking for pedestrians, played with the vehicle-only lane generator: one line, exit 2, no output."""
    spec = {"version": 1, "name": "peds", "description": "pedestrians asked of a vehicle-only generator",
            "map": {"pg": {"blocks": "S"}}, "density": {"vehicle": 2, "pedestrian": {"range": [0, 3]}}}
    path = dump_yaml(tmp_path / "peds.yaml", spec)
    budget = ["--budget", "2"] if command == "search" else []
    code, _, err = run_cli([command, str(path), "--generator", "lane", *budget, "--out", str(tmp_path / "o")])
    assert code == 2 and err.count("\n") == 1
    assert "generator lane: density asks for pedestrian, but this generator makes vehicle only" in err
    assert not (tmp_path / "o").exists()


@pytest.mark.parametrize("ego", ["nosuchmodule:policy", "expert2"])
def test_bad_ego_policy(run_cli, tmp_path: Path, ego: str) -> None:
    code, _, err = run_cli(["run", str(SPECS[0]), "--ego", ego, "--out", str(tmp_path / "o")])
    assert code == 2 and err.count("\n") == 1


def test_spec_on_a_real_scenarionet_map(dev_data_dir: Path, tmp_path: Path, dump_yaml, run_cli) -> None:
    spec = {"version": 1, "name": "real_lead", "description": "a lead car brakes on a real map",
            "map": {"scenarionet": {"file": str(dev_data_dir / "sd_waymo_v1.2_eb4b91b10ca94ff2.pkl")}},
            "agents": [{"name": "lead", "placement": {"lane": "ego", "distance": 12.0}, "speed": 8.0, "speed_2s": 2.0}],
            "density": {"vehicle": 2, "pedestrian": 1}, "duration": 1.0}
    code, stdout, err = run_cli(["run", str(dump_yaml(tmp_path / "real.yaml", spec)), "--episodes", "1",
                                 "--out", str(tmp_path / "o"), "--no-gif", "--no-export"])
    assert code == 0, err
    (episode,) = json.loads((tmp_path / "o" / "episodes.json").read_text())
    assert episode["status"] == "ok" and episode["key_agents_matched"] == [True]


def test_ego_policy_as_module_callable(run_cli, tmp_path: Path) -> None:
    import ego_policies  # tests/specs is on sys.path

    ego_policies.CALLS.clear()
    code, _, err = run_cli(["run", str(SPECS[0].parent / "lead_braking.yaml"), "--ego", "ego_policies:brake",
                            "--duration", "1", "--out", str(tmp_path / "o"), "--no-gif", "--no-export"])
    assert code == 0, err
    (episode,) = json.loads((tmp_path / "o" / "episodes.json").read_text())
    assert episode["status"] == "ok" and len(ego_policies.CALLS) == episode["steps"] == 10
