"""Generated traffic in MetaDrive vs MetaDrive's own traffic, same maps, same number of vehicles, same run.

- reset latency: ``env.reset()`` of a plain ``MetaDriveEnv`` with traffic vs ``ScenarioDiffusionEnv`` with as many
  generated vehicles (generation included), per generator; medians over resets of already-built maps, wall and CPU;
- step rate: IDM ego, traffic driven by MetaDrive (plain) vs generated agents in replay mode (and IDM mode, shown);
- soak: many resets of ``ScenarioDiffusionEnv`` in one process: no exception, RSS growth after warm-up.
Plain and generated envs alternate in rounds so machine load hits both alike.
Run: ``.venv/bin/python -m benchmarks.sim [--generators lane diffusion] [--soak 500] [--quick]``.
"""

from __future__ import annotations

import argparse
import statistics
import time
from pathlib import Path

MAP_SEEDS = 3  # maps cycled through (each built once before timing)
DENSITY = 0.1  # MetaDrive's default traffic density; the generated envs get the same vehicle count


def _rss_mb() -> float:
    """Resident memory of this process in MB."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return float("nan")


def _plain_env():
    from metadrive.envs import MetaDriveEnv
    from metadrive.policy.idm_policy import IDMPolicy

    return MetaDriveEnv(dict(use_render=False, log_level=50, num_scenarios=MAP_SEEDS, traffic_density=DENSITY,
                             agent_policy=IDMPolicy, horizon=1000))


def _generated_env(generator: str, vehicles: int, actor_mode: str = "replay"):
    from metadrive.policy.idm_policy import IDMPolicy

    from sd_sim_plugin.sim.envs import ScenarioDiffusionEnv

    return ScenarioDiffusionEnv(generator=generator, density=vehicles, actor_mode=actor_mode, agent_policy=IDMPolicy,
                                num_scenarios=MAP_SEEDS, horizon=1000)


def _vehicles(env) -> int:
    """Vehicles in the scene other than the ego."""
    from metadrive.component.vehicle.base_vehicle import BaseVehicle

    return len(env.engine.get_objects(lambda o: isinstance(o, BaseVehicle))) - 1


def _resets(env, n: int, seeds: list[int]) -> tuple[list[float], list[float], list[int]]:
    """Wall and CPU seconds of ``n`` resets cycling over ``seeds`` (maps built first), and vehicle counts."""
    for s in seeds:
        env.reset(seed=s)
    wall, cpu, counts = [], [], []
    for i in range(n):
        w, c = time.perf_counter(), time.process_time()
        env.reset(seed=seeds[i % len(seeds)])
        wall.append(time.perf_counter() - w)
        cpu.append(time.process_time() - c)
        counts.append(_vehicles(env))
    return wall, cpu, counts


def _steps(env, n: int) -> tuple[float, float]:
    """Steps per second (wall, CPU) over ``n`` steps, resetting when an episode ends (resets not timed)."""
    env.reset(seed=0)
    wall = cpu = 0.0
    for _ in range(n):
        w, c = time.perf_counter(), time.process_time()
        _, _, terminated, truncated, _ = env.step([0.0, 0.0])
        wall += time.perf_counter() - w
        cpu += time.process_time() - c
        if terminated or truncated:
            env.reset()
    return n / wall, n / cpu


def _median_ms(xs: list[float]) -> float:
    return statistics.median(xs) * 1000


def main(argv: list[str] | None = None) -> int:
    """Measure and print."""
    parser = argparse.ArgumentParser(prog="benchmarks.sim")
    parser.add_argument("--generators", nargs="+", default=None,
                        help="generators to time (default: lane, plus diffusion when checkpoints/default exists)")
    parser.add_argument("--rounds", type=int, default=2, help="alternating plain/generated rounds")
    parser.add_argument("--resets", type=int, default=15, help="timed resets per env per round")
    parser.add_argument("--steps", type=int, default=300, help="timed steps per env per round")
    parser.add_argument("--soak", type=int, default=500, help="resets in the soak test (0 to skip)")
    parser.add_argument("--quick", action="store_true", help="1 round, 5 resets, 100 steps, 50 soak resets")
    args = parser.parse_args(argv)
    if args.quick:
        args.rounds, args.resets, args.steps, args.soak = 1, 5, 100, 50

    from sd_sim_plugin.generators.registry import DEFAULT_CHECKPOINT
    from sd_sim_plugin.sources.metadrive_assets import ensure_headless_assets

    ensure_headless_assets()
    generators = args.generators or (["lane", "diffusion"] if DEFAULT_CHECKPOINT.is_dir() else ["lane"])
    seeds = list(range(MAP_SEEDS))

    # How many vehicles MetaDrive's own traffic puts on these maps: the generated envs get the same number.
    env = _plain_env()
    try:
        _, _, counts = _resets(env, MAP_SEEDS, seeds)
    finally:
        env.close()
    vehicles = round(statistics.mean(counts))
    print(f"maps: PG seeds {seeds} (3 blocks); MetaDrive traffic density {DENSITY}: {counts} vehicles -> "
          f"generated envs get {vehicles}; IDM ego")

    reset = {name: ([], []) for name in ["plain", *generators]}
    steps = {name: ([], []) for name in ["plain", "replay", "idm"]}
    generated_counts = []
    for _ in range(args.rounds):
        env = _plain_env()
        try:
            w, c, _ = _resets(env, args.resets, seeds)
            reset["plain"][0].extend(w), reset["plain"][1].extend(c)
            sw, sc = _steps(env, args.steps)
            steps["plain"][0].append(sw), steps["plain"][1].append(sc)
        finally:
            env.close()
        for name in generators:
            env = _generated_env(name, vehicles)
            try:
                w, c, counts = _resets(env, args.resets, seeds)
                reset[name][0].extend(w), reset[name][1].extend(c)
                generated_counts.extend(counts)
                if name == generators[0]:
                    sw, sc = _steps(env, args.steps)
                    steps["replay"][0].append(sw), steps["replay"][1].append(sc)
            finally:
                env.close()
        env = _generated_env(generators[0], vehicles, actor_mode="idm")
        try:
            sw, sc = _steps(env, args.steps)
            steps["idm"][0].append(sw), steps["idm"][1].append(sc)
        finally:
            env.close()

    plain_w, plain_c = _median_ms(reset["plain"][0]), _median_ms(reset["plain"][1])
    print(f"\nreset latency (median of {len(reset['plain'][0])} resets; wall / CPU):")
    print(f"  plain MetaDriveEnv, traffic density {DENSITY}: {plain_w:.0f} / {plain_c:.0f} ms")
    for name in generators:
        w, c = _median_ms(reset[name][0]), _median_ms(reset[name][1])
        print(f"  ScenarioDiffusionEnv, generator {name!r}, {vehicles} agents (spawned median "
              f"{statistics.median(generated_counts):.0f}): {w:.0f} / {c:.0f} ms -> +{w - plain_w:.0f} ms wall "
              f"(+{c - plain_c:.0f} ms CPU), ratio {w / plain_w:.2f}x; goal +300 ms")
    print(f"\nstep rate (IDM ego, {args.steps} steps x {args.rounds} rounds; wall / CPU steps/s):")
    base_w, base_c = statistics.median(steps["plain"][0]), statistics.median(steps["plain"][1])
    print(f"  plain MetaDriveEnv traffic: {base_w:.0f} / {base_c:.0f}")
    for mode in ("replay", "idm"):
        w, c = statistics.median(steps[mode][0]), statistics.median(steps[mode][1])
        goal = "; goal >= 0.90" if mode == "replay" else ""
        print(f"  generated, {mode} actors: {w:.0f} / {c:.0f} -> ratio {w / base_w:.2f} wall, {c / base_c:.2f} CPU{goal}")

    if args.soak:
        env = _generated_env(generators[0], vehicles)
        try:
            for i in range(20):
                env.reset(seed=i)
            start_rss, started = _rss_mb(), time.perf_counter()
            peak = start_rss
            for i in range(args.soak):
                env.reset(seed=1000 + i)
                for _ in range(5):
                    env.step([0.0, 0.0])
                peak = max(peak, _rss_mb())
            end_rss = _rss_mb()
        finally:
            env.close()
        print(f"\nsoak: {args.soak} resets (+5 steps each) after 20 warm-up resets, generator {generators[0]!r}, "
              f"{vehicles} agents, in {time.perf_counter() - started:.0f} s, no exception; RSS {start_rss:.0f} -> "
              f"{end_rss:.0f} MB (growth {end_rss - start_rss:+.0f} MB, peak {peak:.0f} MB); goal <= +50 MB")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
