"""``sd-sim run SPEC --episodes N --ego POLICY --out DIR``: play a spec closed loop and report the outcomes."""

from __future__ import annotations

import argparse
import csv
import hashlib
import json
import math
from pathlib import Path

import numpy as np

from sd_sim_plugin.errors import SdSimError


def add_parser(subparsers: argparse._SubParsersAction) -> None:
    """Register ``run``."""
    p = subparsers.add_parser("run", help="play a scenario spec closed loop and report outcomes",
                              description="Play a scenario spec in MetaDrive: each episode draws the spec's ranges "
                                          "(uniformly, from the episode seed), generates traffic around the key "
                                          "agents and runs the ego policy. Writes per-episode CSV/JSON, a summary, "
                                          "a top-down GIF per episode and the scenes as ScenarioNet files.")
    p.add_argument("spec", metavar="SPEC", help="scenario spec (YAML)")
    p.add_argument("--episodes", type=int, default=1, help="number of episodes (default 1)")
    p.add_argument("--ego", default=None, help="ego policy: idm, expert or module:callable (default: the spec's)")
    p.add_argument("--out", required=True, type=Path, help="output folder")
    p.add_argument("--generator", default=None, help="generator name (default: the spec's, else the package default)")
    p.add_argument("--checkpoint", default=None, help="checkpoint folder for the diffusion generator")
    p.add_argument("--seed", type=int, default=None,
                   help="seed of the first episode; episode i uses seed + i (default: the spec's seed, else 0)")
    p.add_argument("--duration", type=float, default=None,
                   help="episode length in seconds, overriding the spec's (e.g. short runs to measure spec fidelity)")
    p.add_argument("--actor-mode", choices=("replay", "idm"), default="replay",
                   help="generated agents replay their trajectory then follow lanes (replay) or drive with IDM")
    p.add_argument("--no-gif", action="store_true", help="skip the per-episode GIFs (faster)")
    p.add_argument("--no-export", action="store_true", help="skip the ScenarioNet export")
    p.add_argument("--resume", action="store_true", help="continue an interrupted run in --out")
    p.set_defaults(func=run)


def spec_digest(text: str) -> str:
    """Short hash of a spec's canonical YAML (journals refuse to mix different specs)."""
    return hashlib.sha256(text.encode()).hexdigest()[:16]


def generator_name(arg: str | None, spec_generator: str | None, checkpoint: str | None) -> str:
    """The generator to use: --generator, else the spec's, else the simulator's default."""
    from sd_sim_plugin.sim.config import DEFAULT_GENERATOR

    return arg or spec_generator or ("diffusion" if checkpoint else DEFAULT_GENERATOR)


def build_generator(name: str, checkpoint: str | None):
    """A generator object by name (the simulator's rules: checkpoint folders are checked first)."""
    from sd_sim_plugin.sim.config import SimConfig

    return SimConfig(generator=name, checkpoint=checkpoint).build_generator()


def run(args: argparse.Namespace) -> int:
    """Run the episodes (resumable), then write CSV, JSON and the summary."""
    from tqdm import tqdm

    from sd_sim_plugin.search.loop import Journal, describe_exception, open_journal
    from sd_sim_plugin.specs.load import load_spec, spec_to_yaml
    from sd_sim_plugin.specs.runner import EpisodeResult, SpecRunner, check_density_types, draw_point, resolve_policy
    from sd_sim_plugin.specs.space import concretize, open_dimensions, point_values

    if args.episodes < 1:
        raise SdSimError(f"--episodes must be at least 1, got {args.episodes}")
    spec = load_spec(args.spec)
    if args.duration is not None:
        if not 1.0 <= args.duration <= 120:  # the spec schema's bounds
            raise SdSimError(f"--duration must lie in [1, 120] s, got {args.duration}")
        spec = spec.model_copy(update={"duration": float(args.duration)})
    ego = args.ego or spec.ego.policy
    gen_name = generator_name(args.generator, spec.generator, args.checkpoint)
    base_seed = args.seed if args.seed is not None else (spec.seed or 0)
    dims = open_dimensions(spec)
    out: Path = args.out
    header = {"journal_version": 1, "method": "run", "seed": int(base_seed), "kernel": "", "dim": len(dims),
              "objective_id": f"{spec_digest(spec_to_yaml(spec))}:{gen_name}:{ego}:{args.actor_mode}",
              "spec": str(args.spec), "generator": gen_name, "ego": ego}
    resolve_policy(ego, spec.map.scenarionet is not None)  # a bad --ego is a usage error, not a failed episode
    generator = build_generator(gen_name, args.checkpoint)
    check_density_types(spec, generator, str(args.spec))  # before the journal: nothing half-made
    journal_path = out / "episodes.jsonl"
    done = open_journal(journal_path, header, args.resume)
    journal = Journal(journal_path)
    bar = tqdm(total=args.episodes, initial=min(len(done), args.episodes), desc=f"run {spec.name}", unit="episode")
    try:
        with SpecRunner(generator, ego_policy=ego, actor_mode=args.actor_mode) as runner:
            for i in range(len(done), args.episodes):
                seed = base_seed + i
                u = draw_point(spec, seed)
                concrete = concretize(spec, u, seed=seed)
                try:
                    result = runner.run(concrete, seed, gif_path=None if args.no_gif else out / "gifs" / f"ep{i:04d}.gif",
                                        export_dir=None if args.no_export else out / "scenarios",
                                        export_name=f"{spec.name}_ep{i:04d}")
                except Exception as exc:  # e.g. a placement the map cannot hold: record it, keep going
                    result = EpisodeResult(seed=seed, status="failed", error=describe_exception(exc))
                    runner.close()  # the env may be half reset
                record = _record(i, u, seed, result, point_values(spec, u))
                journal.append(record)
                done.append(record)
                bar.update(1)
                bar.set_postfix(collisions=sum(bool(r.collision) for r in done),
                                fidelity=f"{np.mean([r.metrics['fidelity'] for r in done if r.status == 'ok'] or [0]):.2f}")
    finally:
        bar.close()
    rows = [_row(r) for r in done]
    summary = summarise(rows, spec.name, gen_name, ego)
    _write_outputs(out, rows, summary)
    print(format_summary(summary, out))
    return 0


def _record(i: int, u: np.ndarray, seed: int, result, values: dict):
    """A journal record of one episode."""
    from sd_sim_plugin.search.loop import Record

    metrics = result.to_dict()
    metrics["values"] = {k: (v if not isinstance(v, float) else round(v, 6)) for k, v in values.items()}
    return Record(i=i, u=[float(x) for x in u], seed=seed, status=result.status, value=None,
                  collision=bool(result.collision), metrics=metrics, error=result.error)


def _row(record) -> dict:
    """A flat CSV/JSON row of one episode."""
    m = dict(record.metrics)
    values = m.pop("values", {})
    row = {"episode": record.i, "seed": record.seed, "status": record.status, "error": record.error or ""}
    for key in ("collision", "min_ttc_s", "min_gap_m", "route_completion", "out_of_road", "arrive_dest", "fidelity",
                "fidelity_all", "num_agents", "steps", "episode_s"):
        row[key] = m.get(key)
    row["key_agents_matched"] = m.get("key_agents_matched")
    row.update(values)
    return row


def _finite(values: list) -> list[float]:
    return [float(v) for v in values if v is not None and math.isfinite(float(v))]


def summarise(rows: list[dict], name: str, generator: str, ego: str) -> dict:
    """Collision rate, TTC / gap statistics, route completion and spec fidelity over the episodes."""
    ok = [r for r in rows if r["status"] == "ok"]
    ttc = _finite([r["min_ttc_s"] for r in ok])
    gap = _finite([r["min_gap_m"] for r in ok])
    matched = [m for r in ok for m in (r["key_agents_matched"] or [])]
    return {
        "spec": name, "generator": generator, "ego": ego, "episodes": len(rows), "ok": len(ok),
        "failed": len(rows) - len(ok),
        "collisions": sum(bool(r["collision"]) for r in ok),
        "collision_rate": float(np.mean([bool(r["collision"]) for r in ok])) if ok else None,
        "min_ttc_s": {"min": min(ttc) if ttc else None, "median": float(np.median(ttc)) if ttc else None,
                      "episodes_with_finite_ttc": len(ttc)},
        "min_gap_m": {"min": min(gap) if gap else None, "median": float(np.median(gap)) if gap else None},
        "route_completion_mean": float(np.mean([r["route_completion"] for r in ok])) if ok else None,
        "spec_fidelity": float(np.mean(matched)) if matched else None,
        "episodes_all_key_agents_matched": float(np.mean([bool(r["fidelity_all"]) for r in ok])) if ok else None,
        "key_agents": len(matched),
    }


def format_summary(s: dict, out: Path) -> str:
    """A few human lines."""
    def f(v: object, fmt: str = ".2f") -> str:
        return "-" if v is None else format(v, fmt)

    return (f"{s['spec']}: {s['ok']}/{s['episodes']} episodes ran ({s['failed']} failed), generator {s['generator']}, "
            f"ego {s['ego']}\n"
            f"  collisions {s['collisions']} ({f(s['collision_rate'], '.0%')}), min TTC min {f(s['min_ttc_s']['min'])} s "
            f"median {f(s['min_ttc_s']['median'])} s, min gap min {f(s['min_gap_m']['min'])} m, "
            f"route completion {f(s['route_completion_mean'], '.0%')}\n"
            f"  spec fidelity {f(s['spec_fidelity'], '.1%')} of {s['key_agents']} key agents "
            f"(all key agents in {f(s['episodes_all_key_agents_matched'], '.0%')} of episodes)\n"
            f"  results in {out}")


def _write_outputs(out: Path, rows: list[dict], summary: dict) -> None:
    out.mkdir(parents=True, exist_ok=True)
    (out / "episodes.json").write_text(json.dumps(rows, indent=1, default=_plain))
    (out / "summary.json").write_text(json.dumps(summary, indent=1))
    keys = list(dict.fromkeys(k for r in rows for k in r))
    with open(out / "episodes.csv", "w", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=keys)
        writer.writeheader()
        for r in rows:
            writer.writerow({k: _plain(r.get(k)) if isinstance(r.get(k), list) else r.get(k) for k in keys})


def _plain(v: object) -> object:
    if isinstance(v, list):
        return " ".join(str(int(x)) if isinstance(x, bool) else str(x) for x in v)
    if isinstance(v, (np.generic,)):
        return v.item()
    return str(v)
