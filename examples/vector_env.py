"""Generated-traffic envs in parallel worker processes with Gymnasium's AsyncVectorEnv.

MetaDrive allows one engine per process, so vector envs must use subprocesses. The "module:id" form of the env id
makes each worker import the registration itself; "forkserver" starts workers from a clean process (forking a
process that already ran MetaDrive halves throughput).

    .venv/bin/python examples/vector_env.py --workers 2 --steps 1000
"""

from __future__ import annotations

import argparse
import functools
import time

import gymnasium
import numpy as np

ENV_ID = "sd_sim_plugin.sim:sd_sim_plugin/ScenarioDiffusion-v0"


def main() -> None:
    """Step a vector env with random actions and report throughput and criticality."""
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--workers", type=int, default=2)
    p.add_argument("--steps", type=int, default=1000, help="vector steps (each steps every worker)")
    p.add_argument("--generator", default=None, help="generator name (default: the package default)")
    p.add_argument("--actor-mode", default="replay", choices=("replay", "idm"))
    args = p.parse_args()

    make = functools.partial(gymnasium.make, ENV_ID, generator=args.generator, actor_mode=args.actor_mode,
                             num_scenarios=20, horizon=300)
    envs = gymnasium.vector.AsyncVectorEnv([make] * args.workers, context="forkserver")
    try:
        envs.reset(seed=list(range(args.workers)))
        envs.action_space.seed(0)
        started = time.perf_counter()
        ended, crashes, closest = 0, 0, np.inf
        for _ in range(args.steps):
            _, _, terminated, truncated, info = envs.step(envs.action_space.sample())
            done = terminated | truncated
            ended += int(done.sum())
            crashes += int(np.sum(info["crash_vehicle"] & done))
            closest = min(closest, float(np.min(info["min_gap_m"])))
        elapsed = time.perf_counter() - started
    finally:
        envs.close()
    total = args.steps * args.workers
    print(f"{args.workers} workers: {total} env steps in {elapsed:.1f} s ({total / elapsed:.0f} steps/s); "
          f"{ended} episodes ended, {crashes} in a vehicle crash; closest box gap {closest:.2f} m")


if __name__ == "__main__":
    main()
