"""Hungarian token matching with gates, and the token-following summary."""

from __future__ import annotations

import numpy as np
import pytest

from sd_sim_plugin.metrics.token_following import match_tokens, summarise_token_following, token_following
from sd_sim_plugin.scene.tokens import AgentToken
from sd_sim_plugin.scene.types import Agents, Horizon

H = Horizon(0.0, 2.0, 1.0)


def _agents(rows: list[tuple[float, float, float, float]]) -> Agents:
    """Agents at (x, y, heading) moving along their heading at ``speed``."""
    n = len(rows)
    traj = np.zeros((n, 3, 3))
    vel = np.zeros((n, 3, 2))
    for i, (x, y, h, v) in enumerate(rows):
        for t in range(3):
            traj[i, t] = (x + v * t * np.cos(h), y + v * t * np.sin(h), h)
            vel[i, t] = (v * np.cos(h), v * np.sin(h))
    return Agents(types=np.zeros(n), length=np.full(n, 4.5), width=np.full(n, 1.9), trajectory=traj, velocity=vel,
                  valid=np.ones((n, 3), bool))


def test_hungarian_prefers_the_global_assignment_over_greedy():
    # Token 0 is nearest agent 0, but agent 0 is token 1's only candidate: the optimal assignment crosses.
    tokens = [AgentToken(x=0.0, y=0.0, heading=0.0), AgentToken(x=-2.0, y=0.0, heading=0.0)]
    agents = _agents([(-0.5, 0.0, 0.0, 0.0), (1.5, 0.0, 0.0, 0.0)])
    assert sorted(match_tokens(tokens, agents, H)) == [(0, 1), (1, 0)]


def test_gates_on_distance_and_heading():
    tokens = [AgentToken(x=0.0, y=0.0, heading=0.0)]
    assert match_tokens(tokens, _agents([(2.1, 0.0, 0.0, 0.0)]), H) == [(0, 0)]
    assert match_tokens(tokens, _agents([(2.3, 0.0, 0.0, 0.0)]), H) == []
    assert match_tokens(tokens, _agents([(0.0, 0.0, 0.19, 0.0)]), H) == [(0, 0)]
    assert match_tokens(tokens, _agents([(0.0, 0.0, 0.21, 0.0)]), H) == []
    assert match_tokens(tokens, _agents([(0.0, 0.0, 2 * np.pi - 0.1, 0.0)]), H) == [(0, 0)]  # wrapped


def test_token_following_counts_and_speed_errors():
    tokens = [AgentToken(x=0.0, y=0.0, heading=0.0, speed=5.0, future_speed=5.0),
              AgentToken(x=20.0, y=0.0, heading=0.0, speed=10.0, future_speed=12.0),
              AgentToken(x=50.0, y=50.0, heading=0.0)]  # nothing there
    agents = _agents([(0.5, 0.0, 0.0, 6.0), (20.0, 0.0, 0.0, 10.0), (-30.0, 0.0, 0.0, 3.0), (30.0, 3.0, 0.0, 3.0)])
    r = token_following(tokens, density=1, agents=agents, horizon=H)
    assert (r["matched"], r["extra_agents"], r["extra_minus_density"]) == (2, 2, 1)
    assert sorted(r["speed_error_now"]) == pytest.approx([0.0, 1.0])
    assert sorted(r["speed_error_future"]) == pytest.approx([1.0, 2.0])
    s = summarise_token_following([r, token_following([], 0, _agents([]), H)])
    assert s["match_rate"] == pytest.approx(2 / 3)
    assert s["extra_agents_mean"] == pytest.approx(1.0)
    assert s["extra_minus_density_mae"] == pytest.approx(0.5)
    assert s["speed_mae_now"] == pytest.approx(0.5) and s["speed_mae_future"] == pytest.approx(1.5)


def test_reference_density_counts_each_agent_type_the_generator_makes():
    """The global token taken from a reference counts its vehicles for a vehicle-only generator, and its
    pedestrians too, apart, for one that makes them; the token request's density follows the same rule."""
    from sd_sim_plugin.generators.base import generated_types
    from sd_sim_plugin.metrics.harness import reference_density, token_request
    from sd_sim_plugin.scene.types import AgentType, MapGeometry, Scene

    agents = _agents([(0, 0, 0, 5), (10, 0, 0, 5), (20, 3, 0, 5), (5, 8, 1.5, 1), (90, 0, 0, 5)])
    agents.types = np.array([0, 0, 0, int(AgentType.PEDESTRIAN), 0])  # ego, 2 vehicles, pedestrian, out of box
    scene = Scene(MapGeometry(), agents, H, ego_index=0)

    class AllTypes:
        agent_types = (AgentType.VEHICLE, AgentType.PEDESTRIAN, AgentType.CYCLIST)

    assert generated_types(object()) == (AgentType.VEHICLE,)
    V, P, C = AgentType.VEHICLE, AgentType.PEDESTRIAN, AgentType.CYCLIST
    assert reference_density(scene, generated_types(object())) == {V: 2}
    assert reference_density(scene, generated_types(AllTypes())) == {V: 2, P: 1, C: 0}
    for seed in range(5):
        tokens, rest = token_request(scene, seed)
        tokens_all, rest_all = token_request(scene, seed, AllTypes.agent_types)
        assert len(tokens) == len(tokens_all) and len(tokens) + rest[V] == 2
        assert rest_all == {V: rest[V], P: 1, C: 0}
