"""``sd-sim train``: train the autoencoder (stage 1) or the latent diffusion model (stage 2) on a folder of scenes."""

from __future__ import annotations

import argparse
from dataclasses import replace
from pathlib import Path

from sd_sim_plugin.errors import SdSimError


def add_parser(subparsers: argparse._SubParsersAction) -> None:
    """Register ``train``."""
    p = subparsers.add_parser("train", help="train the Scenario Diffusion model (one stage at a time)",
                              description="Train stage 1 (autoencoder) then stage 2 (diffusion) into one checkpoint "
                                          "folder. Rasters are cached under DIR/.cache on first use; progress is "
                                          "saved every few minutes and --resume continues an interrupted run.")
    p.add_argument("--stage", required=True, choices=["autoencoder", "diffusion"])
    p.add_argument("--data", required=True, type=Path, action="append",
                   help="folder of training scenes (sd-sim collect output); give it several times to train on their "
                        "union (a folder given twice weighs double)")
    p.add_argument("--val", type=Path, help="folder of validation scenes (default: the training data)")
    p.add_argument("--out", required=True, type=Path, help="checkpoint folder")
    p.add_argument("--steps", type=int, default=3000)
    p.add_argument("--batch-size", type=int, default=32)
    p.add_argument("--lr", type=float, default=2e-3)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--resume", action="store_true", help="continue from the folder's saved training state")
    p.add_argument("--init", type=Path,
                   help="fine-tune: start this stage from another checkpoint's weights (stage 2 also keeps its latent "
                        "statistics and recipe, refits the count model on --data, and samples with the default "
                        "steps, no guidance, no off-road or lane prior, lane alignment within 20 degrees, no "
                        "trajectory overlap removal, the ego flag on and the real-data flag off until chosen again)")
    p.add_argument("--timestep-scale", type=float, default=1.0,
                   help="factor on the EDM noise conditioning ln(sigma)/4 given to the U-Net as its timestep, for a "
                        "new stage 2 (diffusers' time embedding expects 0..1000; 1 = the shipped checkpoint's recipe)")
    p.add_argument("--unet-channels", metavar="C1,C2",
                   help="for a new stage 2: the U-Net's channels at its two resolution levels, multiples of 8 "
                        "(default: the checkpoint folder's, 32,64 for a folder made by --stage autoencoder)")
    p.add_argument("--mirror-left-hand", action="store_true",
                   help="mirror every window whose lanes say traffic keeps left into right-hand traffic before "
                        "training, and record it so that generation mirrors such maps in and out (a run from --init "
                        "or --resume keeps its checkpoint's setting; this flag can only turn it on)")
    p.add_argument("--domain-flag", action="store_true",
                   help="stage 2: give the global token a real-data flag (windows of folders collected from PG 0, "
                        "others 1), so one model learns PG and real traffic apart; a fine-tune's starting weights take "
                        "the new feature with a zero weight; generation sets it with real_flag in config.json")
    p.add_argument("--device", help="cpu or cuda (default: cuda when present)")
    p.add_argument("--threads", type=int, default=2, help="CPU threads for torch")
    p.add_argument("--eval-every", type=int, default=250)
    p.add_argument("--save-every", type=float, default=180.0, help="seconds between checkpoint saves")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    """Build or open the raster caches and train one stage."""
    import torch

    from sd_sim_plugin.model.cache import cached_arrays, concatenate
    from sd_sim_plugin.model.config import ModelConfig
    from sd_sim_plugin.model.train import (
        TrainOptions,
        pick_device,
        train_autoencoder,
        train_diffusion,
        with_domain_flag,
    )

    if args.steps < 1 or args.batch_size < 1:
        raise SdSimError(f"--steps and --batch-size must be positive (got {args.steps}, {args.batch_size})")
    if args.timestep_scale <= 0:
        raise SdSimError(f"--timestep-scale must be positive (got {args.timestep_scale})")
    if args.init is not None and args.resume:
        raise SdSimError("--init starts a new run and --resume continues one: give one of them")
    unet_channels = _unet_channels(args)
    torch.set_num_threads(max(args.threads, 1))
    from sd_sim_plugin.model.checkpoint import load_config

    if args.init is not None:  # the starting checkpoint's layout shapes the cache
        cfg, _ = load_config(args.init)
    elif args.stage == "diffusion" or args.resume:
        cfg, _ = load_config(args.out)
        if args.stage == "diffusion" and not args.resume:  # the token layout of a fresh stage 2 shapes the cache
            cfg = cfg.for_new_denoiser(timestep_scale=args.timestep_scale, **unet_channels)
    else:
        cfg = ModelConfig()
    if args.domain_flag and args.stage != "diffusion":
        raise SdSimError("--domain-flag is a stage-2 option (--stage diffusion)")
    if args.domain_flag:  # checked before any caching; the global token's width does not change the cache
        cfg = with_domain_flag(cfg, args.out, args.resume)
    if args.mirror_left_hand:
        if args.resume and not cfg.mirror_left_hand:
            raise SdSimError(f"--mirror-left-hand: {args.out} was trained without it, so --resume cannot add it")
        cfg = replace(cfg, mirror_left_hand=True)
    loaded = {d: cached_arrays(d, cfg) for d in dict.fromkeys(args.data)}  # a repeated folder is read once
    train = concatenate([loaded[d] for d in args.data])
    val = cached_arrays(args.val, cfg) if args.val else None
    opts = TrainOptions(steps=args.steps, batch_size=args.batch_size, lr=args.lr, seed=args.seed, resume=args.resume,
                        device=pick_device(args.device), eval_every=args.eval_every, save_every_s=args.save_every,
                        init=args.init)
    if args.stage == "autoencoder":
        history = train_autoencoder(train, val, args.out, opts, cfg)
    else:
        history = train_diffusion(train, val, args.out, opts, timestep_scale=args.timestep_scale,
                                  mirror_left_hand=cfg.mirror_left_hand, domain_flag=args.domain_flag,
                                  **unet_channels)
    print(f"trained {args.stage} to step {opts.steps} -> {args.out}; last validation: {history[-1] if history else {}}")
    return 0


def _unet_channels(args: argparse.Namespace) -> dict[str, tuple[int, ...]]:
    """``--unet-channels`` as a config override ({} when not given); only a new stage 2 takes it."""
    if args.unet_channels is None:
        return {}
    if args.stage != "diffusion" or args.resume or args.init is not None:
        raise SdSimError("--unet-channels sizes a new stage 2: not with --stage autoencoder, --resume or --init")
    from sd_sim_plugin.model.config import ModelConfig

    try:
        channels = tuple(int(c) for c in args.unet_channels.split(","))
        ModelConfig(unet_channels=channels)  # the config's own check: two positive multiples of 8
    except ValueError:
        raise SdSimError(f"--unet-channels {args.unet_channels!r}: give two positive multiples of 8, "
                         "e.g. 48,96") from None
    return {"unet_channels": channels}
