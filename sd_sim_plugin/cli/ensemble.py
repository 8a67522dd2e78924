"""``sd-sim ensemble``: one checkpoint from the denoisers of one recipe trained with several seeds."""

from __future__ import annotations

import argparse
from pathlib import Path


def add_parser(subparsers) -> None:
    """Register ``ensemble``."""
    p = subparsers.add_parser(
        "ensemble", help="combine checkpoints trained with different seeds into one ensemble checkpoint",
        description="Write a checkpoint that samples with the stage-2 denoisers of CKPT... (2-8 checkpoints of one "
                    "recipe trained with different --seed: the same autoencoder, latent statistics and count model). "
                    "Row r of each sampling batch uses denoiser r mod M, so a scene's draws (draws_per_scene) come "
                    "from all of them. Config and sampling choices are the first checkpoint's; see docs/model.md, "
                    "*Three training seeds as one ensemble*.")
    p.add_argument("checkpoints", nargs="+", type=Path, metavar="CKPT", help="trained checkpoint folders")
    p.add_argument("--out", type=Path, required=True, help="new checkpoint folder (must not exist or be empty)")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    """Check the members agree and write the ensemble checkpoint."""
    from sd_sim_plugin.model.checkpoint import assemble_ensemble

    config = assemble_ensemble(args.checkpoints, args.out)
    print(f"wrote {config.parent}: {len(args.checkpoints)} denoisers")
    return 0
