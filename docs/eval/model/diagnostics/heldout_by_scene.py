"""Held-out real scenes, scene by scene: checkpoints/real minus the lane heuristic (position / heading / velocity MMD,
mean over seeds 0-2 of the committed reports), and a bootstrap over the six scenes (windows as weights)."""
import json

import numpy as np

FILES = ["docs/eval/model/metrics.json", "docs/eval/model/real_seed1/metrics.json",
         "docs/eval/model/real_seed2/metrics.json"]
KEYS = ("position", "heading_vector", "velocity")
per: dict[str, list] = {}
for f in FILES:
    g = json.load(open(f))["sets"]["real_heldout"]["generators"]
    m, lane = g["diffusion@real"]["by_source"], g["lane"]["by_source"]
    for name in m:
        per.setdefault(name, []).append(([m[name][k] - lane[name][k] for k in KEYS], m[name]["scenes_used"]))
names = sorted(per)
diff = np.array([np.mean([d for d, _ in per[n]], axis=0) for n in names])
w = np.array([np.mean([u for _, u in per[n]]) for n in names])
for n, d, ww in zip(names, diff, w):
    print(n[:40].ljust(40), np.round(d, 3), int(ww))
rng = np.random.default_rng(0)
boot = np.array([np.average(diff[i], axis=0, weights=w[i])
                 for i in (rng.integers(len(names), size=len(names)) for _ in range(10000))])
print("weighted mean (model - lane):", np.round(np.average(diff, axis=0, weights=w), 3))
print("90% scene-bootstrap interval:", [tuple(np.round(np.percentile(boot[:, k], [5, 95]), 3)) for k in range(3)])
print("bootstrap draws with the model ahead:", np.round((boot < 0).mean(axis=0), 3))
print("scenes with the model ahead:", (diff < 0).sum(axis=0), "of", len(names))
