"""Diagnosis (fifteenth session, no choice): where asked-for vehicles are lost.

For each window, asked per type: vehicle peaks above MIN_COUNT_PROB, vehicles left after t=0 overlap removal, after
trajectory overlap removal, and kept. On the validation folds with the fold models (default), or with ``--heldout``
on the held-out scenes with checkpoints/real."""
import sys
from dataclasses import replace
import numpy as np, torch
torch.set_num_threads(2)
import sd_sim_plugin.model.boxes as B
from sd_sim_plugin.data.dataset import SceneDataset
from sd_sim_plugin.model.pipeline import ScenarioDiffusionGenerator
from sd_sim_plugin.metrics.harness import reference_density
from sd_sim_plugin.scene.types import AgentType

stats = []
orig = B.proposals_to_agents
def spy(out, cfg, threshold=None, count=None, drivable=None, lanes=None, type_counts=None):
    prob = 1 / (1 + np.exp(-out[0]))
    cells = B.peak_cells(prob, B.MIN_COUNT_PROB, cfg.peak_window)
    nd = cfg.num_deltas
    types = np.argmax(out[7 + 3 * nd:, cells[:, 0], cells[:, 1]], axis=0) if len(cells) else np.array([], int)
    a0 = orig(out, replace(cfg, trajectory_overlap=False), threshold, None if count is None else 10**6, drivable, lanes)
    a1 = orig(out, cfg, threshold, None if count is None else 10**6, drivable, lanes)
    a = orig(out, cfg, threshold, count, drivable, lanes, type_counts)
    v = int(AgentType.VEHICLE)
    stats.append([type_counts[v] if type_counts is not None else -1, (types == v).sum(),
                  (a0.types == v).sum(), (a1.types == v).sum(), (a.types == v).sum(),
                  ((prob[cells[:, 0], cells[:, 1]] >= 0.5) & (types == v)).sum() if len(cells) else 0])
    return a
import sd_sim_plugin.model.pipeline as P
P.proposals_to_agents = spy
HELDOUT = "--heldout" in sys.argv[1:]
RUNS = [("checkpoints/real", "outputs/real_heldout")] if HELDOUT else [
    ("outputs/f0_ro_traj", "data/real_val"), ("outputs/f1_ro_traj", "data/real_val1"),
    ("outputs/f2_ro_traj", "data/real_val2")]
for ckpt, data in RUNS:
    g = ScenarioDiffusionGenerator.from_checkpoint(ckpt)
    if not HELDOUT:  # the fold models sampled as checkpoints/real is
        g.cfg = replace(g.cfg, sampler_steps=6, guidance_scale=1.0, ego_flag=False, real_flag=True, lane_snap_deg=180)
    d = SceneDataset(data)
    idx = np.linspace(0, len(d) - 1, len(d) if HELDOUT else min(39, len(d))).astype(int)
    for i in idx:
        ref = d[int(i)]
        ego = ref.agents.select(np.array([ref.ego_index]))
        g.generate(ref.map, ego=ego, density=reference_density(ref, g.agent_types), seed=int(i))
s = np.array(stats)
print("windows", len(s))
print("asked vehicles", s[:, 0].sum(), "vehicle peaks >=0.001", s[:, 1].sum(), "after t0 overlap", s[:, 2].sum(),
      "after trajectory overlap", s[:, 3].sum(), "kept", s[:, 4].sum(), "vehicle peaks >=0.5", s[:, 5].sum())
short = s[s[:, 4] < s[:, 0]]
print("windows short of vehicles", len(short), "missing", (short[:, 0] - short[:, 4]).sum(),
      "of which peaks < asked:", (short[:, 1] < short[:, 0]).sum(), "t0-overlap < asked:", (short[:, 2] < short[:, 0]).sum(),
      "traj-overlap < asked:", (short[:, 3] < short[:, 0]).sum())
