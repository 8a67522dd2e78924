"""An IDM ego through generated scenes on procedural (PG) maps and on real ScenarioNet maps.

Every episode resets with a new seed: MetaDrive builds the map, the generator fills it with traffic around the ego,
generated vehicles drive with IDM from their generated state, and the ego drives with MetaDrive's IDM
(``IDMPolicy`` on PG maps, ``TrajectoryIDMPolicy`` along the logged route on real maps). Prints one row per episode
(outcome, closest approach, smallest TTC) and writes a top-down GIF per map type.

    .venv/bin/python examples/closed_loop_idm.py                      # 10 PG + 10 real episodes
    .venv/bin/python examples/closed_loop_idm.py --generator diffusion --episodes 3

Real maps come from a ScenarioNet folder (``--data``, default ../shared/data/scenarionet/dev); those files are
pickles: use folders from a trusted source only. Without the folder the real-map part is skipped. With the diffusion
generator, real maps use ``--real-checkpoint`` (default ``checkpoints/real``, fine-tuned on real scenes).
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from metadrive.policy.idm_policy import IDMPolicy, TrajectoryIDMPolicy

from sd_sim_plugin.sim.closed_loop import format_table, run_episode, summarise
from sd_sim_plugin.sim.config import DEFAULT_GENERATOR
from sd_sim_plugin.sim.envs import ScenarioDiffusionEnv, ScenarioDiffusionRealEnv
from sd_sim_plugin.sim.recording import TopDownRecorder

REPO = Path(__file__).resolve().parents[1]


def run(env, name: str, episodes: int, max_steps: int, out: Path) -> dict:
    """Run the episodes on one env, print the table, write the GIF; return the summary."""
    recorder = TopDownRecorder(env, every=4)
    outcomes = []
    try:
        for k in range(episodes):
            outcomes.append(run_episode(env, episode=k, seed=k, max_steps=max_steps, recorder=recorder))
    finally:
        env.close()
    gif = recorder.write_gif(out / f"{name}.gif")
    print(f"\n== {name}: {episodes} generated scenes, IDM ego ==")
    print(format_table(outcomes))
    print(f"GIF: {gif}")
    return {"summary": summarise(outcomes), "episodes": [o.to_json() for o in outcomes]}


def main() -> None:
    """Parse arguments and run both map types."""
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--generator", default=DEFAULT_GENERATOR)
    p.add_argument("--episodes", type=int, default=10)
    p.add_argument("--max-steps", type=int, default=200, help="10 Hz steps per episode")
    p.add_argument("--data", type=Path, default=REPO.parent / "shared" / "data" / "scenarionet" / "dev")
    p.add_argument("--out", type=Path, default=REPO / "outputs" / "examples" / "closed_loop_idm")
    p.add_argument("--real-checkpoint", type=Path, default=REPO / "checkpoints" / "real",
                   help="diffusion checkpoint for the real maps (default: checkpoints/real)")
    args = p.parse_args()

    results = {}
    pg = ScenarioDiffusionEnv(generator=args.generator, actor_mode="idm", agent_policy=IDMPolicy,
                              num_scenarios=args.episodes, horizon=args.max_steps)
    results["pg"] = run(pg, "pg", args.episodes, args.max_steps, args.out)
    if (args.data / "dataset_summary.pkl").exists():
        checkpoint = str(args.real_checkpoint) if args.generator == "diffusion" else None
        real = ScenarioDiffusionRealEnv(generator=args.generator, checkpoint=checkpoint, actor_mode="idm",
                                        agent_policy=TrajectoryIDMPolicy, data_directory=str(args.data),
                                        horizon=args.max_steps)
        results["real"] = run(real, "real", args.episodes, args.max_steps, args.out)
    else:
        print(f"\nno ScenarioNet folder at {args.data}: skipping real maps (pass --data)")
    (args.out / "outcomes.json").write_text(json.dumps(results, indent=2))
    print(f"\noutcomes: {args.out / 'outcomes.json'}")


if __name__ == "__main__":
    main()
