"""Play fixed-value specs closed loop: one MetaDrive episode per (spec, seed), with outcome metrics.

The key agents are resolved against the map the generator is handed (ego frame, at the ego's start), inside a thin
generator wrapper, so lane-relative placements need no extra reset. ``sd-sim run`` and ``sd-sim search`` both play
episodes through :meth:`SpecRunner.run`, so a search result replays to the same outcome.
"""

from __future__ import annotations

import importlib
import math
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from sd_sim_plugin.errors import SdSimError
from sd_sim_plugin.generators.base import Generator, generated_types
from sd_sim_plugin.scene.tokens import AgentToken, Density, density_by_type
from sd_sim_plugin.scene.types import Agents, MapGeometry, Scene
from sd_sim_plugin.specs.fidelity import spec_fidelity
from sd_sim_plugin.specs.leaves import Range
from sd_sim_plugin.specs.resolve import spec_tokens
from sd_sim_plugin.specs.schema import AGENT_TYPES, DensityByType, Spec
from sd_sim_plugin.specs.space import open_dimensions

STEP_S = 0.1  # MetaDrive: physics step 0.02 s x decision_repeat 5
GAP_CAP_M = 50.0  # a min gap above this (or no agent at all) counts as this in the min_gap objective
FIRST_ROAD_M = 10.0  # length of MetaDrive's first PG road (">" to ">>"); the next one (">>" to ">>>") follows it


def check_density_types(spec: Spec, generator: Generator, source: str) -> None:
    """Refuse, before any episode, a spec whose density may ask for agent types ``generator`` does not make."""
    if not isinstance(spec.density, DensityByType):
        return
    most = {name: int(v.hi) if isinstance(v, Range) else v
            for name, v in ((name, getattr(spec.density, name)) for name in AGENT_TYPES)}
    try:
        density_by_type(most, generated_types(generator))
    except SdSimError as exc:
        raise SdSimError(f"{source}: generator {getattr(generator, 'name', '?')}: {exc}") from None


class SpecGenerator:
    """Generator wrapper: resolves the spec's key agents on the map it is handed, then asks the inner generator."""

    def __init__(self, inner: Generator) -> None:
        self.inner = inner
        self.name = inner.name
        self.horizon = inner.horizon
        self.spec: Spec | None = None
        self.tokens: list[AgentToken] = []

    def generate(self, map: MapGeometry, *, ego: Agents | None = None, agent_tokens: list[AgentToken] | None = None,
                 density: Density = None, seed: int = 0, count: int = 1) -> list[Scene]:
        """Scenes with the spec's key agents (as agent tokens) and density."""
        if self.spec is None:
            raise SdSimError("SpecGenerator: no spec set")
        self.tokens = spec_tokens(self.spec, map)
        return self.inner.generate(map, ego=ego, agent_tokens=self.tokens, density=self.spec.generator_density(),
                                   seed=seed, count=count)


@dataclass
class EpisodeResult:
    """Outcome of one episode (``status`` "ok"; else "failed" with ``error``)."""

    seed: int
    status: str = "ok"
    collision: bool = False
    min_ttc_s: float = math.inf
    min_gap_m: float = math.inf
    route_completion: float = 0.0
    out_of_road: bool = False
    arrive_dest: bool = False
    fidelity: float = 1.0
    fidelity_all: bool = True
    key_agents_matched: list[bool] = field(default_factory=list)
    steps: int = 0
    num_agents: int = 0
    generation_s: float = 0.0
    episode_s: float = 0.0
    error: str | None = None

    def to_dict(self) -> dict:
        """JSON-friendly (inf as None)."""
        return {k: (None if isinstance(v, float) and not math.isfinite(v) else v) for k, v in asdict(self).items()}


def criticality(result: EpisodeResult, spec: Spec) -> float:
    """The search objective (higher = more critical): minus the min TTC or gap, capped; a collision counts as 0."""
    if spec.outcome.objective == "min_ttc":
        return -(0.0 if result.collision else min(result.min_ttc_s, spec.outcome.ttc_cap))
    return -(0.0 if result.collision else min(result.min_gap_m, GAP_CAP_M))


def resolve_policy(name: str, real_map: bool) -> tuple[Any, Any]:
    """(MetaDrive agent_policy class or None, per-step callable or None) for ``idm``, ``expert`` or module:callable."""
    if name == "idm":
        if real_map:
            from metadrive.policy.idm_policy import TrajectoryIDMPolicy

            return TrajectoryIDMPolicy, None
        from metadrive.policy.idm_policy import IDMPolicy

        return IDMPolicy, None
    if name == "expert":
        from metadrive.policy.expert_policy import ExpertPolicy

        return ExpertPolicy, None
    module_name, _, attr = name.partition(":")
    if not attr:
        raise SdSimError(f"ego policy must be idm, expert or module:callable, got {name!r}")
    try:
        obj = getattr(importlib.import_module(module_name), attr)
    except (ImportError, AttributeError) as exc:
        raise SdSimError(f"cannot load ego policy {name!r}: {exc}") from None
    from metadrive.policy.base_policy import BasePolicy

    if isinstance(obj, type) and issubclass(obj, BasePolicy):
        return obj, None
    if callable(obj):
        return None, obj  # called as obj(observation) -> [steering, throttle] every step
    raise SdSimError(f"ego policy {name!r} is neither a MetaDrive policy class nor a callable")


class SpecRunner:
    """Runs episodes of fixed-value specs; keeps one env while the map and ego policy stay the same."""

    def __init__(self, generator: Generator, ego_policy: str | None = None, actor_mode: str = "replay") -> None:
        self.generator = SpecGenerator(generator)
        self.ego_policy = ego_policy
        self.actor_mode = actor_mode
        self.env = None
        self._env_key: tuple | None = None
        self._step_policy = None
        self._destinations: dict[str, str] | None = None

    def close(self) -> None:
        """Close the env (MetaDrive allows one per process)."""
        if self.env is not None:
            self.env.close()
            self.env = None
            self._env_key = None

    def __enter__(self) -> SpecRunner:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def _env_for(self, spec: Spec):
        """An env for the spec's map and ego policy (reused when they are unchanged)."""
        policy = self.ego_policy or spec.ego.policy
        real = spec.map.scenarionet
        if real is not None:
            key = ("real", real.file, policy)
        else:
            pg = spec.map.pg
            key = ("pg", pg.blocks, pg.lanes, pg.lane_width, pg.seed, policy)
        if key == self._env_key:
            return self.env
        self.close()
        agent_policy, step_policy = resolve_policy(policy, real is not None)
        config: dict[str, Any] = {"actor_mode": self.actor_mode, "horizon": 100_000}
        if agent_policy is not None:
            config["agent_policy"] = agent_policy
        if real is not None:
            from sd_sim_plugin.sim.envs import ScenarioDiffusionRealEnv

            folder, index = _scenarionet_index(Path(real.file))
            if int(real.frame) != 0:
                raise SdSimError(f"map.scenarionet.frame: {real.frame}: only frame 0 is supported "
                                 "(MetaDrive 0.4.3 starts ScenarioNet episodes at the first frame)")
            self.env = ScenarioDiffusionRealEnv(dict(config, data_directory=str(folder), start_scenario_index=index,
                                                     num_scenarios=1), generator=self.generator)
        else:
            from sd_sim_plugin.sim.envs import ScenarioDiffusionEnv

            pg = spec.map.pg
            self.env = ScenarioDiffusionEnv(dict(
                config, num_scenarios=1, start_seed=int(pg.seed), random_spawn_lane_index=False,
                map_config={"type": "block_sequence", "config": pg.blocks, "lane_num": int(pg.lanes),
                            "lane_width": float(pg.lane_width)}), generator=self.generator)
        self._env_key = key
        self._step_policy = step_policy
        self._destinations = None
        return self.env

    def _place_ego(self, spec: Spec) -> None:
        """Ego start lane, position and speed on PG maps (MetaDrive reads them at every reset)."""
        if spec.map.pg is None:
            return
        from metadrive.component.pgblock.first_block import FirstPGBlock

        lanes = int(spec.map.pg.lanes)
        lane = int(spec.ego.lane) if spec.ego.lane is not None else lanes - 1
        if lane >= lanes:
            raise SdSimError(f"ego.lane: {lane} but the map has {lanes} lane(s) per direction (0 = leftmost)")
        start = float(spec.ego.start) if spec.ego.start is not None else 5.0
        road = (FirstPGBlock.NODE_1, FirstPGBlock.NODE_2) if start < FIRST_ROAD_M else (FirstPGBlock.NODE_2,
                                                                                          FirstPGBlock.NODE_3)
        cfg = self.env.config["agent_configs"]["default_agent"]
        cfg["spawn_lane_index"] = (*road, lane)
        cfg["spawn_longitude"] = start if start < FIRST_ROAD_M else start - FIRST_ROAD_M
        speed = float(spec.ego.speed) if spec.ego.speed is not None else 0.0
        cfg["spawn_velocity"] = [speed, 0.0] if speed > 0 else None
        cfg["spawn_velocity_car_frame"] = True
        cfg["destination"] = self._destination(str(spec.ego.turn)) if spec.ego.turn is not None else None

    def _destination(self, turn: str) -> str:
        """End node of the map road whose direction, relative to the start, is the requested turn."""
        if self._destinations is None:
            if getattr(self.env.engine, "current_map", None) is None:
                self.env.reset(seed=0)  # builds the map (reused by the real reset: one map per env)
            self._destinations = route_ends(self.env.engine.current_map.road_network)
        if turn not in self._destinations:
            raise SdSimError(f"ego.turn: {turn}: the map has no road ending to the {turn} of the start "
                             f"(ends: {sorted(self._destinations) or 'none'})")
        return self._destinations[turn]

    def run(self, spec: Spec, seed: int, gif_path: Path | None = None, export_dir: Path | None = None,
            export_name: str | None = None) -> EpisodeResult:
        """Play one episode of a fixed-value spec with generator seed stream ``seed``."""
        if open_dimensions(spec):
            raise ValueError("SpecRunner.run needs a fixed-value spec (concretize it first)")
        started = time.perf_counter()
        result = EpisodeResult(seed=int(seed))
        env = self._env_for(spec)
        self.generator.spec = spec
        self._place_ego(spec)
        obs, info = env.reset(seed=int(seed))
        scene = env.current_scene()
        fid = spec_fidelity(self.generator.tokens, scene.agents, scene.horizon)
        result.fidelity, result.fidelity_all, result.key_agents_matched = fid.rate, fid.all_matched, fid.matched
        result.num_agents, result.generation_s = int(info.get("num_agents", 0)), float(info.get("generation_s", 0.0))
        recorder = None
        if gif_path is not None:
            from sd_sim_plugin.sim.recording import TopDownRecorder

            recorder = TopDownRecorder(env)
            recorder.capture()
        _track(result, info)
        steps = int(round(float(spec.duration) / STEP_S))
        for _ in range(steps):
            action = self._step_policy(obs) if self._step_policy is not None else [0.0, 0.0]
            obs, _, terminated, truncated, info = env.step(action)
            result.steps += 1
            _track(result, info)
            if recorder is not None:
                recorder.capture()
            if terminated or truncated or result.collision:
                break
        result.route_completion = float(info.get("route_completion", 0.0))
        result.arrive_dest = bool(info.get("arrive_dest", False))
        if recorder is not None:
            recorder.write_gif(gif_path)
        if export_dir is not None:
            _export(env, scene, export_dir, export_name or f"{spec.name}_seed{seed}")
        result.episode_s = time.perf_counter() - started
        return result


def route_ends(network: Any) -> dict[str, str]:
    """Dead-end roads of a PG map by direction relative to the first road: {"left"|"right"|"straight": end node}."""
    from metadrive.component.pgblock.first_block import FirstPGBlock

    start = network.get_lane((FirstPGBlock.NODE_1, FirstPGBlock.NODE_2, 0)).heading_theta_at(0.0)
    ends: dict[str, tuple[float, str]] = {}
    for a, exits in network.graph.items():
        for b, lanes in exits.items():
            if a.startswith("-") or b.startswith("-") or "decoration" in a or network.graph.get(b):
                continue  # opposite direction, decoration, or not a dead end
            lane = lanes[0]
            turn = float(np.angle(np.exp(1j * (lane.heading_theta_at(lane.length) - start))))
            name = "left" if turn > np.pi / 4 else "right" if turn < -np.pi / 4 else "straight"
            if name not in ends or abs(turn) < abs(ends[name][0]):
                ends[name] = (turn, b)
    return {k: v[1] for k, v in ends.items()}


def _track(result: EpisodeResult, info: dict) -> None:
    """Fold one step's signals into the episode result."""
    crash = any(bool(info.get(k, False)) for k in ("crash_vehicle", "crash_human", "crash_object"))
    result.collision = result.collision or crash
    result.out_of_road = result.out_of_road or bool(info.get("out_of_road", False))
    ttc, gap = info.get("ttc_s"), info.get("min_gap_m")
    if ttc is not None:
        result.min_ttc_s = min(result.min_ttc_s, float(ttc))
    if gap is not None:
        result.min_gap_m = min(result.min_gap_m, float(gap))
    if crash:
        result.min_ttc_s, result.min_gap_m = 0.0, 0.0


def _export(env: Any, scene: Scene, out_dir: Path, name: str) -> None:
    """The episode's generated scene as a ScenarioNet file in ``out_dir`` (one dataset folder for all episodes)."""
    from sd_sim_plugin.scene.transform import map_to_local
    from sd_sim_plugin.sim.export import export_scenes
    from sd_sim_plugin.sources.map_features import crop_map, live_map

    radius = 200.0
    local_map = crop_map(map_to_local(live_map(env), env.traffic.frame, radius=radius), radius)
    full = Scene(map=local_map, agents=scene.agents, horizon=scene.horizon, ego_index=-1, meta=scene.meta)
    export_scenes([full], out_dir, egos=[env.traffic.ego_start], names=[name])


def _scenarionet_index(path: Path) -> tuple[Path, int]:
    """The ScenarioNet folder holding ``path`` and the file's index in its summary (files are trusted pickles)."""
    if not path.is_file():
        raise SdSimError(f"map.scenarionet.file: no such file {path}")
    from metadrive.scenario.utils import read_dataset_summary

    folder = path.parent
    if not (folder / "dataset_summary.pkl").is_file():
        raise SdSimError(f"map.scenarionet.file: {folder} has no dataset_summary.pkl (not a ScenarioNet folder)")
    _, ids, _ = read_dataset_summary(folder)
    if path.name not in ids:
        raise SdSimError(f"map.scenarionet.file: {path.name} is not listed in {folder}/dataset_summary.pkl")
    return folder, ids.index(path.name)


def draw_point(spec: Spec, seed: int) -> np.ndarray:
    """The box point an episode of a ranged spec plays (uniform, from the episode seed)."""
    return np.random.default_rng([int(seed), 1]).random(len(open_dimensions(spec)))
