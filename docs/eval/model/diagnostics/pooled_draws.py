"""Per-scene MMD of one draw against the MMD of several draws pooled: is a generator's loss its placement on the map
(its marginal over draws) or how much one draw commits to one of several plausible layouts?

For each reference window, K scenes are drawn (seeds as ``sampler_sweep``: window index plus 1,000,003 per draw;
density = the reference's count of each agent type, the reference's ego given). Two numbers per MMD feature:
- ``one draw``: the per-scene MMD of each draw against the reference, averaged over draws and windows (the usual
  measure, as ``sampler_sweep`` computes it);
- ``K draws pooled``: the vehicles of all K draws of a window as one set against the reference's. This is the MMD
  of the generator's marginal on that map, so a generator that spreads its draws over the map's plausible layouts
  gains against one that draws one layout each time. Pooling also enlarges the generated set, which the estimator
  scores lower by itself (docs/model.md, Known debts); both generators get the same K, so compare them with each
  other, not with the one-draw numbers.
Beside them, the share of vehicles at t = 0 in four speed bands (``speed_shares``: below 0.3 m/s, 0.3-3, 3-12, 12
and over), for the references and for every draw: all vehicles, those on a lane (within ``OFF_LANE_M`` of a lane
centreline) and those off the lanes, with the off-lane share.

Run from the repository root:
``python docs/eval/model/diagnostics/pooled_draws.py CKPT DATA [CKPT DATA ...] [--draws K] [--limit N]``,
e.g. the three fold models on their validation windows, or ``checkpoints/real outputs/real_heldout`` (a diagnosis:
no choice may be made on the held-out scenes). Every model samples with ``checkpoints/real``'s sampling choice and
trajectory rule (``PER_MODEL_CHOICE``), as the sweep's shipped setting does; since the nineteenth session that
includes keeping the most typical of four draws (``draws_per_scene``), which the committed logs predate. Prints
one JSON line per (model, data) pair and one line per generator over all pairs.
"""
import argparse
import json
import sys
from dataclasses import replace

import numpy as np
import torch

from sd_sim_plugin.data.dataset import SceneDataset
from sd_sim_plugin.errors import SdSimError
from sd_sim_plugin.generators.base import generated_types
from sd_sim_plugin.generators.lane_heuristic import LaneHeuristicGenerator
from sd_sim_plugin.metrics.distribution import mmd
from sd_sim_plugin.metrics.harness import reference_density
from sd_sim_plugin.metrics.selection import ego_box
from sd_sim_plugin.metrics.suite import LaneCache, scene_stats
from sd_sim_plugin.model.checkpoint import load_config
from sd_sim_plugin.model.config import PER_MODEL_CHOICE
from sd_sim_plugin.model.pipeline import ScenarioDiffusionGenerator
from sd_sim_plugin.model.sampler_sweep import MMD_KEYS, reference_windows

SPEED_BANDS_MPS = (0.3, 3.0, 12.0)
OFF_LANE_M = 1.4  # the lateral-deviation histogram's last bin (docs/evaluation.md)


def speed_shares(features: list) -> dict:
    """Shares of the pooled speeds in the bands below, between and above :data:`SPEED_BANDS_MPS`: all vehicles, on
    and off the lanes, and the off-lane share."""
    v = np.concatenate([f.speed for f in features]) if features else np.zeros(0)
    lateral = np.concatenate([f.lateral_deviation for f in features]) if features else np.zeros(0)
    off = ~(lateral <= OFF_LANE_M)  # NaN (no lane near) counts as off

    def shares(x: np.ndarray) -> list[float]:
        counts = np.bincount(np.searchsorted(SPEED_BANDS_MPS, x, side="right"), minlength=len(SPEED_BANDS_MPS) + 1)
        return [round(float(c) / max(len(x), 1), 3) for c in counts]

    return {"all": shares(v), "on lane": shares(v[~off]), "off lane": shares(v[off]),
            "off-lane share": round(float(off.mean()) if len(v) else float("nan"), 3)}


def measure(gen, refs, draws: int) -> dict:
    """One-draw and pooled MMDs (mean over windows where both sides have vehicles) of ``gen`` on ``refs``, and the
    speed shares of its draws and of the references."""
    lanes = LaneCache()
    one, pooled = {k: [] for k in MMD_KEYS}, {k: [] for k in MMD_KEYS}
    ref_features, gen_features = [], []
    for i, ref in enumerate(refs):
        index, ego = lanes.get(ref), ego_box(ref)
        r = scene_stats(ref, index, ego).features
        ego_agent = ref.agents.select(np.array([ref.ego_index]))
        density = reference_density(ref, generated_types(gen))
        feats = [scene_stats(gen.generate(ref.map, ego=ego_agent, density=density, seed=k * 1_000_003 + i)[0],
                             index, ego).features for k in range(draws)]
        ref_features.append(r)
        gen_features += feats
        if len(r) == 0:
            continue
        for key in MMD_KEYS:
            sets = [getattr(f, key) for f in feats if len(f)]
            if sets:
                one[key].append(np.mean([mmd(s, getattr(r, key)) for s in sets]))
                pooled[key].append(mmd(np.concatenate(sets), getattr(r, key)))
    return {"one draw": {k: round(float(np.mean(v)), 4) for k, v in one.items()},
            "pooled": {k: round(float(np.mean(v)), 4) for k, v in pooled.items()},
            "windows": len(one["position"]),
            "speed_shares": {"reference": speed_shares(ref_features), "generated": speed_shares(gen_features)}}


def pairs_parser(doc: str) -> argparse.ArgumentParser:
    """A parser for CKPT DATA pairs, ``--limit`` and ``--threads``, described by the first line of ``doc``."""
    p = argparse.ArgumentParser(description=doc.splitlines()[0])
    p.add_argument("pairs", nargs="+", help="CKPT DATA [CKPT DATA ...]")
    p.add_argument("--limit", type=int, default=39, help="windows per data folder (evenly spaced)")
    p.add_argument("--threads", type=int, default=2)
    return p


def parse_pairs(p: argparse.ArgumentParser) -> argparse.Namespace:
    """Parsed arguments of :func:`pairs_parser` (and any added), checked, with torch's thread count set."""
    args = p.parse_args()
    if len(args.pairs) % 2:
        p.error("give CKPT DATA pairs")
    if min(args.limit, args.threads) < 1:
        p.error("--limit and --threads must be at least 1")
    torch.set_num_threads(args.threads)
    return args


def main() -> None:
    """Measure the model and the lane heuristic on each (checkpoint, data) pair and pooled over them."""
    p = pairs_parser(__doc__)
    p.add_argument("--draws", type=int, default=6)
    args = parse_pairs(p)
    if args.draws < 1:
        p.error("--draws must be at least 1")
    totals: dict[str, list] = {"model": [], "lane": []}
    shipped, _ = load_config("checkpoints/real")  # every model samples as checkpoints/real does, like the sweep
    for ckpt, data in zip(args.pairs[::2], args.pairs[1::2]):
        refs = reference_windows(SceneDataset(data), args.limit)
        model = ScenarioDiffusionGenerator.from_checkpoint(ckpt)
        model.cfg = replace(model.cfg, **{n: getattr(shipped, n) for n in PER_MODEL_CHOICE})
        lane = LaneHeuristicGenerator(refs[0].horizon)
        for name, gen in (("model", model), ("lane", lane)):
            row = measure(gen, refs, args.draws)
            totals[name].append(row)
            print(json.dumps({"model": ckpt if name == "model" else "lane", "data": data, **row}), flush=True)
    print_totals(totals, ("one draw", "pooled"))


def print_totals(totals: dict[str, list], parts: tuple[str, ...]) -> None:
    """One JSON line per generator: each part's MMDs over all its rows, weighted by their windows, and their sums."""
    for name, rows in totals.items():
        w = np.array([r["windows"] for r in rows], np.float64)
        out = {part: {k: round(float(np.dot(w, [r[part][k] for r in rows]) / w.sum()), 4) for k in MMD_KEYS}
               for part in parts}
        print(json.dumps({"all": name, **out, "sums": {part: round(sum(v.values()), 4) for part, v in out.items()},
                          "windows": int(w.sum())}), flush=True)


if __name__ == "__main__":
    try:
        main()
    except SdSimError as exc:  # a missing checkpoint or data folder: one line, no traceback
        sys.exit(f"pooled_draws: {exc}")
