"""Scene pictures (matplotlib, no pyplot state): map, oriented boxes, trajectories from past (pink) to future (blue).

The view is the ego frame with the ego facing up, like the BEV raster: up is +x (forward), left is +y.
Drivable area is light grey, road edges dark grey, lane lines white, crosswalks a darker grey; the ego's box is amber,
other vehicles white, pedestrians purple, cyclists green; each box has a tick towards its front.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import cv2
import imageio.v3 as iio
import numpy as np
from matplotlib.axes import Axes
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.collections import LineCollection, PolyCollection
from matplotlib.colors import LinearSegmentedColormap, Normalize
from matplotlib.figure import Figure

from sd_sim_plugin.raster.bev import RasterConfig, fill_polygons, lane_area_polygons
from sd_sim_plugin.scene.geometry import box_corners
from sd_sim_plugin.scene.types import AgentType, MapGeometry, Scene

PAST_COLOUR = "#ff5fa2"
FUTURE_COLOUR = "#1f4fff"
TIME_CMAP = LinearSegmentedColormap.from_list("past_to_future", [PAST_COLOUR, "#a060d0", FUTURE_COLOUR])
DEFAULT_VIEW_M = 80.0
_DRIVABLE_RES_M = 0.25  # background raster of the drivable area: fine enough to look smooth
_BOX_COLOURS = {AgentType.VEHICLE: "#ffffff", AgentType.PEDESTRIAN: "#9b59b6", AgentType.CYCLIST: "#27ae60"}
_EGO_COLOUR = "#f5a623"


def _uv(xy: np.ndarray) -> np.ndarray:
    """Ego-frame (x, y) -> plot (u, v) = (-y, x), so forward is up and left is left."""
    xy = np.asarray(xy, dtype=np.float64)
    return np.stack([-xy[..., 1], xy[..., 0]], axis=-1)


def _draw_map(ax: Axes, geometry: MapGeometry, view_m: float) -> None:
    """Drivable area as a fine raster, then edges, lane lines, crosswalks and faint centrelines."""
    half = view_m / 2
    cfg = RasterConfig(size_px=2 * int(np.ceil(half / _DRIVABLE_RES_M)), resolution_m=_DRIVABLE_RES_M)
    drivable = np.zeros((cfg.size_px, cfg.size_px), np.float32)
    fill_polygons(drivable, lane_area_polygons(geometry), cfg)
    # Close hairline gaps between neighbouring lanes (centrelines widened by a varying width leave some).
    drivable = cv2.morphologyEx(drivable, cv2.MORPH_CLOSE, np.ones((3, 3), np.uint8))
    e = cfg.extent_m / 2
    rgba = np.zeros((*drivable.shape, 4), np.float32)
    rgba[drivable > 0] = (0.82, 0.82, 0.82, 1.0)
    ax.imshow(rgba, extent=(-e, e, -e, e), origin="upper", interpolation="nearest", zorder=0)
    if geometry.crosswalks:
        ax.add_collection(PolyCollection([_uv(p) for p in geometry.crosswalks], facecolors="#bababa",
                                         edgecolors="none", zorder=1))
    layers = ((geometry.lane_centrelines, "#b8b8b8", 0.5, ":"), (geometry.lane_lines, "#ffffff", 0.9, "-"),
              (geometry.road_edges, "#505050", 1.2, "-"))
    for lines, colour, width, style in layers:
        if lines:
            ax.add_collection(LineCollection([_uv(p) for p in lines if len(p) >= 2], colors=colour,
                                             linewidths=width, linestyles=style, zorder=2))


def _draw_agents(ax: Axes, scene: Scene) -> None:
    """Trajectories coloured by time (pink past -> blue future), then boxes at t = 0 with a heading tick."""
    agents, horizon = scene.agents, scene.horizon
    t0 = horizon.t0_index
    times = horizon.times
    norm = Normalize(vmin=min(times[0], -1e-6), vmax=max(times[-1], 1e-6))
    segments, seg_times, points, point_times = [], [], [], []
    for i in range(len(agents)):
        idx = np.flatnonzero(agents.valid[i])
        uv = _uv(agents.trajectory[i, idx, :2])
        for a, b in zip(range(len(idx) - 1), range(1, len(idx))):
            segments.append(uv[[a, b]])
            seg_times.append(0.5 * (times[idx[a]] + times[idx[b]]))
        keep = idx != t0
        points.append(uv[keep])
        point_times.append(times[idx[keep]])
    if segments:
        ax.add_collection(LineCollection(segments, colors=TIME_CMAP(norm(np.asarray(seg_times))), linewidths=1.6,
                                         zorder=3))
    if points and sum(len(p) for p in points):
        pts = np.concatenate(points)
        ax.scatter(pts[:, 0], pts[:, 1], s=7, c=TIME_CMAP(norm(np.concatenate(point_times))), zorder=4,
                   linewidths=0)
    present = np.flatnonzero(agents.valid[:, t0])
    if len(present) == 0:
        return
    pose = agents.trajectory[present, t0].astype(np.float64)
    boxes = np.concatenate([pose, agents.length[present, None], agents.width[present, None]], axis=1)
    corners = _uv(box_corners(boxes))
    face = [_EGO_COLOUR if i == scene.ego_index else _BOX_COLOURS.get(AgentType(int(agents.types[i])), "#ffffff")
            for i in present]
    ax.add_collection(PolyCollection(corners, facecolors=face, edgecolors="#202020", linewidths=0.8, zorder=5))
    front = pose[:, :2] + 0.5 * agents.length[present, None] * np.stack([np.cos(pose[:, 2]), np.sin(pose[:, 2])], 1)
    ticks = np.stack([_uv(pose[:, :2]), _uv(front)], axis=1)
    ax.add_collection(LineCollection(ticks, colors="#202020", linewidths=0.8, zorder=6))


def draw_scene(ax: Axes, scene: Scene, *, title: str = "", view_m: float = DEFAULT_VIEW_M) -> None:
    """Draw a scene on a matplotlib Axes: map, trajectories, boxes; a ``view_m`` square centred on the ego."""
    half = view_m / 2
    ax.set_facecolor("#f4f1ea")
    _draw_map(ax, scene.map, view_m)
    _draw_agents(ax, scene)
    ax.set_xlim(-half, half)
    ax.set_ylim(-half, half)
    ax.set_aspect("equal")
    ax.set_xticks([])
    ax.set_yticks([])
    if title:
        ax.set_title(title, fontsize=9)


def _figure(panels: int, cols: int, size_px: int, dpi: int = 100) -> tuple[Figure, list[Axes]]:
    """A figure of ``panels`` square panels of ``size_px`` pixels in ``cols`` columns, titles inside each panel."""
    rows = int(np.ceil(panels / cols))
    fig = Figure(figsize=(cols * size_px / dpi, rows * size_px / dpi), dpi=dpi)
    FigureCanvasAgg(fig)
    axes = []
    for k in range(panels):
        r, c = divmod(k, cols)
        axes.append(fig.add_axes((
            (c + 0.02) / cols, 1 - (r + 0.92) / rows, 0.96 / cols, 0.84 / rows)))
    return fig, axes


def _save(fig: Figure, path: str | Path) -> Path:
    """Write a figure to a PNG at exactly its pixel size."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, format="png", dpi=fig.dpi)
    return path


def render_scene(scene: Scene, path: str | Path, *, reference: Scene | None = None, title: str = "",
                 view_m: float = DEFAULT_VIEW_M, size_px: int = 640) -> Path:
    """Write a PNG of ``scene`` (``size_px`` square; twice as wide with a ``reference`` scene drawn on its left)."""
    panels = [(reference, "reference"), (scene, title or "scene")] if reference is not None else [(scene, title)]
    fig, axes = _figure(len(panels), len(panels), size_px)
    for ax, (s, t) in zip(axes, panels):
        draw_scene(ax, s, title=t, view_m=view_m)
    return _save(fig, path)


def render_scene_grid(scenes: Sequence[Scene], path: str | Path, *, titles: Sequence[str] | None = None,
                      cols: int = 4, view_m: float = DEFAULT_VIEW_M, size_px: int = 320) -> Path:
    """Write a PNG grid of scenes, ``cols`` per row, each ``size_px`` square."""
    if not scenes:
        raise ValueError("render_scene_grid needs at least one scene")
    titles = list(titles) if titles is not None else [""] * len(scenes)
    cols = max(1, min(cols, len(scenes)))
    fig, axes = _figure(len(scenes), cols, size_px)
    for ax, s, t in zip(axes, scenes, titles):
        draw_scene(ax, s, title=t, view_m=view_m)
    return _save(fig, path)


def scene_image(scene: Scene, *, title: str = "", view_m: float = DEFAULT_VIEW_M, size_px: int = 480) -> np.ndarray:
    """The picture of a scene as an RGB uint8 array (size_px, size_px, 3), e.g. one frame of a GIF."""
    fig, (ax,) = _figure(1, 1, size_px)
    draw_scene(ax, scene, title=title, view_m=view_m)
    fig.canvas.draw()
    return np.asarray(fig.canvas.buffer_rgba())[..., :3].copy()


def write_gif(frames: Sequence[np.ndarray], path: str | Path, *, fps: float = 10.0) -> Path:
    """Write RGB frames (H, W, 3) uint8, all the same size, to an endlessly looping GIF."""
    if not frames:
        raise ValueError("write_gif needs at least one frame")
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    iio.imwrite(path, np.stack(frames), extension=".gif", duration=1000.0 / fps, loop=0)
    return path
