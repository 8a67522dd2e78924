"""Choose sampler settings by measuring realism against speed.

Run: ``python -m sd_sim_plugin.model.sampler_sweep CKPT DATA [--guidance 1,2,3 --intervals 1:10 --steps 4,6
--offroad 1,0.3 --misaligned 1,0 --lane-snap 20,90 --mirror-left 0,1 --fold CKPT2 DATA2 --write]``.

For each setting, generates one scene per reference window (density = the reference's count of each agent type, as
``sd-sim eval`` asks; ``--density total``: of all types together; the reference's ego given) and prints position /
heading / velocity MMD (``sd_sim_plugin.metrics.suite.evaluate``), the JSD of nearest-neighbour distances and the
share of vehicles colliding at t = 0 (how the vehicles sit together, which the per-vehicle MMDs do not see), beside
the CPU time per scene at batch 1 (``guided_steps``: the sampler steps whose U-Net batch guidance doubles) and
``vehicles_ratio``, generated over reference vehicles: the MMD estimator scores larger generated sets lower, so a
setting can lower the MMDs by drawing more vehicles (with ``--density total``, also by changing the type mix). By
default it sweeps solvers and step counts; ``--guidance`` sweeps classifier-free guidance scales (crossed with
``--intervals``, their noise intervals, ``--contrast``, what they guide against, ``--solver``, solvers, ``--steps``,
step counts, ``--offroad``, off-road vehicle scales, ``--misaligned``, the scales of vehicles standing across a
lane, ``--lane-snap``, the angles within which vehicles on a lane are turned onto it, ``--ego-flag``, the global
token's centred-on-ego flag, and ``--mirror-left``, whether left-hand maps are generated as their right-hand mirror
image, and ``--refill``, how often scenes short of their count are sampled again, ``--draws``, how many draws per
scene the most typical is chosen from, and ``--selection``, how a scene is made from its draws) with the
checkpoint's own solver instead, and ``--write`` stores the setting with the lowest sum of the three MMDs in the
checkpoint's config.json, among those within ``--max-evals`` U-Net evaluations per scene (a guided step counts
twice; refill rounds are not counted, their cost shows in the CPU time; settings over it are not measured;
``--write-to`` stores it in another checkpoint, such as the one trained on all the data when CKPT was trained
without the validation scenes; ``--vehicles-tolerance T`` writes only a setting whose pooled vehicles ratio is
within T of 1). ``--fold CKPT2 DATA2`` (repeatable) adds cross-validation folds: each setting is measured with every
validation model on its own validation windows (:func:`reference_windows`) and the MMDs are pooled over all of them
(``folds`` in the output keeps each fold's); ``--per-scene`` adds each source file's MMDs. Run it on validation
windows (``data/pg_val``, ``data/real_val`` and the other folds' ``sd-sim collect --split val --fold K``), never on
the evaluation set.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from dataclasses import replace
from pathlib import Path

import numpy as np
import torch

from sd_sim_plugin.data.dataset import SceneDataset
from sd_sim_plugin.errors import SdSimError
from sd_sim_plugin.generators.base import generated_types
from sd_sim_plugin.metrics.harness import reference_density
from sd_sim_plugin.metrics.suite import evaluate
from sd_sim_plugin.model.checkpoint import load_config, save_config
from sd_sim_plugin.model.config import SAMPLING_CHOICE, ModelConfig
from sd_sim_plugin.model.edm import karras_sigmas, network_evaluations
from sd_sim_plugin.model.pipeline import ScenarioDiffusionGenerator
from sd_sim_plugin.scene.tokens import total_density
from sd_sim_plugin.scene.types import Scene

SAMPLER_SETTINGS = (("euler", 6), ("euler", 10), ("heun", 5), ("heun", 10), ("dpmpp2m", 4), ("dpmpp2m", 5),
                    ("dpmpp2m", 6), ("dpmpp2m", 8), ("dpmpp2m", 10), ("dpmpp2m", 20))
MMD_KEYS = ("position", "heading_vector", "velocity")
JOINT_KEYS = ("jsd_nearest_neighbour", "collision_t0")  # per setting, mean over samplings (folds: over windows)
DENSITY_CHOICES = ("per-type", "total")
# What a sweep setting sets on every fold's own config: the sampling choice and the handedness convention (which a
# model trained with ``--mirror-left-hand`` needs, and a model trained without it may still be sampled with).
SWEPT = (*SAMPLING_CHOICE, "mirror_left_hand")  # not trajectory_overlap: the target keeps its own


def reference_windows(data: SceneDataset, limit: int) -> list[Scene]:
    """The windows a sweep measures: at most ``limit``, evenly spaced over ``data`` (first and last included)."""
    return [data[int(i)] for i in np.linspace(0, len(data) - 1, min(limit, len(data))).astype(int)]


def measure_setting(gen: ScenarioDiffusionGenerator, cfg: ModelConfig, refs: list[Scene], seeds: int = 1,
                    per_scene: bool = False, per_type: bool = True) -> dict:
    """MMDs (mean over ``seeds`` samplings) and CPU ms per scene of ``gen`` sampling with ``cfg`` on every
    reference's map (seed = its index, plus 1,000,003 per extra sampling), asked for the reference's count of each
    agent type (``per_type``) or of all together; with ``per_scene``, also the MMDs of each source file's windows on
    their own (``scenes``)."""
    gen.cfg = cfg
    files = sorted({str(r.meta.get("file", "")) for r in refs}) if per_scene else []
    mmds, used, cpu, by_file, vehicles, joint = [], [], 0.0, {f: [] for f in files}, [], []
    for round_ in range(seeds):
        out = []
        for i, ref in enumerate(refs):
            start = time.process_time()
            ego = ref.agents.select(np.array([ref.ego_index]))
            density = reference_density(ref, generated_types(gen))
            out += gen.generate(ref.map, ego=ego, density=density if per_type else total_density(density),
                                seed=round_ * 1_000_003 + i)
            cpu += time.process_time() - start
        result = evaluate(out, refs)
        mmd = result["mmd"]
        mmds.append([mmd[k] for k in MMD_KEYS])
        vehicles.append([result["generated"]["vehicles_per_scene"], result["reference"]["vehicles_per_scene"]])
        joint.append([result["jsd"]["nearest_neighbour_m"], result["generated"]["collision_rate"]["t0"]])
        used.append(mmd["scenes_used"])
        for f in files:
            idx = [i for i, r in enumerate(refs) if str(r.meta.get("file", "")) == f]
            part = evaluate([out[i] for i in idx], [refs[i] for i in idx])["mmd"]
            by_file[f].append([part[k] for k in MMD_KEYS])
    mean = np.mean(mmds, axis=0)
    row = {"cpu_ms_per_scene": round(1000 * cpu / (len(refs) * seeds), 1),
           **{k: round(float(v), 4) for k, v in zip(MMD_KEYS, mean)}, "scenes_used": float(np.mean(used)),
           "vehicles_per_scene": [round(float(v), 3) for v in np.mean(vehicles, axis=0)],
           **{k: round(float(v), 4) for k, v in zip(JOINT_KEYS, np.mean(joint, axis=0))}}
    if per_scene:
        row["scenes"] = {f: [round(float(v), 4) for v in np.mean(m, axis=0)] for f, m in by_file.items()}
    return row


def measure_folds(folds: list[tuple[ScenarioDiffusionGenerator, ModelConfig, list[Scene]]], setting: ModelConfig,
                  seeds: int = 1, per_scene: bool = False, per_type: bool = True) -> dict:
    """:func:`measure_setting` on every (validation model, its own config, its validation windows) with the
    sampling choice of ``setting``, pooled: MMDs weighted by the scenes each fold scored, CPU time by its windows;
    with ``per_scene``, each source file's MMDs too (``scenes``: position, heading, velocity)."""
    rows = [measure_setting(gen, replace(own, **{n: getattr(setting, n) for n in SWEPT}), refs, seeds, per_scene,
                            per_type) for gen, own, refs in folds]
    used = np.array([r["scenes_used"] for r in rows], np.float64)
    windows = np.array([len(refs) for _, _, refs in folds], np.float64)
    pooled = {k: round(float(np.dot(used, [r[k] for r in rows]) / used.sum()), 4) for k in MMD_KEYS}
    generated, reference = (float(np.dot(windows, [r["vehicles_per_scene"][i] for r in rows])) for i in (0, 1))
    out = {"cpu_ms_per_scene": round(float(np.dot(windows, [r["cpu_ms_per_scene"] for r in rows]) / windows.sum()), 1),
           **pooled, "vehicles_ratio": round(generated / reference, 3) if reference else float("nan"),
           **{k: round(float(np.dot(windows, [r[k] for r in rows]) / windows.sum()), 4) for k in JOINT_KEYS}}
    if len(rows) > 1:
        out["folds"] = [{**{k: r[k] for k in (*MMD_KEYS, *JOINT_KEYS)}, "vehicles_per_scene": r["vehicles_per_scene"]}
                        for r in rows]
    if per_scene:
        out["scenes"] = {f: v for r in rows for f, v in r["scenes"].items()}
    return out


def _floats(text: str, what: str) -> list[float]:
    try:
        return [float(x) for x in text.split(",") if x.strip()]
    except ValueError:
        raise SdSimError(f"{what} {text!r}: expected comma-separated numbers") from None


def _whole(text: str, what: str) -> list[int]:
    values = _floats(text, what)
    if not values or any(v != int(v) for v in values):
        raise SdSimError(f"{what} {text!r}: expected whole numbers, comma-separated")
    return [int(v) for v in values]


def _flags(text: str, what: str) -> list[bool]:
    values = [x.strip() for x in text.split(",") if x.strip()]
    if not values or any(v not in ("0", "1") for v in values):
        raise SdSimError(f"{what} {text!r}: expected 0 and / or 1, comma-separated")
    return [v == "1" for v in values]


def _intervals(text: str) -> list[tuple[float, float]]:
    try:
        return [(float(lo), float(hi)) for lo, hi in (x.split(":") for x in text.split(",") if x.strip())]
    except ValueError:
        raise SdSimError(f"--intervals {text!r}: expected LOW:HIGH pairs, comma-separated") from None


def main(argv: list[str] | None = None) -> None:
    """Sweep and print one JSON line per setting."""
    p = argparse.ArgumentParser(prog="sampler_sweep")
    p.add_argument("checkpoint")
    p.add_argument("data")
    p.add_argument("--limit", type=int, default=60)
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--seeds", type=int, default=1, help="sample every window this many times (less noisy MMDs)")
    p.add_argument("--guidance", help="sweep these guidance scales instead of solvers, e.g. 1,2,3 (1 = off)")
    p.add_argument("--intervals", default="1:10", help="guidance noise intervals LOW:HIGH, comma-separated")
    p.add_argument("--contrast", help="with --guidance: what guidance sets the scene against, to cross with the rest: "
                                      "count (the global token unset) and/or domain (the real flag off, PG traffic; "
                                      "needs the real flag), e.g. count,domain (default: the checkpoint's)")
    p.add_argument("--solver", help="with --guidance: solvers to cross with the rest, e.g. dpmpp2m,dpmpp2m_sde "
                                    "(default: the checkpoint's)")
    p.add_argument("--steps", help="with --guidance: sampler step counts to cross with the scales, e.g. 4,6 "
                                   "(default: the checkpoint's)")
    p.add_argument("--offroad", help="with --guidance: off-road vehicle scales to cross with the rest, e.g. 1,0.3 "
                                     "(default: the checkpoint's; 1 = no map prior)")
    p.add_argument("--misaligned", help="with --guidance: scales of vehicles standing across a lane to cross with the "
                                        "rest, e.g. 1,0 (default: the checkpoint's; 1 = no lane prior)")
    p.add_argument("--lane-snap", help="with --guidance: lane alignment angles in degrees to cross with the rest, "
                                       "e.g. 20,45,90 (default: the checkpoint's; 0 = no alignment)")
    p.add_argument("--ego-flag", help="with --guidance: centred-on-ego flags to cross with the rest, e.g. 1,0 "
                                      "(default: the checkpoint's)")
    p.add_argument("--real-flag", help="with --guidance: the global token's real-data flags to cross with the rest, "
                                       "e.g. 1,0 (a model trained with --domain-flag; default: the checkpoint's)")
    p.add_argument("--mirror-left", help="with --guidance: whether maps with left-hand traffic are generated as their "
                                         "mirror image, to cross with the rest, e.g. 0,1 (default: the checkpoint's)")
    p.add_argument("--refill", help="with --guidance: refill rounds for scenes short of their count to cross with "
                   "the rest, e.g. 0,1 (docs/model.md)")
    p.add_argument("--draws", help="with --guidance: draws per scene, the most typical kept, to cross with the rest, "
                   "e.g. 1,4 (docs/model.md)")
    p.add_argument("--selection", help="with --guidance: how a scene is made from its draws, to cross with the rest, "
                        "e.g. most_typical,herding (default: the checkpoint's)")
    p.add_argument("--max-evals", type=int,
                   help="with --guidance: only settings with at most this many U-Net evaluations per scene (a "
                        "guided step counts twice) are measured and may be written: the speed budget")
    p.add_argument("--vehicles-tolerance", type=float, metavar="T",
                   help="with --write: only settings whose pooled vehicles ratio (generated / reference vehicles) is "
                        "within T of 1 may be written, e.g. 0.1 (the MMDs reward more vehicles)")
    p.add_argument("--write", action="store_true",
                   help="with --guidance: store the setting with the lowest sum of MMDs in the checkpoint")
    p.add_argument("--fold", nargs=2, action="append", default=[], metavar=("CKPT", "DATA"),
                   help="cross-validation: another validation model and its own validation windows (repeatable); "
                        "every setting is measured on each pair and the MMDs are pooled over all their windows")
    p.add_argument("--per-scene", action="store_true",
                   help="also print each source file's MMDs on its own windows (a diagnosis: which scenes a setting "
                        "loses on)")
    p.add_argument("--density", choices=DENSITY_CHOICES, default="per-type",
                   help="ask for the reference's count of each agent type, as `sd-sim eval` does (default), or of all "
                        "types together (what sweeps before the fifteenth session did)")
    p.add_argument("--write-to", type=Path,
                   help="with --write: store it in this checkpoint instead, e.g. the one trained on all the data "
                        "when CKPT was trained without the validation scenes")
    args = p.parse_args(argv)
    if min(args.seeds, args.limit, args.threads) < 1:
        raise SdSimError("--seeds, --limit and --threads must be at least 1")
    tolerance = args.vehicles_tolerance
    if tolerance is not None and (not args.write or not tolerance >= 0):
        raise SdSimError("--vehicles-tolerance goes with --write and must be >= 0")
    if args.write_to is not None:
        if not args.write:
            raise SdSimError("--write-to goes with --write")
        load_config(args.write_to)  # a missing or broken target fails now, not after the sweep
    torch.set_num_threads(args.threads)
    folds = []
    for ckpt, data_dir in [(args.checkpoint, args.data), *args.fold]:
        gen = ScenarioDiffusionGenerator.from_checkpoint(ckpt)
        folds.append((gen, gen.cfg, reference_windows(SceneDataset(data_dir), args.limit)))
    base = folds[0][1]
    if args.guidance:
        try:
            steps = [int(n) for n in _floats(args.steps, "--steps")] if args.steps else [base.sampler_steps]
            solvers = args.solver.split(",") if args.solver else [base.sampler]
            offroad = _floats(args.offroad, "--offroad") if args.offroad else [base.offroad_vehicle_scale]
            across = _floats(args.misaligned, "--misaligned") if args.misaligned else [base.misaligned_vehicle_scale]
            snaps = _floats(args.lane_snap, "--lane-snap") if args.lane_snap else [base.lane_snap_deg]
            flags = _flags(args.ego_flag, "--ego-flag") if args.ego_flag else [base.ego_flag]
            mirror = _flags(args.mirror_left, "--mirror-left") if args.mirror_left else [base.mirror_left_hand]
            real = _flags(args.real_flag, "--real-flag") if args.real_flag else [base.real_flag]
            refill = _whole(args.refill, "--refill") if args.refill else [base.refill_rounds]
            draws = _whole(args.draws, "--draws") if args.draws else [base.draws_per_scene]
            selections = args.selection.split(",") if args.selection else [base.draw_selection]
            contrasts = args.contrast.split(",") if args.contrast else [base.guidance_contrast]
            grid = [replace(base, sampler=sv, sampler_steps=n, guidance_scale=w,
                            guidance_interval=iv if w != 1.0 else base.guidance_interval,
                            guidance_contrast=ct if w != 1.0 else base.guidance_contrast,
                            offroad_vehicle_scale=o, misaligned_vehicle_scale=m, lane_snap_deg=a, ego_flag=e,
                            real_flag=r, mirror_left_hand=ml, refill_rounds=rf, draws_per_scene=d,
                            draw_selection=ds)
                    for sv in solvers for n in steps for w in _floats(args.guidance, "--guidance")
                    for iv in _intervals(args.intervals) for ct in contrasts for o in offroad for m in across
                    for a in snaps for e in flags for r in real for ml in mirror for rf in refill for d in draws
                    for ds in selections]
            settings = list(dict.fromkeys(grid))  # unguided settings are one, whatever the interval and contrast
        except ValueError as exc:
            raise SdSimError(f"sweep setting: {exc}") from None
    else:
        if (args.write or args.write_to or args.contrast or args.solver or args.steps or args.offroad
                or args.misaligned or args.lane_snap or args.ego_flag or args.real_flag or args.mirror_left
                or args.refill or args.draws or args.selection or args.max_evals is not None):
            raise SdSimError("--write, --write-to, --contrast, --solver, --steps, --offroad, --misaligned, "
                             "--lane-snap, --ego-flag, --real-flag, --mirror-left, --refill, --draws, --selection and "
                             "--max-evals go with --guidance")
        settings = [replace(base, sampler=method, sampler_steps=steps) for method, steps in SAMPLER_SETTINGS]
    results = []
    for cfg in settings:
        evals = network_evaluations(cfg.sampler, cfg.sampler_steps)
        sigmas = karras_sigmas(cfg.sampler_steps, cfg.sigma_min, cfg.sigma_max, cfg.rho)[:-1].tolist()
        low, high = cfg.guidance_interval
        guided = sum(low < s <= high for s in sigmas) if cfg.guidance_scale != 1.0 else 0
        row = {"sampler": cfg.sampler, "steps": cfg.sampler_steps, "network_evals": evals,
               "guidance": cfg.guidance_scale, "interval": list(cfg.guidance_interval), "guided_steps": guided,
               "contrast": cfg.guidance_contrast,
               "offroad": cfg.offroad_vehicle_scale, "misaligned": cfg.misaligned_vehicle_scale,
               "lane_snap": cfg.lane_snap_deg,
               "ego_flag": cfg.ego_flag, "real_flag": cfg.real_flag, "mirror_left": cfg.mirror_left_hand,
               "refill": cfg.refill_rounds, "draws": cfg.draws_per_scene, "selection": cfg.draw_selection}
        if args.max_evals is not None and evals + guided > args.max_evals:
            print(json.dumps({**row, "skipped": f"over --max-evals {args.max_evals}"}), flush=True)
            continue  # it could not be written, so its measurement would only cost time
        row.update(measure_folds(folds, cfg, args.seeds, args.per_scene, args.density == "per-type"))
        if tolerance is not None and not abs(row["vehicles_ratio"] - 1) <= tolerance:
            row["not_written"] = f"vehicles ratio outside 1 +- {tolerance:g}"
        else:
            results.append((sum(row[k] for k in MMD_KEYS), cfg, row))
        print(json.dumps(row), flush=True)
    if args.write:
        if not results:
            raise SdSimError(f"no setting fits --max-evals {args.max_evals} and --vehicles-tolerance {tolerance}")
        _, best, row = min(results, key=lambda r: r[0])
        target = args.write_to or Path(args.checkpoint)
        cfg, _ = load_config(target)
        pairs = [(args.checkpoint, args.data), *args.fold]
        chosen = {"data": str(args.data) if not args.fold else [d for _, d in pairs],
                  "windows": sum(len(refs) for _, _, refs in folds), "seeds": args.seeds,
                  "measured_with": args.checkpoint if not args.fold else [c for c, _ in pairs],
                  "sampler": best.sampler, "sampler_steps": best.sampler_steps,
                  "scale": best.guidance_scale, "interval": list(best.guidance_interval),
                  "contrast": best.guidance_contrast,
                  "offroad_vehicle_scale": best.offroad_vehicle_scale,
                  "misaligned_vehicle_scale": best.misaligned_vehicle_scale, "lane_snap_deg": best.lane_snap_deg,
                  "ego_flag": best.ego_flag,
                  "real_flag": best.real_flag, "mirror_left_hand": best.mirror_left_hand,
                  "refill_rounds": best.refill_rounds, "draws_per_scene": best.draws_per_scene,
                  "draw_selection": best.draw_selection,
                  "mmd": {k: row[k] for k in MMD_KEYS},
                  "vehicles_ratio": row["vehicles_ratio"],
                  "candidates": len(results), "max_evals": args.max_evals, "vehicles_tolerance": tolerance,
                  "density": args.density}
        save_config(target, replace(cfg, **{name: getattr(best, name) for name in SWEPT}),
                    {"guidance": chosen})
        print(f"wrote {best.sampler_steps} {best.sampler} steps, guidance {best.guidance_scale:g} at sigma in "
              f"({best.guidance_interval[0]:g}, {best.guidance_interval[1]:g}] against {best.guidance_contrast}, "
              f"off-road vehicle scale {best.offroad_vehicle_scale:g}, misaligned vehicle scale "
              f"{best.misaligned_vehicle_scale:g}, "
              f"lane alignment {best.lane_snap_deg:g} degrees, ego flag {int(best.ego_flag)}, real flag "
              f"{int(best.real_flag)}, mirror left-hand maps {int(best.mirror_left_hand)}, refill rounds "
              f"{best.refill_rounds}, {best.draws_per_scene} draws per scene ({best.draw_selection}) to "
              f"{target}/config.json")


if __name__ == "__main__":
    try:
        main()
    except SdSimError as exc:
        print(f"error: {exc}", file=sys.stderr)
        raise SystemExit(2) from None
