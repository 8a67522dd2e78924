"""Scenario Diffusion generation speed: latency at batch 1 and throughput at batch 32, beside MetaDrive's traffic reset.

Per scene, timed end to end: map raster, map encoding, EDM sampling (the checkpoint's sampler steps), decoding,
peak picking, overlap removal, ``Scene`` objects. Maps: ego-frame PG maps around the ego's spawn pose (held-out eval
seeds). Baselines in the same run: the paper's reported ~1 s per scene on a GPU, and MetaDrive's own way of getting
traffic on a map, ``env.reset()`` of a ``MetaDriveEnv`` with traffic (median over resets of the same maps).
The in-run baseline is the float32 U-Net run as a module (not traced); then each ``--precision`` (default: float32,
traced, then auto = bfloat16 for batches where the CPU has it) is measured and compared with it; then one U-Net
evaluation alone at batch 1, 8, 16 and 32 (module, traced, bfloat16 autocast), which is what sets
``AUTO_BFLOAT16_MIN_BATCH``. A checkpoint with classifier-free guidance is also measured without it (its cost), and
one with trajectory overlap removal without that (the decoding rule's cost), one that keeps the most typical
of several draws per scene with one draw (the draws' cost), one that herds its draws with the most typical draw
kept instead (the herding's cost), and an ensemble with its first denoiser alone (what splitting the draws among
several denoisers costs).
Run: ``.venv/bin/python -m benchmarks.model [--checkpoint DIR] [--threads 2]``.
"""

from __future__ import annotations

import argparse
import os
import statistics
import time
from dataclasses import replace

import torch

from sd_sim_plugin.generators.registry import DEFAULT_CHECKPOINT

PAPER_S_PER_SCENE = 1.0
MAP_SEEDS = (1000, 1001, 1002)


def _maps() -> list:
    """Ego-frame PG maps and ego boxes, and MetaDrive reset times on the same maps."""
    from metadrive.envs import MetaDriveEnv

    from sd_sim_plugin.cli.generate import MAP_RADIUS_M, _ego_agents
    from sd_sim_plugin.scene.transform import Pose2D, map_to_local
    from sd_sim_plugin.sources.map_features import live_map
    from sd_sim_plugin.sources.metadrive_assets import ensure_headless_assets
    from sd_sim_plugin.sources.pg import PGConfig, env_config

    ensure_headless_assets()
    maps, resets = [], []
    for seed in MAP_SEEDS:
        env = MetaDriveEnv(env_config(seed, PGConfig()))
        try:
            for i in range(4):
                start = time.perf_counter()
                env.reset(seed=seed)
                if i:  # the first reset builds the map; later ones are MetaDrive's per-episode traffic cost
                    resets.append(time.perf_counter() - start)
            ego = env.agent
            pose = Pose2D(float(ego.position[0]), float(ego.position[1]), float(ego.heading_theta))
            maps.append((map_to_local(live_map(env), pose, radius=MAP_RADIUS_M), _ego_agents(ego.LENGTH, ego.WIDTH)))
        finally:
            env.close()
    return maps, resets


def main(argv: list[str] | None = None) -> None:
    """Measure and print."""
    parser = argparse.ArgumentParser(prog="benchmarks.model")
    parser.add_argument("--checkpoint", default=str(DEFAULT_CHECKPOINT))
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--repeats", type=int, default=20)
    parser.add_argument("--precision", default="float32,auto",
                        help="U-Net precisions to measure, comma-separated (float32 also untraced first: the in-run "
                             "baseline)")
    parser.add_argument("--no-eager", action="store_true", help="skip the untraced float32 baseline")
    args = parser.parse_args(argv)
    torch.set_num_threads(args.threads)
    from sd_sim_plugin.model.pipeline import PRECISIONS, ScenarioDiffusionGenerator

    precisions = [p.strip() for p in args.precision.split(",") if p.strip()]
    if not precisions or set(precisions) - set(PRECISIONS):
        parser.error(f"--precision {args.precision!r}: comma-separated values from {', '.join(PRECISIONS)}")
    maps, resets = _maps()
    reset = statistics.median(resets)
    print(f"checkpoint {args.checkpoint}, threads {args.threads}, load average {os.getloadavg()[0]:.1f} on "
          f"{os.cpu_count()} cores; MetaDrive traffic reset (same maps): median {reset * 1000:.1f} ms")
    first = None
    runs = [(p, True, None, True, None, False, None) for p in precisions]
    if "float32" in precisions and not args.no_eager:  # the module without tracing: the in-run baseline
        runs.insert(0, ("float32", False, None, True, None, False, None))
    shipped = ScenarioDiffusionGenerator.from_checkpoint(args.checkpoint).cfg
    if shipped.guidance_scale != 1.0:
        runs += [(p, True, 1.0, True, None, False, None) for p in precisions]  # what the checkpoint's guidance costs
    if shipped.trajectory_overlap:
        runs += [(p, True, None, False, None, False, None) for p in precisions]  # what the trajectory rule costs
    if shipped.draws_per_scene > 1:
        runs += [(p, True, None, True, 1, False, None) for p in precisions]  # what the extra draws cost
        if shipped.draw_selection != "most_typical":  # what composing the scene from the draws costs
            runs += [(p, True, None, True, None, False, "most_typical") for p in precisions]
    if shipped.denoisers > 1:
        runs += [(p, True, None, True, None, True, None) for p in precisions]  # what splitting among denoisers costs
    for precision, trace, guidance, trajectory_overlap, draws, first_denoiser, selection in runs:
        gen = ScenarioDiffusionGenerator.from_checkpoint(args.checkpoint, precision=precision, trace_unet=trace,
                                                         guidance_scale=guidance, draws_per_scene=draws,
                                                         draw_selection=selection)
        if first_denoiser:
            gen = ScenarioDiffusionGenerator(replace(gen.cfg, denoisers=1), gen.autoencoder, gen.denoisers[0],
                                             precision=precision, trace_unet=trace)
        gen.cfg = replace(gen.cfg, trajectory_overlap=gen.cfg.trajectory_overlap and trajectory_overlap)
        lat, rate, lines = _measure(gen, maps, args.repeats)
        dtypes = "/".join(str(gen.unet_dtype(b)).removeprefix("torch.") for b in (1, 32))
        cfg = gen.cfg
        guided = (f"guidance {cfg.guidance_scale:g} at sigma in ({cfg.guidance_interval[0]:g}, "
                  f"{cfg.guidance_interval[1]:g}]" if cfg.guidance_scale != 1.0 else "no guidance")
        print(f"\nprecision {precision}{'' if trace else ', U-Net not traced'} (U-Net in {dtypes} at batch 1/32), "
              f"{cfg.sampler_steps} {cfg.sampler} steps, {guided}, overlap removal "
              f"{'along trajectories' if cfg.trajectory_overlap else 'at t = 0'}, {cfg.draws_per_scene} draw(s) per "
              f"scene ({cfg.draw_selection}), {cfg.denoisers} denoiser(s)")
        print("\n".join(lines))
        print(f"ratios: paper ~1 s/scene on a GPU / ours batch 1 = {PAPER_S_PER_SCENE / lat:.1f}x, batch 32 = "
              f"{PAPER_S_PER_SCENE * rate:.1f}x; MetaDrive reset / ours batch 1 = {reset / lat:.2f}x, batch 32 = "
              f"{reset * rate:.2f}x")
        if first is None:
            first = (precision + ("" if trace else " untraced") + ("" if guidance is None else ", no guidance")
                     + ("" if trajectory_overlap else ", overlap removal at t = 0")
                     + ("" if draws is None else f", {draws} draw(s) per scene"), lat, rate)
        else:
            print(f"against {first[0]} in this run: batch 1 latency x{lat / first[1]:.2f}, "
                  f"batch 32 throughput x{rate / first[2]:.2f}")
    _unet_only(ScenarioDiffusionGenerator.from_checkpoint(args.checkpoint, precision="float32"))


def _unet_only(gen) -> None:
    """Median ms of one U-Net evaluation per batch size: module, traced, bfloat16 autocast (module)."""
    from sd_sim_plugin.model.denoiser import traced_unet

    net, cfg = gen.denoiser, gen.cfg
    channels, tokens = net.unet.config.in_channels, 6
    print("\none U-Net evaluation, median ms (module / traced / bfloat16 autocast):")
    with torch.inference_mode():
        for b in (1, 8, 16, 32):
            args = (torch.randn(b, channels, cfg.latent_size, cfg.latent_size), torch.rand(b),
                    torch.randn(b, tokens, cfg.token_dim), torch.ones(b, tokens))
            traced = traced_unet(net, args)

            def bf16(*a):
                with torch.autocast("cpu", dtype=torch.bfloat16):
                    return net.unet_call(*a)
            times = [_median_ms(f, args) for f in (net.unet_call, traced, bf16)]
            print(f"batch {b:2d}: " + " / ".join(f"{t:.1f}" for t in times))


def _median_ms(fn, args: tuple, repeats: int = 15) -> float:
    for _ in range(3):
        fn(*args)
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn(*args)
        times.append(time.perf_counter() - start)
    return statistics.median(times) * 1000


def _measure(gen, maps: list, repeats: int) -> tuple[float, float, list[str]]:
    """Median batch-1 latency (s), batch-32 throughput (scenes/s) and the printed lines."""
    for m, ego in maps:  # warm-up
        gen.generate(m, ego=ego, seed=0, count=2)
    single, single_cpu = [], []
    for i in range(repeats):
        m, ego = maps[i % len(maps)]
        w, c = time.perf_counter(), time.process_time()
        gen.generate(m, ego=ego, seed=i, count=1)
        single.append(time.perf_counter() - w)
        single_cpu.append(time.process_time() - c)
    batch, batch_cpu = [], []
    for i in range(max(repeats // 5, 3)):
        m, ego = maps[i % len(maps)]
        w, c = time.perf_counter(), time.process_time()
        gen.generate(m, ego=ego, seed=i, count=32)
        batch.append(time.perf_counter() - w)
        batch_cpu.append(time.process_time() - c)
    lat = statistics.median(single)
    rate = 32 / statistics.median(batch)
    p90 = sorted(single)[int(0.9 * len(single))]
    lines = [f"batch 1 : median {lat * 1000:.1f} ms/scene wall (p90 {p90 * 1000:.1f}),"
             f" CPU {statistics.median(single_cpu) * 1000:.1f} ms  [goal <= 100 ms]",
             f"batch 32: {rate:.1f} scenes/s wall ({statistics.median(batch) / 32 * 1000:.1f} ms/scene), CPU "
             f"{statistics.median(batch_cpu) / 32 * 1000:.1f} ms/scene  [goal >= 50 scenes/s]"]
    return lat, rate, lines

if __name__ == "__main__":
    main()
