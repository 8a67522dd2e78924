"""How much of herding's gain is the count: ``checkpoints/real`` on the held-out scenes with the most typical of its
eight draws, with herding whole groups (the shipped selection, as many vehicles of each type as asked), and with
herding whole groups held to the most typical draw's count of each type. A diagnosis of a choice already made; it
chooses nothing. One sampling per window (seed = window index, as ``sampler_sweep``), density = the reference's count
of each agent type, the reference's ego given; MMDs as the evaluation computes them (position / heading / velocity).

Run from the repository root: ``python docs/eval/model/diagnostics/herding_count.py [CKPT DATA]`` (default
``checkpoints/real outputs/real_heldout``).
"""
import json
import sys
from dataclasses import replace

import numpy as np
import torch

from sd_sim_plugin.data.dataset import SceneDataset
from sd_sim_plugin.generators.base import generated_types
from sd_sim_plugin.metrics.harness import reference_density
from sd_sim_plugin.metrics.suite import evaluate
from sd_sim_plugin.model.boxes import NUM_TYPES
from sd_sim_plugin.model.herding import GROUP_LINK_M, herded_scene
from sd_sim_plugin.model.pipeline import ScenarioDiffusionGenerator, most_typical_draw
from sd_sim_plugin.model.sampler_sweep import MMD_KEYS, reference_windows


def typical_count(self, draws, type_counts):
    """Herding whole groups, as many of each type as the most typical draw has."""
    typical = draws[most_typical_draw(draws, self.horizon)]
    quota = np.bincount(np.asarray(typical.types, np.int64), minlength=NUM_TYPES)
    return herded_scene(draws, self.horizon, quota, self.cfg.overlap_scale, self.cfg.trajectory_overlap, GROUP_LINK_M)


def main() -> None:
    """Measure the three and print one JSON line each."""
    ckpt, data = (sys.argv[1], sys.argv[2]) if len(sys.argv) == 3 else ("checkpoints/real", "outputs/real_heldout")
    torch.set_num_threads(2)
    refs = reference_windows(SceneDataset(data), 10_000)
    gen = ScenarioDiffusionGenerator.from_checkpoint(ckpt)
    shipped = gen.cfg
    plain = ScenarioDiffusionGenerator._from_draws
    for name, selection, method in (("most typical", "most_typical", plain), ("herding whole groups",
                                    "herding_groups", plain), ("herding whole groups, the most typical draw's count",
                                                               "herding_groups", typical_count)):
        gen.cfg = replace(shipped, draw_selection=selection)
        ScenarioDiffusionGenerator._from_draws = method
        out = [gen.generate(r.map, ego=r.agents.select(np.array([r.ego_index])),
                            density=reference_density(r, generated_types(gen)), seed=i)[0] for i, r in enumerate(refs)]
        result = evaluate(out, refs)
        print(json.dumps({"selection": name, **{k: round(result["mmd"][k], 4) for k in MMD_KEYS},
                          "sum": round(sum(result["mmd"][k] for k in MMD_KEYS), 4),
                          "vehicles_per_scene": round(result["generated"]["vehicles_per_scene"], 2),
                          "reference_vehicles_per_scene": round(result["reference"]["vehicles_per_scene"], 2),
                          "jsd_nearest_neighbour": round(result["jsd"]["nearest_neighbour_m"], 4)}), flush=True)
    ScenarioDiffusionGenerator._from_draws = plain


if __name__ == "__main__":
    main()
