"""Scenes to and from flat numpy arrays (``.npz``, no pickles), so they can be stored and shared safely."""

from __future__ import annotations

import json
import zipfile
from pathlib import Path

import numpy as np

from sd_sim_plugin.errors import SdSimError
from sd_sim_plugin.scene.types import Agents, Horizon, MapGeometry, Scene

SCENE_FORMAT_VERSION = 1
_POLYLINE_FIELDS = ("lane_centrelines", "lane_polygons", "road_edges", "lane_lines", "crosswalks")
_LINK_FIELDS = ("lane_entries", "lane_exits", "lane_left", "lane_right")


def pack_polylines(polylines: list[np.ndarray]) -> tuple[np.ndarray, np.ndarray]:
    """Ragged list of (K_i, 2) arrays -> (sum K_i, 2) points and (n + 1,) offsets."""
    offsets = np.zeros(len(polylines) + 1, np.int64)
    offsets[1:] = np.cumsum([len(p) for p in polylines])
    points = np.concatenate([np.asarray(p, np.float32).reshape(-1, 2) for p in polylines]) if polylines else np.zeros((0, 2), np.float32)
    return points, offsets


def unpack_polylines(points: np.ndarray, offsets: np.ndarray) -> list[np.ndarray]:
    """Inverse of :func:`pack_polylines`."""
    return [points[offsets[i]: offsets[i + 1]] for i in range(len(offsets) - 1)]


def map_to_arrays(geometry: MapGeometry, prefix: str = "map/") -> dict[str, np.ndarray]:
    """A map as flat arrays; links and ids go into one JSON string array."""
    out: dict[str, np.ndarray] = {}
    for name in _POLYLINE_FIELDS:
        pts, offs = pack_polylines(getattr(geometry, name))
        out[f"{prefix}{name}/points"] = pts
        out[f"{prefix}{name}/offsets"] = offs
    out[f"{prefix}lane_widths"] = geometry.lane_widths
    text = {"lane_ids": geometry.lane_ids, **{k: getattr(geometry, k) for k in _LINK_FIELDS}}
    out[f"{prefix}json"] = np.array(json.dumps(text))
    return out


def map_from_arrays(arrays: dict[str, np.ndarray], prefix: str = "map/") -> MapGeometry:
    """Inverse of :func:`map_to_arrays`."""
    text = json.loads(str(arrays[f"{prefix}json"]))
    polys = {n: unpack_polylines(arrays[f"{prefix}{n}/points"], arrays[f"{prefix}{n}/offsets"]) for n in _POLYLINE_FIELDS}
    return MapGeometry(lane_ids=text["lane_ids"], lane_widths=arrays[f"{prefix}lane_widths"],
                       **polys, **{k: text[k] for k in _LINK_FIELDS})


def agents_to_arrays(agents: Agents, prefix: str = "agents/") -> dict[str, np.ndarray]:
    """Agents as flat arrays."""
    return {
        f"{prefix}types": agents.types,
        f"{prefix}length": agents.length,
        f"{prefix}width": agents.width,
        f"{prefix}trajectory": agents.trajectory,
        f"{prefix}velocity": agents.velocity,
        f"{prefix}valid": agents.valid,
        f"{prefix}ids": np.array(json.dumps(agents.ids)),
    }


def agents_from_arrays(arrays: dict[str, np.ndarray], prefix: str = "agents/") -> Agents:
    """Inverse of :func:`agents_to_arrays`."""
    return Agents(
        types=arrays[f"{prefix}types"], length=arrays[f"{prefix}length"], width=arrays[f"{prefix}width"],
        trajectory=arrays[f"{prefix}trajectory"], velocity=arrays[f"{prefix}velocity"], valid=arrays[f"{prefix}valid"],
        ids=json.loads(str(arrays[f"{prefix}ids"])),
    )


def scene_to_arrays(scene: Scene) -> dict[str, np.ndarray]:
    """A whole scene as flat arrays."""
    header = {"format_version": SCENE_FORMAT_VERSION, "horizon": scene.horizon.to_dict(),
              "ego_index": scene.ego_index, "meta": scene.meta}
    return {"scene/json": np.array(json.dumps(header)), **map_to_arrays(scene.map), **agents_to_arrays(scene.agents)}


def scene_from_arrays(arrays: dict[str, np.ndarray]) -> Scene:
    """Inverse of :func:`scene_to_arrays`."""
    header = json.loads(str(arrays["scene/json"]))
    if header.get("format_version") != SCENE_FORMAT_VERSION:
        raise SdSimError(f"scene format version {header.get('format_version')} is not {SCENE_FORMAT_VERSION}")
    return Scene(map=map_from_arrays(arrays), agents=agents_from_arrays(arrays), horizon=Horizon(**header["horizon"]),
                 ego_index=header["ego_index"], meta=header["meta"])


def save_scene(scene: Scene, path: str | Path) -> Path:
    """Write a scene to ``path`` (``.npz``)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    np.savez_compressed(path, **scene_to_arrays(scene))
    return path


def load_scene(path: str | Path) -> Scene:
    """Read a scene written by :func:`save_scene`; a damaged file raises :class:`SdSimError` naming it."""
    try:
        with np.load(path, allow_pickle=False) as data:
            return scene_from_arrays({k: data[k] for k in data.files})
    except FileNotFoundError:
        raise SdSimError(f"{path}: no such scene file") from None
    except (OSError, ValueError, KeyError, zipfile.BadZipFile, json.JSONDecodeError) as exc:
        raise SdSimError(f"{path}: not a readable scene file ({type(exc).__name__}: {exc})") from None
