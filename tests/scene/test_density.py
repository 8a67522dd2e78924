"""Density, the global scene token as callers give it: a number, or a count per agent type."""

from __future__ import annotations

import pytest

from sd_sim_plugin.errors import SdSimError
from sd_sim_plugin.scene.tokens import density_by_type, density_json, parse_density, total_density
from sd_sim_plugin.scene.types import AgentType

V, P, C = AgentType.VEHICLE, AgentType.PEDESTRIAN, AgentType.CYCLIST


def test_density_forms_and_their_totals():
    """A number stays a number; type names or AgentType keys become a per-type mapping; totals add the types."""
    assert density_by_type(5) is None and density_by_type(None) is None
    assert density_by_type({"Vehicle": 3, P: 1}) == {V: 3, P: 1}
    assert total_density({"vehicle": 3, "pedestrian": 1}) == 4
    assert total_density(7) == 7 and total_density(None) is None
    assert parse_density(" 12 ") == 12
    assert parse_density("vehicle=10,pedestrian=0") == {V: 10, P: 0}
    assert density_json(parse_density("cyclist=2")) == {"cyclist": 2} and density_json(3) == 3


@pytest.mark.parametrize(("text", "message"), [
    ("ten", "expected a whole number or TYPE=N pairs"),
    ("-1", "must be >= 0"),
    ("vehicle=x", "'vehicle=x' is not TYPE=N"),
    ("bus=3", "unknown agent type 'bus'"),
    ("vehicle=-2", "vehicle must be a whole number of agents >= 0"),
])
def test_bad_density_is_one_clear_error(text, message):
    with pytest.raises(SdSimError, match=message):
        parse_density(text)


def test_a_generator_refuses_types_it_does_not_make():
    assert density_by_type({V: 2, P: 0}, (V,)) == {V: 2, P: 0}  # zero of another type is fine
    with pytest.raises(SdSimError, match="asks for pedestrian, but this generator makes vehicle only"):
        density_by_type({V: 2, P: 1}, (V,))
    with pytest.raises(SdSimError, match="whole number"):
        density_by_type({V: True})
