"""``sd-sim demo``: generated scenes closed loop on a built-in PG map with an IDM ego; a GIF and a summary.

Each episode resets with seed = its number, so a run is reproducible and an interrupted run resumes: finished
episodes (``episodes/NNN.json`` + ``.gif``) are kept, the rest are run, then ``summary.json`` and ``demo.gif``
are written for all of them.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from sd_sim_plugin.errors import SdSimError
from sd_sim_plugin.scene.tokens import Density, density_json, parse_density
from sd_sim_plugin.sim.config import ACTOR_MODES, DEFAULT_GENERATOR

DEMO_MAP = "SXSCS"  # MetaDrive block sequence: straight, intersection, straight, curve, straight
MAX_GIF_FRAMES = 400


def add_parser(subparsers: argparse._SubParsersAction) -> None:
    """Register ``demo``."""
    p = subparsers.add_parser("demo", help="run generated traffic closed loop with an IDM ego; write a GIF + summary",
                              description="Generated scenes, closed loop in MetaDrive on a built-in PG map "
                                          f"({DEMO_MAP}) with an IDM ego. Writes OUT/demo.gif, OUT/summary.json and "
                                          "prints a table; reruns resume.")
    p.add_argument("--generator", help=f"generator name (default: {DEFAULT_GENERATOR}; 'diffusion' uses --checkpoint "
                                       "or checkpoints/default)")
    p.add_argument("--checkpoint", type=Path, help="diffusion checkpoint folder (implies --generator diffusion)")
    p.add_argument("--episodes", type=int, default=5, help="number of episodes (default 5)")
    p.add_argument("--out", type=Path, default=Path("outputs/demo"), help="output folder (default outputs/demo)")
    p.add_argument("--actor-mode", choices=ACTOR_MODES, default="idm",
                   help="generated agents replay their trajectories or drive with IDM (default idm)")
    p.add_argument("--density", help="agents to add per scene, N of any types or per type, e.g. "
                                     "vehicle=10,pedestrian=2 (default: the generator chooses)")
    p.add_argument("--max-steps", type=int, default=200, help="steps per episode at 10 Hz (default 200 = 20 s)")
    p.set_defaults(func=run)


def _settings(args: argparse.Namespace) -> dict:
    """The settings that make episodes comparable (a resumed run must use the same)."""
    generator = args.generator or ("diffusion" if args.checkpoint else DEFAULT_GENERATOR)
    return {"generator": generator, "checkpoint": str(args.checkpoint) if args.checkpoint else None,
            "actor_mode": args.actor_mode, "density": density_json(_density(args)), "max_steps": args.max_steps,
            "map": DEMO_MAP}


def _density(args: argparse.Namespace) -> Density:
    """The parsed ``--density``."""
    return None if args.density is None else parse_density(args.density)


def run(args: argparse.Namespace) -> int:
    """Run the demo episodes (resuming finished ones), then write the GIF and the summary."""
    if args.episodes < 1 or args.max_steps < 1:
        raise SdSimError("--episodes and --max-steps must be >= 1")
    out: Path = args.out
    density = _density(args)
    settings = _settings(args)
    settings_file = out / "settings.json"
    if settings_file.exists() and json.loads(settings_file.read_text()) != settings:
        raise SdSimError(f"{out} holds a demo run with other settings ({settings_file}); use another --out or "
                         "delete that folder")
    episodes_dir = out / "episodes"

    from metadrive.policy.idm_policy import IDMPolicy
    from tqdm import tqdm

    from sd_sim_plugin.sim.closed_loop import EpisodeOutcome, format_table, run_episode, summarise
    from sd_sim_plugin.sim.envs import ScenarioDiffusionEnv
    from sd_sim_plugin.sim.recording import TopDownRecorder, write_gif

    todo = [k for k in range(args.episodes)
            if not ((episodes_dir / f"{k:03d}.json").exists() and (episodes_dir / f"{k:03d}.gif").exists())]
    if todo:
        # Built before anything is written, so a bad generator or checkpoint leaves no half-made folder behind.
        env = ScenarioDiffusionEnv(generator=args.generator, checkpoint=str(args.checkpoint) if args.checkpoint else None,
                                   actor_mode=args.actor_mode, density=density, agent_policy=IDMPolicy,
                                   map=DEMO_MAP, num_scenarios=1, horizon=args.max_steps)
        try:
            episodes_dir.mkdir(parents=True, exist_ok=True)
            settings_file.write_text(json.dumps(settings, indent=2))
            for k in tqdm(todo, desc="demo episodes", unit="episode"):
                recorder = TopDownRecorder(env, every=2)
                outcome = run_episode(env, episode=k, seed=k, max_steps=args.max_steps, recorder=recorder)
                recorder.write_gif(episodes_dir / f"{k:03d}.gif")
                (episodes_dir / f"{k:03d}.json").write_text(json.dumps(outcome.to_json(), indent=2))
        finally:
            env.close()

    outcomes = []
    for k in range(args.episodes):
        record = json.loads((episodes_dir / f"{k:03d}.json").read_text())
        record.update({key: float("inf") for key in ("min_gap_m", "min_ttc_s") if record[key] is None})
        outcomes.append(EpisodeOutcome(**record))
    gif = write_gif(_all_frames(episodes_dir, args.episodes), out / "demo.gif")
    summary = {"settings": settings, "summary": summarise(outcomes), "episodes": [o.to_json() for o in outcomes]}
    (out / "summary.json").write_text(json.dumps(summary, indent=2))
    print(format_table(outcomes))
    print(json.dumps(summary["summary"]))
    print(f"wrote {gif} and {out / 'summary.json'}")
    return 0


def _all_frames(episodes_dir: Path, episodes: int) -> list:
    """Frames of every episode GIF, thinned to at most MAX_GIF_FRAMES."""
    import imageio.v2 as imageio
    import numpy as np

    frames = []
    for k in range(episodes):
        frames += [np.asarray(f)[..., :3] for f in imageio.mimread(episodes_dir / f"{k:03d}.gif")]
    step = max(1, int(np.ceil(len(frames) / MAX_GIF_FRAMES)))
    return frames[::step]
