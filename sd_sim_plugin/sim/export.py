"""Save generated scenes as ScenarioNet files that plain MetaDrive (``ScenarioEnv``) loads and replays.

A generated scene holds a few seconds of trajectory at 1 s steps; a ScenarioNet track needs a state every 0.1 s
for the whole scenario. Each agent valid at t = 0 gets its trajectory (interpolated), then the same lane-route
continuation the simulator's replay mode uses (:class:`~sd_sim_plugin.sim.routes.ActorPath`), sampled for
``length_steps`` steps. The ego ("sdc") follows its lane from its start pose at ``max(its speed, EGO_MIN_SPEED_MPS)``,
so ``ScenarioEnv`` has a route for it. Coordinates are the scene's ego frame (ego at the origin at t = 0).

The folder gets one ``sd_*.pkl`` per scene plus ``dataset_summary.pkl`` and ``dataset_mapping.pkl``; exporting
into an existing folder adds to its summary. Pickles run code when loaded: share them only with people who trust
their source (MetaDrive offers no other format).
"""

from __future__ import annotations

import pickle
import re
from pathlib import Path

import numpy as np
from metadrive.scenario.scenario_description import ScenarioDescription as SD
from metadrive.version import VERSION as METADRIVE_VERSION

from sd_sim_plugin.errors import SdSimError
from sd_sim_plugin.scene.types import Agents, AgentType, MapGeometry, Scene
from sd_sim_plugin.sim.routes import ActorPath, LaneGraph

SCENARIONET_DT_S = 0.1
EGO_MIN_SPEED_MPS = 5.0
EGO_ID = "ego"
DATASET_NAME = "sd_sim_plugin"
_TRACK_TYPES = {AgentType.VEHICLE: "VEHICLE", AgentType.PEDESTRIAN: "PEDESTRIAN", AgentType.CYCLIST: "CYCLIST"}
_HEIGHTS = {AgentType.VEHICLE: 1.5, AgentType.PEDESTRIAN: 1.75, AgentType.CYCLIST: 1.75}


def map_features(map: MapGeometry) -> dict[str, dict]:
    """A :class:`MapGeometry` as ScenarioNet ``map_features``: lanes (with links and polygons), edges, lines, crosswalks."""
    features: dict[str, dict] = {}
    for i, lane_id in enumerate(map.lane_ids):
        f = {SD.TYPE: "LANE_SURFACE_STREET", SD.POLYLINE: np.asarray(map.lane_centrelines[i], dtype=np.float64),
             SD.ENTRY: list(map.lane_entries.get(lane_id, [])), SD.EXIT: list(map.lane_exits.get(lane_id, [])),
             SD.LEFT_NEIGHBORS: list(map.lane_left.get(lane_id, [])),
             SD.RIGHT_NEIGHBORS: list(map.lane_right.get(lane_id, [])), "width": float(map.lane_widths[i])}
        if map.lane_polygons and len(map.lane_polygons[i]) > 3:
            f[SD.POLYGON] = np.asarray(map.lane_polygons[i], dtype=np.float64)
        features[str(lane_id)] = f
    for k, edge in enumerate(map.road_edges):
        features[f"edge_{k}"] = {SD.TYPE: "ROAD_EDGE_BOUNDARY", SD.POLYLINE: np.asarray(edge, dtype=np.float64)}
    for k, line in enumerate(map.lane_lines):
        features[f"line_{k}"] = {SD.TYPE: "ROAD_LINE_BROKEN_SINGLE_WHITE", SD.POLYLINE: np.asarray(line, np.float64)}
    for k, crosswalk in enumerate(map.crosswalks):
        features[f"crosswalk_{k}"] = {SD.TYPE: "CROSSWALK", SD.POLYGON: np.asarray(crosswalk, dtype=np.float64)}
    return features


def _track(path: ActorPath, times: np.ndarray, agent_type: AgentType, length: float, width: float,
           object_id: str) -> dict:
    """A ScenarioNet track sampled from a path at ``times``."""
    xy, heading, velocity = path.sample(times)
    n = len(times)
    state = {"position": np.concatenate([xy, np.zeros((n, 1))], axis=1), "heading": heading.astype(np.float64),
             "velocity": velocity.astype(np.float64), "valid": np.ones(n, dtype=bool),
             "length": np.full(n, float(length)), "width": np.full(n, float(width)),
             "height": np.full(n, _HEIGHTS[agent_type])}
    kind = _TRACK_TYPES[agent_type]
    return {SD.TYPE: kind, SD.STATE: state,
            SD.METADATA: {SD.TYPE: kind, SD.OBJECT_ID: object_id, "track_length": n, "dataset": DATASET_NAME}}


def _ego_path(ego: Agents | None, t0: int, lanes: LaneGraph, route_length_m: float) -> tuple[ActorPath, float, float]:
    """The ego's plan: its lane from its start pose at a cruise speed; with its box size."""
    if ego is None or len(ego) == 0:
        pose, speed, length, width = np.zeros(3), 0.0, 4.5, 1.9
    else:
        pose = ego.trajectory[0, t0].astype(np.float64)
        speed, length, width = float(np.linalg.norm(ego.velocity[0, t0])), float(ego.length[0]), float(ego.width[0])
    speed = max(speed, EGO_MIN_SPEED_MPS)
    velocity = speed * np.array([np.cos(pose[2]), np.sin(pose[2])])
    path = ActorPath(np.zeros(1), pose[None], velocity[None], lanes, route_length_m, np.random.default_rng(0))
    return path, length, width


def scene_to_scenario(scene: Scene, *, ego: Agents | None = None, scenario_id: str = "generated",
                      length_steps: int = 200, dt: float = SCENARIONET_DT_S, route_length_m: float = 400.0,
                      seed: int = 0) -> dict:
    """One scene (ego frame) -> a ScenarioNet scenario dict (checked with ``ScenarioDescription.sanity_check``).

    ``ego``: the ego as a one-agent set on the scene's horizon (taken from the scene when it has one, else a default
    car at the origin).
    """
    if length_steps < 2:
        raise SdSimError(f"length_steps must be >= 2, got {length_steps}")
    t0 = scene.horizon.t0_index
    if ego is None and scene.ego_index >= 0:
        ego = scene.agents.select(np.array([scene.ego_index]))
    lanes = LaneGraph(scene.map)
    rng = np.random.default_rng(seed)
    times = np.arange(length_steps) * dt
    ego_path, ego_length, ego_width = _ego_path(ego, t0, lanes, route_length_m)
    tracks = {EGO_ID: _track(ego_path, times, AgentType.VEHICLE, ego_length, ego_width, EGO_ID)}
    others = scene.others
    horizon_times = scene.horizon.times[t0:]
    for i in range(len(others)):
        valid = np.flatnonzero(others.valid[i, t0:])
        if len(valid) == 0 or valid[0] != 0:
            continue  # not present at t = 0: the simulator does not spawn it either
        if np.any(np.diff(valid) > 1):
            valid = valid[: int(np.argmax(np.diff(valid) > 1)) + 1]
        kind = AgentType(int(others.types[i]))
        path = ActorPath(horizon_times[valid], others.trajectory[i, t0:][valid], others.velocity[i, t0:][valid],
                         lanes, route_length_m, rng, follow_lanes=kind != AgentType.PEDESTRIAN)
        object_id = f"agent_{others.ids[i]}"
        tracks[object_id] = _track(path, times, kind, float(others.length[i]), float(others.width[i]), object_id)
    scenario = {
        SD.ID: scenario_id, SD.VERSION: f"{DATASET_NAME} (MetaDrive {METADRIVE_VERSION})", SD.LENGTH: length_steps,
        SD.TRACKS: tracks, SD.DYNAMIC_MAP_STATES: {}, SD.MAP_FEATURES: map_features(scene.map),
        SD.METADATA: {SD.ID: scenario_id, "scenario_id": scenario_id, "dataset": DATASET_NAME,
                      SD.METADRIVE_PROCESSED: False, SD.COORDINATE: "metadrive", SD.TIMESTEP: times.astype(np.float64),
                      SD.SDC_ID: EGO_ID, "sample_rate": dt,
                      "generator": str(scene.meta.get("generator", "")), "seed": int(scene.meta.get("seed", seed))},
    }
    SD.update_summaries(SD(scenario))  # fills scenario["metadata"] in place (needs the SD type)
    SD.sanity_check(scenario, check_self_type=True, valid_check=True)
    return scenario


def _file_name(scenario_id: str) -> str:
    """``sd_<id>.pkl`` (MetaDrive only loads files named sd_*.pkl)."""
    return f"sd_{DATASET_NAME}_{re.sub(r'[^A-Za-z0-9_.-]+', '_', scenario_id)}.pkl"


def write_dataset(scenarios: list[dict], out_dir: str | Path) -> Path:
    """Write scenario dicts plus ``dataset_summary.pkl`` / ``dataset_mapping.pkl`` (merged with existing ones)."""
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    summary_path, mapping_path = out / SD.DATASET.SUMMARY_FILE, out / SD.DATASET.MAPPING_FILE
    summary, mapping = {}, {}
    if summary_path.exists():  # our own earlier export into this folder
        with summary_path.open("rb") as f:
            summary = pickle.load(f)
        if mapping_path.exists():
            with mapping_path.open("rb") as f:
                mapping = pickle.load(f)
    for scenario in scenarios:
        name = _file_name(scenario[SD.ID])
        with (out / name).open("wb") as f:
            pickle.dump(scenario, f)
        summary[name] = scenario[SD.METADATA]
        mapping[name] = ""
    with summary_path.open("wb") as f:
        pickle.dump(summary, f)
    with mapping_path.open("wb") as f:
        pickle.dump(mapping, f)
    return out


def export_scenes(scenes: list[Scene], out_dir: str | Path, *, egos: list[Agents | None] | None = None,
                  names: list[str] | None = None, length_steps: int = 200, dt: float = SCENARIONET_DT_S) -> Path:
    """Save ego-frame scenes as a ScenarioNet dataset folder; returns the folder."""
    egos = egos if egos is not None else [None] * len(scenes)
    names = names if names is not None else [f"scene_{k:04d}" for k in range(len(scenes))]
    if not len(egos) == len(names) == len(scenes):
        raise SdSimError(f"{len(scenes)} scenes but {len(egos)} egos and {len(names)} names")
    scenarios = [scene_to_scenario(s, ego=e, scenario_id=n, length_steps=length_steps, dt=dt)
                 for s, e, n in zip(scenes, egos, names)]
    return write_dataset(scenarios, out_dir)
