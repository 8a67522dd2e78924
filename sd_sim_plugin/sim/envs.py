"""Gymnasium environments with generated traffic on every reset: PG maps and ScenarioNet maps.

- :class:`ScenarioDiffusionEnv` (``sd_sim_plugin/ScenarioDiffusion-v0``): MetaDrive's procedural maps;
- :class:`ScenarioDiffusionRealEnv` (``sd_sim_plugin/ScenarioDiffusionReal-v0``): maps of ScenarioNet files
  (``data_directory``), the log's own traffic replaced by generated traffic.

Both take MetaDrive's config plus the keys of :class:`~sd_sim_plugin.sim.config.SimConfig`, as a ``config`` dict
and/or keyword arguments; a Generator object can be passed as ``generator=`` (it never enters MetaDrive's config,
which deep-copies every value).

Seeding: ``reset(seed=s)`` seeds the env's random stream (Gymnasium semantics); each reset draws the map index
(in MetaDrive's ``[start, start + num_scenarios)``) and the generator's seed from it, so the same seed gives the same
map and the same scene, and unseeded resets continue the stream. ``reset(options=...)`` takes per-episode
``agent_tokens``, ``density``, ``map_index`` and ``scene_seed``.
"""

from __future__ import annotations

import logging
import pickle
from pathlib import Path
from typing import Any

import gymnasium
import numpy as np
from gymnasium.utils import seeding
from metadrive.envs.metadrive_env import MetaDriveEnv
from metadrive.envs.scenario_env import ScenarioEnv

from sd_sim_plugin.errors import SdSimError
from sd_sim_plugin.generators.base import Generator
from sd_sim_plugin.scene.transform import map_to_local
from sd_sim_plugin.scene.types import Scene
from sd_sim_plugin.sim.config import SceneRequest, SimConfig
from sd_sim_plugin.sim.manager import GeneratedTrafficManager
from sd_sim_plugin.sources.map_features import crop_map, live_map
from sd_sim_plugin.sources.metadrive_assets import ensure_headless_assets, require_real_assets

# MetaDrive settings our envs change by default (all overridable).
COMMON_DEFAULTS = dict(use_render=False, log_level=50, horizon=1000)
SEED_RANGE = 2**31 - 1
_OPTION_KEYS = {"agent_tokens", "density", "map_index", "scene_seed"}


def _prepare_config(config: dict | None, generator: Generator | str | None, overrides: dict,
                    defaults: dict) -> tuple[SimConfig, dict]:
    """Split user config into our SimConfig and MetaDrive's config; check rendering needs."""
    merged = {**defaults, **(config or {}), **overrides}
    if generator is not None:
        merged["generator"] = generator
    sim = SimConfig.pop_from(merged)
    if merged.get("use_render") or merged.get("image_observation"):
        require_real_assets()
    return sim, merged


class _GeneratedTrafficMixin:
    """Reset/step/info logic shared by the PG and the ScenarioNet env (mixed in before the MetaDrive class)."""

    sim_config: SimConfig
    generator: Generator
    _request: SceneRequest

    def _init_generated_traffic(self, sim: SimConfig) -> None:
        self.sim_config = sim
        self.generator = sim.build_generator()
        self._request = sim.request
        self._episode_info: dict = {}
        if sim.scene_seed is not None:
            self._np_random, self._np_random_seed = seeding.np_random(int(sim.scene_seed))

    def setup_engine(self) -> None:
        """Install the generated-traffic manager in place of (or beside missing) MetaDrive's traffic manager."""
        super().setup_engine()
        manager = GeneratedTrafficManager(self.generator, self.sim_config)
        if "traffic_manager" in self.engine.managers:
            self.engine.update_manager("traffic_manager", manager)
        else:
            self.engine.register_manager("traffic_manager", manager)

    @property
    def traffic(self) -> GeneratedTrafficManager:
        """The generated-traffic manager (after the first reset)."""
        return self.engine.traffic_manager

    def set_scene_request(self, agent_tokens: Any = None, density: int | None = None) -> None:
        """Change what every following reset asks the generator for (agent tokens, density)."""
        self._request = SceneRequest.make(agent_tokens, density)

    def reset(self, *, seed: int | None = None, options: dict | None = None):
        """Gymnasium reset: pick a map and a scene seed from the env's random stream, generate, spawn."""
        if seed is not None:
            gymnasium.Env.reset(self, seed=int(seed))
        options = dict(options or {})
        unknown = set(options) - _OPTION_KEYS
        if unknown:
            raise SdSimError(f"unknown reset option(s) {sorted(unknown)}; valid: {sorted(_OPTION_KEYS)}")
        rng = self.np_random
        map_index = self.start_index + int(rng.integers(self.num_scenarios))
        scene_seed = int(rng.integers(SEED_RANGE))
        if options.get("map_index") is not None:
            map_index = int(options["map_index"])
            if not self.start_index <= map_index < self.start_index + self.num_scenarios:
                raise SdSimError(f"map_index {map_index} outside [{self.start_index}, "
                                 f"{self.start_index + self.num_scenarios})")
        if options.get("scene_seed") is not None:
            scene_seed = int(options["scene_seed"])
        self.lazy_init()
        self.traffic.set_episode(self._request.with_options(options), scene_seed)
        obs, info = super().reset(map_index)
        self._episode_info = {**self.traffic.stats, "map_index": map_index}
        return obs, self._with_signals(info, self._episode_info)

    def step(self, actions):
        """MetaDrive step, with criticality signals in ``info``."""
        obs, reward, terminated, truncated, info = super().step(actions)
        return obs, reward, bool(terminated), bool(truncated), self._with_signals(info, {})

    def _with_signals(self, info: dict, extra: dict) -> dict:
        """``info`` with the gap/TTC signals and plain Python scalars (MetaDrive mixes in numpy bools)."""
        info.update(extra)
        info.update(self.traffic.criticality().to_info())
        info["num_agents"] = len(self.traffic.actors)
        for key, value in list(info.items()):
            if isinstance(value, np.generic):
                info[key] = value.item()
        return info

    def current_scene(self) -> Scene | None:
        """The scene generated at the last reset, in the ego frame (agents as spawned)."""
        return self.traffic.scene

    def export_scene(self, out_dir: str | Path, *, length_steps: int = 200, map_radius_m: float = 200.0) -> Path:
        """Save the current generated scene as a ScenarioNet dataset folder (see :mod:`sd_sim_plugin.sim.export`).

        The exported map is the live map within ``map_radius_m`` of the ego's start, in the scene's ego frame.
        """
        from sd_sim_plugin.sim.export import export_scenes

        scene, traffic = self.current_scene(), self.traffic
        if scene is None:
            raise SdSimError("export_scene: no generated scene yet (call reset() first)")
        local_map = crop_map(map_to_local(live_map(self), traffic.frame, radius=map_radius_m), map_radius_m)
        scene = Scene(map=local_map, agents=scene.agents, horizon=scene.horizon, ego_index=-1, meta=scene.meta)
        name = f"{type(self).__name__}_map{self.current_seed}_seed{traffic.scene_seed}"
        return export_scenes([scene], out_dir, egos=[traffic.ego_start], names=[name], length_steps=length_steps)


class ScenarioDiffusionEnv(_GeneratedTrafficMixin, MetaDriveEnv):
    """MetaDrive's procedural (PG) maps with generated traffic (see the module docstring for config and seeding)."""

    def __init__(self, config: dict | None = None, *, generator: Generator | str | None = None, **overrides: Any) -> None:
        ensure_headless_assets()
        sim, md_config = _prepare_config(config, generator, overrides, {**COMMON_DEFAULTS, "traffic_density": 0.0})
        self._init_generated_traffic(sim)
        super().__init__(md_config)


def scenarionet_count(data_directory: str | Path) -> int:
    """Number of scenarios listed in a ScenarioNet folder's ``dataset_summary.pkl`` (a trusted pickle)."""
    summary = Path(data_directory) / "dataset_summary.pkl"
    if not summary.is_file():
        raise SdSimError(f"no dataset_summary.pkl in {data_directory}: data_directory must be a ScenarioNet folder")
    with summary.open("rb") as f:
        return len(pickle.load(f))


class ScenarioDiffusionRealEnv(_GeneratedTrafficMixin, ScenarioEnv):
    """ScenarioNet maps (``data_directory``) with generated traffic instead of the logged traffic.

    ScenarioNet files are pickles: load only folders from a trusted source. The ego follows the logged ego route
    (``TrajectoryNavigation``); for an IDM ego use ``agent_policy=TrajectoryIDMPolicy``. Crashes end the episode
    (unlike ``ScenarioEnv``'s defaults), as in the PG env.
    """

    def __init__(self, config: dict | None = None, *, generator: Generator | str | None = None, **overrides: Any) -> None:
        ensure_headless_assets()
        defaults = {**COMMON_DEFAULTS, "store_map": False, "crash_vehicle_done": True, "crash_object_done": True,
                    "crash_human_done": True}
        sim, md_config = _prepare_config(config, generator, overrides, defaults)
        # MetaDrive logs unknown Waymo light states through Python logging, bypassing its own log_level.
        logging.getLogger("metadrive.type").setLevel(max(int(md_config["log_level"]), logging.WARNING))
        data_directory = md_config.get("data_directory")
        if not data_directory:
            raise SdSimError("ScenarioDiffusionReal-v0 needs data_directory=<ScenarioNet folder with "
                             "dataset_summary.pkl>")
        available = scenarionet_count(data_directory) - int(md_config.get("start_scenario_index", 0))
        md_config["data_directory"] = str(data_directory)
        md_config.setdefault("num_scenarios", available)
        if not 0 < md_config["num_scenarios"] <= available:
            raise SdSimError(f"num_scenarios={md_config['num_scenarios']} but {data_directory} has {available} "
                             "scenarios from start_scenario_index on")
        self._init_generated_traffic(sim)
        super().__init__(md_config)
