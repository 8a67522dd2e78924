"""Spec loading: valid specs parse; errors give file, line and field path in one line."""

from __future__ import annotations

from pathlib import Path

import pytest

from sd_sim_plugin.errors import SdSimError
from sd_sim_plugin.specs.leaves import Choice, Range
from sd_sim_plugin.specs.load import load_spec, parse_spec, spec_to_yaml



def test_base_spec_parses_with_ranges_and_choices(tmp_path: Path, base_spec: dict, dump_yaml) -> None:
    spec = load_spec(dump_yaml(tmp_path / "s.yaml", base_spec))
    assert spec.agents[0].speed == Range(3.0, 10.0)
    assert spec.agents[1].size == Choice(("car", "truck"))
    assert spec.density == Range(0, 6, integer=True)
    assert spec.agents[0].speed_2s == 4.0


def test_density_per_agent_type_is_a_mapping_of_leaves(base_spec: dict) -> None:
    """``density`` may give a count per agent type, each a number or a range: ranges are search dimensions, and the
    generator is asked for every type (a type left out: none)."""
    from sd_sim_plugin.specs.space import concretize, open_dimensions

    spec = parse_spec(__import__("yaml").safe_dump({**base_spec, "density": {"vehicle": {"range": [2, 9]},
                                                                             "pedestrian": 1}}))
    dims = [d.name for d in open_dimensions(spec)]
    assert dims[-1] == "density.vehicle" and "density" not in dims
    high = concretize(spec, [1.0] * len(dims))
    assert high.generator_density() == {"vehicle": 9, "cyclist": 0, "pedestrian": 1}
    assert parse_spec(spec_to_yaml(spec)) == spec
    with pytest.raises(ValueError, match="resolve the spec first"):
        spec.generator_density()
    assert parse_spec(__import__("yaml").safe_dump({**base_spec, "density": 4})).generator_density() == 4


def test_round_trip_through_yaml(base_spec: dict) -> None:
    spec = parse_spec(__import__("yaml").safe_dump(base_spec))
    assert parse_spec(spec_to_yaml(spec)) == spec


SPEC_TEXT = """\
version: 1
name: t
description: test
map:
  pg: {blocks: SX}
agents:
  - size: car
    placement:
      lane: ego
      distance: 20
    speed:
      range: [12, 3]
"""


@pytest.mark.parametrize("old, new, line, path, words", [
    ("range: [12, 3]", "range: [12, 3]", 11, "agents[0].speed", "lo (12) is greater than hi (3)"),
    ("      distance: 20", "      distance: 20\n      wibble: 1", 11, "agents[0].placement.wibble", "unknown field"),
    ("      lane: ego\n", "", 8, "agents[0].placement", "needs 'lane' and 'distance'"),
    ("  pg: {blocks: SX}", "  pg: {blocks: SQ}", 5, "map.pg.blocks", "unknown block ids ['Q']"),
    ("size: car", "size: boat", 7, "agents[0].size", "expected one of"),
    ("description: test\n", "", 1, "description", "required field is missing"),
    ("distance: 20", "distance: 1.0e+400", 10, "agents[0].placement.distance", "finite"),
    ("distance: 20", "distance: '20'", 10, "agents[0].placement.distance", "expected a number"),
    ("name: t", "name: t\nname: u", 3, "name", "key given twice"),
    ("name: t", "name: t\ndensity: {vehicles: 3}", 3, "density.vehicles", "unknown field"),
    ("name: t", "name: t\ndensity: {vehicle: 65}", 3, "density.vehicle", "must lie in [0, 64] agents"),
    ("name: t", "name: t\ndensity: many", 3, "density", "expected a whole number or {range: [lo, hi]}"),
])
def test_error_names_file_line_and_path(tmp_path: Path, old: str, new: str, line: int, path: str, words: str) -> None:
    text = SPEC_TEXT.replace("range: [12, 3]", "range: [3, 12]") if old != "range: [12, 3]" else SPEC_TEXT
    assert old in text
    spec_file = tmp_path / "spec.yaml"
    spec_file.write_text(text.replace(old, new, 1))
    with pytest.raises(SdSimError) as info:
        load_spec(spec_file)
    msg = str(info.value)
    assert msg.startswith(f"{spec_file}:{line}: {path}: "), msg
    assert words in msg
    assert "\n" not in msg


def test_bad_yaml_gives_line(tmp_path: Path) -> None:
    spec_file = tmp_path / "spec.yaml"
    spec_file.write_text("version: 1\nname: [unclosed\ndescription: x\n")
    with pytest.raises(SdSimError, match=rf"^{spec_file}:\d+: invalid YAML"):
        load_spec(spec_file)


def test_stop_agent_must_be_stationary(base_spec: dict) -> None:
    base_spec["agents"][0]["manoeuvre"] = "stop"
    with pytest.raises(SdSimError, match=r"agents\[0\]: a 'stop' agent is stationary"):
        parse_spec(__import__("yaml").safe_dump(base_spec))


def test_scenarionet_map_rejects_ego_start(base_spec: dict, tmp_path: Path, dump_yaml) -> None:
    base_spec["map"] = {"scenarionet": {"file": "scene.pkl", "frame": 0}}
    with pytest.raises(SdSimError, match="ego starts and drives as logged"):
        load_spec(dump_yaml(tmp_path / "s.yaml", base_spec))
    del base_spec["ego"]
    spec = load_spec(dump_yaml(tmp_path / "s.yaml", base_spec))
    assert spec.map.scenarionet.file == str(tmp_path / "scene.pkl")  # relative to the spec file


def test_validate_cli(tmp_path: Path, base_spec: dict, dump_yaml, run_cli) -> None:
    good = dump_yaml(tmp_path / "good.yaml", base_spec)
    code, out, err = run_cli(["validate", str(good)])
    assert code == 0 and err == ""
    assert "5 open dimension(s)" in out and "agents[1].size" in out
    base_spec["duration"] = 0.1
    bad = dump_yaml(tmp_path / "bad.yaml", base_spec)
    code, out, err = run_cli(["validate", str(bad)])
    assert code == 2 and out == ""
    assert err.count("\n") == 1 and f"{bad}:" in err and "duration: must lie in [1, 120] s" in err
    code, out, err = run_cli(["validate", str(tmp_path / "missing.yaml")])
    assert code == 2 and "no such spec file" in err
