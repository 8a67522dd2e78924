"""ScenarioNet / MetaDrive map features -> :class:`MapGeometry` (world frame), and the live map of a running env.

The input is the dict of ``engine.current_map.get_map_features(interval)`` or a ScenarioNet file's
``map_features``: feature id -> {"type", "polyline" | "polygon", ...}. Both PG and real maps use it.
Cleaning done here (see ../shared/data/scenarionet/dev/README.md):
- centrelines: 3-D points cut to 2-D, repeated points dropped, resampled to ~1 m;
- lane width: the ``width`` field when filled (Waymo), else polygon area / length, else 3.5 m;
- lanes without a polygon (half of nuScenes, all Waymo) get their centreline widened by half the width per side,
  so ``lane_polygons`` always has one polygon per lane;
- lane lines, road edges and polygons are simplified within 5 cm with segments of at most 5 m (they are drawn,
  not queried per metre, and take most of a stored scene's bytes);
- maps without road-edge features (PG, nuScenes) get edges from the boundary of the union of lane polygons,
  cleaned by a tiny buffer out / in that removes hairline gaps between neighbouring lanes.
"""

from __future__ import annotations

import weakref
from collections.abc import Mapping
from typing import Any

import numpy as np
import shapely
from shapely.geometry import LineString, Polygon

from sd_sim_plugin.errors import SdSimError
from sd_sim_plugin.scene.types import MapGeometry

DEFAULT_LANE_WIDTH = 3.5
RESAMPLE_SPACING_M = 1.0
# Vehicle lanes only: bike lanes are not drivable area for cars.
VEHICLE_LANE_TYPES = frozenset({"LANE_SURFACE_STREET", "LANE_SURFACE_UNSTRUCTURE", "LANE_UNKNOWN", "LANE_FREEWAY"})
ROAD_EDGE_TYPES = frozenset({"ROAD_EDGE_BOUNDARY", "ROAD_EDGE_MEDIAN", "ROAD_EDGE_SIDEWALK"})
CROSSWALK_TYPES = frozenset({"CROSSWALK", "CROSS_WALK"})
_EDGE_CLEAN_M = 0.1  # buffer out/in that merges touching lane polygons into one drivable area
_MAP_FEATURE_INTERVAL_M = 1.0
SIMPLIFY_M = 0.05  # lines, edges and polygons are simplified within 5 cm, then ...
MAX_SEGMENT_M = 5.0  # ... densified so no segment is longer than 5 m (point-based radius tests stay reliable)


def clean_polyline(points: Any, spacing: float | None = RESAMPLE_SPACING_M) -> np.ndarray:
    """(K, 2+) points -> (M, 2) float64 with repeated points dropped, resampled every ``spacing`` metres."""
    p = np.asarray(points, dtype=np.float64)
    if p.ndim != 2 or p.shape[1] < 2:
        return np.zeros((0, 2))
    p = p[:, :2][np.all(np.isfinite(p[:, :2]), axis=1)]
    if len(p) < 2:
        return p
    keep = np.ones(len(p), bool)
    keep[1:] = np.linalg.norm(np.diff(p, axis=0), axis=1) > 1e-6
    p = p[keep]
    if spacing is None or len(p) < 2:
        return p
    s = np.concatenate([[0.0], np.cumsum(np.linalg.norm(np.diff(p, axis=0), axis=1))])
    n = max(int(np.ceil(s[-1] / spacing)), 1)
    t = np.linspace(0.0, s[-1], n + 1)
    return np.stack([np.interp(t, s, p[:, 0]), np.interp(t, s, p[:, 1])], axis=1)


def _ids(values: Any) -> list[str]:
    """Lane-link lists hold str ids (PG, nuScenes), int ids (Waymo exits) or dicts with ``feature_id`` (Waymo)."""
    out = []
    for v in values or []:
        out.append(str(v["feature_id"]) if isinstance(v, Mapping) else str(v))
    return out


def _lane_width(feature: Mapping, centreline: np.ndarray, polygon: Polygon | None) -> float:
    """Lane width in metres from the ``width`` field, else the polygon, else the default."""
    raw = feature.get("width")
    if raw is not None:
        w = np.asarray(raw, dtype=np.float64)
        # Waymo: (K, 2) distances to the left/right boundary (often to a far road edge: twice the smaller one
        # is the robust lane width); other converters: (K,) full widths; 0 means unknown.
        full = 2.0 * np.where(np.all(w > 0, axis=-1), w.min(axis=-1), 0.0) if w.ndim == 2 else w.reshape(-1)
        full = full[np.isfinite(full) & (full > 0)]
        if len(full):
            return float(np.clip(np.median(full), 2.5, 4.5))
    if polygon is not None and len(centreline) >= 2:
        length = float(np.linalg.norm(np.diff(centreline, axis=0), axis=1).sum())
        if length > 1.0:
            return float(np.clip(polygon.area / length, 2.0, 5.0))
    return DEFAULT_LANE_WIDTH


def _valid_polygon(points: Any) -> Polygon | None:
    """A shapely polygon from (K, 2+) points, repaired; None if degenerate."""
    p = clean_polyline(points, spacing=None)
    if len(p) < 3:
        return None
    poly = Polygon(p)
    if not poly.is_valid:
        poly = shapely.make_valid(poly)
        if poly.geom_type != "Polygon":
            parts = [g for g in getattr(poly, "geoms", []) if g.geom_type == "Polygon"]
            poly = max(parts, key=lambda g: g.area) if parts else None
    return poly if poly is not None and poly.area > 1e-3 else None


def _polygon_coords(poly: Polygon) -> np.ndarray:
    """Exterior ring of a polygon, simplified, as (K, 2) without the closing point."""
    ring = shapely.segmentize(poly.exterior.simplify(SIMPLIFY_M), MAX_SEGMENT_M)
    return np.asarray(ring.coords, dtype=np.float64)[:-1, :2]


def _simplified(line: np.ndarray) -> np.ndarray:
    """A cleaned polyline simplified within ``SIMPLIFY_M``, with segments of at most ``MAX_SEGMENT_M``."""
    return np.asarray(shapely.segmentize(LineString(line).simplify(SIMPLIFY_M), MAX_SEGMENT_M).coords, np.float64)


def derive_road_edges(lane_polygons: list[np.ndarray], clean_m: float = _EDGE_CLEAN_M) -> list[np.ndarray]:
    """Road edges as the boundary rings of the union of lane polygons (for maps that have no edge features)."""
    polys = [Polygon(p) for p in lane_polygons if len(p) >= 3]
    polys = [p if p.is_valid else p.buffer(0) for p in polys]
    if not polys:
        return []
    area = shapely.unary_union(polys).buffer(clean_m, join_style="mitre").buffer(-clean_m, join_style="mitre")
    rings = []
    for part in getattr(area, "geoms", [area]):
        if part.geom_type != "Polygon" or part.is_empty:
            continue
        for ring in [part.exterior, *part.interiors]:
            if ring.length > 2 * clean_m + 1.0:  # skip hairline holes left between lanes
                rings.append(_simplified(clean_polyline(np.asarray(ring.coords), spacing=None)))
    return rings


def map_features_to_geometry(features: Mapping[str, Mapping], *, derive_edges: bool | None = None) -> MapGeometry:
    """Convert a ScenarioNet/MetaDrive map-features dict into a world-frame :class:`MapGeometry`.

    ``derive_edges``: None derives road edges only when the map has no road-edge features.
    """
    if not isinstance(features, Mapping):
        raise SdSimError(f"map features must be a dict of feature id -> feature, got {type(features).__name__}")
    lane_ids: list[str] = []
    centres: list[np.ndarray] = []
    widths: list[float] = []
    polygons: list[np.ndarray] = []
    entries: dict[str, list[str]] = {}
    exits: dict[str, list[str]] = {}
    left: dict[str, list[str]] = {}
    right: dict[str, list[str]] = {}
    edges: list[np.ndarray] = []
    lines: list[np.ndarray] = []
    crosswalks: list[np.ndarray] = []
    for fid, feature in features.items():
        ftype = str(feature.get("type", ""))
        if ftype in VEHICLE_LANE_TYPES:
            centre = clean_polyline(feature.get("polyline", np.zeros((0, 2))))
            if len(centre) < 2:
                continue
            poly = _valid_polygon(feature["polygon"]) if feature.get("polygon") is not None else None
            width = _lane_width(feature, centre, poly)
            if poly is None:
                poly = LineString(centre).buffer(width / 2.0, cap_style="flat")
                if poly.geom_type != "Polygon":  # a self-crossing centreline: keep its largest piece
                    poly = max(poly.geoms, key=lambda g: g.area)
            lid = str(fid)
            lane_ids.append(lid)
            centres.append(centre.astype(np.float32))
            widths.append(width)
            polygons.append(_polygon_coords(poly).astype(np.float32))
            entries[lid] = _ids(feature.get("entry_lanes"))
            exits[lid] = _ids(feature.get("exit_lanes"))
            left[lid] = _ids(feature.get("left_neighbor"))
            right[lid] = _ids(feature.get("right_neighbor"))
        elif ftype in ROAD_EDGE_TYPES:
            pts = feature.get("polyline", feature.get("polygon"))
            line = clean_polyline(pts, spacing=None) if pts is not None else np.zeros((0, 2))
            if len(line) >= 2:
                edges.append(_simplified(line).astype(np.float32))
        elif ftype.startswith("ROAD_LINE"):
            line = clean_polyline(feature.get("polyline", np.zeros((0, 2))), spacing=None)
            if len(line) >= 2:
                lines.append(_simplified(line).astype(np.float32))
        elif ftype in CROSSWALK_TYPES:
            pts = feature.get("polygon", feature.get("polyline"))
            poly = _valid_polygon(pts) if pts is not None else None
            if poly is not None:
                crosswalks.append(_polygon_coords(poly).astype(np.float32))
    if derive_edges or (derive_edges is None and not edges):
        edges = [e.astype(np.float32) for e in derive_road_edges(polygons)]
    known = set(lane_ids)

    def links(table: dict[str, list[str]]) -> dict[str, list[str]]:
        return {k: [i for i in v if i in known] for k, v in table.items()}

    return MapGeometry(
        lane_ids=lane_ids, lane_centrelines=centres, lane_widths=np.asarray(widths, np.float32),
        lane_polygons=polygons, lane_entries=links(entries), lane_exits=links(exits),
        lane_left=links(left), lane_right=links(right), road_edges=edges, lane_lines=lines, crosswalks=crosswalks,
    )


def crop_map(geometry: MapGeometry, radius: float) -> MapGeometry:
    """Keep what lies within ``radius`` (a box, in the map's own frame, e.g. ego) of the origin.

    Lanes with a centreline point in the box are kept whole except for their centreline, trimmed to the span from
    the first to the last point inside (plus one point either side); lane lines and road edges are clipped to the box
    (a line may split into pieces); crosswalks touching the box are kept whole.
    """

    def trim(p: np.ndarray) -> np.ndarray | None:
        idx = np.flatnonzero(np.all(np.abs(p) <= radius, axis=-1)) if len(p) else []
        if len(idx) == 0:
            return None
        return p[max(idx[0] - 1, 0): idx[-1] + 2]

    def clip_all(lines: list[np.ndarray]) -> list[np.ndarray]:
        out: list[np.ndarray] = []
        if not lines:
            return out
        near = [p for p in lines
                if len(p) >= 2 and np.all(p.min(axis=0) <= radius) and np.all(p.max(axis=0) >= -radius)]
        clipped = shapely.clip_by_rect([LineString(p) for p in near], -radius, -radius, radius, radius)
        for geom in clipped:
            for part in getattr(geom, "geoms", [geom]):
                if part.geom_type == "LineString" and not part.is_empty and len(part.coords) >= 2:
                    out.append(np.asarray(part.coords, dtype=np.float32))
        return out

    keep = []
    centres = []
    for i, c in enumerate(geometry.lane_centrelines):
        t = trim(c)
        if t is not None and len(t) >= 2:
            keep.append(i)
            centres.append(t)
    kept_ids = [geometry.lane_ids[i] for i in keep]
    known = set(kept_ids)

    def links(table: dict[str, list[str]]) -> dict[str, list[str]]:
        return {k: [i for i in v if i in known] for k, v in table.items() if k in known}

    box = shapely.box(-radius, -radius, radius, radius)
    crosswalks = [p for p in geometry.crosswalks if len(p) >= 3 and Polygon(p).intersects(box)]
    return MapGeometry(
        lane_ids=kept_ids, lane_centrelines=centres,
        lane_widths=geometry.lane_widths[keep] if keep else np.zeros(0, np.float32),
        lane_polygons=[geometry.lane_polygons[i] for i in keep] if geometry.lane_polygons else [],
        lane_entries=links(geometry.lane_entries), lane_exits=links(geometry.lane_exits),
        lane_left=links(geometry.lane_left), lane_right=links(geometry.lane_right),
        road_edges=clip_all(geometry.road_edges), lane_lines=clip_all(geometry.lane_lines), crosswalks=crosswalks,
    )


# Live maps, cached per map object: PG maps and ScenarioNet maps are reused by MetaDrive across resets.
_LIVE_CACHE: dict[int, tuple[weakref.ref, MapGeometry]] = {}
_LIVE_CACHE_SIZE = 16


def live_map(env: Any) -> MapGeometry:
    """World-frame map of a running MetaDrive env (PG or ScenarioEnv), cached per map.

    The frame is the env's own, the one its vehicles move in: for a ScenarioEnv that is the scenario shifted so the
    logged ego starts at the origin (MetaDrive centralises scenarios), not the raw file's coordinates.
    """
    engine = getattr(env, "engine", None)
    current = getattr(engine, "current_map", None) if engine is not None else None
    if current is None:
        raise SdSimError("live_map: the env has no current map (call env.reset() first)")
    key = id(current)
    hit = _LIVE_CACHE.get(key)
    if hit is not None and hit[0]() is current:
        return hit[1]
    data_manager = getattr(engine, "data_manager", None)
    map_index = getattr(current, "map_index", None)
    scenario = None
    if data_manager is not None and map_index is not None:
        get = getattr(data_manager, "get_scenario", None)
        scenario = get(map_index) if get is not None else data_manager.current_scenario
    if scenario is not None:
        # ScenarioEnv: the scenario's own features (already in the env frame); MetaDrive's reconstruction
        # (get_map_features) drops crosswalks and road edges.
        features = scenario["map_features"]
    else:
        features = current.get_map_features(_MAP_FEATURE_INTERVAL_M)
    geometry = map_features_to_geometry(features)
    if len(_LIVE_CACHE) >= _LIVE_CACHE_SIZE:
        _LIVE_CACHE.pop(next(iter(_LIVE_CACHE)))
    _LIVE_CACHE[key] = (weakref.ref(current), geometry)
    return geometry
