"""make_generator: names, options, and a one-line error for unknown names."""

from __future__ import annotations

import pytest

from sd_sim_plugin.errors import SdSimError
from sd_sim_plugin.generators.base import Generator
from sd_sim_plugin.generators.lane_heuristic import LaneHeuristicGenerator
from sd_sim_plugin.generators.registry import make_generator
from sd_sim_plugin.scene.types import Horizon


def test_lane_by_name_with_options():
    gen = make_generator("lane", horizon=Horizon(1.0, 3.0, 1.0))
    assert isinstance(gen, LaneHeuristicGenerator) and isinstance(gen, Generator)
    assert gen.horizon.num_steps == 5


def test_unknown_name_lists_valid_ones():
    with pytest.raises(SdSimError) as err:
        make_generator("gan")
    msg = str(err.value)
    assert "gan" in msg and all(n in msg for n in ("lane", "log", "metadrive", "diffusion")) and "\n" not in msg


def test_log_needs_reference_scenes():
    with pytest.raises(SdSimError, match="reference scenes"):
        make_generator("log")
