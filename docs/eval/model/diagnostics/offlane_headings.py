"""Diagnosis (fifteenth session, validation folds, no choice): how off-lane vehicles near a lane (parked at the curb)
are oriented, in the logs and in the fold models' scenes: the gap to the nearest lane's axis (either direction)."""
from dataclasses import replace
import numpy as np, torch
torch.set_num_threads(2)
from sd_sim_plugin.data.dataset import SceneDataset
from sd_sim_plugin.model.pipeline import ScenarioDiffusionGenerator
from sd_sim_plugin.metrics.harness import reference_density
from sd_sim_plugin.metrics.selection import scene_vehicles
from sd_sim_plugin.scene.geometry import LaneIndex
from sd_sim_plugin.scene.types import AgentType

def stats(agents, lanes, t0):
    if len(agents) == 0:
        return []
    q = lanes.query(agents.trajectory[:, t0, :2], agents.trajectory[:, t0, 2])
    gap = np.abs(q["heading_dev"]); axis = np.degrees(np.minimum(gap, np.pi - gap))
    return [(bool(o), float(l), float(a)) for o, l, a in zip(q["on_lane"], q["lateral"], axis)]

ref_rows, gen_rows = [], []
for ckpt, data in [("outputs/f0_ro_traj", "data/real_val"), ("outputs/f1_ro_traj", "data/real_val1"), ("outputs/f2_ro_traj", "data/real_val2")]:
    g = ScenarioDiffusionGenerator.from_checkpoint(ckpt)
    g.cfg = replace(g.cfg, sampler_steps=6, guidance_scale=1.0, ego_flag=False, real_flag=True, lane_snap_deg=180)
    d = SceneDataset(data)
    for i in np.linspace(0, len(d) - 1, min(39, len(d))).astype(int):
        ref = d[int(i)]
        lanes = LaneIndex(ref.map)
        t0 = ref.horizon.t0_index
        ego = ref.agents.select(np.array([ref.ego_index]))
        gen = g.generate(ref.map, ego=ego, density=reference_density(ref, g.agent_types), seed=int(i))[0]
        ref_rows += stats(scene_vehicles(ref), lanes, t0)
        gen_rows += stats(scene_vehicles(gen), lanes, t0)
for name, rows in (("log", ref_rows), ("model", gen_rows)):
    r = np.array(rows)
    on, lat, ax = r[:, 0] > 0, r[:, 1], r[:, 2]
    near = ~on & (lat <= 5)
    far = ~on & (lat > 5)
    print(f"{name}: vehicles {len(r)}; on lane {on.mean():.1%}, off within 5 m {near.mean():.1%}, further {far.mean():.1%}")
    for label, m in (("on lane", on), ("off, within 5 m", near), ("further", far)):
        if m.any():
            print(f"   {label}: axis gap median {np.median(ax[m]):.1f} deg, > 15 deg {np.mean(ax[m] > 15):.1%}, > 45 deg {np.mean(ax[m] > 45):.1%}")
