"""How much variety the most-typical-draw selection costs: the MMD between two scenes drawn on the same map with
different seeds, for the model at several ``draws_per_scene`` and for the lane heuristic.

For each reference window, two scenes are drawn (seeds as ``sampler_sweep``: window index, and window index plus
1,000,003; density = the reference's count of each agent type, the reference's ego given) and their vehicles at
t = 0 compared with the realism metrics' MMD (position, heading vector, velocity): 0 means the two seeds gave the
same layout, larger means the generator varies more between seeds on that map. Beside it, the per-scene MMD of each
draw against the reference, the usual realism measure. A diagnosis; it chooses nothing.

Run from the repository root:
``python docs/eval/model/diagnostics/draw_spread.py CKPT DATA [CKPT DATA ...] [--draws 1,4] [--selection S]
[--limit N]``,
e.g. the three seed-0 fold models on their validation windows. Every model samples with ``checkpoints/real``'s
sampling choice (``PER_MODEL_CHOICE``) except ``draws_per_scene`` (and ``draw_selection`` with ``--selection``).
Prints one JSON line per (generator, data) pair and one per generator over all pairs (weighted by windows).
"""
import json
import sys
from dataclasses import replace

import numpy as np
from pooled_draws import pairs_parser, parse_pairs, print_totals  # this folder's script, run from the repo root

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


def measure(gen, refs) -> dict:
    """Mean between-seed MMD and mean MMD against the reference, over windows where the sets have vehicles."""
    lanes = LaneCache()
    between, against = {k: [] for k in MMD_KEYS}, {k: [] for k in MMD_KEYS}
    for i, ref in enumerate(refs):
        index, ego = lanes.get(ref), ego_box(ref)
        r = scene_stats(ref, index, ego).features
        ego_agent = ref.agents.select(np.array([ref.ego_index]))
        density = reference_density(ref, generated_types(gen))
        a, b = (scene_stats(gen.generate(ref.map, ego=ego_agent, density=density, seed=k * 1_000_003 + i)[0],
                            index, ego).features for k in (0, 1))
        for key in MMD_KEYS:
            if len(a) and len(b):
                between[key].append(mmd(getattr(a, key), getattr(b, key)))
            if len(a) and len(r):
                against[key].append(mmd(getattr(a, key), getattr(r, key)))
    return {"between seeds": {k: round(float(np.mean(v)), 4) for k, v in between.items()},
            "against the log": {k: round(float(np.mean(v)), 4) for k, v in against.items()},
            "windows": len(refs)}


def main() -> None:
    """Measure each model at each draw count, and the lane heuristic, on each (checkpoint, data) pair."""
    p = pairs_parser(__doc__)
    p.add_argument("--draws", default="1,4", help="draws_per_scene values, comma-separated")
    p.add_argument("--selection", help="draw_selection of the model's rows (default: checkpoints/real's)")
    args = parse_pairs(p)
    try:
        draws = [int(d) for d in args.draws.split(",") if d.strip()]
    except ValueError:
        p.error(f"--draws {args.draws!r}: expected whole numbers, comma-separated")
    if not draws:
        p.error("--draws must name a count")
    shipped, _ = load_config("checkpoints/real")
    totals: dict[str, list] = {}
    for ckpt, data in zip(args.pairs[::2], args.pairs[1::2]):
        refs = reference_windows(SceneDataset(data), args.limit)
        model = ScenarioDiffusionGenerator.from_checkpoint(ckpt)
        gens = []
        for d in draws:
            try:
                cfg = replace(model.cfg, **{**{n: getattr(shipped, n) for n in PER_MODEL_CHOICE}, "draws_per_scene": d,
                                            "draw_selection": args.selection or shipped.draw_selection})
            except ValueError as exc:
                raise SdSimError(f"--draws or --selection: {exc}") from None
            gens.append((f"model, {d} draw(s)" + (f", {cfg.draw_selection}" if d > 1 else ""), cfg))
        for name, cfg in [*gens, ("lane", None)]:
            if cfg is None:
                gen = LaneHeuristicGenerator(refs[0].horizon)
            else:
                model.cfg = cfg
                gen = model
            row = measure(gen, refs)
            totals.setdefault(name, []).append(row)
            print(json.dumps({"generator": name, "model": ckpt, "data": data, **row}), flush=True)
    print_totals(totals, ("between seeds", "against the log"))


if __name__ == "__main__":
    try:
        main()
    except SdSimError as exc:  # a missing checkpoint or data folder, a draw count out of range: one line
        sys.exit(f"draw_spread: {exc}")
