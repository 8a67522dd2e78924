"""Bird's-eye-view (BEV) rasters of a scene in the ego frame: map channels and agent channels.

Grid: ``RasterConfig`` (default 64 x 64 pixels at 1.25 m/px, i.e. 80 m x 80 m centred on the ego). The ego faces up:
row 0 is the front (x = +40 m), column 0 the left (y = +40 m). Pixel (r, c) has its centre at
x = (H/2 - r - 0.5) * res, y = (W/2 - c - 0.5) * res; :meth:`RasterConfig.ego_to_pixel` is the exact inverse of
:meth:`RasterConfig.pixel_to_ego`, so integer (row, col) values are pixel centres; :meth:`RasterConfig.pixel_index`
gives the pixel holding a point.

Why 64 x 64 at 1.25 m/px: the model must see at least 80 m x 80 m (about 3 s of travel at urban speeds either side of
the ego) and run on 2 CPU cores. Convolution cost grows with the pixel count, so 64 x 64 costs 16x less than the
256 x 256 rasters of SceneGen/SLEDGE over the same box. 1.25 m is still finer than a car's width (1.8-2 m), a lane
(3-3.7 m) and the decoder's 2.5 m cells, so no two vehicles share a cell in practice and every lane is at least
two pixels wide; pedestrians (about 0.5 m) fit in one pixel, which :func:`rasterise_agents` always lights.

Map channels (:data:`MAP_CHANNELS`, all in [-1, 1], zero where absent):
- ``drivable``: union of lane polygons (centrelines widened by the lane width where a lane has no polygon);
- ``centreline``: lane centrelines, one pixel wide;
- ``lane_heading_cos`` / ``lane_heading_sin``: on every drivable pixel, the direction of travel of the nearest lane
  centreline (so the model sees which way each lane flows, not only where it is);
- ``road_edge``, ``lane_line``: boundary polylines, one pixel wide;
- ``crosswalk``: crosswalk polygons (zero on maps that have none, e.g. PG maps).
Nothing else earns a channel yet: traffic lights and stop signs are not in :class:`MapGeometry`, and lane
connectivity shows in the centrelines themselves.

Agent channels (:func:`agent_channels`; :data:`AGENT_CHANNELS` is the list for the default horizon). Each agent valid
at t = 0 paints its oriented box at t = 0: a pixel belongs to an agent when the pixel centre lies inside its box, and
an agent always owns the pixel holding its centre (so pedestrians are never lost). Where boxes share a pixel, the
agent whose centre is nearest wins. On an agent's pixels:
- ``occupancy`` 1; ``heading_cos`` / ``heading_sin`` of its heading in the ego frame;
- ``velocity_x`` / ``velocity_y``: velocity at t = 0 in the ego frame, divided by :data:`SPEED_SCALE_MPS`;
- ``length`` / ``width`` divided by :data:`SIZE_SCALE_M`;
- ``is_pedestrian`` / ``is_cyclist``: the type (vehicles have both 0);
- per trajectory pose at time t != 0, in time order: ``traj_dx@{t}s`` / ``traj_dy@{t}s``, the displacement from the
  t = 0 pose in the agent's own t = 0 frame (x along its heading) divided by ``|t| * SPEED_SCALE_MPS`` (a mean
  velocity, so values stay near [-3, 3] for any horizon); ``traj_dheading@{t}s`` = wrapped heading change / pi;
  ``traj_valid@{t}s`` 1 when the pose exists (the other three are 0 when it does not).
An autoencoder reads every attribute of an agent from any of its pixels; the detection-style decoder of the paper
predicts the same quantities per cell.
"""

from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np

from sd_sim_plugin.scene.types import Agents, AgentType, Horizon, MapGeometry, Scene, wrap_angle

MAP_CHANNELS: tuple[str, ...] = (
    "drivable", "centreline", "lane_heading_cos", "lane_heading_sin", "road_edge", "lane_line", "crosswalk",
)
SPEED_SCALE_MPS = 10.0
SIZE_SCALE_M = 10.0
_STATE_CHANNELS = (
    "occupancy", "heading_cos", "heading_sin", "velocity_x", "velocity_y", "length", "width",
    "is_pedestrian", "is_cyclist",
)
_TRAJ_FIELDS = ("traj_dx", "traj_dy", "traj_dheading", "traj_valid")
_CV_SHIFT = 4  # cv2 sub-pixel bits: polygons and lines are placed to 1/16 px
_CULL_MARGIN_M = 8.0  # features this far outside the view still count for the nearest-lane heading


@dataclass(frozen=True)
class RasterConfig:
    """Square BEV grid centred on the ego: ``size_px`` pixels a side, ``resolution_m`` metres per pixel."""

    size_px: int = 64
    resolution_m: float = 1.25

    def __post_init__(self) -> None:
        if self.size_px < 2 or self.size_px % 2 or self.resolution_m <= 0:
            raise ValueError(f"invalid raster {self}: size_px must be even and >= 2, resolution_m > 0")

    @property
    def extent_m(self) -> float:
        """Side of the square in metres."""
        return self.size_px * self.resolution_m

    def ego_to_pixel(self, xy: np.ndarray) -> np.ndarray:
        """Ego-frame points (..., 2) -> continuous (row, col) (..., 2); integers are pixel centres."""
        p = np.asarray(xy, dtype=np.float64)
        half = self.size_px / 2 - 0.5
        return np.stack([half - p[..., 0] / self.resolution_m, half - p[..., 1] / self.resolution_m], axis=-1)

    def pixel_to_ego(self, rc: np.ndarray) -> np.ndarray:
        """(row, col) (..., 2) -> ego-frame (x, y) (..., 2) of those pixel centres."""
        p = np.asarray(rc, dtype=np.float64)
        half = self.size_px / 2 - 0.5
        return np.stack([(half - p[..., 0]) * self.resolution_m, (half - p[..., 1]) * self.resolution_m], axis=-1)

    def pixel_index(self, xy: np.ndarray) -> np.ndarray:
        """Ego-frame points (..., 2) -> int (row, col) of the pixel holding each (may lie outside the image)."""
        return np.floor(self.ego_to_pixel(xy) + 0.5).astype(np.int64)

    def pixel_centres(self) -> np.ndarray:
        """Ego-frame (x, y) of every pixel centre, (H, W, 2)."""
        r, c = np.meshgrid(np.arange(self.size_px), np.arange(self.size_px), indexing="ij")
        return self.pixel_to_ego(np.stack([r, c], axis=-1))


def agent_channels(horizon: Horizon) -> tuple[str, ...]:
    """Names of the agent channels for a horizon: state channels, then four per trajectory pose besides t = 0."""
    times = [t for i, t in enumerate(horizon.times) if i != horizon.t0_index]
    return _STATE_CHANNELS + tuple(f"{f}@{t:+g}s" for t in times for f in _TRAJ_FIELDS)


AGENT_CHANNELS: tuple[str, ...] = agent_channels(Horizon())


# --- map -------------------------------------------------------------------------------------------------------------

def _pack(polylines: list[np.ndarray], min_points: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Polylines with >= ``min_points`` points -> concatenated (M, 2) points, (n + 1,) offsets, kept indices."""
    lengths = np.fromiter((len(p) for p in polylines), np.int64, len(polylines))
    keep = np.flatnonzero(lengths >= min_points)
    if len(keep) == 0:
        return np.zeros((0, 2)), np.zeros(1, np.int64), keep
    offsets = np.zeros(len(keep) + 1, np.int64)
    offsets[1:] = np.cumsum(lengths[keep])
    parts = polylines if len(keep) == len(polylines) else [polylines[i] for i in keep]
    return np.concatenate(parts, axis=0, dtype=np.float64).reshape(-1, 2), offsets, keep


def _in_view(points: np.ndarray, offsets: np.ndarray, half: float) -> np.ndarray:
    """(n,) bool: polylines whose bounding box meets the square [-half, half]^2."""
    if len(offsets) < 2:
        return np.zeros(0, bool)
    starts = offsets[:-1]
    lo = np.minimum.reduceat(points, starts, axis=0)
    hi = np.maximum.reduceat(points, starts, axis=0)
    return np.all(lo <= half, axis=1) & np.all(hi >= -half, axis=1)


def _draw_lines(image: np.ndarray, pts: np.ndarray, offs: np.ndarray, cfg: RasterConfig, half: float) -> None:
    """Draw packed ego-frame polylines one pixel wide (cv2, placed to 1/16 px), skipping those out of view."""
    if len(pts) == 0:
        return
    keep = np.flatnonzero(_in_view(pts, offs, half))
    rc = cfg.ego_to_pixel(pts)
    fixed = np.rint(rc[:, ::-1] * (1 << _CV_SHIFT)).astype(np.int32)  # cv2 wants (x = col, y = row)
    cv2.polylines(image, [fixed[offs[i]: offs[i + 1]] for i in keep], False, 1.0, 1, cv2.LINE_8, _CV_SHIFT)


def fill_polygons(image: np.ndarray, polygons: list[np.ndarray], cfg: RasterConfig, value: float = 1.0) -> None:
    """Set ``value`` on every pixel whose centre lies inside any of the ego-frame polygons (their union).

    A vectorised scanline fill: each polygon is filled even-odd along every pixel row, the polygons are united.
    cv2.fillPoly is not used here: with sub-pixel coordinates it shifts edges by up to a pixel and drops polygons
    thinner than about two pixels, and in one call it fills overlapping polygons even-odd (holes where lanes overlap).
    """
    pts, offs, _ = _pack(polygons, 3)
    if len(pts) == 0:
        return
    h, w = image.shape
    rc = cfg.ego_to_pixel(pts)
    nxt = np.arange(1, len(pts) + 1)
    nxt[offs[1:] - 1] = offs[:-1]  # close every ring
    r0, c0, r1, c1 = rc[:, 0], rc[:, 1], rc[nxt, 0], rc[nxt, 1]
    # An edge crosses row r when min(r0, r1) <= r < max(r0, r1) (half-open, so shared vertices count once).
    first = np.maximum(np.ceil(np.minimum(r0, r1)), 0).astype(np.int64)
    last = np.minimum(np.ceil(np.maximum(r0, r1)) - 1, h - 1).astype(np.int64)
    count = np.maximum(last - first + 1, 0)
    edge = np.repeat(np.arange(len(pts)), count)
    if len(edge) == 0:
        return
    row = first[edge] + np.arange(len(edge)) - np.repeat(np.cumsum(count) - count, count)
    col = c0[edge] + (row - r0[edge]) * (c1[edge] - c0[edge]) / (r1[edge] - r0[edge])
    poly = np.repeat(np.arange(len(offs) - 1), np.diff(offs))[edge]
    order = np.lexsort((col, row, poly))
    row, col = row[order], col[order]
    # Every (polygon, row) has an even number of crossings: consecutive pairs bound the inside spans.
    span_row = row[0::2]
    start = np.maximum(np.ceil(col[0::2]), 0).astype(np.int64)
    stop = np.minimum(np.floor(col[1::2]), w - 1).astype(np.int64) + 1
    ok = start < stop
    span_row, start, stop = span_row[ok], start[ok], stop[ok]
    size = h * (w + 1)
    cover = (np.bincount(span_row * (w + 1) + start, minlength=size)
             - np.bincount(span_row * (w + 1) + stop, minlength=size))
    inside = np.cumsum(cover.reshape(h, w + 1), axis=1)[:, :w] > 0
    image[inside] = value


def _widened_centreline(centre: np.ndarray, width: float) -> np.ndarray:
    """Polygon of a centreline widened by ``width / 2`` on each side (for lanes without a polygon)."""
    c = np.asarray(centre, dtype=np.float64)
    tangent = np.gradient(c, axis=0)
    tangent /= np.maximum(np.linalg.norm(tangent, axis=1, keepdims=True), 1e-9)
    normal = np.stack([-tangent[:, 1], tangent[:, 0]], axis=1) * (width / 2.0)
    return np.concatenate([c + normal, (c - normal)[::-1]])


def lane_area_polygons(map: MapGeometry, lanes: np.ndarray | None = None) -> list[np.ndarray]:
    """Area of each lane (all, or those indexed): its polygon, else its centreline widened by its width."""
    idx = range(map.num_lanes) if lanes is None else lanes
    return [
        map.lane_polygons[i] if map.lane_polygons and len(map.lane_polygons[i]) >= 3
        else _widened_centreline(map.lane_centrelines[i], float(map.lane_widths[i]))
        for i in idx if len(map.lane_centrelines[i]) >= 2 or (map.lane_polygons and len(map.lane_polygons[i]) >= 3)
    ]


def _segments(points: np.ndarray, offsets: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Start and end points of every segment of packed polylines, (S, 2) each, zero-length ones dropped."""
    real = np.ones(max(len(points) - 1, 0), bool)
    real[offsets[1:-1] - 1] = False  # the step from one polyline's end to the next one's start
    start, end = points[:-1][real], points[1:][real]
    keep = np.linalg.norm(end - start, axis=1) > 1e-6
    return start[keep], end[keep]


def _densify(start: np.ndarray, end: np.ndarray, step: float) -> tuple[np.ndarray, np.ndarray]:
    """Points every <= ``step`` metres along segments, with each point's segment heading."""
    seg = end - start
    count = np.ceil(np.linalg.norm(seg, axis=1) / step).astype(np.int64)
    which = np.repeat(np.arange(len(seg)), count)
    first = np.cumsum(count) - count
    frac = (np.arange(len(which)) - first[which]) / count[which]
    heading = np.arctan2(seg[:, 1], seg[:, 0])
    return start[which] + seg[which] * frac[:, None], heading[which]


def rasterise_map(map: MapGeometry, cfg: RasterConfig = RasterConfig()) -> np.ndarray:
    """Ego-frame map -> float32 (len(MAP_CHANNELS), H, W) BEV raster with values in [-1, 1]."""
    n = cfg.size_px
    out = np.zeros((len(MAP_CHANNELS), n, n), np.float32)
    half = cfg.extent_m / 2 + _CULL_MARGIN_M
    if map.num_lanes:
        cpts, coffs, lanes = _pack(map.lane_centrelines, 2)
        drivable = out[MAP_CHANNELS.index("drivable")]
        fill_polygons(drivable, lane_area_polygons(map, lanes[_in_view(cpts, coffs, half)]), cfg)
        _draw_lines(out[MAP_CHANNELS.index("centreline")], cpts, coffs, cfg, half)
        _paint_lane_heading(out, cpts, coffs, drivable, cfg)
    for name, polys in (("road_edge", map.road_edges), ("lane_line", map.lane_lines)):
        pts, offs, _ = _pack(polys, 2)
        _draw_lines(out[MAP_CHANNELS.index(name)], pts, offs, cfg, half)
    fill_polygons(out[MAP_CHANNELS.index("crosswalk")], map.crosswalks, cfg)
    return out


def _paint_lane_heading(out: np.ndarray, points: np.ndarray, offsets: np.ndarray, drivable: np.ndarray,
                        cfg: RasterConfig) -> None:
    """Write the heading of the nearest centreline pixel onto every drivable pixel.

    Centreline points are marked on a grid padded by the cull margin (lanes just outside the view still count),
    then cv2's distance transform labels every pixel with its nearest marked pixel: all in C, about 10x cheaper than
    a k-d tree query per pixel. Where lanes cross in one pixel, the lane drawn last gives the heading.
    """
    rows, cols = np.nonzero(drivable)
    if len(rows) == 0:
        return
    pad = int(np.ceil(_CULL_MARGIN_M / cfg.resolution_m))
    size = cfg.size_px + 2 * pad
    half = size * cfg.resolution_m / 2
    start, end = _segments(points, offsets)
    near = np.all(np.minimum(start, end) <= half, axis=1) & np.all(np.maximum(start, end) >= -half, axis=1)
    dense, heading = _densify(start[near], end[near], cfg.resolution_m / 2)
    rc = cfg.pixel_index(dense) + pad
    ok = np.all((rc >= 0) & (rc < size), axis=1)
    if not ok.any():
        return
    free = np.ones((size, size), np.uint8)
    free[rc[ok, 0], rc[ok, 1]] = 0
    angle = np.zeros((size, size))
    angle[rc[ok, 0], rc[ok, 1]] = heading[ok]
    _, labels = cv2.distanceTransformWithLabels(free, cv2.DIST_L2, 5, labelType=cv2.DIST_LABEL_PIXEL)
    marked = free == 0
    lut = np.zeros(int(labels.max()) + 1)
    lut[labels[marked]] = angle[marked]
    nearest = lut[labels[rows + pad, cols + pad]]
    out[MAP_CHANNELS.index("lane_heading_cos"), rows, cols] = np.cos(nearest)
    out[MAP_CHANNELS.index("lane_heading_sin"), rows, cols] = np.sin(nearest)


# --- agents ----------------------------------------------------------------------------------------------------------

def _agent_features(agents: Agents, horizon: Horizon) -> np.ndarray:
    """Per-agent channel values (N, C) in the order of :func:`agent_channels`."""
    t0 = horizon.t0_index
    pose = agents.trajectory[:, t0].astype(np.float64)
    c, s = np.cos(pose[:, 2]), np.sin(pose[:, 2])
    state = np.stack([
        np.ones(len(agents)), c, s,
        agents.velocity[:, t0, 0] / SPEED_SCALE_MPS, agents.velocity[:, t0, 1] / SPEED_SCALE_MPS,
        agents.length / SIZE_SCALE_M, agents.width / SIZE_SCALE_M,
        agents.types == AgentType.PEDESTRIAN, agents.types == AgentType.CYCLIST,
    ], axis=1)
    others = np.array([i for i in range(horizon.num_steps) if i != t0], np.int64)
    times = np.abs(horizon.times[others])
    d = agents.trajectory[:, others, :2].astype(np.float64) - pose[:, None, :2]
    valid = agents.valid[:, others] & agents.valid[:, t0:t0 + 1]
    scale = times[None, :] * SPEED_SCALE_MPS
    traj = np.stack([
        (c[:, None] * d[..., 0] + s[:, None] * d[..., 1]) / scale,
        (-s[:, None] * d[..., 0] + c[:, None] * d[..., 1]) / scale,
        wrap_angle(agents.trajectory[:, others, 2].astype(np.float64) - pose[:, None, 2]) / np.pi,
        np.ones(valid.shape),
    ], axis=-1) * valid[..., None]
    return np.concatenate([state, traj.reshape(len(agents), -1)], axis=1)


def rasterise_agents(agents: Agents, horizon: Horizon = Horizon(), cfg: RasterConfig = RasterConfig()) -> np.ndarray:
    """Ego-frame agents -> float32 (len(agent_channels(horizon)), H, W) BEV raster (see the module docstring)."""
    if agents.num_steps != horizon.num_steps:
        raise ValueError(f"agents have {agents.num_steps} poses but the horizon needs {horizon.num_steps}")
    n = cfg.size_px
    names = agent_channels(horizon)
    out = np.zeros((len(names), n, n), np.float32)
    present = agents.select(agents.valid[:, horizon.t0_index])
    if len(present) == 0:
        return out
    res = cfg.resolution_m
    pose = present.trajectory[:, horizon.t0_index].astype(np.float64)
    centre = cfg.pixel_index(pose[:, :2])  # (N, 2)
    reach = int(np.ceil(0.5 * np.hypot(present.length, present.width).max() / res)) + 1
    offs = np.arange(-reach, reach + 1)
    rows = centre[:, 0, None, None] + offs[None, :, None]  # (N, K, 1)
    cols = centre[:, 1, None, None] + offs[None, None, :]  # (N, 1, K)
    rows, cols = np.broadcast_arrays(rows, cols)
    xy = cfg.pixel_to_ego(np.stack([rows, cols], axis=-1))
    dx, dy = xy[..., 0] - pose[:, 0, None, None], xy[..., 1] - pose[:, 1, None, None]
    c, s = np.cos(pose[:, 2])[:, None, None], np.sin(pose[:, 2])[:, None, None]
    lon, lat = c * dx + s * dy, -s * dx + c * dy
    inside = (np.abs(lon) <= present.length[:, None, None] / 2) & (np.abs(lat) <= present.width[:, None, None] / 2)
    own = (rows == centre[:, 0, None, None]) & (cols == centre[:, 1, None, None])
    claim = (inside | own) & (rows >= 0) & (rows < n) & (cols >= 0) & (cols < n)
    agent_idx, _, _ = np.nonzero(claim)
    pixel = rows[claim] * n + cols[claim]
    # An agent's own centre pixel first, then the nearest centre.
    priority = np.where(own[claim], -1.0, np.hypot(dx, dy)[claim])
    order = np.lexsort((priority, pixel))
    pixel, agent_idx = pixel[order], agent_idx[order]
    first = np.concatenate([[True], pixel[1:] != pixel[:-1]])
    features = _agent_features(present, horizon).astype(np.float32)
    out.reshape(len(names), -1)[:, pixel[first]] = features[agent_idx[first]].T
    return out


def rasterise_scene(scene: Scene, cfg: RasterConfig = RasterConfig()) -> tuple[np.ndarray, np.ndarray]:
    """Map and agent rasters of a scene (all its agents, the ego included)."""
    return rasterise_map(scene.map, cfg), rasterise_agents(scene.agents, scene.horizon, cfg)
