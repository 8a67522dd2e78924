"""Nearest-neighbour distances at t = 0 (to the nearest other vehicle or the ego) of the logs and of every draw
selection (the most typical draw, herded scenes), pooled over validation windows: how far apart each puts its
vehicles. A diagnosis; it chooses nothing. Every model samples with checkpoints/real's choices (PER_MODEL_CHOICE),
one sampling (seed = window index), density = the reference's count of each type.

Run from the repository root: ``python docs/eval/model/diagnostics/nearest_neighbours.py CKPT DATA [CKPT DATA ...]``,
e.g. ``outputs/folds_s0/f1_ro data/real_val1 outputs/folds_s0/f2_ro data/real_val2`` (twenty-second session).
"""
import sys
from dataclasses import replace

import numpy as np
import torch

from sd_sim_plugin.data.dataset import SceneDataset
from sd_sim_plugin.generators.base import generated_types
from sd_sim_plugin.metrics.harness import reference_density
from sd_sim_plugin.metrics.selection import ego_box
from sd_sim_plugin.metrics.suite import LaneCache, scene_stats
from sd_sim_plugin.model.checkpoint import load_config
from sd_sim_plugin.model.config import DRAW_SELECTIONS, PER_MODEL_CHOICE
from sd_sim_plugin.model.pipeline import ScenarioDiffusionGenerator
from sd_sim_plugin.model.sampler_sweep import reference_windows

torch.set_num_threads(2)
shipped, _ = load_config("checkpoints/real")
out = {"log": [], **{sel: [] for sel in DRAW_SELECTIONS}}
for ckpt, data in zip(sys.argv[1::2], sys.argv[2::2]):
    refs = reference_windows(SceneDataset(data), 39)
    gen = ScenarioDiffusionGenerator.from_checkpoint(ckpt)
    base = replace(gen.cfg, **{n: getattr(shipped, n) for n in PER_MODEL_CHOICE})
    lanes = LaneCache()
    for i, ref in enumerate(refs):
        index, ego = lanes.get(ref), ego_box(ref)
        out["log"].append(scene_stats(ref, index, ego).features.nearest_neighbour)
        ego_agent = ref.agents.select(np.array([ref.ego_index]))
        density = reference_density(ref, generated_types(gen))
        for sel in DRAW_SELECTIONS:
            gen.cfg = replace(base, draw_selection=sel)
            s = gen.generate(ref.map, ego=ego_agent, density=density, seed=i)[0]
            out[sel].append(scene_stats(s, index, ego).features.nearest_neighbour)
edges = [0, 3, 5, 6, 7, 8, 10, 12, 15, 20, 30, 50]
for k, v in out.items():
    v = np.concatenate(v)
    v = v[np.isfinite(v)]
    h = np.histogram(np.clip(v, 0, 49.9), edges)[0] / len(v)
    print(f"{k:15s} n={len(v):4d} median {np.median(v):5.2f} q10 {np.quantile(v, .1):5.2f} "
          f"q90 {np.quantile(v, .9):5.2f} ", " ".join(f"{a}-{b}:{x:.2f}" for a, b, x in zip(edges, edges[1:], h)))
