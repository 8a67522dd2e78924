"""Collection throughput (windows/s) beside MetaDrive's own env.step rate, measured in the same run.

For each map seed: (1) baseline: a bare ``MetaDriveEnv`` with the same config, reset and stepped for the episode,
nothing recorded; (2) collection: :func:`rollout` (env creation, recording every vehicle each step) plus
:func:`windows` (resampling, ego-frame transform, map crop) plus writing the shard. Wall and process-CPU times.
With ``--workers N`` (N > 1), then the same seeds through :func:`collect` in one process and in N worker processes
(``sd-sim collect --workers``), and the wall-time ratio of the two.
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

from sd_sim_plugin.data.splits import DEV_PG_SEEDS
from sd_sim_plugin.data.store import collect, write_shard
from sd_sim_plugin.scene.types import Horizon
from sd_sim_plugin.sources.metadrive_assets import ensure_headless_assets
from sd_sim_plugin.sources.pg import PGConfig, env_config, pg_units, rollout, windows


def _clock() -> tuple[float, float]:
    return time.perf_counter(), time.process_time()


def _since(start: tuple[float, float]) -> tuple[float, float]:
    wall, cpu = _clock()
    return wall - start[0], cpu - start[1]


def bare_env(seed: int, config: PGConfig) -> dict:
    """MetaDrive alone: env creation + reset, then env.step for the episode (no recording)."""
    from metadrive.envs import MetaDriveEnv

    start = _clock()
    env = MetaDriveEnv(env_config(seed, config))
    env.reset()
    setup = _since(start)
    dt = float(env.config["physics_world_step_size"]) * int(env.config["decision_repeat"])
    steps = int(round(config.episode_s / dt))
    start = _clock()
    done_at = steps
    for i in range(steps):
        _, _, terminated, truncated, _ = env.step([0.0, 0.0])
        if terminated or truncated:
            done_at = i + 1
            break
    stepping = _since(start)
    env.close()
    return {"steps": done_at, "setup": setup, "step": stepping}


def collection(seed: int, config: PGConfig, out: Path) -> dict:
    """Our pipeline for one seed: rollout with recording, windows, shard write."""
    start = _clock()
    run = rollout(seed, config)
    scenes = windows(run, Horizon(), config)
    write_shard(out / f"pg_{seed:06d}.npz", scenes, {"source": {"map_seed": seed}})
    return {"steps": len(run.tracks.times) - 1, "windows": len(scenes), "total": _since(start)}


def main(argv: list[str] | None = None) -> int:
    """Print per-seed and overall throughput with the ratio to MetaDrive's bare step rate."""
    parser = argparse.ArgumentParser(prog="python -m benchmarks.collect")
    parser.add_argument("--seeds", type=int, nargs="*", default=list(DEV_PG_SEEDS))
    parser.add_argument("--episode-s", type=float, default=PGConfig().episode_s)
    parser.add_argument("--workers", type=int, default=2,
                        help="also time collect() on the seeds in one process and in this many (1: skip)")
    args = parser.parse_args(argv)
    ensure_headless_assets()
    config = PGConfig(episode_s=args.episode_s)
    print(f"PG collection, default config (episode {config.episode_s} s, windows every {config.window_stride_s} s, "
          f"ego + {config.others_per_t0} other centres), seeds {args.seeds}")
    print("seed | env steps | bare env.step steps/s (wall, CPU) | bare setup s | collection windows | "
          "collection windows/s (wall, CPU) | collection sim steps/s (wall) | collection / bare step rate (wall, CPU)")
    tot = {"w": 0, "cw": 0.0, "cc": 0.0, "bs": 0, "bw": 0.0, "bc": 0.0, "bsw": 0.0, "bsc": 0.0, "cs": 0}
    with tempfile.TemporaryDirectory() as tmp:
        for seed in args.seeds:
            bare = bare_env(seed, config)
            ours = collection(seed, config, Path(tmp))
            b_rate = (bare["steps"] / bare["step"][0], bare["steps"] / bare["step"][1])
            c_steps = (ours["steps"] / ours["total"][0], ours["steps"] / ours["total"][1])
            print(f"{seed} | {bare['steps']} | {b_rate[0]:.1f}, {b_rate[1]:.1f} | {bare['setup'][0]:.2f} | "
                  f"{ours['windows']} | {ours['windows'] / ours['total'][0]:.2f}, "
                  f"{ours['windows'] / ours['total'][1]:.2f} | {c_steps[0]:.1f} | "
                  f"{c_steps[0] / b_rate[0]:.2f}, {c_steps[1] / b_rate[1]:.2f}")
            tot["w"] += ours["windows"]
            tot["cw"] += ours["total"][0]
            tot["cc"] += ours["total"][1]
            tot["cs"] += ours["steps"]
            tot["bs"] += bare["steps"]
            tot["bw"] += bare["step"][0]
            tot["bc"] += bare["step"][1]
            tot["bsw"] += bare["setup"][0] + bare["step"][0]
            tot["bsc"] += bare["setup"][1] + bare["step"][1]
    b_rate = (tot["bs"] / tot["bw"], tot["bs"] / tot["bc"])
    c_rate = (tot["cs"] / tot["cw"], tot["cs"] / tot["cc"])
    print(f"overall: collection {tot['w'] / tot['cw']:.2f} windows/s wall ({tot['w'] / tot['cc']:.2f} per CPU-s), "
          f"{tot['cw'] / len(args.seeds):.1f} s wall per map seed")
    print(f"overall: bare MetaDrive env.step {b_rate[0]:.1f} steps/s wall ({b_rate[1]:.1f} per CPU-s); "
          f"collection {c_rate[0]:.1f} sim steps/s wall ({c_rate[1]:.1f} per CPU-s) including env creation, "
          f"recording, windows and shard writing")
    print(f"ratio collection / bare env.step rate: {c_rate[0] / b_rate[0]:.2f} (wall), "
          f"{c_rate[1] / b_rate[1]:.2f} (CPU); "
          f"vs bare env incl. creation+reset: {c_rate[0] / (tot['bs'] / tot['bsw']):.2f} (wall), "
          f"{c_rate[1] / (tot['bs'] / tot['bsc']):.2f} (CPU)")
    if args.workers > 1:
        walls = {}
        for workers in (1, args.workers):
            with tempfile.TemporaryDirectory() as tmp:
                start = time.perf_counter()
                collect(pg_units(args.seeds, Horizon(), config), tmp, {}, progress=False, workers=workers)
                walls[workers] = time.perf_counter() - start
        print(f"collect() on {len(args.seeds)} seeds: 1 process {walls[1]:.1f} s, {args.workers} worker processes "
              f"{walls[args.workers]:.1f} s; speed-up {walls[1] / walls[args.workers]:.2f}x")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
