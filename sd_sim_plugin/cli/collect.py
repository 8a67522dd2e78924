"""``sd-sim collect``: cut scenes from PG rollouts or ScenarioNet files into a sharded dataset folder."""

from __future__ import annotations

import argparse
import math
import re
from pathlib import Path

from sd_sim_plugin.errors import SdSimError
from sd_sim_plugin.scene.types import Horizon


def add_parser(subparsers) -> None:
    """Register ``collect``."""
    p = subparsers.add_parser(
        "collect", help="collect training/evaluation scenes into shards + manifest.json",
        description="Cut traffic scenes (ego-frame windows) from MetaDrive procedural-map rollouts (--source pg) or "
                    "ScenarioNet files (--source scenarionet) into npz shards plus manifest.json. Resumable: "
                    "finished shards are skipped on a rerun. ScenarioNet files are pickles: use trusted files only.")
    p.add_argument("--source", choices=["pg", "scenarionet"], required=True)
    p.add_argument("--out", type=Path, required=True, help="dataset folder to write (created; resumed if present)")
    p.add_argument("--seeds", help="PG map seeds A:B (B excluded), e.g. 0:300")
    p.add_argument("--split", choices=["train", "val", "train-minus-val", "eval"],
                   help="a fixed split (sd_sim_plugin.data.splits): PG map seeds (train, val, eval), or for "
                        "ScenarioNet the files held out for evaluation (eval), all others (train), the validation "
                        "scenes among those (val) or the training scenes without them (train-minus-val)")
    p.add_argument("--fold", type=int, default=0,
                   help="ScenarioNet, with --split val or train-minus-val: which validation fold (0 = the "
                        "validation scenes; 1 and 2 split the other street scenes for cross-validation; default 0)")
    p.add_argument("--data-dir", type=Path, help="ScenarioNet folder (searched recursively for *.pkl)")
    p.add_argument("--horizon-past", type=float, default=2.0, help="seconds of past (default 2)")
    p.add_argument("--horizon-future", type=float, default=2.0, help="seconds of future (default 2)")
    p.add_argument("--step", type=float, default=1.0, help="seconds between poses (default 1)")
    p.add_argument("--episode-s", type=float, default=24.0, help="PG: seconds simulated per map (default 24)")
    p.add_argument("--window-stride-s", type=float, default=None,
                   help="seconds between window start times (default: PG 2, ScenarioNet 1)")
    p.add_argument("--others-per-t0", type=int, default=None,
                   help="windows centred on other vehicles per t0 beside the ego's (default: PG 6, ScenarioNet 0; "
                        "0 for --split val and eval)")
    p.add_argument("--others-min-speed", type=float, default=None, metavar="M_PER_S",
                   help="ScenarioNet: windows centred on other vehicles only around those moving at least this fast "
                        "at t = 0, so parked cars are not centres (default 0: any vehicle)")
    p.add_argument("--min-drivable-share", type=float, default=None, metavar="SHARE",
                   help="ScenarioNet: skip files where less than this share of the logged vehicles around the ego "
                        "is on the drivable area (car parks, which the map does not show; default 0: keep all)")
    # one MetaDrive engine per process, so parallel maps need processes, not threads
    p.add_argument("--workers", type=int, default=1,
                   help="processes making shards in parallel, one input (PG map, ScenarioNet file) each; the "
                        "shards are the same as with one (default 1; about one per CPU core)")
    p.add_argument("--no-progress", action="store_true", help="no progress bar")
    p.set_defaults(func=run)


def _seeds(args: argparse.Namespace) -> tuple[int, ...]:
    from sd_sim_plugin.data.splits import EVAL_PG_SEEDS, VAL_PG_SEEDS, split_seeds

    if args.split == "train-minus-val":
        raise SdSimError("--split train-minus-val is for --source scenarionet; PG training seeds never include "
                         "the validation seeds")
    if args.seeds and args.split:
        raise SdSimError("give --seeds or --split, not both")
    if args.seeds:
        m = re.fullmatch(r"(\d+):(\d+)", args.seeds)
        if not m or int(m.group(1)) >= int(m.group(2)):
            raise SdSimError(f"--seeds {args.seeds!r}: expected A:B with A < B, e.g. 0:300")
        seeds = tuple(range(int(m.group(1)), int(m.group(2))))
        if args.split is None and set(seeds) & set(EVAL_PG_SEEDS):
            raise SdSimError(f"--seeds {args.seeds} overlaps the reserved evaluation seeds; use --split eval")
        if args.split is None and set(seeds) & set(VAL_PG_SEEDS):
            raise SdSimError(f"--seeds {args.seeds} overlaps the reserved validation seeds; use --split val")
        return seeds
    return split_seeds(args.split or "train")


def _horizon(args: argparse.Namespace) -> Horizon:
    try:
        return Horizon(args.horizon_past, args.horizon_future, args.step)
    except ValueError as exc:
        raise SdSimError(str(exc)) from None


def run(args: argparse.Namespace) -> int:
    """Collect and print a one-line summary."""
    from sd_sim_plugin.data.store import collect
    from sd_sim_plugin.sources.tracks import WindowConfig

    if args.workers < 1:
        raise SdSimError(f"--workers {args.workers}: expected at least 1")
    horizon = _horizon(args)
    window = WindowConfig()
    if args.source == "pg":
        from sd_sim_plugin.sources.pg import PGConfig, pg_units

        if args.data_dir or args.fold:
            raise SdSimError("--data-dir and --fold are for --source scenarionet")
        if args.others_min_speed is not None or args.min_drivable_share is not None:
            raise SdSimError("--others-min-speed and --min-drivable-share are for --source scenarionet")
        seeds = _seeds(args)
        others = args.others_per_t0 if args.others_per_t0 is not None else (0 if args.split in ("val", "eval") else 6)
        pg = PGConfig(episode_s=args.episode_s, others_per_t0=others,
                      window_stride_s=args.window_stride_s if args.window_stride_s is not None else 2.0)
        config = {"source": "pg", "horizon": horizon.to_dict(), "window": window.to_dict(), "pg": pg.to_dict(),
                  "split": args.split}
        sources = {"kind": "MetaDrive PG maps", "seeds": f"{seeds[0]}:{seeds[-1] + 1}" if seeds else ""}
        units = pg_units(seeds, horizon, pg, window)
    else:
        from sd_sim_plugin.sources.scenarionet import ScenarioNetConfig, scenarionet_units

        if args.seeds:
            raise SdSimError("--seeds is for --source pg")
        if args.data_dir is None:
            raise SdSimError("--source scenarionet needs --data-dir")
        others = args.others_per_t0 if args.others_per_t0 is not None else 0
        if args.split in ("val", "eval") and (others or args.others_min_speed is not None
                                              or args.min_drivable_share is not None):
            raise SdSimError(f"--split {args.split} takes every scene's logged ego windows as they are; drop "
                             "--others-per-t0, --others-min-speed and --min-drivable-share")
        min_speed = args.others_min_speed if args.others_min_speed is not None else 0.0
        if not (min_speed >= 0 and math.isfinite(min_speed)):
            raise SdSimError(f"--others-min-speed {args.others_min_speed}: expected a speed >= 0 in m/s")
        min_share = args.min_drivable_share if args.min_drivable_share is not None else 0.0
        if not 0 <= min_share <= 1:
            raise SdSimError(f"--min-drivable-share {args.min_drivable_share}: expected a share in [0, 1]")
        sn = ScenarioNetConfig(window_stride_s=args.window_stride_s if args.window_stride_s is not None else 1.0,
                               others_per_t0=others, others_min_speed_mps=min_speed,
                               min_drivable_share=min_share)
        from sd_sim_plugin.data.splits import REAL_VAL_FOLDS

        if args.fold and args.split not in ("val", "train-minus-val"):
            raise SdSimError("--fold goes with --split val or --split train-minus-val")
        if not 0 <= args.fold < len(REAL_VAL_FOLDS):
            raise SdSimError(f"--fold {args.fold}: the validation folds are 0 to {len(REAL_VAL_FOLDS) - 1}")
        units = scenarionet_units(args.data_dir, horizon, sn, window, split=args.split, fold=args.fold)
        config = {"source": "scenarionet", "horizon": horizon.to_dict(), "window": window.to_dict(),
                  "scenarionet": sn.to_dict(), "split": args.split}
        if args.fold:  # fold 0 manifests keep their old form, so they still resume
            config["fold"] = args.fold
        sources = {"kind": "ScenarioNet files", "data_dir": str(args.data_dir.resolve())}
    manifest = collect(units, args.out, config, sources=sources, progress=not args.no_progress, workers=args.workers)
    c = manifest["counts"]
    print(f"{c['scenes']} scenes ({c['agents']} agents) in {c['shards']} shards at {args.out}; "
          f"{c['skipped']} inputs skipped; {c['resumed_shards']} shards resumed; "
          f"{manifest['wall_time_s_this_run']} s")
    return 0
