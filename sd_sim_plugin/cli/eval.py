"""``sd-sim eval``: measure generators against reference scenes; metrics JSON, a markdown report and plots."""

from __future__ import annotations

import argparse
import json
import shlex
import sys
import time
from pathlib import Path

from sd_sim_plugin.errors import SdSimError
from sd_sim_plugin.generators.base import generated_types
from sd_sim_plugin.generators.registry import GENERATOR_NAMES


def add_parser(subparsers) -> None:
    """Register ``eval``."""
    p = subparsers.add_parser(
        "eval", help="measure generators against reference scenes (metrics.json, report.md, plots)",
        description="Generate on every reference scene's map (its ego given) and measure realism (MMD, JSD), "
                    "map compliance, collisions, kinematics and token following against the reference. Several "
                    "generators (comma-separated) and several --data sets go into one report. Resumable: generated "
                    "scenes are stored under OUT/generated and reused by a rerun with the same settings.")
    p.add_argument("--generator", required=True,
                   help=f"generator name(s), comma-separated: {', '.join(GENERATOR_NAMES)}; diffusion@DIR adds the "
                        "checkpoint in DIR as its own generator (several checkpoints side by side)")
    p.add_argument("--checkpoint", type=Path, help="diffusion checkpoint folder (default: checkpoints/default)")
    p.add_argument("--precision", choices=["auto", "float32", "bfloat16"],
                   help="diffusion: the U-Net's dtype while sampling (default auto: float32 here, as scenes are "
                        "generated one at a time; bfloat16 forces it)")
    p.add_argument("--guidance", type=float, metavar="SCALE",
                   help="diffusion: classifier-free guidance scale for every diffusion generator, against what "
                        "each checkpoint guides against (the global scene token unset, or PG traffic with "
                        "guidance_contrast domain) (1 = off; default: each checkpoint's own)")
    p.add_argument("--data", type=Path, action="append", required=True,
                   help="dataset folder of reference scenes (from `sd-sim collect`); repeat for several sets")
    p.add_argument("--out", type=Path, required=True, help="report folder (created)")
    p.add_argument("--limit", type=int, help="at most N reference scenes per set")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--samples", type=int, default=8,
                   help="sample scenes per generator in the picture grid (0: no grid)")
    p.add_argument("--no-progress", action="store_true", help="no progress bar")
    p.set_defaults(func=run)


def _generator_specs(text: str, checkpoint: Path | None) -> dict[str, Path | None]:
    """Report label -> diffusion checkpoint (None: the default, or not a diffusion generator), checked.

    ``diffusion@DIR`` is the checkpoint in DIR, labelled ``diffusion@<DIR's name>``, so several checkpoints can sit
    side by side in one report; plain ``diffusion`` is ``--checkpoint`` (or the default checkpoint).
    """
    specs: dict[str, Path | None] = {}
    unknown = []
    for entry in (n.strip() for n in text.split(",")):
        if not entry:
            continue
        name, _, path = entry.partition("@")
        if name not in GENERATOR_NAMES or (path and name != "diffusion"):
            unknown.append(entry)
            continue
        label = f"diffusion@{Path(path).name}" if path else name
        if label in specs:
            raise SdSimError(f"generator {label!r} is listed twice")
        specs[label] = Path(path) if path else (checkpoint if name == "diffusion" else None)
    if unknown or not specs:
        raise SdSimError(f"unknown generator {', '.join(map(repr, unknown)) or repr(text)}; "
                         f"valid names: {', '.join(GENERATOR_NAMES)}, or diffusion@CHECKPOINT_DIR")
    return specs


def _make(name: str, eval_set, checkpoint: Path | None, seed: int, precision: str | None = None,
          guidance: float | None = None):
    """The generator ``name`` set up for ``eval_set``, or (None, reason) when it cannot run there."""
    from sd_sim_plugin.generators.registry import make_generator

    horizon = eval_set.scenes[0].horizon
    if name == "lane":
        return make_generator("lane", horizon=horizon), None
    if name in ("log", "log-random"):
        return make_generator(name, scenes=eval_set.scenes), None
    if name == "metadrive":
        if not eval_set.is_pg:
            return None, "MetaDrive traffic exists on PG maps only"
        return make_generator("metadrive", scenes=eval_set.scenes, horizon=horizon, episode_seed=seed), None
    return make_generator(name, checkpoint=checkpoint, precision=precision, guidance=guidance), None


def run(args: argparse.Namespace) -> int:
    """Evaluate, write OUT/metrics.json, OUT/report.md and the plots, print where they are."""
    import torch
    from tqdm import tqdm

    from sd_sim_plugin.generators.registry import DEFAULT_CHECKPOINT
    from sd_sim_plugin.metrics import harness, report
    from sd_sim_plugin.metrics.suite import LaneCache, summarise
    from sd_sim_plugin.model.checkpoint import fingerprint
    from sd_sim_plugin.scene.types import AgentType

    specs = _generator_specs(args.generator, args.checkpoint)
    names = list(specs)
    if args.limit is not None and args.limit < 1:
        raise SdSimError(f"--limit {args.limit}: must be at least 1")
    if args.samples < 0:
        raise SdSimError(f"--samples {args.samples}: must be 0 (no picture grid) or more")
    if args.checkpoint is not None and "diffusion" not in names:
        raise SdSimError("--checkpoint is for the diffusion generator")
    if args.precision is not None and not any(n.startswith("diffusion") for n in names):
        raise SdSimError("--precision is for the diffusion generator")
    if args.guidance is not None and not any(n.startswith("diffusion") for n in names):
        raise SdSimError("--guidance is for the diffusion generator")
    set_names = [d.name for d in args.data]
    sets = [harness.load_eval_set(d, args.limit, name=n if set_names.count(n) == 1 else f"{n}_{i}")
            for i, (d, n) in enumerate(zip(args.data, set_names))]
    out = args.out
    out.mkdir(parents=True, exist_ok=True)
    command = "sd-sim " + " ".join(shlex.quote(a) for a in sys.argv[1:]) if sys.argv[0].endswith("sd-sim") else None
    all_metrics: dict = {"settings": {"generators": names, "seed": args.seed, "limit": args.limit,
                                      "checkpoint": str(args.checkpoint) if args.checkpoint else None,
                                      "checkpoints": {n: str(c) for n, c in specs.items() if c is not None},
                                      "precision": args.precision, "guidance": args.guidance,
                                      "command": command}, "sets": {}}
    sections = []
    started = time.perf_counter()
    for eval_set in sets:
        lanes = LaneCache()
        ref_stats = harness.reference_stats(eval_set.scenes, lanes)
        reference = summarise(ref_stats)
        results, skipped, results_obj = {}, {}, {}
        for name, checkpoint in specs.items():
            base = name.partition("@")[0]
            generator, why = _make(base, eval_set, checkpoint, args.seed, args.precision,
                                   args.guidance)
            if generator is None:
                skipped[name] = why
                continue
            # the checkpoint's contents, not its path: retraining into the same folder must not reuse old scenes
            weights = fingerprint(checkpoint or DEFAULT_CHECKPOINT) if base == "diffusion" else None
            # settings added over time enter the key only when they differ from the old behaviour, so scenes
            # stored before them stay valid
            extra = {}
            if base == "diffusion" and generator.unet_dtype(1) != torch.float32:  # eval generates one at a time
                extra["unet_dtype"] = str(generator.unet_dtype(1))
            if base == "diffusion" and args.guidance is not None:
                extra["guidance"] = args.guidance
            types = generated_types(generator)
            if types != (AgentType.VEHICLE,):  # a vehicle count alone is the same request in either protocol
                extra["density_types"] = [int(t) for t in types]
                extra["density"] = harness.DENSITY_PROTOCOL
            key = harness.settings_key(generator=name, checkpoint=weights, seed=args.seed, limit=args.limit,
                                       data=str(eval_set.path.resolve()), scenes=len(eval_set.scenes), **extra)
            with tqdm(total=len(eval_set.scenes), desc=f"{eval_set.name}: {name}", unit="scene",
                      disable=args.no_progress) as bar:
                generated = harness.load_or_generate(
                    out / "generated" / eval_set.name / name, key,
                    lambda g=generator, scenes=eval_set.scenes: harness.generate_modes(g, scenes, args.seed,
                                                                                       bar.update))
            res = harness.GeneratorResult(generated=generated)
            results[name] = harness.measure(res, eval_set.scenes, ref_stats, lanes, args.seed, types)
            results_obj[name] = res
        figures = {}
        if results_obj:
            hist = report.plot_histograms(out / eval_set.name / "histograms.png", ref_stats,
                                          {n: r.stats["density_reference"] for n, r in results_obj.items()})
            figures["histograms (density = reference count)"] = str(hist.relative_to(out))
            for n, r in (results_obj if args.samples else {}).items():  # --samples 0: no picture grid
                grid = report.plot_samples(out / eval_set.name / f"samples_{n}.png", eval_set.scenes,
                                           r.generated["density_reference"], n, args.samples)
                figures[f"{n}: samples (right) beside their references (left)"] = str(grid.relative_to(out))
        sources = sorted({str(s.meta.get("source", "?")) for s in eval_set.scenes})
        info = {"scenes": len(eval_set.scenes), "path": str(eval_set.path), "sources": sources}
        all_metrics["sets"][eval_set.name] = {**info, "reference": reference, "generators": results,
                                              "skipped": skipped}
        sections.append(report.set_section(eval_set.name, info, results, reference, skipped, figures))
    all_metrics["settings"]["seconds"] = round(time.perf_counter() - started, 1)
    (out / "metrics.json").write_text(json.dumps(all_metrics, indent=1, default=_json_default) + "\n")
    head = ["# Evaluation report", "", f"Generators: {', '.join(f'`{n}`' for n in names)}; seed {args.seed}"
            + (f"; at most {args.limit} scenes per set" if args.limit else "") + ".", ""]
    if command:
        head += ["Made with:", "", f"    {command}", ""]
    head += ["Definitions: docs/evaluation.md. All numbers: metrics.json.", ""]
    (out / "report.md").write_text("\n".join(head + sections) + "\n")
    print(f"wrote {out / 'report.md'} and {out / 'metrics.json'}")
    return 0


def _json_default(value):
    """numpy scalars and paths in JSON."""
    if hasattr(value, "item"):
        return value.item()
    return str(value)
