"""The lane heuristic on the three folds' validation windows, measured exactly as sampler_sweep measures a setting.

Run from the repository root: ``python docs/eval/model/diagnostics/lane_heuristic_folds.py`` (needs
``data/real_val``, ``data/real_val1`` and ``data/real_val2``, docs/data.md). Output:
``docs/eval/model/validation/real_val_cv_lane_heuristic.log``.
"""
import json

import numpy as np

from sd_sim_plugin.data.dataset import SceneDataset
from sd_sim_plugin.generators.lane_heuristic import LaneHeuristicGenerator
from sd_sim_plugin.model.sampler_sweep import MMD_KEYS, measure_setting, reference_windows

rows = []
for d in ("data/real_val", "data/real_val1", "data/real_val2"):
    refs = reference_windows(SceneDataset(d), 39)
    gen = LaneHeuristicGenerator(refs[0].horizon)
    rows.append((measure_setting(gen, None, refs, seeds=6, per_scene=True), len(refs)))
    print(d, json.dumps(rows[-1][0]), flush=True)
used = np.array([r["scenes_used"] for r, _ in rows])
print("pooled", {k: round(float(np.dot(used, [r[k] for r, _ in rows]) / used.sum()), 4) for k in MMD_KEYS},
      "sum", round(sum(float(np.dot(used, [r[k] for r, _ in rows]) / used.sum()) for k in MMD_KEYS), 4))
