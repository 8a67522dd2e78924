"""Share of vehicles standing within 4 m of the 80 m box's border, logs against the model (seed 0, the reference's
count of each agent type): the held-out scenes with checkpoints/real, and each validation fold with its fold model;
also, per held-out source, the vehicles per scene and the logs' share of vehicles standing still."""
from collections import defaultdict

import numpy as np
import torch

from sd_sim_plugin.data.dataset import SceneDataset
from sd_sim_plugin.metrics.harness import reference_density
from sd_sim_plugin.model.pipeline import ScenarioDiffusionGenerator
from sd_sim_plugin.scene.types import AgentType

BORDER_M = 36.0  # 40 m half-extent minus 4 m
torch.set_num_threads(2)


def vehicles(agents):
    return agents.select(np.flatnonzero(np.asarray(agents.types) == int(AgentType.VEHICLE)))


for data_dir, ckpt in [("outputs/real_heldout", "checkpoints/real"), ("data/real_val", "outputs/f0_ro_traj"),
                       ("data/real_val1", "outputs/f1_ro_traj"), ("data/real_val2", "outputs/f2_ro_traj")]:
    gen = ScenarioDiffusionGenerator.from_checkpoint(ckpt)
    data = SceneDataset(data_dir)
    idx = range(len(data)) if "heldout" in data_dir else np.linspace(0, len(data) - 1, 39).astype(int)
    stats = defaultdict(lambda: np.zeros(5))  # ref border, ref n, ref still, gen border, gen n
    for i in idx:
        ref = data[int(i)]
        t0 = ref.horizon.t0_index
        logged = vehicles(ref.agents.select(np.setdiff1d(np.arange(len(ref.agents)), [ref.ego_index])))
        ego = ref.agents.select(np.array([ref.ego_index]))
        drawn = vehicles(gen.generate(ref.map, ego=ego, density=reference_density(ref, gen.agent_types),
                                      seed=int(i))[0].agents)
        still = np.linalg.norm(logged.velocity[:, t0], axis=1) < 0.5
        row = [(np.abs(a.trajectory[:, t0, :2]) > BORDER_M).any(axis=1).sum() for a in (logged, drawn)]
        stats[str(ref.meta.get("file", ""))] += [row[0], len(logged), still.sum(), row[1], len(drawn)]
        stats["all"] += [row[0], len(logged), still.sum(), row[1], len(drawn)]
    for name, (rb, rn, rs, gb, gn) in stats.items():
        if name == "all" or "heldout" in data_dir:
            scenes = len(idx) if name == "all" else sum(str(data[int(i)].meta.get("file", "")) == name for i in idx)
            print(f"{data_dir} {name[:40]:40s} border: logs {rb / rn:.2f}, model {gb / max(gn, 1):.2f}; vehicles "
                  f"per scene: logs {rn / scenes:.1f} ({rs / rn:.0%} still), model {gn / scenes:.1f}")
