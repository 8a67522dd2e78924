"""Held-out real scenes: detection scores and realism of checkpoints/real's autoencoder reconstructions (encode the
logged agents, decode with the map, keep the reference's count) against the logs: what a perfect stage 2 would give;
and the speed shares of the reconstructions and the logs (``pooled_draws.speed_shares``)."""
import numpy as np
import torch
from pooled_draws import speed_shares  # this folder's script (run from the repository root, as documented)

from sd_sim_plugin.data.dataset import SceneDataset
from sd_sim_plugin.metrics.harness import reference_density
from sd_sim_plugin.metrics.selection import ego_box
from sd_sim_plugin.metrics.suite import LaneCache, evaluate, scene_stats
from sd_sim_plugin.model.boxes import proposals_to_agents
from sd_sim_plugin.model.cache import cached_arrays
from sd_sim_plugin.model.pipeline import ScenarioDiffusionGenerator
from sd_sim_plugin.model.train import reconstruction_scores
from sd_sim_plugin.scene.geometry import LaneIndex
from sd_sim_plugin.scene.types import Scene

torch.set_num_threads(2)
gen = ScenarioDiffusionGenerator.from_checkpoint("checkpoints/real")
data = SceneDataset("outputs/real_heldout")
refs = [data[i] for i in range(len(data))]
arr = cached_arrays("outputs/real_heldout", gen.cfg)
print("detection:", {k: round(float(v), 3) for k, v in
                    reconstruction_scores(gen.autoencoder, arr, np.arange(len(arr)), gen.cfg).items()})
recon = []
with torch.inference_mode():
    mean, _ = gen.autoencoder.encode(torch.from_numpy(np.asarray(arr.agents, np.float32)))
    props = gen.autoencoder.decode(mean, torch.from_numpy(np.asarray(arr.map, np.float32))).numpy()
for p, ref in zip(props, refs):
    n = sum(reference_density(ref, gen.agent_types).values())
    a = proposals_to_agents(p, gen.cfg, count=n, lanes=LaneIndex(ref.map))
    recon.append(Scene(map=ref.map, agents=a, horizon=ref.horizon, ego_index=-1))
r = evaluate(recon, refs)
print("MMD of the reconstructions (count = the reference's, lane alignment 180):",
      {k: round(v, 3) for k, v in r["mmd"].items() if isinstance(v, float)},
      "vehicles per scene", round(r["generated"]["vehicles_per_scene"], 2), "reference",
      round(r["reference"]["vehicles_per_scene"], 2))
lanes = LaneCache()
recon_features = [scene_stats(g, lanes.get(r), ego_box(r)).features for g, r in zip(recon, refs)]
print("speed shares (below 0.3 m/s, 0.3-3, 3-12, 12 and over):",
      {"reconstructions": speed_shares(recon_features),
       "logs": speed_shares([scene_stats(r, lanes.get(r), ego_box(r)).features for r in refs])})
