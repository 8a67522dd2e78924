"""Two generated-traffic envs in worker processes under Gymnasium's AsyncVectorEnv."""

from __future__ import annotations

import functools
import time

import gymnasium
import numpy as np

# The "module:id" form makes each worker import the registration itself.
ENV_ID = "sd_sim_plugin.sim:sd_sim_plugin/ScenarioDiffusion-v0"


def test_async_vector_env_two_workers_runs_1000_steps():
    make = functools.partial(gymnasium.make, ENV_ID, generator="lane", density=3, num_scenarios=4, horizon=150)
    # forkserver: workers start from a clean process, not a fork of this one (which has had MetaDrive engines).
    envs = gymnasium.vector.AsyncVectorEnv([make, make], context="forkserver")
    try:
        obs, info = envs.reset(seed=[0, 1])
        assert obs.shape[0] == 2 and list(info["num_agents"]) == [3, 3]
        assert info["map_index"][0] != info["map_index"][1] or info["scene_seed"][0] != info["scene_seed"][1]
        envs.action_space.seed(0)
        episodes_ended, started = 0, time.perf_counter()
        for _ in range(1000):
            obs, reward, terminated, truncated, info = envs.step(envs.action_space.sample())
            assert np.all(np.isfinite(reward)) and "min_gap_m" in info
            episodes_ended += int(np.sum(terminated | truncated))
        elapsed = time.perf_counter() - started
        assert episodes_ended > 0  # autoreset ran inside the workers
        print(f"AsyncVectorEnv 2 workers: 1000 steps in {elapsed:.1f} s, {episodes_ended} episodes ended")
    finally:
        envs.close()
