"""The evaluation report: markdown tables, side-by-side histograms, and sample scenes next to their references."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure

from sd_sim_plugin.metrics.distribution import JSD_BINS
from sd_sim_plugin.metrics.suite import SceneStats, pooled_feature
from sd_sim_plugin.scene.types import Agents, Scene

_COLOURS = ("#1f77b4", "#d62728", "#2ca02c", "#9467bd", "#ff7f0e", "#8c564b")
_HIST_TITLES = {"nearest_neighbour_m": "nearest-neighbour distance (m)", "lateral_deviation_m": "lateral deviation (m)",
                "angular_deviation_deg": "angular deviation (deg)", "length_m": "length (m)", "width_m": "width (m)",
                "speed_mps": "speed (m/s)", "agents_per_scene": "vehicles per scene"}


def _f(value, digits: int = 3) -> str:
    """A number for a table: fixed digits, '-' for missing."""
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "-"
    return f"{value:.{digits}f}"


def _pct(value) -> str:
    """A share as a percentage."""
    return "-" if value is None or (isinstance(value, float) and math.isnan(value)) else f"{100 * value:.1f}%"


def _table(header: list[str], rows: list[list[str]]) -> str:
    """A markdown table."""
    lines = ["| " + " | ".join(header) + " |", "| " + " | ".join("---" for _ in header) + " |"]
    lines += ["| " + " | ".join(r) + " |" for r in rows]
    return "\n".join(lines)


def set_section(name: str, info: dict, results: dict[str, dict], reference: dict, skipped: dict[str, str],
                figures: dict[str, str]) -> str:
    """The markdown section of one evaluation set."""
    out = [f"## {name}", "", f"{info['scenes']} reference scenes from `{info['path']}` "
           f"(sources: {', '.join(info['sources'])}); the reference has {_f(reference['vehicles_per_scene'], 2)} "
           "vehicles per scene in the 80 m box.", ""]
    for gen, why in skipped.items():
        out += [f"- `{gen}` not run on this set: {why}"]
    if skipped:
        out.append("")
    gens = list(results)
    out += ["### Realism against the reference (density = the reference's count of each agent type the generator "
            "makes)", "",
            "Per-scene MMD (Gaussian kernel, TrafficGen estimator) averaged over scenes, and JSD of pooled histograms "
            "(lower is better; 0 = identical). Count r: Pearson correlation of generated and reference vehicles per "
            "scene.", ""]
    header = ["generator", "vehicles/scene", "count r", "MMD pos", "MMD heading", "MMD vel", "MMD size", "JSD NN dist",
              "JSD lateral", "JSD angular", "JSD length", "JSD width", "JSD speed", "JSD count"]
    rows = []
    for g in gens:
        m = results[g]
        rows.append([f"`{g}`", _f(m["generated"]["vehicles_per_scene"], 2), _f(m.get("count_correlation"), 2)]
                    + [_f(m["mmd"][k]) for k in ("position", "heading_vector", "velocity", "size")]
                    + [_f(m["jsd"][k]) for k in ("nearest_neighbour_m", "lateral_deviation_m", "angular_deviation_deg",
                                                 "length_m", "width_m", "speed_mps", "agents_per_scene")])
    out += [_table(header, rows), ""]
    sources = sorted({name for g in gens for name in results[g].get("by_source", {})})
    if sources:
        out += ["### Realism by source scene", "",
                "The same MMDs (position / heading / velocity) over each source file's windows alone.", ""]
        header = ["source file", "windows", *[f"`{g}`" for g in gens]]
        rows = []
        for source in sources:
            cells = [results[g].get("by_source", {}).get(source) for g in gens]
            used = next((c["scenes_used"] for c in cells if c), 0)
            rows.append([f"`{source}`", str(used)] + [
                " / ".join(_f(c[k]) for k in ("position", "heading_vector", "velocity")) if c else "-"
                for c in cells])
        out += [_table(header, rows), ""]
    out += ["### Own values, beside the reference's", "",
            "Map compliance over valid trajectory poses in the box; collision rate = share of vehicles whose box "
            "overlaps another's; kinematic violations = share of trajectories beyond the limits.", ""]
    header = ["generator", "drivable", "heading gap mean (deg)", "heading gap median (deg)", "collide t=0",
              "collide along traj.", "overlap ego t=0", "accel > limit", "yaw rate > limit", "any kinematic"]

    def own(label: str, s: dict) -> list[str]:
        c, k, col = s["compliance"], s["kinematic_violation_rate"], s["collision_rate"]
        return [label, _pct(c["drivable_fraction"]), _f(c["heading_gap_mean_deg"], 2),
                _f(c["heading_gap_median_deg"], 2), _pct(col["t0"]), _pct(col["trajectory"]), _pct(col["ego_t0"]),
                _pct(k["acceleration"]), _pct(k["yaw_rate"]), _pct(k["any"])]

    rows = [own("**reference**", reference)] + [own(f"`{g}`", results[g]["generated"]) for g in gens]
    out += [_table(header, rows), ""]
    out += ["### Free count (density = None: the generator picks the count)", ""]
    header = ["generator", "vehicles/scene", "count correlation with reference", "MMD pos", "MMD heading", "MMD vel",
              "JSD count"]
    rows = [[f"`{g}`", _f(results[g]["density_free"]["vehicles_per_scene"], 2),
             _f(results[g]["density_free"]["count_correlation"], 2)]
            + [_f(results[g]["density_free"]["mmd"][k]) for k in ("position", "heading_vector", "velocity")]
            + [_f(results[g]["density_free"]["jsd_agents_per_scene"])] for g in gens]
    out += [_table(header, rows), ""]
    out += ["### Token following (about half of the reference's vehicles as agent tokens, density = the rest)", "",
            "Hungarian matching gated at 2.2 m and 0.2 rad; extra agents = generated agents not matched to a token.",
            ""]
    header = ["generator", "tokens", "match rate", "extra agents/scene", "requested density/scene",
              "mean |extra - density|", "speed MAE now (m/s)", "speed MAE +horizon (m/s)"]
    rows = []
    for g in gens:
        t = results[g]["token_following"]
        rows.append([f"`{g}`", str(t["tokens"]), _pct(t["match_rate"]), _f(t["extra_agents_mean"], 2),
                     _f(t["requested_density_mean"], 2), _f(t["extra_minus_density_mae"], 2), _f(t["speed_mae_now"], 2),
                     _f(t["speed_mae_future"], 2)])
    out += [_table(header, rows), ""]
    for title, rel in figures.items():
        out += [f"![{title}]({rel})", ""]
    return "\n".join(out)


def plot_histograms(path: Path, reference: list[SceneStats], generated: dict[str, list[SceneStats]]) -> Path:
    """Side-by-side histograms of the JSD quantities: the reference filled, each generator as a line."""
    names = list(_HIST_TITLES)
    cols = 4
    rows = math.ceil(len(names) / cols)
    fig = Figure(figsize=(4 * cols, 3 * rows), dpi=90)
    FigureCanvasAgg(fig)
    for k, name in enumerate(names):
        ax = fig.add_subplot(rows, cols, k + 1)
        low, high, width = JSD_BINS[name]
        if name == "agents_per_scene":
            high = max([30.0] + [float(s.count) + 1 for stats in [reference, *generated.values()] for s in stats])
        edges = np.linspace(low, high, int(round((high - low) / width)) + 1)
        if len(edges) > 101:  # fine bins (length, width) are unreadable at this size: coarsen for the picture
            edges = np.linspace(low, high, 101)
        ref = np.clip(pooled_feature(reference, name), low, high)
        ax.hist(ref, bins=edges, density=True, color="#bbbbbb", label="reference")
        for c, (gen, stats) in enumerate(generated.items()):
            ax.hist(np.clip(pooled_feature(stats, name), low, high), bins=edges, density=True, histtype="step",
                    color=_COLOURS[c % len(_COLOURS)], linewidth=1.4, label=gen)
        pooled = np.concatenate([ref] + [pooled_feature(st, name) for st in generated.values()])
        if len(pooled) and name not in ("angular_deviation_deg", "lateral_deviation_m"):
            ax.set_xlim(low, min(high, float(np.percentile(pooled, 99.5)) * 1.15 + width))  # zoom on the data
        ax.set_title(_HIST_TITLES[name], fontsize=9)
        ax.tick_params(labelsize=7)
    fig.axes[0].legend(fontsize=7)
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path)
    return path


def with_ego(generated: Scene, reference: Scene) -> Scene:
    """A generated scene with the reference's ego put back (agent 0), for pictures."""
    ego = reference.agents.select(np.array([reference.ego_index]))
    if ego.num_steps != generated.agents.num_steps:
        return generated
    return Scene(generated.map, Agents.concatenate([ego, generated.agents]), generated.horizon, ego_index=0,
                 meta=generated.meta)


def plot_samples(path: Path, references: list[Scene], generated: list[Scene], generator: str, count: int) -> Path:
    """A grid of the first ``count`` generated scenes, each to the right of its reference."""
    from sd_sim_plugin.raster.render import render_scene_grid

    scenes, titles = [], []
    for i in range(min(count, len(references))):
        scenes += [references[i], with_ego(generated[i], references[i])]
        titles += [f"reference {i}", f"{generator} {i}"]
    return render_scene_grid(scenes, path, titles=titles, cols=4, size_px=300)
