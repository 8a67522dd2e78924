"""The MetaDrive-traffic baseline on a short real PG rollout (MetaDrive runs headless)."""

from __future__ import annotations

import numpy as np
import pytest

from sd_sim_plugin.errors import SdSimError
from sd_sim_plugin.generators.metadrive_traffic import MetaDriveTrafficGenerator
from sd_sim_plugin.scene.geometry import boxes_overlap
from sd_sim_plugin.scene.types import Scene
from sd_sim_plugin.sources.pg import PGConfig, rollout, windows


@pytest.fixture(scope="module")
def pg_windows() -> list[Scene]:
    """Ego-centred windows of a 6 s episode on one evaluation map."""
    config = PGConfig(episode_s=6.0, others_per_t0=0)
    return windows(rollout(100_001, config), config=config)


def test_generates_fresh_metadrive_traffic_in_the_reference_frame(pg_windows):
    gen = MetaDriveTrafficGenerator(pg_windows)
    ref = pg_windows[0]
    a = gen.generate(ref.map, seed=0)[0]
    b = MetaDriveTrafficGenerator(pg_windows).generate(ref.map, seed=0)[0]
    c = gen.generate(ref.map, seed=1)[0]
    assert a.ego_index == -1 and a.meta["map_seed"] == 100_001 and len(a.agents) > 0
    np.testing.assert_allclose(a.agents.trajectory, b.agents.trajectory, atol=1e-4)  # same seed, same scene
    t0 = a.horizon.t0_index
    assert np.all(np.abs(a.agents.trajectory[:, t0, :2]) <= 40.0)
    boxes = np.concatenate([a.agents.trajectory[:, t0], a.agents.length[:, None], a.agents.width[:, None]], 1)
    assert not boxes_overlap(boxes, np.array([[0.0, 0.0, 0.0, ref.agents.length[0], ref.agents.width[0]]])).any()
    # A fresh traffic sample, not a replay of the reference (nor of another seed).
    ref_xy = ref.others.trajectory[:, t0, :2]
    for other in (ref_xy, c.agents.trajectory[:, t0, :2]):
        mine = a.agents.trajectory[:, t0, :2]
        same = len(other) == len(mine) and np.allclose(np.sort(other, 0), np.sort(mine, 0))
        assert not same


def test_refuses_non_pg_scenes_and_unknown_maps(pg_windows):
    ref = pg_windows[0]
    real = Scene(ref.map, ref.agents, ref.horizon, meta={"source": "scenarionet"})
    with pytest.raises(SdSimError, match="PG windows only"):
        MetaDriveTrafficGenerator([real])
    gen = MetaDriveTrafficGenerator(pg_windows[:1])
    with pytest.raises(SdSimError, match="not the map of a registered PG window"):
        gen.generate(pg_windows[-1].map)
