"""The validation folds split by city: the fold models (three seeds) against the lane heuristic, per source scene and
pooled over the scenes of each city, from the committed sweep logs (no sampling here).

Run from the repository root: ``python docs/eval/model/diagnostics/folds_by_city.py [LOG ...]`` (needs
``data/real_val``, ``data/real_val1`` and ``data/real_val2`` for the windows per scene, docs/data.md). Weights: each
scene's windows among the 39 (32) the sweep takes per fold. Each LOG (a ``sampler_sweep --per-scene`` log under
docs/eval/model/validation) adds a line per setting: its pooled sum, and its Singapore and Boston + Waymo sums.
Output: ``folds_by_city.log``.
"""
import json
import pickle
import sys
from collections import Counter
from functools import cache
from pathlib import Path

import numpy as np

from sd_sim_plugin.data.dataset import SceneDataset
from sd_sim_plugin.model.sampler_sweep import reference_windows

LOGS = Path("docs/eval/model/validation")
MODELS = {"seed 0": ("real_val_cv_refill.log", {"refill": 0}), "seed 1": ("real_val_cv_seed1.log", {}),
          "seed 2": ("real_val_cv_seed2.log", {}), "3-seed average": ("real_val_cv_soup3.log", {})}
DEV_DATA = Path("../shared/data/scenarionet/dev")  # trusted source (ScenarioNet files are pickles)


def lines(path: Path) -> list[str]:
    """A log's lines."""
    with open(path) as f:
        return f.readlines()


@cache
def city(file: str) -> str:
    """Singapore, Boston or Waymo for a ScenarioNet file, from its metadata (nuScenes: the map's name)."""
    with open(next(DEV_DATA.rglob(file)), "rb") as f:
        meta = pickle.load(f)["metadata"]
    if meta.get("dataset") == "waymo":
        return "Waymo"
    return str(meta.get("map", "?")).split("-")[0].capitalize()


windows = Counter()
for d in ("data/real_val", "data/real_val1", "data/real_val2"):
    for ref in reference_windows(SceneDataset(d), 39):
        windows[str(ref.meta.get("file", ""))] += 1

scores = {}
for name, (log, match) in MODELS.items():
    for line in lines(LOGS / log):
        if line.startswith("{"):
            row = json.loads(line)
            if all(row.get(k) == v for k, v in match.items()):
                scores[name] = row["scenes"]
lane = {}
for line in lines(LOGS / "real_val_cv_lane_heuristic.log"):
    if line.startswith("data/"):
        lane.update(json.loads(line.split(" ", 1)[1])["scenes"])
scores["lane heuristic"] = lane

print("scene".ljust(44), "windows", *(n.rjust(15) for n in scores))
for f in sorted(windows, key=lambda f: (city(f), f)):
    print(f"{f[:36]:36s} {city(f):9s} {windows[f]:5d}", *(f"{sum(s[f]):15.3f}" for s in scores.values()))
for c in ("Singapore", "Boston", "Waymo"):
    files = [f for f in windows if city(f) == c]
    w = np.array([windows[f] for f in files], float)
    pooled = [np.dot(w, [sum(s[f]) for f in files]) / w.sum() for s in scores.values()]
    print(f"{c + ' pooled':46s} {int(w.sum()):5d}", *(f"{p:15.3f}" for p in pooled))
files = [f for f in windows if city(f) != "Singapore"]
w = np.array([windows[f] for f in files], float)
print(f"{'Boston + Waymo pooled':46s} {int(w.sum()):5d}",
      *(f"{np.dot(w, [sum(s[f]) for f in files]) / w.sum():15.3f}" for s in scores.values()))
print("position / heading / velocity:")
for group in (("Singapore",), ("Boston",), ("Waymo",), ("Boston", "Waymo")):
    files = [f for f in windows if city(f) in group]
    w = np.array([windows[f] for f in files], float)
    parts = {n: np.array([s[f] for f in files]).T @ w / w.sum() for n, s in scores.items()}
    print(f"{' + '.join(group):46s}", *(f"{'/'.join(f'{v:.3f}' for v in p):>19s}" for p in parts.values()))

for log in sys.argv[1:]:
    for line in lines(LOGS / log):
        if line.startswith("{") and "scenes" in (row := json.loads(line)):
            keys = ("sampler", "steps", "guidance", "contrast", "interval", "lane_snap", "ego_flag", "real_flag",
                    "refill", "lane_start")
            setting = " ".join(f"{k}={row[k]}" for k in keys if k in row)
            parts = []
            for group in (("Singapore",), ("Boston", "Waymo")):
                files = [f for f in windows if city(f) in group and f in row["scenes"]]
                w = np.array([windows[f] for f in files], float)
                parts.append(np.dot(w, [sum(row["scenes"][f]) for f in files]) / w.sum())
            total = row["position"] + row["heading_vector"] + row["velocity"]
            print(f"{log}: {setting}: all {total:.3f}, Singapore {parts[0]:.3f}, Boston + Waymo {parts[1]:.3f}")
