"""Time to evaluate 500 scenes (goal: under 2 minutes on the 2-core sandbox), against loading them, in one run.

Measured, one process: loading 500 reference scenes from shards (the baseline); the reference's own metrics; the
`log` generator evaluated against them (metrics only: its generation is a lookup); the `lane` generator evaluated in
all three modes (generation + metrics), i.e. what ``sd-sim eval --generator lane`` does apart from plots.
Data: the first dataset folder among ``data/pg_eval`` and ``data/pg_train`` holding 500 scenes (or ``SD_SIM_BENCH_DATA``).
Run: ``.venv/bin/python -m benchmarks.eval``.
"""

from __future__ import annotations

import os
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
SCENES = 500
GOAL_S = 120.0


def _data_dir() -> Path | None:
    """A dataset folder with at least SCENES scenes."""
    from sd_sim_plugin.data.store import read_shard_info, shard_paths

    candidates = [os.environ.get("SD_SIM_BENCH_DATA")] if os.environ.get("SD_SIM_BENCH_DATA") else []
    candidates += [str(REPO / "data" / "pg_eval"), str(REPO / "data" / "pg_train")]
    for c in candidates:
        if Path(c).is_dir() and sum(read_shard_info(p)["count"] for p in shard_paths(c)) >= SCENES:
            return Path(c)
    return None


def main() -> int:
    """Run the measurements and print them with ratios to the loading time."""
    from sd_sim_plugin.generators.lane_heuristic import LaneHeuristicGenerator
    from sd_sim_plugin.generators.log import LogGenerator
    from sd_sim_plugin.metrics import harness
    from sd_sim_plugin.metrics.suite import LaneCache

    data = _data_dir()
    if data is None:
        print(f"no dataset folder with {SCENES} scenes (collect data/pg_eval or set SD_SIM_BENCH_DATA)")
        return 1
    t = time.perf_counter()
    eval_set = harness.load_eval_set(data, limit=SCENES)
    load_s = time.perf_counter() - t
    refs = eval_set.scenes

    t = time.perf_counter()
    lanes = LaneCache()
    ref_stats = harness.reference_stats(refs, lanes)
    ref_s = time.perf_counter() - t

    timings = {}
    for name, generator in (("log", LogGenerator(refs)), ("lane", LaneHeuristicGenerator(horizon=refs[0].horizon))):
        t = time.perf_counter()
        generated = harness.generate_modes(generator, refs, seed=0)
        gen_s = time.perf_counter() - t
        t = time.perf_counter()
        harness.measure(harness.GeneratorResult(generated=generated), refs, ref_stats, lanes, seed=0)
        timings[name] = (gen_s, time.perf_counter() - t)

    print(f"data: {data} ({len(refs)} scenes, {sum(len(s.agents) for s in refs) / len(refs):.1f} agents per scene)")
    print(f"{'step':<48}{'seconds':>9}{'x load':>9}")
    rows = [("load 500 scenes (baseline)", load_s), ("reference metrics (lane index, stats)", ref_s)]
    for name, (gen_s, measure_s) in timings.items():
        rows += [(f"{name}: generate 3 modes", gen_s), (f"{name}: metrics of 3 modes", measure_s)]
    for label, s in rows:
        print(f"{label:<48}{s:>9.2f}{s / load_s:>9.2f}")
    lane_total = load_s + ref_s + sum(timings["lane"])
    print(f"{'total, eval --generator lane (no plots)':<48}{lane_total:>9.2f}{lane_total / load_s:>9.2f}"
          f"   goal < {GOAL_S:.0f} s: {'met' if lane_total < GOAL_S else 'NOT met'}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
