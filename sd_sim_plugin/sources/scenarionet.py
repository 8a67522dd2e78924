"""Scenes from ScenarioNet files (any dataset ScenarioNet converts: Waymo, nuScenes, nuPlan, Argoverse 2).

SECURITY: ScenarioNet files are Python pickles, and loading a pickle can run arbitrary code. Read only files from a
trusted source (e.g. your own ScenarioNet conversion, or the project's shared data).

Windows are cut every ``window_stride_s`` (k frames at the file's rate), centred on the logged ego
(``metadata['sdc_id']``) and resampled to the horizon from the real timestamps (``metadata['ts']``; one Waymo file has
an irregular first step). Data fixes: headings wrapped (Waymo stores unwrapped ones), vehicle length/width swapped back
when length < width (the nuScenes ego), only VEHICLE/PEDESTRIAN/CYCLIST kept (cones and barriers skipped), agents with
too few valid poses dropped. Every failure becomes an :class:`SdSimError` naming the file.
"""

from __future__ import annotations

import pickle
from dataclasses import asdict, dataclass
from functools import partial
from pathlib import Path

import numpy as np

from sd_sim_plugin.errors import SdSimError
from sd_sim_plugin.scene.geometry import LaneIndex
from sd_sim_plugin.scene.types import AgentType, Horizon, MapGeometry, Scene, wrap_angle
from sd_sim_plugin.sources.map_features import map_features_to_geometry
from sd_sim_plugin.sources.tracks import Tracks, WindowConfig, cut_window, resample, window_centres

OBJECT_TYPES = {"VEHICLE": AgentType.VEHICLE, "PEDESTRIAN": AgentType.PEDESTRIAN, "CYCLIST": AgentType.CYCLIST}
_INDEX_FILES = {"dataset_summary.pkl", "dataset_mapping.pkl"}


@dataclass(frozen=True)
class ScenarioNetConfig:
    """Window settings for logs."""

    window_stride_s: float = 1.0
    others_per_t0: int = 0  # windows centred on other logged vehicles per t0, beside the logged ego's
    others_min_speed_mps: float = 0.0  # those other centres move at least this fast at t = 0 (0: any vehicle)
    # Files where a smaller share of the logged vehicles (ego windows, t = 0) lies on the drivable area are skipped:
    # car parks, which the maps do not draw (0: keep every file).
    min_drivable_share: float = 0.0

    def to_dict(self) -> dict:
        """JSON-friendly form (settings left at 0 are omitted, so datasets collected before they existed resume)."""
        out = asdict(self)
        for key in ("others_min_speed_mps", "min_drivable_share"):
            if not out[key]:
                del out[key]
        return out


def load_scenario(path: str | Path) -> dict:
    """Unpickle one ScenarioNet file (trusted sources only) and check its top-level structure."""
    path = Path(path)
    try:
        with open(path, "rb") as f:
            data = pickle.load(f)  # noqa: S301 - ScenarioNet's format is pickle; trusted files only (see module doc)
    except FileNotFoundError:
        raise SdSimError(f"{path}: no such ScenarioNet file") from None
    except Exception as exc:  # a corrupt pickle can raise almost anything
        raise SdSimError(f"{path}: not a readable ScenarioNet file ({type(exc).__name__}: {exc})") from None
    if not isinstance(data, dict):
        raise SdSimError(f"{path}: not a ScenarioNet scenario (top level is {type(data).__name__}, not a dict)")
    for key in ("tracks", "map_features", "metadata"):
        if key not in data:
            raise SdSimError(f"{path}: not a ScenarioNet scenario (no '{key}')")
    return data


def scenario_tracks(scenario: dict) -> Tracks:
    """The log's VEHICLE/PEDESTRIAN/CYCLIST tracks (world frame); the logged ego is ``ego_index``."""
    meta = scenario["metadata"]
    sdc = str(meta["sdc_id"])
    first = next(iter(scenario["tracks"].values()), None)
    if first is None:
        raise ValueError("the scenario has no tracks")
    frames = len(first["state"]["valid"])
    times = np.asarray(meta["ts"], np.float64) if meta.get("ts") is not None else np.arange(frames) * 0.1
    if len(times) != frames or np.any(np.diff(times) <= 0):
        raise ValueError(f"metadata['ts'] ({len(times)} stamps) does not match {frames} increasing frames")
    ids, pose, vel, valid, length, width, types = [], [], [], [], [], [], []
    ego = -1
    for tid, track in scenario["tracks"].items():
        kind = OBJECT_TYPES.get(str(track.get("type")))
        if kind is None:
            continue
        st = track["state"]
        ok = np.asarray(st["valid"], bool).reshape(-1)
        xy = np.asarray(st["position"], np.float64)[:, :2]
        heading = np.asarray(st["heading"], np.float64).reshape(-1)
        v = np.asarray(st["velocity"], np.float64)[:, :2]
        ok = ok & np.all(np.isfinite(xy), axis=1) & np.isfinite(heading)
        if not ok.any():
            continue
        size_l = np.asarray(st["length"], np.float64).reshape(-1)[ok]
        size_w = np.asarray(st["width"], np.float64).reshape(-1)[ok]
        lo, wi = float(np.median(size_l)), float(np.median(size_w))
        if kind is not AgentType.PEDESTRIAN and lo < wi:  # nuScenes ego: length and width swapped
            lo, wi = wi, lo
        if str(tid) == sdc:
            ego = len(ids)
        ids.append(str(tid))
        pose.append(np.concatenate([np.where(ok[:, None], xy, 0.0),
                                    np.where(ok, wrap_angle(heading), 0.0)[:, None]], axis=1))
        vel.append(np.where(ok[:, None] & np.isfinite(v), v, 0.0))
        valid.append(ok)
        length.append(lo)
        width.append(wi)
        types.append(int(kind))
    if ego < 0:
        raise ValueError(f"the logged ego {sdc!r} is not among the vehicle tracks")
    return Tracks(times=times - times[0], pose=np.stack(pose), velocity=np.stack(vel), valid=np.stack(valid),
                  length=np.asarray(length), width=np.asarray(width), types=np.asarray(types), ids=ids,
                  ego_index=ego)


def scenario_windows(scenario: dict, horizon: Horizon = Horizon(), config: ScenarioNetConfig = ScenarioNetConfig(),
                     window_config: WindowConfig = WindowConfig(), name: str = "",
                     world_map: MapGeometry | None = None) -> list[Scene]:
    """Windows every ``window_stride_s`` (k frames) where the whole horizon fits the log: centred on the logged ego,
    plus ``others_per_t0`` other vehicles moving at least ``others_min_speed_mps`` (drawn with a generator seeded by
    the file name)."""
    tracks = scenario_tracks(scenario)
    world_map = world_map if world_map is not None else map_features_to_geometry(scenario["map_features"])
    t = tracks.times
    k = max(1, int(round(config.window_stride_s / float(np.median(np.diff(t))))))
    meta = {"source": "scenarionet", "dataset": str(scenario["metadata"].get("dataset", "")),
            "scenario_id": str(scenario["metadata"].get("scenario_id", scenario.get("id", ""))), "file": name}
    rng = np.random.default_rng(list(name.encode()) or [0])
    scenes = []
    first = int(np.searchsorted(t, horizon.past_s - 1e-3))
    for f in range(first, len(t), k):
        if t[f] + horizon.future_s > t[-1] + 1e-3:
            break
        resampled = resample(tracks, t[f] + horizon.times)
        speed = np.linalg.norm(resampled[1][:, horizon.t0_index], axis=1)
        for c in window_centres(tracks, resampled[2], config.others_per_t0, rng, speed, config.others_min_speed_mps):
            scene = cut_window(tracks, world_map, c, float(t[f]), horizon, window_config, {**meta, "frame_index": f},
                               resampled)
            if scene is not None:
                scenes.append(scene)
    return scenes


def read_windows(path: str | Path, horizon: Horizon = Horizon(), config: ScenarioNetConfig = ScenarioNetConfig(),
                 window_config: WindowConfig = WindowConfig()) -> list[Scene]:
    """Load one file and cut its windows; any failure is an :class:`SdSimError` naming the file."""
    path = Path(path)
    scenario = load_scenario(path)
    try:
        scenes = scenario_windows(scenario, horizon, config, window_config, name=path.name)
    except SdSimError as exc:
        raise SdSimError(f"{path}: {exc}") from None
    except Exception as exc:
        raise SdSimError(f"{path}: cannot cut windows ({type(exc).__name__}: {exc})") from None
    if config.min_drivable_share > 0:
        share = drivable_share(scenes)
        if share < config.min_drivable_share:
            raise SdSimError(f"{path}: {share:.0%} of its logged vehicles are on the drivable area, under "
                             f"--min-drivable-share {config.min_drivable_share:g} (a car park the map does not show)")
    return scenes


def drivable_share(scenes: list[Scene]) -> float:
    """Share of the logged vehicles around the ego (centre excluded) on the drivable area at t = 0, over the
    ego-centred windows; 1 when there are none."""
    on_lane = []
    for scene in scenes:
        if not scene.meta.get("centre_is_ego") or not scene.map.num_lanes:
            continue
        others, t0 = scene.others, scene.horizon.t0_index
        pick = (others.types == int(AgentType.VEHICLE)) & others.valid[:, t0]
        if pick.any():
            pose = others.trajectory[pick, t0].astype(np.float64)
            on_lane.append(LaneIndex(scene.map).query(pose[:, :2], pose[:, 2])["on_lane"])
    return float(np.concatenate(on_lane).mean()) if on_lane else 1.0


def scenario_files(data_dir: str | Path) -> list[Path]:
    """ScenarioNet scenario files under ``data_dir`` (recursive), index files excluded."""
    data_dir = Path(data_dir)
    if not data_dir.is_dir():
        raise SdSimError(f"{data_dir}: no such ScenarioNet folder")
    files = sorted(p for p in data_dir.rglob("*.pkl") if p.name not in _INDEX_FILES)
    if not files:
        raise SdSimError(f"{data_dir}: no ScenarioNet .pkl files found")
    return files


def scenarionet_units(data_dir: str | Path, horizon: Horizon = Horizon(),
                      config: ScenarioNetConfig = ScenarioNetConfig(),
                      window_config: WindowConfig = WindowConfig(), split: str | None = None,
                      fold: int = 0) -> list:
    """One store unit per file (shard ``sn_<relative path>.npz``); ``split`` keeps the files of a named split and
    validation ``fold`` (:func:`sd_sim_plugin.data.splits.split_scene_files`)."""
    from sd_sim_plugin.data.store import Unit

    root = Path(data_dir)

    units = []
    files = scenario_files(root)
    if split is not None:
        from sd_sim_plugin.data.splits import split_scene_files

        files = split_scene_files(files, split, fold)
        if not files:
            raise SdSimError(f"{data_dir}: no ScenarioNet files in the {split!r} split"
                             + (f" of fold {fold}" if fold else ""))
    for path in files:
        rel = path.relative_to(root).as_posix()
        stem = rel[: -len(".pkl")]
        shard = "sn_" + "".join(c if c.isalnum() or c in "-_." else "_" for c in stem) + ".npz"
        # a partial, not a closure: units travel to worker processes (collect --workers)
        units.append(Unit(shard=shard, source={"file": rel},
                          produce=partial(read_windows, path, horizon, config, window_config)))
    return units
