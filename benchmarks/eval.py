"""Time to evaluate 500 scenes (goal: under 2 minutes on the 2-core sandbox), against loading them, in one run.

Measured, one process: loading 500 reference scenes from shards (the baseline); the reference's own metrics; the
`log` generator evaluated against them (metrics only: its generation is a lookup); the `lane` generator evaluated in
all three modes (generation + metrics), i.e. what ``sd-sim eval --generator lane`` does apart from plots.
Data: the first dataset folder among ``data/pg_eval`` and ``data/pg_train`` holding 500 scenes (or the folder in
``SD_SIM_BENCH_DATA``).
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
    clock = _Clock()
    eval_set = harness.load_eval_set(data, limit=SCENES)
    load_s = clock.lap()
    refs = eval_set.scenes
    lanes = LaneCache()
    ref_stats = harness.reference_stats(refs, lanes)
    ref_s = clock.lap()
    timings = {}
    for name, generator in (("log", LogGenerator(refs)), ("lane", LaneHeuristicGenerator(horizon=refs[0].horizon))):
        generated = harness.generate_modes(generator, refs, seed=0)
        gen_s = clock.lap()
        harness.measure(harness.GeneratorResult(generated=generated), refs, ref_stats, lanes, seed=0)
        timings[name] = (gen_s, clock.lap())

    print(f"data: {data} ({len(refs)} scenes, {sum(len(s.agents) for s in refs) / len(refs):.1f} agents per scene)")
    print(f"{'step':<44}{'wall s':>8}{'CPU s':>8}{'x load (wall)':>15}")
    rows = [("load 500 scenes (baseline)", load_s), ("reference metrics (lane index, stats)", ref_s)]
    for name, (gen_s, measure_s) in timings.items():
        rows += [(f"{name}: generate 3 modes", gen_s), (f"{name}: metrics of 3 modes", measure_s)]
    for label, (wall, cpu) in rows:
        print(f"{label:<44}{wall:>8.2f}{cpu:>8.2f}{wall / load_s[0]:>15.2f}")
    total = [load_s[k] + ref_s[k] + timings["lane"][0][k] + timings["lane"][1][k] for k in (0, 1)]
    print(f"{'total, eval --generator lane (no plots)':<44}{total[0]:>8.2f}{total[1]:>8.2f}"
          f"{total[0] / load_s[0]:>15.2f}   goal < {GOAL_S:.0f} s wall: {'met' if total[0] < GOAL_S else 'NOT met'}")
    return 0


class _Clock:
    """Wall and process-CPU time between laps (CPU time is steadier on a shared machine)."""

    def __init__(self) -> None:
        self._last = (time.perf_counter(), time.process_time())

    def lap(self) -> tuple[float, float]:
        """(wall, CPU) seconds since the previous lap."""
        now = (time.perf_counter(), time.process_time())
        out = (now[0] - self._last[0], now[1] - self._last[1])
        self._last = now
        return out


if __name__ == "__main__":
    raise SystemExit(main())
