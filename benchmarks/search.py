"""Edge-case search: GP-UCB against random, Sobol and VerifAI's cross-entropy sampler, same budget, same simulator.

Two parts, one process:
1. Optimiser overhead of GP-UCB (GP fit + acquisition) per iteration at ~50 points, d = 5, on a synthetic objective;
   ratio against one closed-loop simulation measured in the same run (the baseline).
2. Search efficiency on shipped specs x seeds: every method gets the same budget, the same evaluation seeds
   (so the same generator noise) and the same simulator (lane generator unless --generator, IDM ego). Reported:
   simulations to the first collision (median over seeds; a seed with none counts as "> budget"), collisions found
   per budget, best criticality. VerifAI's sampler runs in its own venv (benchmarks/.venv-verifai, made by
   benchmarks/make_verifai_env.sh) as a subprocess that proposes points over stdin/stdout; it is skipped with a
   message when that venv is missing.

Run: ``.venv/bin/python -m benchmarks.search [--specs a,b,c] [--seeds 5] [--budget 20] [--duration 6]``
(defaults: 3 specs x 5 seeds x 4 methods x 20 simulations, about 40 minutes on the 2-core sandbox).
"""

from __future__ import annotations

import argparse
import json
import subprocess
import tempfile
import time
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]
VERIFAI_PYTHON = REPO / "benchmarks" / ".venv-verifai" / "bin" / "python"
DEFAULT_SPECS = ("unprotected_left", "cut_in", "dense_congestion")  # collisions rare under random sampling
METHODS = ("gp-ucb", "random", "sobol", "verifai-ce")


class VerifAIProposer:
    """VerifAI's cross-entropy sampler in a subprocess of its own venv; robustness = min TTC (or gap), -1 on collision."""

    def __init__(self, dim: int, seed: int) -> None:
        self.proc = subprocess.Popen([str(VERIFAI_PYTHON), str(REPO / "benchmarks" / "_verifai_sampler.py")],
                                     stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
        self._ask({"dim": dim, "seed": seed})
        self.fed = 0

    def _ask(self, msg: dict) -> dict:
        self.proc.stdin.write(json.dumps(msg) + "\n")
        self.proc.stdin.flush()
        return json.loads(self.proc.stdout.readline())

    def feed(self, records: list) -> None:
        """Send the robustness of every finished evaluation not yet sent."""
        for r in records[self.fed:]:
            if r.status != "ok":
                rho = None  # VerifAI skips updates without a robustness
            elif r.collision:
                rho = -1.0
            else:
                rho = -float(r.value)  # min TTC (or gap), capped: >= 0 without a collision
            self._ask({"cmd": "update", "rho": rho})
        self.fed = len(records)

    def propose(self, x, y, failed):
        """The sampler's next point."""
        from sd_sim_plugin.search.gp_ucb import Proposal

        return Proposal(np.asarray(self._ask({"cmd": "next"})["u"], dtype=float))

    def close(self) -> None:
        """Stop the subprocess."""
        self.proc.stdin.close()
        self.proc.wait(timeout=30)


def overhead(dim: int = 5, points: int = 50, repeats: int = 3) -> dict:
    """GP-UCB proposal time (fit + acquisition) at ``points`` observations, d = ``dim``, synthetic objective."""
    from sd_sim_plugin.search.loop import Evaluation, run_search

    centre = np.linspace(0.2, 0.8, dim)

    def objective(u: np.ndarray, seed: int) -> Evaluation:
        noise = 0.05 * np.random.default_rng(seed).standard_normal()
        return Evaluation(float(np.exp(-np.sum((u - centre) ** 2) / 0.3) + noise))

    near, refits, no_refits = [], [], []
    for rep in range(repeats):
        with tempfile.TemporaryDirectory() as tmp:
            records, _ = run_search(objective, dim, method="gp-ucb", budget=points + 5, seed=rep,
                                    journal_path=Path(tmp) / "j.jsonl", progress=False)
        for r in records:
            if r.info.get("phase") != "ucb":
                continue
            (refits if r.info.get("refit") else no_refits).append(r.propose_s)
            if points - 5 <= r.i < points + 5:
                near.append(r.propose_s)
    return {"dim": dim, "points": points, "median_near_points_s": float(np.median(near)),
            "mean_near_points_s": float(np.mean(near)), "median_refit_s": float(np.median(refits)),
            "median_no_refit_s": float(np.median(no_refits)), "share_refit": len(refits) / (len(refits) + len(no_refits))}


def efficiency(spec_names: list[str], seeds: int, budget: int, duration: float | None, generator: str, methods: list[str],
               out: Path) -> dict:
    """Every method on every spec and seed; per-run results are appended to ``out`` (JSON lines) as they finish."""
    from sd_sim_plugin.cli.search import spec_objective
    from sd_sim_plugin.generators.registry import make_generator
    from sd_sim_plugin.search.loop import run_search
    from sd_sim_plugin.search.report import first_collision
    from sd_sim_plugin.specs.load import load_spec
    from sd_sim_plugin.specs.runner import SpecRunner
    from sd_sim_plugin.specs.space import open_dimensions

    done = {}
    if out.exists():  # resumable: skip (spec, method, seed) already measured
        for line in out.read_text().splitlines():
            row = json.loads(line)
            done[(row["spec"], row["method"], row["seed"])] = row
    rows = list(done.values())
    for name in spec_names:
        spec = load_spec(REPO / "scenario_specs" / f"{name}.yaml")
        if duration is not None:
            spec = spec.model_copy(update={"duration": duration})
        dim = len(open_dimensions(spec))
        with SpecRunner(make_generator(generator)) as runner:
            objective = spec_objective(spec, runner)
            for seed in range(seeds):
                for method in methods:
                    if (name, method, seed) in done:
                        continue
                    proposer = VerifAIProposer(dim, seed) if method == "verifai-ce" else None
                    started = time.perf_counter()
                    with tempfile.TemporaryDirectory() as tmp:
                        records, _ = run_search(
                            objective, dim, method=method, budget=budget, seed=seed, journal_path=Path(tmp) / "j.jsonl",
                            progress=False, proposer=proposer,
                            on_record=(lambda recs, _p=proposer: _p.feed(recs)) if proposer is not None else None)
                    if proposer is not None:
                        proposer.close()
                    ucb = [r.propose_s for r in records if r.info.get("phase") == "ucb"]
                    row = {"spec": name, "method": method, "seed": seed, "budget": budget, "dim": dim,
                           "first_collision": first_collision(records),
                           "collisions": int(sum(r.collision for r in records if r.status == "ok")),
                           "failed_runs": int(sum(r.status != "ok" for r in records)),
                           "best_value": max((r.value for r in records if r.status == "ok"), default=None),
                           "propose_median_s": float(np.median(ucb)) if ucb else None,
                           "sim_median_s": float(np.median([r.eval_s for r in records])),
                           "wall_s": time.perf_counter() - started}
                    rows.append(row)
                    with open(out, "a") as f:
                        f.write(json.dumps(row) + "\n")
                    print(f"  {name:16s} {method:10s} seed {seed}: first collision {row['first_collision']}, "
                          f"collisions {row['collisions']}/{budget}, best {row['best_value']:.3f}, "
                          f"{row['wall_s']:.0f} s", flush=True)
    return summarise(rows, spec_names, methods, budget)


def summarise(rows: list[dict], spec_names: list[str], methods: list[str], budget: int) -> dict:
    """Per spec and method: median simulations to the first collision (none = budget + 1), collisions per budget."""
    table = {}
    for name in spec_names:
        for method in methods:
            mine = [r for r in rows if r["spec"] == name and r["method"] == method]
            if not mine:
                continue
            firsts = [r["first_collision"] if r["first_collision"] is not None else budget + 1 for r in mine]
            table[f"{name}/{method}"] = {
                "seeds": len(mine), "median_first_collision": float(np.median(firsts)),
                "seeds_with_collision": sum(r["first_collision"] is not None for r in mine),
                "mean_collisions": float(np.mean([r["collisions"] for r in mine])),
                "mean_best_value": float(np.mean([r["best_value"] for r in mine if r["best_value"] is not None]))}
    pooled = {}
    for method in methods:
        mine = [r for r in rows if r["method"] == method]
        if mine:
            firsts = [r["first_collision"] if r["first_collision"] is not None else budget + 1 for r in mine]
            pooled[method] = {"median_first_collision": float(np.median(firsts)),
                              "mean_collisions": float(np.mean([r["collisions"] for r in mine])), "runs": len(mine)}
    return {"per_spec": table, "pooled": pooled}


def main(argv: list[str] | None = None) -> int:
    """Overhead, then efficiency; prints tables and ratios, writes outputs/benchmarks/search.json."""
    p = argparse.ArgumentParser(prog="python -m benchmarks.search", description=__doc__.splitlines()[0])
    p.add_argument("--specs", default=",".join(DEFAULT_SPECS))
    p.add_argument("--seeds", type=int, default=5)
    p.add_argument("--budget", type=int, default=20)
    p.add_argument("--duration", type=float, default=None, help="episode seconds (default: each spec's own)")
    p.add_argument("--generator", default="lane")
    p.add_argument("--methods", default=",".join(METHODS))
    p.add_argument("--skip-efficiency", action="store_true")
    p.add_argument("--out", type=Path, default=REPO / "outputs" / "benchmarks")
    args = p.parse_args(argv)
    args.out.mkdir(parents=True, exist_ok=True)
    methods = [m for m in args.methods.split(",") if m]
    if "verifai-ce" in methods and not VERIFAI_PYTHON.exists():
        print(f"VerifAI venv missing ({VERIFAI_PYTHON}); run benchmarks/make_verifai_env.sh. Skipping verifai-ce.")
        methods.remove("verifai-ce")

    print("1. GP-UCB optimiser overhead (fit + acquisition), d = 5, synthetic objective", flush=True)
    ovh = overhead()
    result = {"overhead": ovh}
    print(f"  at {ovh['points']} points: median {ovh['median_near_points_s']:.3f} s (mean "
          f"{ovh['mean_near_points_s']:.3f} s); refit iterations median {ovh['median_refit_s']:.3f} s "
          f"({ovh['share_refit']:.0%} of iterations), others {ovh['median_no_refit_s']:.3f} s; goal <= 0.5 s", flush=True)
    if not args.skip_efficiency:
        specs = [s for s in args.specs.split(",") if s]
        print(f"2. Search efficiency: {len(specs)} specs x {args.seeds} seeds x {len(methods)} methods, budget "
              f"{args.budget}, generator {args.generator}, episodes of {args.duration or 'the specs own'} s", flush=True)
        eff = efficiency(specs, args.seeds, args.budget, args.duration, args.generator, methods,
                         args.out / "search_runs.jsonl")
        result["efficiency"] = eff
        sim_s = np.median([r["sim_median_s"] for r in map(json.loads, (args.out / "search_runs.jsonl")
                                                           .read_text().splitlines())])
        print(f"  baseline: one simulation {sim_s:.2f} s (median); GP-UCB overhead at 50 points = "
              f"{ovh['median_near_points_s'] / sim_s:.2f} x a simulation")
        print(f"  {'spec/method':30s} {'median sims to 1st collision':>28s} {'seeds w/ collision':>18s} "
              f"{'collisions/budget':>17s}")
        for key, row in eff["per_spec"].items():
            print(f"  {key:30s} {row['median_first_collision']:28.1f} {row['seeds_with_collision']:18d} "
                  f"{row['mean_collisions']:17.2f}")
        pooled = eff["pooled"]
        print("  pooled over specs and seeds:")
        for method, row in pooled.items():
            print(f"    {method:10s} median sims to first collision {row['median_first_collision']:.1f} "
                  f"(budget {args.budget}; none = {args.budget + 1}), collisions per budget {row['mean_collisions']:.2f}")
        gp = pooled.get("gp-ucb")
        for other in ("random", "sobol", "verifai-ce"):
            if gp and other in pooled:
                print(f"    ratio GP-UCB / {other}: sims to first collision "
                      f"{gp['median_first_collision'] / pooled[other]['median_first_collision']:.2f}, collisions found "
                      f"{gp['mean_collisions'] / max(pooled[other]['mean_collisions'], 1e-9):.2f}")
    (args.out / "search.json").write_text(json.dumps(result, indent=1))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
