"""``sd-sim search SPEC --budget N --method gp-ucb|random|sobol --out DIR``: find a spec's most critical scenarios."""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np

from sd_sim_plugin.errors import SdSimError

OBJECTIVE_LABELS = {"min_ttc": "-min TTC (s)", "min_gap": "-min gap (m)"}


def add_parser(subparsers: argparse._SubParsersAction) -> None:
    """Register ``search``."""
    p = subparsers.add_parser("search", help="search a spec's ranges for its most critical scenarios (GP-UCB)",
                              description="Search the box of a spec's ranges and choices (normalised to [0, 1]^d) "
                                          "for critical scenarios: each evaluation generates a scene and runs it "
                                          "closed loop. The objective is the spec's outcome.objective (minimise "
                                          "TTC or gap; a collision counts as 0). Resumable.")
    p.add_argument("spec", metavar="SPEC", help="scenario spec (YAML) with ranges or choices")
    p.add_argument("--budget", type=int, required=True, help="number of simulations")
    p.add_argument("--method", choices=("gp-ucb", "random", "sobol"), default="gp-ucb")
    p.add_argument("--seed", type=int, default=0, help="search seed (evaluation seeds derive from it)")
    p.add_argument("--kernel", choices=("matern52", "rbf"), default="matern52", help="GP covariance (gp-ucb)")
    p.add_argument("--out", required=True, type=Path, help="output folder")
    p.add_argument("--resume", action="store_true", help="continue the search journaled in --out")
    p.add_argument("--ego", default=None, help="ego policy: idm, expert or module:callable (default: the spec's)")
    p.add_argument("--generator", default=None, help="generator name (default: the spec's, else the package default)")
    p.add_argument("--checkpoint", default=None, help="checkpoint folder for the diffusion generator")
    p.add_argument("--actor-mode", choices=("replay", "idm"), default="replay")
    p.add_argument("--top", type=int, default=3, help="how many critical scenarios to write as specs (default 3)")
    p.set_defaults(func=run)


def spec_objective(spec, runner):
    """The search objective of a spec: (u, seed) -> Evaluation, one closed-loop episode per call."""
    from sd_sim_plugin.search.loop import Evaluation
    from sd_sim_plugin.specs.runner import criticality
    from sd_sim_plugin.specs.space import concretize, point_values

    def objective(u: np.ndarray, seed: int) -> Evaluation:
        concrete = concretize(spec, u, seed=seed)
        try:
            result = runner.run(concrete, seed)
        except BaseException:
            runner.close()  # the env may be half reset; the next evaluation starts a fresh one
            raise
        metrics = result.to_dict()
        metrics["values"] = {k: (round(v, 6) if isinstance(v, float) else v) for k, v in point_values(spec, u).items()}
        return Evaluation(value=criticality(result, spec), collision=result.collision, metrics=metrics)

    return objective


def critical_spec(spec, record, rank: int, generator: str, ego: str, method: str):
    """The fixed-value spec of a run, with its seed, generator and ego, ready for ``sd-sim run``."""
    from sd_sim_plugin.specs.space import concretize

    concrete = concretize(spec, record.u, seed=record.seed)
    m = record.metrics
    ttc = m.get("min_ttc_s")
    outcome = "collision" if record.collision else (f"min TTC {ttc:.2f} s" if ttc is not None else "no TTC")
    description = f"{spec.description} [critical #{rank} of a {method} search: {outcome}]"[:300]
    return concrete.model_copy(update={
        "name": f"{spec.name}_critical{rank}", "description": description, "generator": generator,
        "ego": concrete.ego.model_copy(update={"policy": ego})})


def run(args: argparse.Namespace) -> int:
    """Run (or resume) the search, then write CSV, critical specs, plots and the summary."""
    from sd_sim_plugin.cli.run import build_generator, generator_name, spec_digest
    from sd_sim_plugin.search.loop import run_search
    from sd_sim_plugin.search.report import (critical_records, plot_posterior, plot_progress, summarise_search,
                                             write_json, write_runs_csv)
    from sd_sim_plugin.specs.load import load_spec, spec_to_yaml
    from sd_sim_plugin.specs.runner import SpecRunner, check_density_types, resolve_policy
    from sd_sim_plugin.specs.space import open_dimensions, point_values

    spec = load_spec(args.spec)
    dims = open_dimensions(spec)
    if not dims:
        raise SdSimError(f"{args.spec}: the spec has no ranges or choices: there is nothing to search")
    if args.top < 0:
        raise SdSimError(f"--top must be >= 0, got {args.top}")
    ego = args.ego or spec.ego.policy
    gen_name = generator_name(args.generator, spec.generator, args.checkpoint)
    out: Path = args.out
    objective_id = f"{spec_digest(spec_to_yaml(spec))}:{gen_name}:{ego}:{args.actor_mode}"
    names = [d.name for d in dims]

    def values_of(u: np.ndarray) -> dict:
        return point_values(spec, u)

    def write_csv(records: list) -> None:
        write_runs_csv(records, names, values_of, out / "runs.csv")

    resolve_policy(ego, spec.map.scenarionet is not None)  # a bad --ego is a usage error, not a failed episode
    generator = build_generator(gen_name, args.checkpoint)
    check_density_types(spec, generator, str(args.spec))
    with SpecRunner(generator, ego_policy=ego, actor_mode=args.actor_mode) as runner:
        records, _ = run_search(spec_objective(spec, runner), len(dims), method=args.method, budget=args.budget,
                                seed=args.seed, journal_path=out / "journal.jsonl", kernel=args.kernel,
                                objective_id=objective_id, resume=args.resume, on_record=write_csv)
    write_csv(records)
    label = OBJECTIVE_LABELS[spec.outcome.objective]
    plot_progress(records, out / "criticality.png", out / "best_so_far.png", label, spec.name)
    posterior = plot_posterior(records, names, lambda k, u: dims[k].value(u), out / "posterior.png", args.kernel,
                               label, spec.name)
    critical_dir = out / "critical"
    critical_dir.mkdir(parents=True, exist_ok=True)
    written = []
    for rank, record in enumerate(critical_records(records, args.top), 1):
        concrete = critical_spec(spec, record, rank, gen_name, ego, args.method)
        path = critical_dir / f"rank{rank}.yaml"
        path.write_text(f"# {concrete.description}\n# replay: sd-sim run {path} --episodes 1 --out <dir>\n"
                        + spec_to_yaml(concrete))
        written.append(str(path))
    summary = summarise_search(records, args.method, spec.outcome.objective)
    summary.update({"spec": spec.name, "dimensions": names, "generator": gen_name, "ego": ego, "seed": args.seed,
                    "kernel": args.kernel, "critical_specs": written, "posterior_plot": posterior})
    write_json(out / "summary.json", summary)
    fc = summary["first_collision_at"]
    print(f"{spec.name}: {summary['evaluations']} simulations ({summary['failed']} failed), "
          f"{summary['collisions']} collisions (first at {fc if fc else '-'}), best {label} = "
          f"{summary['best_value'] if summary['best_value'] is not None else '-'}\n"
          f"  critical scenarios: {', '.join(written) or '-'}\n  results in {out}")
    return 0
