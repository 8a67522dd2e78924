"""Train a Stable-Baselines3 PPO agent for a few thousand steps in generated traffic.

Stable-Baselines3 is an optional extra, not a dependency of the package:

    .venv/bin/pip install -e '.[rl]'          # or: .venv/bin/pip install "stable-baselines3>=2.3"
    .venv/bin/python examples/train_ppo.py --steps 4000

The agent sees MetaDrive's default lidar/state observation and drives among generated agents (replay mode);
every reset brings a new generated scene. A few thousand steps only checks that training runs end to end;
driving well takes on the order of a million steps.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]


def main() -> None:
    """Train PPO, save it, and evaluate one episode."""
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--steps", type=int, default=4000)
    p.add_argument("--generator", default=None, help="generator name (default: the package default)")
    p.add_argument("--out", type=Path, default=REPO / "outputs" / "examples" / "ppo")
    args = p.parse_args()
    try:
        from stable_baselines3 import PPO
    except ImportError:
        sys.exit("this example needs Stable-Baselines3: .venv/bin/pip install -e '.[rl]'")

    from sd_sim_plugin.sim.envs import ScenarioDiffusionEnv

    env = ScenarioDiffusionEnv(generator=args.generator, actor_mode="replay", num_scenarios=20, horizon=500,
                               scene_seed=0)
    try:
        model = PPO("MlpPolicy", env, n_steps=512, batch_size=64, n_epochs=4, seed=0, verbose=1, device="cpu")
        model.learn(total_timesteps=args.steps, progress_bar=False)
        args.out.mkdir(parents=True, exist_ok=True)
        model.save(args.out / "ppo_generated_traffic")
        obs, info = env.reset(seed=1000)
        total, done, steps = 0.0, False, 0
        while not done:
            action, _ = model.predict(obs, deterministic=True)
            obs, reward, terminated, truncated, info = env.step(action)
            total, done, steps = total + reward, terminated or truncated, steps + 1
        print(f"evaluation episode: {steps} steps, return {total:.1f}, route completion "
              f"{info['route_completion']:.2f}, crash {info['crash_vehicle']}, closest gap {info['min_gap_m']:.2f} m")
        print(f"model: {args.out / 'ppo_generated_traffic.zip'}")
    finally:
        env.close()


if __name__ == "__main__":
    main()
