"""A speed map: vehicle speeds at t = 0 carried from the model's distribution on unseen maps onto logged traffic's.

Why: on maps it has not seen, the model stops too few vehicles and drives too many fast (held-out real scenes: 9% of
its vehicles below 0.3 m/s against the logs' 47%, 19% at 12 m/s or more against 7%; docs/model.md, *What is left
after the ensemble*), and that marginal is the whole of its velocity gap to the lane heuristic. The map is a
quantile map (each speed goes to the logged speed of the same quantile), fitted on validation models' scenes on
their own validation windows, i.e. maps those models never saw, against the logged vehicles of the same windows.

At decoding (:func:`slow_along_paths`), each vehicle proposal moves along its own decoded path at the mapped speed
over the whole horizon, its t = 0 pose unchanged. The map only ever slows a vehicle: a path decoded for one speed
says nothing about where a faster vehicle would be.

Fit and store one (run from the repository root; the models sample with their own settings, the map off):
``python -m sd_sim_plugin.model.speed_map CKPT DATA [CKPT DATA ...] --write-to TARGET [--limit 39] [--seeds 6]``.
"""

from __future__ import annotations

import argparse
import json
import sys
from dataclasses import replace
from pathlib import Path

import numpy as np

from sd_sim_plugin.errors import SdSimError
from sd_sim_plugin.scene.types import wrap_angle

SPEED_MAP_KNOTS = 21  # quantiles 0, 5%, ..., 100%


def fit_speed_map(generated: np.ndarray, logged: np.ndarray,
                  knots: int = SPEED_MAP_KNOTS) -> tuple[tuple[float, float], ...]:
    """(model speed, logged speed) pairs at ``knots`` evenly spaced quantiles of the two samples (m/s), from (0, 0),
    model speeds strictly increasing (tied quantiles merged, their logged speeds averaged)."""
    generated, logged = np.asarray(generated, np.float64), np.asarray(logged, np.float64)
    if len(generated) < knots or len(logged) < knots:
        raise SdSimError(f"a speed map needs at least {knots} generated and logged vehicles "
                         f"(got {len(generated)} and {len(logged)})")
    q = np.linspace(0.0, 1.0, knots)
    src, dst = np.quantile(generated, q), np.quantile(logged, q)
    src, dst = np.concatenate([[0.0], src]), np.concatenate([[0.0], dst])
    unique, inverse = np.unique(np.round(src, 4), return_inverse=True)
    merged = np.bincount(inverse, weights=dst) / np.bincount(inverse)
    merged[0] = 0.0 if unique[0] == 0.0 else merged[0]
    return tuple((float(a), float(round(b, 4))) for a, b in zip(unique, np.maximum.accumulate(merged), strict=True))


def mapped_speeds(speeds: np.ndarray, speed_map: tuple[tuple[float, float], ...]) -> np.ndarray:
    """Each speed carried through the map (piecewise linear; beyond its last knot, the last logged speed)."""
    src, dst = np.asarray(speed_map, np.float64).T
    return np.interp(speeds, src, dst)


def slow_along_paths(traj: np.ndarray, which: np.ndarray, speed_map: tuple[tuple[float, float], ...],
                     t0: int, step_s: float) -> np.ndarray:
    """Trajectories (K, T, 3) with each row of ``which`` ((K,) bool) moving along its own path at the speed the map
    gives its t = 0 speed (central difference, as the agents' velocity), never faster than decoded: every pose is
    moved to the path point at the same fraction of its arc length from the t = 0 pose; the t = 0 pose is kept."""
    if len(traj) == 0 or traj.shape[1] < 2 or not speed_map:
        return traj
    xy = traj[:, :, :2].astype(np.float64)
    speed = np.linalg.norm(np.gradient(xy, step_s, axis=1)[:, t0], axis=1)
    factor = np.clip(mapped_speeds(speed, speed_map) / np.maximum(speed, 1e-6), 0.0, 1.0)
    rows = np.flatnonzero(np.asarray(which, bool) & (speed > 1e-6) & (factor < 1.0))
    if len(rows) == 0:
        return traj
    pts, heading = xy[rows], np.unwrap(traj[rows, :, 2].astype(np.float64), axis=1)
    arc = np.concatenate([np.zeros((len(rows), 1)), np.cumsum(np.linalg.norm(np.diff(pts, axis=1), axis=2), 1)], 1)
    arc -= arc[:, t0:t0 + 1]  # signed arc length from the t = 0 pose, non-decreasing along the horizon
    target = factor[rows, None] * arc
    seg = np.clip((arc[:, None, :] <= target[:, :, None]).sum(-1) - 1, 0, traj.shape[1] - 2)  # (R, T) segment index
    lo, hi = np.take_along_axis(arc, seg, 1), np.take_along_axis(arc, seg + 1, 1)
    frac = np.clip((target - lo) / np.maximum(hi - lo, 1e-9), 0.0, 1.0)[..., None]
    at = np.stack([np.take_along_axis(pts[..., i], seg, 1) for i in range(2)], -1)
    nxt = np.stack([np.take_along_axis(pts[..., i], seg + 1, 1) for i in range(2)], -1)
    h_at, h_nxt = np.take_along_axis(heading, seg, 1), np.take_along_axis(heading, seg + 1, 1)
    out = traj.copy()
    out[rows, :, :2] = at + frac * (nxt - at)
    out[rows, :, 2] = wrap_angle(h_at + frac[..., 0] * (h_nxt - h_at))
    out[rows, t0] = traj[rows, t0]
    return out


def main(argv: list[str] | None = None) -> None:
    """Fit a speed map on (checkpoint, validation windows) pairs and store it in a checkpoint's config.json."""
    import torch

    from sd_sim_plugin.data.dataset import SceneDataset
    from sd_sim_plugin.generators.base import generated_types
    from sd_sim_plugin.metrics.harness import reference_density
    from sd_sim_plugin.metrics.selection import ego_box
    from sd_sim_plugin.metrics.suite import LaneCache, scene_stats
    from sd_sim_plugin.model.checkpoint import load_config, save_config
    from sd_sim_plugin.model.pipeline import ScenarioDiffusionGenerator
    from sd_sim_plugin.model.sampler_sweep import reference_windows

    p = argparse.ArgumentParser(prog="speed_map", description=__doc__.splitlines()[0])
    p.add_argument("pairs", nargs="+", help="CKPT DATA [CKPT DATA ...]: validation models and their own windows")
    p.add_argument("--write-to", type=Path, required=True, help="checkpoint whose config.json gets the map")
    p.add_argument("--limit", type=int, default=39, help="windows per data folder (evenly spaced, as the sweep)")
    p.add_argument("--seeds", type=int, default=6, help="samplings of every window (seeds as the sweep's)")
    p.add_argument("--threads", type=int, default=2)
    args = p.parse_args(argv)
    if len(args.pairs) % 2:
        raise SdSimError("give CKPT DATA pairs")
    if min(args.limit, args.seeds, args.threads) < 1:
        raise SdSimError("--limit, --seeds and --threads must be at least 1")
    target_cfg, _ = load_config(args.write_to)  # a missing or broken target fails now, not after the sampling
    torch.set_num_threads(args.threads)
    generated, logged = [], []
    for ckpt, data in zip(args.pairs[::2], args.pairs[1::2]):
        gen = ScenarioDiffusionGenerator.from_checkpoint(ckpt)
        gen.cfg = replace(gen.cfg, speed_map=())
        refs = reference_windows(SceneDataset(data), args.limit)
        lanes = LaneCache()
        for i, ref in enumerate(refs):
            index, ego = lanes.get(ref), ego_box(ref)
            logged.append(scene_stats(ref, index, ego).features.speed)
            ego_agent = ref.agents.select(np.array([ref.ego_index]))
            density = reference_density(ref, generated_types(gen))
            for round_ in range(args.seeds):
                scene = gen.generate(ref.map, ego=ego_agent, density=density, seed=round_ * 1_000_003 + i)[0]
                generated.append(scene_stats(scene, index, ego).features.speed)
    generated, logged = np.concatenate(generated), np.concatenate(logged)
    speed_map = fit_speed_map(generated, logged)
    record = {"fitted_on": [list(pair) for pair in zip(args.pairs[::2], args.pairs[1::2])],
              "windows_per_folder": args.limit, "seeds": args.seeds, "generated_vehicles": int(len(generated)),
              "logged_vehicles": int(len(logged)),
              "stopped_share": {"generated": round(float(np.mean(generated < 0.3)), 3),
                                "logged": round(float(np.mean(logged < 0.3)), 3)}}
    save_config(args.write_to, replace(target_cfg, speed_map=speed_map), {"speed_map": record})
    print(json.dumps({**record, "speed_map": speed_map}))


if __name__ == "__main__":
    try:
        main()
    except SdSimError as exc:
        print(f"error: {exc}", file=sys.stderr)
        raise SystemExit(2) from None
