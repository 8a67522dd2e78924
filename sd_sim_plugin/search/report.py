"""Search outputs: CSV of every run, the most critical concrete scenarios as replayable specs, plots, summary."""

from __future__ import annotations

import csv
import json
import math
from pathlib import Path

import numpy as np

from sd_sim_plugin.search.loop import Record


def first_collision(records: list[Record]) -> int | None:
    """Simulations up to and including the first collision (1-based), or None."""
    for k, r in enumerate(records, 1):
        if r.status == "ok" and r.collision:
            return k
    return None


def summarise_search(records: list[Record], method: str, objective: str) -> dict:
    """Counts, best value, simulations to the first collision and optimiser overhead."""
    ok = [r for r in records if r.status == "ok"]
    ucb = [r.propose_s for r in records if r.info.get("phase") == "ucb"]
    best = max(ok, key=lambda r: (r.value, r.collision, -r.i)) if ok else None
    return {
        "method": method, "objective": objective, "evaluations": len(records), "failed": len(records) - len(ok),
        "collisions": sum(r.collision for r in ok), "first_collision_at": first_collision(records),
        "best_value": best.value if best else None, "best_index": best.i if best else None,
        "optimiser_s": {"median": float(np.median(ucb)) if ucb else None, "mean": float(np.mean(ucb)) if ucb else None,
                        "max": float(np.max(ucb)) if ucb else None, "iterations": len(ucb)},
        "evaluation_s_median": float(np.median([r.eval_s for r in records])) if records else None,
    }


def critical_records(records: list[Record], top: int) -> list[Record]:
    """The ``top`` most critical successful runs (collisions first on ties, then earliest)."""
    ok = [r for r in records if r.status == "ok"]
    return sorted(ok, key=lambda r: (-r.value, not r.collision, r.i))[:top]


def write_runs_csv(records: list[Record], dim_names: list[str], values_of, path: Path) -> None:
    """One row per run: outcome, timing, the point in [0,1]^d and its values in human units."""
    metric_keys = ["collision", "min_ttc_s", "min_gap_m", "route_completion", "fidelity", "num_agents"]
    info_keys = ["phase", "beta", "refit", "fit_s", "acq_s"]
    header = (["i", "status", "value", "seed"] + metric_keys + ["propose_s", "eval_s"] + info_keys
              + [f"u{k}" for k in range(len(dim_names))] + dim_names + ["error"])
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "w", newline="") as f:
        writer = csv.writer(f)
        writer.writerow(header)
        for r in records:
            values = values_of(np.asarray(r.u))
            writer.writerow([r.i, r.status, r.value, r.seed] + [r.metrics.get(k) for k in metric_keys]
                            + [round(r.propose_s, 4), round(r.eval_s, 3)] + [r.info.get(k) for k in info_keys]
                            + [round(x, 6) for x in r.u] + [values[n] for n in dim_names] + [r.error or ""])


def plot_progress(records: list[Record], path_iter: Path, path_best: Path, ylabel: str, title: str) -> None:
    """Criticality per iteration (collisions red, failures grey) and best-so-far against the budget."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    idx = np.arange(1, len(records) + 1)
    vals = np.array([r.value if r.status == "ok" else np.nan for r in records], dtype=float)
    coll = np.array([r.status == "ok" and r.collision for r in records])
    failed = np.array([r.status != "ok" for r in records])

    fig = Figure(figsize=(7, 3.6), dpi=100)
    FigureCanvasAgg(fig)
    ax = fig.add_subplot(1, 1, 1)
    ax.plot(idx, vals, "-", color="#bbbbbb", lw=0.8, zorder=1)
    ax.scatter(idx[~coll & ~failed], vals[~coll & ~failed], s=14, color="#1f4fff", label="run", zorder=2)
    ax.scatter(idx[coll], vals[coll], s=22, color="#d62728", label="collision", zorder=3)
    if failed.any():
        low = np.nanmin(vals) if np.isfinite(vals).any() else 0.0
        ax.scatter(idx[failed], np.full(failed.sum(), low), marker="x", color="#555555", label="failed run", zorder=3)
    ax.set_xlabel("simulation")
    ax.set_ylabel(ylabel)
    ax.set_title(f"{title}: criticality per iteration")
    ax.legend(loc="lower right", fontsize=8)
    fig.tight_layout()
    fig.savefig(path_iter)

    fig = Figure(figsize=(7, 3.6), dpi=100)
    FigureCanvasAgg(fig)
    ax = fig.add_subplot(1, 1, 1)
    best = np.fmax.accumulate(np.where(np.isnan(vals), -np.inf, vals))
    best = np.where(np.isfinite(best), best, np.nan)
    ax.step(idx, best, where="post", color="#1f4fff", label="best so far")
    ax2 = ax.twinx()
    ax2.step(idx, np.cumsum(coll), where="post", color="#d62728", alpha=0.6, label="collisions found")
    ax2.set_ylabel("collisions found", color="#d62728")
    ax.set_xlabel("simulations (budget)")
    ax.set_ylabel(f"best {ylabel}")
    ax.set_title(f"{title}: best so far against budget")
    fig.tight_layout()
    fig.savefig(path_best)


def plot_posterior(records: list[Record], dim_names: list[str], dim_values, path: Path, kernel: str,
                   ylabel: str, title: str) -> bool:
    """GP posterior slices through the best point for the two most relevant dimensions (shortest lengthscales),
    plus the posterior mean over those two; False when there are too few successful runs to fit a GP."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    from sd_sim_plugin.search.gp_ucb import build_gp, fit_hyperparameters

    ok = [r for r in records if r.status == "ok"]
    d = len(dim_names)
    if len(ok) < 3:
        return False
    import torch

    x = np.array([r.u for r in ok])
    y = np.array([r.value for r in ok])
    model = build_gp(x, y, kernel)
    fit_hyperparameters(model)
    lengths = model.covar_module.base_kernel.lengthscale.detach().numpy().reshape(-1)
    order = list(np.argsort(lengths))[: min(2, d)]
    best = x[int(np.argmax(y))]
    grid = np.linspace(0, 1, 101)

    def post(points: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        with torch.no_grad():
            p = model.posterior(torch.as_tensor(points, dtype=torch.float64))
        return p.mean.numpy().reshape(-1), p.variance.clamp_min(0).sqrt().numpy().reshape(-1)

    panels = len(order) + (1 if d >= 2 else 0)
    fig = Figure(figsize=(4.2 * panels, 3.6), dpi=100)
    FigureCanvasAgg(fig)
    for k, dim in enumerate(order):
        ax = fig.add_subplot(1, panels, k + 1)
        pts = np.repeat(best[None], len(grid), axis=0)
        pts[:, dim] = grid
        mean, std = post(pts)
        xs = [dim_values(dim, g) for g in grid]
        numeric = all(isinstance(v, (int, float)) for v in xs)
        axis_x = np.array(xs, dtype=float) if numeric else grid
        ax.plot(axis_x, mean, color="#1f4fff", label="posterior mean")
        ax.fill_between(axis_x, mean - 2 * std, mean + 2 * std, color="#1f4fff", alpha=0.2, label="+-2 sd")
        obs_x = [dim_values(dim, u[dim]) for u in x]
        ax.scatter(np.array(obs_x, dtype=float) if numeric else x[:, dim], y, s=10, color="#333333", label="runs")
        ax.set_xlabel(dim_names[dim] + ("" if numeric else " (box coordinate)"))
        ax.set_ylabel(ylabel)
        ax.set_title(f"slice through best point (lengthscale {lengths[dim]:.2f})", fontsize=9)
        if k == 0:
            ax.legend(fontsize=7)
    if d >= 2:
        ax = fig.add_subplot(1, panels, panels)
        a, b = order[0], order[1]
        gx, gy = np.meshgrid(np.linspace(0, 1, 41), np.linspace(0, 1, 41))
        pts = np.repeat(best[None], gx.size, axis=0)
        pts[:, a], pts[:, b] = gx.ravel(), gy.ravel()
        mean, _ = post(pts)
        cs = ax.contourf(gx, gy, mean.reshape(gx.shape), levels=15, cmap="viridis")
        fig.colorbar(cs, ax=ax, label=f"posterior mean {ylabel}")
        ax.scatter(x[:, a], x[:, b], s=8, color="white", edgecolors="black", linewidths=0.3)
        ax.set_xlabel(f"{dim_names[a]} (box coordinate)")
        ax.set_ylabel(f"{dim_names[b]} (box coordinate)")
        ax.set_title("posterior mean, other dimensions at the best point", fontsize=9)
    fig.suptitle(f"{title}: GP posterior ({kernel})", fontsize=10)
    fig.tight_layout()
    fig.savefig(path)
    return True


def write_json(path: Path, data: object) -> None:
    """JSON with non-finite floats as null."""
    def clean(v: object) -> object:
        if isinstance(v, float) and not math.isfinite(v):
            return None
        if isinstance(v, dict):
            return {k: clean(x) for k, x in v.items()}
        if isinstance(v, list):
            return [clean(x) for x in v]
        return v

    path.write_text(json.dumps(clean(data), indent=1))
