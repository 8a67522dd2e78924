"""``sd-sim generate``: scenes from the diffusion model on a PG map or a ScenarioNet map, as .npz files and PNGs."""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np
import yaml

from sd_sim_plugin.errors import SdSimError
from sd_sim_plugin.scene.tokens import AgentToken, Density, density_by_type, parse_density, total_density
from sd_sim_plugin.scene.types import Agents, AgentType, MapGeometry, Scene

MAP_RADIUS_M = 60.0  # crop of the map around the ego: covers the 80 m x 80 m raster with margin


def add_parser(subparsers: argparse._SubParsersAction) -> None:
    """Register ``generate``."""
    p = subparsers.add_parser("generate", help="generate traffic scenes with the diffusion model",
                              description="Generate scenes around the ego on a map: pg:SEED (MetaDrive procedural map, "
                                          "ego at its spawn pose) or scenarionet:FILE[@FRAME] (a ScenarioNet pickle "
                                          "from a trusted source, logged ego at FRAME, default mid-log).")
    p.add_argument("--map", required=True, help="pg:SEED or scenarionet:FILE[@FRAME]")
    p.add_argument("--tokens", type=Path, help="YAML or JSON list of agent tokens (x, y, heading, ... in the ego frame)")
    p.add_argument("--density",
                   help="global scene token: agents to add beyond the tokens, N of any types or per type, e.g. "
                        "vehicle=10,pedestrian=2 (default: the model chooses)")
    p.add_argument("-n", "--count", type=int, default=8, help="number of scenes")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--checkpoint", type=Path, help="checkpoint folder (default: checkpoints/default)")
    p.add_argument("--guidance", type=float, metavar="SCALE",
                   help="classifier-free guidance scale, against what the checkpoint guides against (the global "
                        "scene token unset, or PG traffic with guidance_contrast domain) (1 = off; default: the "
                        "checkpoint's)")
    p.add_argument("--refill", type=int, metavar="ROUNDS",
                   help="sample scenes left short of the count asked for again, up to ROUNDS times, with the agents "
                        "kept so far as agent tokens, and add the new ones that fit (0 = off; default: the "
                        "checkpoint's, 0 in both shipped ones)")
    p.add_argument("--draws", type=int, metavar="K",
                   help="sample each scene K times and make it from those draws, see --selection (1 = off, faster; "
                        "default: the checkpoint's, 8 in checkpoints/real, 1 in checkpoints/default)")
    p.add_argument("--selection", metavar="HOW",
                   help="how a scene is made from its draws: most_typical (the draw nearest the others), herding "
                        "(vehicles taken from all draws so they cover the draws' pooled layout), herding_groups (the "
                        "same, a group of nearby vehicles at a time) (default: the checkpoint's, herding_groups in "
                        "checkpoints/real)")
    p.add_argument("--out", required=True, type=Path)
    p.add_argument("--no-png", action="store_true", help="write only the .npz scene files")
    p.set_defaults(func=run)


def read_tokens(path: Path) -> list[AgentToken]:
    """Agent tokens from YAML/JSON: a list of token dicts, or {"agents": [...]}; errors name the file."""
    if not path.exists():
        raise SdSimError(f"{path}: no such tokens file")
    try:
        data = json.loads(path.read_text()) if path.suffix == ".json" else yaml.safe_load(path.read_text())
    except (json.JSONDecodeError, yaml.YAMLError) as exc:
        raise SdSimError(f"{path}: not valid {'JSON' if path.suffix == '.json' else 'YAML'} ({exc})".replace("\n", " "))
    items = data.get("agents") if isinstance(data, dict) else data
    if not isinstance(items, list):
        raise SdSimError(f"{path}: expected a list of agent tokens (or a mapping with key 'agents')")
    tokens = []
    for i, item in enumerate(items):
        try:
            tokens.append(AgentToken.from_dict(item))
        except (TypeError, KeyError, ValueError, AttributeError) as exc:
            raise SdSimError(f"{path}: agent token {i} is invalid ({type(exc).__name__}: {exc})") from None
    return tokens


def pg_map(seed: int) -> tuple[MapGeometry, Agents]:
    """Ego-frame map around the ego's spawn pose on PG map ``seed``, and the ego box."""
    from metadrive.envs import MetaDriveEnv

    from sd_sim_plugin.scene.transform import Pose2D, map_to_local
    from sd_sim_plugin.sources.map_features import live_map
    from sd_sim_plugin.sources.metadrive_assets import ensure_headless_assets
    from sd_sim_plugin.sources.pg import PGConfig, env_config

    ensure_headless_assets()
    env = MetaDriveEnv(env_config(seed, PGConfig()))
    try:
        env.reset(seed=seed)
        ego = env.agent
        pose = Pose2D(float(ego.position[0]), float(ego.position[1]), float(ego.heading_theta))
        geometry = map_to_local(live_map(env), pose, radius=MAP_RADIUS_M)
        size = (float(ego.LENGTH), float(ego.WIDTH))
    finally:
        env.close()
    return geometry, _ego_agents(*size)


def _ego_agents(length: float, width: float, num_steps: int = 5) -> Agents:
    traj = np.zeros((1, num_steps, 3))
    return Agents(types=[0], length=[length], width=[width], trajectory=traj, velocity=np.zeros((1, num_steps, 2)),
                  valid=np.ones((1, num_steps), bool), ids=["ego"])


def scenarionet_map(spec: str) -> tuple[MapGeometry, Agents]:
    """Ego-frame map and logged ego of a ScenarioNet file at a frame (``FILE[@FRAME]``; default: the middle window)."""
    from sd_sim_plugin.sources.scenarionet import read_windows

    path, _, frame = spec.partition("@")
    if frame and not frame.isdigit():
        raise SdSimError(f"--map scenarionet:{spec}: the frame must be a non-negative integer")
    windows = read_windows(Path(path))
    if not windows:
        raise SdSimError(f"{path}: the log is too short for one window of the model's horizon")
    frames = np.array([w.meta["frame_index"] for w in windows])
    scene = windows[int(np.argmin(np.abs(frames - int(frame)))) if frame else len(windows) // 2]
    return scene.map, scene.agents.select(np.array([scene.ego_index]))


def run(args: argparse.Namespace) -> int:
    """Load the model, resolve the map, generate and write the scenes."""
    if args.count < 1:
        raise SdSimError(f"-n must be at least 1 (got {args.count})")
    density = None if args.density is None else parse_density(args.density)
    kind, _, value = args.map.partition(":")
    if kind not in ("pg", "scenarionet") or not value:
        raise SdSimError(f"--map {args.map!r}: expected pg:SEED or scenarionet:FILE[@FRAME]")
    if kind == "pg" and not value.lstrip("-").isdigit():
        raise SdSimError(f"--map {args.map!r}: the PG seed must be an integer")
    tokens = read_tokens(args.tokens) if args.tokens else None

    import torch

    from sd_sim_plugin.generators.registry import DEFAULT_CHECKPOINT
    from sd_sim_plugin.model.pipeline import ScenarioDiffusionGenerator
    from sd_sim_plugin.scene.io import save_scene

    torch.set_num_threads(2)
    generator = ScenarioDiffusionGenerator.from_checkpoint(args.checkpoint or DEFAULT_CHECKPOINT,
                                                               guidance_scale=args.guidance,
                                                               refill_rounds=args.refill,
                                                               draws_per_scene=args.draws,
                                                               draw_selection=args.selection)
    geometry, ego = pg_map(int(value)) if kind == "pg" else scenarionet_map(value)
    scenes = generator.generate(geometry, ego=ego, agent_tokens=tokens, density=density, seed=args.seed,
                                count=args.count)
    args.out.mkdir(parents=True, exist_ok=True)
    for i, scene in enumerate(scenes):
        scene.meta["map"] = args.map
        path = save_scene(scene, args.out / f"scene_{i:03d}.npz")
        if not args.no_png:
            from sd_sim_plugin.raster.render import render_scene

            render_scene(scene, path.with_suffix(".png"),
                         title=f"{args.map} seed {args.seed} #{i}: {len(scene.agents)} agents")
    counts = [len(s.agents) for s in scenes]
    print(f"wrote {len(scenes)} scenes to {args.out} (agents per scene: {counts})")
    short = shortfall(scenes, density, tokens or [])
    if short:
        hint = "" if generator.cfg.refill_rounds else "; --refill 1 samples the short scenes again"
        print(f"note: fewer agents than asked for ({short}): the model proposed no more that fit (proposals "
              f"overlapping each other or the ego are dropped){hint}")
    return 0


def shortfall(scenes: list[Scene], density: Density, tokens: list[AgentToken]) -> str:
    """What the scenes lack against the request (agent tokens included), e.g. "pedestrian: 2 fewer per scene on
    average"; "" when nothing is missing or the generator chose the count."""
    per_type = density_by_type(density)
    if per_type is None:
        total = total_density(density)
        if total is None:
            return ""
        missing = {"agents": total + len(tokens) - np.mean([len(s.agents) for s in scenes])}
    else:
        types = sorted(set(per_type) | {AgentType(k.agent_type) for k in tokens})
        missing = {t.name.lower(): per_type.get(t, 0) + sum(k.agent_type == t for k in tokens)
                   - np.mean([np.sum(s.agents.types == int(t)) for s in scenes]) for t in types}
    return ", ".join(f"{k}: {m:.3g} fewer per scene on average" for k, m in missing.items() if m > 0)
