"""Fixed-value specs -> agent tokens on a map: lane walking, side lanes, manoeuvres, sizes."""

from __future__ import annotations

import numpy as np
import pytest

from sd_sim_plugin.errors import SdSimError
from sd_sim_plugin.scene.tokens import TurnClass
from sd_sim_plugin.scene.types import AgentType
from sd_sim_plugin.specs.resolve import spec_tokens
from sd_sim_plugin.specs.schema import Spec
from sd_sim_plugin.specs.space import concretize, open_dimensions


def _spec(*agents: dict) -> Spec:
    return Spec.model_validate({"version": 1, "name": "t", "description": "t", "map": {"pg": {"blocks": "S"}},
                                "agents": list(agents)})


@pytest.mark.parametrize("lane, distance, xy, heading", [
    ("ego", 20.0, (20.0, 0.0), 0.0),
    ("ego", 130.0, None, None),  # past the end of the road
    ("ego", -30.0, (-30.0, 0.0), 0.0),  # behind, across the lane link at x = 0
    ("right", 10.0, (10.0, -3.5), 0.0),
    ("left", 10.0, None, None),  # the ego is in the leftmost lane of its direction
    ("oncoming", 40.0, (40.0, 3.5), np.pi),
])
def test_lane_placement(road, lane: str, distance: float, xy, heading) -> None:
    spec = _spec({"placement": {"lane": lane, "distance": distance}, "speed": 5.0})
    if xy is None:
        with pytest.raises(SdSimError, match="agents\\[0\\]|lane ends"):
            spec_tokens(spec, road)
        return
    (token,) = spec_tokens(spec, road)
    assert (token.x, token.y) == pytest.approx(xy, abs=1e-6)
    assert abs(np.angle(np.exp(1j * (token.heading - heading)))) < 1e-6


def test_offset_heading_size_and_speeds(road) -> None:
    spec = _spec({"size": "bus", "placement": {"lane": "ego", "distance": 15.0, "offset": 0.5}, "heading": 90.0,
                  "speed": 3.0, "speed_2s": 1.0, "manoeuvre": "right"},
                 {"size": "pedestrian", "placement": {"x": 12.0, "y": -6.0}, "heading": 90.0, "speed": 1.4},
                 {"size": "car", "length": 5.2, "type": "cyclist", "placement": {"x": 5.0, "y": 5.0},
                  "speed": 0.0, "manoeuvre": "stop"})
    bus, ped, odd = spec_tokens(spec, road)
    assert (bus.x, bus.y, bus.heading) == pytest.approx((15.0, 0.5, np.pi / 2))
    assert (bus.length, bus.width, bus.speed, bus.future_speed, bus.turn) == (12.0, 2.55, 3.0, 1.0, TurnClass.RIGHT)
    assert ped.agent_type == AgentType.PEDESTRIAN and ped.future_speed == 1.4  # speed_2s defaults to speed
    assert odd.agent_type == AgentType.CYCLIST and odd.length == 5.2 and odd.width == 1.9
    assert odd.turn == TurnClass.STOP and odd.future_speed == 0.0


def test_lane_change_points_towards_target_lane(road) -> None:
    cut_in = _spec({"placement": {"lane": "right", "distance": 8.0}, "speed": 10.0, "manoeuvre": "lane_change"})
    (token,) = spec_tokens(cut_in, road)
    assert 0.05 < token.heading < 0.2 and token.turn == TurnClass.STRAIGHT  # right lane -> left, into the ego's lane
    out = _spec({"placement": {"lane": "ego", "distance": 8.0}, "speed": 10.0, "manoeuvre": "lane_change_right"})
    assert -0.2 < spec_tokens(out, road)[0].heading < -0.05


def test_open_leaves_must_be_fixed_first(road) -> None:
    spec = _spec({"placement": {"lane": "ego", "distance": {"range": [10, 20]}}, "speed": 5.0})
    with pytest.raises(ValueError, match="still open"):
        spec_tokens(spec, road)
    (token,) = spec_tokens(concretize(spec, [0.5]), road)
    assert token.x == pytest.approx(15.0)


def test_box_dimensions_and_concretize(base_spec: dict) -> None:
    spec = Spec.model_validate(base_spec)
    dims = open_dimensions(spec)
    assert [d.name for d in dims] == ["ego.speed", "agents[0].placement.distance", "agents[0].speed",
                                      "agents[1].size", "density"]
    low = concretize(spec, np.zeros(5), seed=3)
    high = concretize(spec, np.ones(5))
    assert (low.ego.speed, low.agents[1].size, low.density, low.seed) == (5.0, "car", 0, 3)
    assert (high.ego.speed, high.agents[1].size, high.density) == (12.0, "truck", 6)
    assert open_dimensions(low) == []
    # integer leaves: equal-width bins, so each of the 7 densities is hit by a 1/7 share of the box
    dens = [concretize(spec, [0, 0, 0, 0, u]).density for u in np.linspace(0, 1, 700, endpoint=False)]
    assert np.bincount(dens).tolist() == [100] * 7
    with pytest.raises(ValueError, match="5 open dimensions"):
        concretize(spec, [0.5])
