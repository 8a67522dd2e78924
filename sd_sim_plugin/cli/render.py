"""``sd-sim render``: a PNG of one scene from a scene file or a dataset shard."""

from __future__ import annotations

import argparse
import zipfile
from pathlib import Path

import numpy as np

from sd_sim_plugin.errors import SdSimError
from sd_sim_plugin.scene.types import Scene


def add_parser(subparsers) -> None:
    """Register ``render``."""
    p = subparsers.add_parser(
        "render", help="draw a scene to a PNG (map, boxes, trajectories past pink -> future blue)",
        description="Draw one scene in the ego frame (ego facing up): drivable area, lane lines, road edges, boxes "
                    "(ego amber) and trajectories coloured from past (pink) to future (blue). SCENE is a scene file "
                    "(.npz from save_scene) or a dataset shard written by `sd-sim collect`.")
    p.add_argument("scene", type=Path, metavar="SCENE", help="scene .npz or shard .npz")
    p.add_argument("--index", type=int, default=0, help="scene index inside a shard (default 0)")
    p.add_argument("--out", type=Path, required=True, help="PNG file to write")
    p.add_argument("--reference", type=Path, help="another scene file drawn on the left, for comparison")
    p.add_argument("--view-m", type=float, default=80.0, help="side of the square drawn, metres (default 80)")
    p.add_argument("--size-px", type=int, default=640, help="side of each panel, pixels (default 640)")
    p.set_defaults(func=run)


def load_any_scene(path: Path, index: int = 0) -> Scene:
    """Scene ``index`` of a shard, or the scene of a scene file (index 0); bad input raises :class:`SdSimError`."""
    from sd_sim_plugin.data.store import ShardReader
    from sd_sim_plugin.scene.io import load_scene

    if not path.is_file():
        raise SdSimError(f"{path}: no such file")
    try:
        with np.load(path, allow_pickle=False) as npz:
            is_scene_file = "scene/json" in npz.files
    except (OSError, ValueError, EOFError, zipfile.BadZipFile) as exc:
        raise SdSimError(f"{path}: not a scene or shard .npz ({type(exc).__name__}: {exc})") from None
    if is_scene_file:
        if index != 0:
            raise SdSimError(f"{path} is a scene file holding one scene: --index must be 0, not {index}")
        return load_scene(path)
    reader = ShardReader(path)
    try:
        if not 0 <= index < len(reader):
            raise SdSimError(f"--index {index} out of range: {path} holds {len(reader)} scenes")
        return reader.scene(index)
    finally:
        reader.close()


def _title(scene: Scene, path: Path, index: int, size_px: int) -> str:
    """A short caption: file, index, agent count and the scene's source, map seed and time."""
    parts = [f"{path.name}[{index}]", f"{len(scene.agents)} agents"]
    for key in ("source", "map_seed", "t0_s"):
        value = scene.meta.get(key)
        if isinstance(value, (str, int, float)):
            parts.append(f"{key}={value:.1f}" if isinstance(value, float) else f"{key}={value}")
    return "  ".join(parts)[: size_px // 7]


def run(args: argparse.Namespace) -> int:
    """Load the scene(s), draw, write the PNG."""
    from sd_sim_plugin.raster.render import render_scene

    if args.view_m <= 0 or args.size_px < 64:
        raise SdSimError(f"--view-m must be > 0 and --size-px >= 64 (got {args.view_m}, {args.size_px})")
    if args.out.suffix.lower() != ".png":
        raise SdSimError(f"--out {args.out}: expected a .png file name")
    scene = load_any_scene(args.scene, args.index)
    reference = load_any_scene(args.reference) if args.reference else None
    out = render_scene(scene, args.out, reference=reference, title=_title(scene, args.scene, args.index, args.size_px),
                       view_m=args.view_m, size_px=args.size_px)
    print(out)
    return 0
