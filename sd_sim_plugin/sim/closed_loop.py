"""Run episodes of a generated-traffic env with its built-in ego policy and summarise what happened.

Shared by ``sd-sim demo`` and the examples: one :class:`EpisodeOutcome` per episode (how it ended, the closest
approach and smallest TTC over the episode, generation time), as JSON-friendly records and a printed table.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass

import numpy as np

# How an episode ended, checked in this order (the first flag set wins).
OUTCOME_FLAGS = ("crash_vehicle", "crash_human", "crash_object", "crash_building", "crash_sidewalk", "out_of_road",
                 "arrive_dest")


@dataclass
class EpisodeOutcome:
    """One closed-loop episode."""

    episode: int
    seed: int
    map_index: int
    scene_seed: int
    outcome: str
    steps: int
    num_agents: int
    num_removed_overlap: int
    min_gap_m: float
    min_ttc_s: float
    route_completion: float
    generation_s: float

    def to_json(self) -> dict:
        """Plain dict; infinite gaps/TTCs (no agent, nothing on a collision course) become None."""
        d = asdict(self)
        for key in ("min_gap_m", "min_ttc_s"):
            if not math.isfinite(d[key]):
                d[key] = None
        return d


def outcome_of(info: dict, terminated: bool, truncated: bool) -> str:
    """The reason an episode ended (or "running")."""
    for flag in OUTCOME_FLAGS:
        if info.get(flag):
            return flag
    if truncated or info.get("max_step"):
        return "max_steps"
    return "terminated" if terminated else "running"


def run_episode(env, episode: int, seed: int, max_steps: int, action=None, recorder=None) -> EpisodeOutcome:
    """Reset with ``seed``, step until the episode ends or ``max_steps``; ``action`` is ignored by built-in policies."""
    action = np.zeros(2) if action is None else action
    _, info = env.reset(seed=seed)
    first = dict(info)
    min_gap, min_ttc = info["min_gap_m"], info["ttc_s"]
    if recorder is not None:
        recorder.new_episode()
        recorder.capture()
    terminated = truncated = False
    steps = 0
    for steps in range(1, max_steps + 1):
        _, _, terminated, truncated, info = env.step(action)
        min_gap, min_ttc = min(min_gap, info["min_gap_m"]), min(min_ttc, info["ttc_s"])
        if recorder is not None:
            recorder.capture()
        if terminated or truncated:
            break
    outcome = outcome_of(info, terminated, truncated)
    if outcome == "running":
        outcome = "max_steps"
    return EpisodeOutcome(episode=episode, seed=seed, map_index=int(first["map_index"]),
                          scene_seed=int(first["scene_seed"]), outcome=outcome, steps=steps,
                          num_agents=int(first["num_agents"]), num_removed_overlap=int(first["num_removed_overlap"]),
                          min_gap_m=float(min_gap), min_ttc_s=float(min_ttc),
                          route_completion=float(info.get("route_completion", float("nan"))),
                          generation_s=float(first["generation_s"]))


def summarise(outcomes: list[EpisodeOutcome]) -> dict:
    """Counts of outcomes and simple aggregates over episodes."""
    counts: dict[str, int] = {}
    for o in outcomes:
        counts[o.outcome] = counts.get(o.outcome, 0) + 1
    n = max(len(outcomes), 1)
    gaps = [o.min_gap_m for o in outcomes if math.isfinite(o.min_gap_m)]
    ttcs = [o.min_ttc_s for o in outcomes if math.isfinite(o.min_ttc_s)]
    return {"episodes": len(outcomes), "outcomes": counts,
            "crash_rate": sum(o.outcome.startswith("crash") for o in outcomes) / n,
            "median_min_gap_m": float(np.median(gaps)) if gaps else None,
            "episodes_with_finite_ttc": len(ttcs),
            "median_min_ttc_s": float(np.median(ttcs)) if ttcs else None,
            "mean_generation_s": float(np.mean([o.generation_s for o in outcomes])) if outcomes else None}


def format_table(outcomes: list[EpisodeOutcome]) -> str:
    """A fixed-width text table, one row per episode."""
    header = f"{'ep':>3} {'map':>4} {'agents':>6} {'removed':>7} {'steps':>5} {'outcome':<14} {'min gap m':>9} " \
             f"{'min TTC s':>9} {'route':>6}"
    rows = [header, "-" * len(header)]
    for o in outcomes:
        gap = f"{o.min_gap_m:9.2f}" if math.isfinite(o.min_gap_m) else f"{'-':>9}"
        ttc = f"{o.min_ttc_s:9.2f}" if math.isfinite(o.min_ttc_s) else f"{'-':>9}"
        rows.append(f"{o.episode:>3} {o.map_index:>4} {o.num_agents:>6} {o.num_removed_overlap:>7} {o.steps:>5} "
                    f"{o.outcome:<14} {gap} {ttc} {o.route_completion:6.2f}")
    return "\n".join(rows)
