"""Choose the sampler by measuring realism against speed: ``python -m sd_sim_plugin.model.sampler_sweep CKPT DATA``.

For each sampler setting, generates one scene per reference window (density = the reference's agent count, the
reference's ego given) and prints position / heading / velocity MMD (``sd_sim_plugin.metrics.suite.evaluate``) beside
the CPU time per scene at batch 1.
"""

from __future__ import annotations

import argparse
import json
import time
from dataclasses import replace

import numpy as np
import torch

from sd_sim_plugin.data.dataset import SceneDataset
from sd_sim_plugin.metrics.harness import reference_density
from sd_sim_plugin.metrics.suite import evaluate
from sd_sim_plugin.model.edm import network_evaluations
from sd_sim_plugin.model.pipeline import ScenarioDiffusionGenerator

SETTINGS = (("euler", 6), ("euler", 10), ("heun", 5), ("heun", 10), ("dpmpp2m", 4), ("dpmpp2m", 5), ("dpmpp2m", 6),
            ("dpmpp2m", 8), ("dpmpp2m", 10), ("dpmpp2m", 20))


def main(argv: list[str] | None = None) -> None:
    """Sweep and print one JSON line per setting."""
    p = argparse.ArgumentParser(prog="sampler_sweep")
    p.add_argument("checkpoint")
    p.add_argument("data")
    p.add_argument("--limit", type=int, default=60)
    p.add_argument("--threads", type=int, default=1)
    args = p.parse_args(argv)
    torch.set_num_threads(args.threads)
    gen = ScenarioDiffusionGenerator.from_checkpoint(args.checkpoint)
    data = SceneDataset(args.data)
    refs = [data[int(i)] for i in np.linspace(0, len(data) - 1, min(args.limit, len(data))).astype(int)]
    for method, steps in SETTINGS:
        gen.cfg = replace(gen.cfg, sampler=method, sampler_steps=steps)
        out, cpu = [], 0.0
        for i, ref in enumerate(refs):
            start = time.process_time()
            ego = ref.agents.select(np.array([ref.ego_index]))
            out += gen.generate(ref.map, ego=ego, density=reference_density(ref, gen.agent_types), seed=i)
            cpu += time.process_time() - start
        m = evaluate(out, refs)
        evals = network_evaluations(method, steps)
        print(json.dumps({"sampler": method, "steps": steps, "network_evals": evals,
                          "cpu_ms_per_scene": round(1000 * cpu / len(refs), 1),
                          **{k: round(m["mmd"][k], 4) for k in ("position", "heading_vector", "velocity")}}), flush=True)


if __name__ == "__main__":
    main()
