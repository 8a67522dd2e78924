"""The speed map: fitting it quantile to quantile, and slowing vehicles along their own decoded paths."""

from __future__ import annotations

import json
from dataclasses import replace

import numpy as np
import pytest

from sd_sim_plugin.errors import SdSimError
from sd_sim_plugin.model.boxes import proposals_to_agents
from sd_sim_plugin.model.config import ModelConfig
from sd_sim_plugin.model.speed_map import fit_speed_map, mapped_speeds, slow_along_paths


def test_fitted_map_carries_generated_speeds_onto_the_logged_distribution():
    """Speeds drawn uniformly in [0, 15] m/s, mapped, have the logged sample's stopped share and quantiles; the map
    starts at (0, 0) and never decreases."""
    rng = np.random.default_rng(0)
    generated = rng.uniform(0.0, 15.0, 4000)
    logged = np.concatenate([np.zeros(1800), rng.uniform(4.0, 10.0, 2200)])
    speed_map = fit_speed_map(generated, logged)
    assert speed_map[0] == (0.0, 0.0)
    src, dst = np.asarray(speed_map).T
    assert (np.diff(src) > 0).all() and (np.diff(dst) >= 0).all()
    mapped = mapped_speeds(rng.uniform(0.0, 15.0, 4000), speed_map)
    assert abs(np.mean(mapped < 0.3) - 0.45) < 0.05
    assert abs(np.median(mapped) - np.median(logged)) < 0.6
    with pytest.raises(SdSimError, match="at least 21"):
        fit_speed_map(generated[:5], logged)


def _paths() -> np.ndarray:
    """Three 5-pose trajectories (t = 0 at index 2, 1 s steps): straight at 8 m/s, turning at 8 m/s, and at 2 m/s."""
    t = np.arange(-2, 3, dtype=np.float64)
    traj = np.zeros((3, 5, 3))
    traj[0, :, 0] = 8.0 * t
    angle = 0.1 * t  # a circular arc of radius 80 m: 8 m per second along it
    traj[1, :, 0], traj[1, :, 1], traj[1, :, 2] = 80 * np.sin(angle), 80 * (1 - np.cos(angle)), angle
    traj[2, :, 0] = 2.0 * t + 5.0
    return traj


def test_vehicles_move_along_their_own_path_at_the_mapped_speed():
    """8 m/s mapped to 4 m/s: every pose half as far along the same path, t = 0 unchanged; below 3 m/s mapped to
    standing still: every pose at t = 0's; rows not selected are left alone."""
    speed_map = ((0.0, 0.0), (3.0, 0.0), (8.0, 4.0), (20.0, 16.0))
    traj = _paths()
    out = slow_along_paths(traj, np.array([True, True, True]), speed_map, t0=2, step_s=1.0)
    np.testing.assert_allclose(out[:, 2], traj[:, 2])
    np.testing.assert_allclose(out[0, :, 0], 4.0 * np.arange(-2, 3), atol=1e-9)
    speed = np.linalg.norm(np.gradient(out[:, :, :2], 1.0, axis=1)[:, 2], axis=1)
    assert speed[0] == pytest.approx(4.0) and speed[1] == pytest.approx(4.0, rel=0.01) and speed[2] == 0.0
    # the turning one stays on its arc (within the chord's sag) with its heading following it
    radius = np.hypot(out[1, :, 0], out[1, :, 1] - 80.0)
    assert np.abs(radius - 80.0).max() < 0.15
    np.testing.assert_allclose(out[1, :, 2], 0.05 * np.arange(-2, 3), atol=2e-3)
    np.testing.assert_allclose(out[2], np.repeat(traj[2, 2:3], 5, axis=0))
    kept = slow_along_paths(traj, np.array([False, True, False]), speed_map, t0=2, step_s=1.0)
    np.testing.assert_array_equal(kept[[0, 2]], traj[[0, 2]])


def test_the_map_never_speeds_a_vehicle_up():
    """A map that would raise every speed leaves the trajectories as decoded."""
    traj = _paths()
    out = slow_along_paths(traj, np.ones(3, bool), ((0.0, 0.0), (1.0, 10.0), (30.0, 40.0)), t0=2, step_s=1.0)
    np.testing.assert_array_equal(out, traj)


def test_decoding_slows_vehicle_proposals_only(tiny_config):
    """In ``proposals_to_agents`` the map slows a vehicle and leaves a cyclist at the same decoded speed, and a vehicle
    at an agent token's centre too."""
    cfg = tiny_config
    out = np.zeros((7 + 3 * cfg.num_deltas + 3, cfg.grid, cfg.grid), np.float32)
    out[0] = -10.0
    out[0, 10, 10], out[0, 10, 22] = 5.0, 4.0
    out[1], out[3:7] = 1.0, 0.5
    for j in range(cfg.num_deltas):  # every delta 0.6 m forward (6 m/s at 1 s steps): future outward, past inward
        out[7 + 3 * j] = 0.6 if j < cfg.horizon.num_future else -0.6
    out[7 + 3 * cfg.num_deltas, 10, 10] = 5.0  # a vehicle
    out[7 + 3 * cfg.num_deltas + 2, 10, 22] = 5.0  # a cyclist

    def speeds(config: ModelConfig) -> dict[int, float]:
        agents = proposals_to_agents(out, config)
        v = np.linalg.norm(agents.velocity[:, cfg.horizon.t0_index], axis=1)
        return {int(t): float(s) for t, s in zip(agents.types, v, strict=True)}

    assert speeds(cfg) == pytest.approx({0: 6.0, 2: 6.0})
    mapped = replace(cfg, speed_map=((0.0, 0.0), (10.0, 5.0)))
    assert speeds(mapped) == pytest.approx({0: 3.0, 2: 6.0})
    # an agent token's rendering keeps the speed the caller gave: within the token gate of its centre, not slowed
    vehicle_xy = proposals_to_agents(out, cfg).trajectory[0, cfg.horizon.t0_index, :2]
    for offset, expected in ((1.0, 6.0), (10.0, 3.0)):
        agents = proposals_to_agents(out, mapped, keep_speed_near=vehicle_xy[None] + offset)
        v = np.linalg.norm(agents.velocity[agents.types == 0, cfg.horizon.t0_index], axis=1)
        assert v == pytest.approx([expected])


def test_config_keeps_the_map_through_json_and_refuses_a_bad_one():
    """The map round-trips through config.json's JSON, a fine-tune starts without it, and a decreasing map or a
    negative speed is refused with what is wrong."""
    cfg = ModelConfig(speed_map=((0.0, 0.0), (2.0, 0.0), (9.5, 6.25)))
    assert ModelConfig.from_dict(json.loads(json.dumps(cfg.to_dict()))) == cfg
    assert cfg.with_default_sampling().speed_map == ()
    for bad in (((0.0, 0.0), (2.0, 3.0), (1.0, 4.0)), ((0.0, 0.0), (2.0, 3.0), (4.0, 1.0)), ((0.0, -1.0), (1.0, 1.0)),
                ((0.0, 0.0),)):
        with pytest.raises(ValueError, match="speed_map"):
            ModelConfig(speed_map=bad)
