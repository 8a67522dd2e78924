"""Fixtures for spec tests: a complete valid spec and a way to run the CLI in-process."""

from __future__ import annotations

import copy
from pathlib import Path

import numpy as np
import pytest
import yaml

from sd_sim_plugin.cli import main
from sd_sim_plugin.scene.types import MapGeometry

from spec_fixtures import BASE_SPEC  # tests/specs is on sys.path



@pytest.fixture
def base_spec() -> dict:
    """A complete valid spec as a dict (a fresh copy)."""
    return copy.deepcopy(BASE_SPEC)


@pytest.fixture
def run_cli(capsys: pytest.CaptureFixture):
    """Run ``sd-sim`` in-process: ``run_cli(argv) -> (exit code, stdout, stderr)``."""

    def run(argv: list[str]) -> tuple[int, str, str]:
        try:
            code = main(argv)
        except SystemExit as exc:  # argparse errors
            code = exc.code
        out, err = capsys.readouterr()
        return int(code), out, err

    return run


def write_yaml(path: Path, data: object) -> Path:
    """Write ``data`` as YAML."""
    path.write_text(yaml.safe_dump(data, sort_keys=False))
    return path


@pytest.fixture
def dump_yaml():
    """``dump_yaml(path, data) -> path``: write ``data`` as YAML."""
    return write_yaml


@pytest.fixture
def road() -> MapGeometry:
    """A straight two-lane road with two oncoming lanes (see :func:`straight_road`)."""
    return straight_road()


def straight_road(length: float = 200.0, lanes: int = 2, width: float = 3.5, oncoming: bool = True,
                  split: float = 10.0) -> MapGeometry:
    """A straight road in the ego frame: ``lanes`` lanes the ego's way (lane 0 at y = 0, others to the right),
    optionally as many oncoming lanes on the left; the ego's direction is split in two pieces at x = ``split`` (tests links)."""
    ids, centres, exits, entries = [], [], {}, {}
    for k in range(lanes):
        y = -k * width
        a, b = f"f{k}a", f"f{k}b"
        ids += [a, b]
        centres += [np.array([[-length / 2, y], [split, y]]), np.array([[split, y], [length / 2, y]])]
        # like MetaDrive's PG maps, links list every lane of the next road (the continuing one last)
        exits[a] = [f"f{j}b" for j in range(lanes) if j != k] + [b]
        entries[b] = [f"f{j}a" for j in range(lanes) if j != k] + [a]
    if oncoming:
        for k in range(lanes):
            y = (k + 1) * width
            ids.append(f"o{k}")
            centres.append(np.array([[length / 2, y], [-length / 2, y]]))
    return MapGeometry(lane_ids=ids, lane_centrelines=[c.astype(np.float32) for c in centres],
                       lane_widths=np.full(len(ids), width, np.float32), lane_exits=exits, lane_entries=entries)
