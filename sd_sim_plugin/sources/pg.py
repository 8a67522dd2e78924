"""Scenes from MetaDrive procedural (PG) maps with MetaDrive's own traffic: headless rollouts cut into windows.

One map seed = one fresh env (``start_seed=seed, num_scenarios=1``): the map (block count, block types) and the
traffic (density) are drawn from the seed, an IDM policy drives the ego, traffic runs in respawn mode. Every
vehicle's pose, velocity and box are recorded at each env step (0.1 s), then windows are cut every
``window_stride_s``, centred on the ego and on a few other vehicles (any vehicle can be a centre).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import asdict, dataclass
from functools import partial

import numpy as np

from sd_sim_plugin.errors import SdSimError
from sd_sim_plugin.scene.types import AgentType, Horizon, MapGeometry, Scene
from sd_sim_plugin.sources.map_features import live_map
from sd_sim_plugin.sources.tracks import Tracks, WindowConfig, cut_window, resample, window_centres

# A jump longer than this between two env steps (0.1 s) is a teleport (respawn), not motion: start a new track.
_MAX_STEP_M = 6.0


@dataclass(frozen=True)
class PGConfig:
    """Rollout and window settings for PG maps; map and traffic choices are drawn per seed from the tuples."""

    episode_s: float = 24.0
    blocks: tuple[int, ...] = (3, 4, 5)
    traffic_densities: tuple[float, ...] = (0.2, 0.3, 0.4)
    traffic_mode: str = "respawn"
    window_stride_s: float = 2.0
    others_per_t0: int = 6  # windows centred on other vehicles per t0, beside the ego's

    def to_dict(self) -> dict:
        """JSON-friendly form."""
        return {k: list(v) if isinstance(v, tuple) else v for k, v in asdict(self).items()}


def map_choice(seed: int, config: PGConfig) -> dict:
    """Block count and traffic density of a map seed (deterministic)."""
    rng = np.random.default_rng([seed, 7])
    return {"blocks": int(rng.choice(config.blocks)), "traffic_density": float(rng.choice(config.traffic_densities))}


def env_config(seed: int, config: PGConfig) -> dict:
    """MetaDriveEnv config for one map seed: headless, IDM ego, MetaDrive's own traffic."""
    from metadrive.policy.idm_policy import IDMPolicy

    choice = map_choice(seed, config)
    return dict(use_render=False, log_level=50, num_scenarios=1, start_seed=int(seed), map=choice["blocks"],
                traffic_density=choice["traffic_density"], traffic_mode=config.traffic_mode, agent_policy=IDMPolicy,
                horizon=None, crash_vehicle_done=False, crash_object_done=False, out_of_road_done=True)


@dataclass
class Rollout:
    """One PG rollout: world-frame tracks, the live map and the seed's choices."""

    seed: int
    tracks: Tracks
    metadrive_ids: list[str]  # MetaDrive object id of each track (ids are random uuids, so tracks get stable ones)
    map: MapGeometry
    choice: dict
    env_steps: int
    env_step_s: float  # wall time spent in env.step, for the benchmark


class _Recorder:
    """Collects vehicle states per env step into per-track lists."""

    def __init__(self) -> None:
        self.frames = 0
        self.tracks: dict[str, dict] = {}
        self.active: dict[str, str] = {}  # MetaDrive object id -> current track id

    def record(self, env) -> None:
        from metadrive.component.vehicle.base_vehicle import BaseVehicle

        f = self.frames
        ego_id = env.agent.id
        for obj in env.engine.get_objects().values():
            if not isinstance(obj, BaseVehicle):
                continue
            x, y = (float(v) for v in obj.position)
            tid = self.active.get(obj.id)
            if tid is not None:
                last = self.tracks[tid]
                if last["frames"][-1] != f - 1 or np.hypot(x - last["xy"][-1][0], y - last["xy"][-1][1]) > _MAX_STEP_M:
                    tid = None
            if tid is None:
                tid = obj.id if obj.id not in self.tracks else f"{obj.id}#{f}"
                self.active[obj.id] = tid
                self.tracks[tid] = {"frames": [], "xy": [], "h": [], "v": [], "length": float(obj.LENGTH),
                                    "width": float(obj.WIDTH), "ego": obj.id == ego_id}
            t = self.tracks[tid]
            t["frames"].append(f)
            t["xy"].append((x, y))
            t["h"].append(float(obj.heading_theta))
            t["v"].append(tuple(float(v) for v in obj.velocity))
        self.frames += 1

    def to_tracks(self, dt: float) -> tuple[Tracks, list[str]]:
        """Tracks with stable ids ("ego", "v0001", ... in order of appearance) and the MetaDrive id of each."""
        order = {k: i for i, k in enumerate(self.tracks)}  # first appearance, in MetaDrive's spawn order
        ids = sorted(self.tracks, key=lambda k: (not self.tracks[k]["ego"], self.tracks[k]["frames"][0], order[k]))
        n, f = len(ids), self.frames
        pose = np.zeros((n, f, 3))
        vel = np.zeros((n, f, 2))
        valid = np.zeros((n, f), bool)
        for i, tid in enumerate(ids):
            t = self.tracks[tid]
            fr = np.asarray(t["frames"])
            pose[i, fr, :2] = t["xy"]
            pose[i, fr, 2] = t["h"]
            vel[i, fr] = t["v"]
            valid[i, fr] = True
        ego = next((i for i, tid in enumerate(ids) if self.tracks[tid]["ego"]), -1)
        stable = ["ego" if i == ego else f"v{i:04d}" for i in range(n)]
        tracks = Tracks(times=np.arange(f) * dt, pose=pose, velocity=vel, valid=valid,
                        length=np.array([self.tracks[k]["length"] for k in ids]),
                        width=np.array([self.tracks[k]["width"] for k in ids]),
                        types=np.full(n, int(AgentType.VEHICLE)), ids=stable, ego_index=ego)
        return tracks, [k.split("#")[0] for k in ids]


def rollout(seed: int, config: PGConfig = PGConfig(),
            observer: Callable[[int, object], None] | None = None) -> Rollout:
    """Run one headless episode on map ``seed``; ``observer(frame, env)`` is called after each recorded frame."""
    import time

    from metadrive.envs import MetaDriveEnv

    from sd_sim_plugin.sources.metadrive_assets import ensure_headless_assets

    ensure_headless_assets()
    env = MetaDriveEnv(env_config(seed, config))
    try:
        env.reset()
        dt = float(env.config["physics_world_step_size"]) * int(env.config["decision_repeat"])
        world_map = live_map(env)
        recorder = _Recorder()
        recorder.record(env)
        if observer is not None:
            observer(0, env)
        steps = int(round(config.episode_s / dt))
        step_time = 0.0
        for _ in range(steps):
            t = time.perf_counter()
            _, _, terminated, truncated, _ = env.step([0.0, 0.0])
            step_time += time.perf_counter() - t
            if terminated or truncated:
                break
            recorder.record(env)
            if observer is not None:
                observer(recorder.frames - 1, env)
        tracks, metadrive_ids = recorder.to_tracks(dt)
        return Rollout(seed=seed, tracks=tracks, metadrive_ids=metadrive_ids, map=world_map,
                       choice=map_choice(seed, config),
                       env_steps=steps, env_step_s=step_time)
    except SdSimError:
        raise
    except Exception as exc:  # MetaDrive failures surface as one line naming the seed
        raise SdSimError(f"PG map seed {seed}: MetaDrive rollout failed ({type(exc).__name__}: {exc})") from None
    finally:
        env.close()


def windows(run: Rollout, horizon: Horizon = Horizon(), config: PGConfig = PGConfig(),
            window_config: WindowConfig = WindowConfig()) -> list[Scene]:
    """Cut a rollout into windows every ``window_stride_s``: ego-centred plus ``others_per_t0`` other centres."""
    tracks = run.tracks
    rng = np.random.default_rng([run.seed, 11])
    duration = float(tracks.times[-1]) if len(tracks.times) else 0.0
    t0s = np.arange(horizon.past_s, duration - horizon.future_s + 1e-6, config.window_stride_s)
    meta = {"source": "pg", "map_seed": int(run.seed), **run.choice}
    scenes = []
    for t0 in t0s:
        resampled = resample(tracks, t0 + horizon.times)
        for c in window_centres(tracks, resampled[2], config.others_per_t0, rng):
            scene = cut_window(tracks, run.map, c, float(t0), horizon, window_config, meta, resampled)
            if scene is not None:
                scenes.append(scene)
    return scenes


def pg_units(seeds: tuple[int, ...] | list[int], horizon: Horizon = Horizon(), config: PGConfig = PGConfig(),
             window_config: WindowConfig = WindowConfig()) -> list:
    """One store unit per map seed (shard ``pg_{seed:06d}.npz``)."""
    from sd_sim_plugin.data.store import Unit

    # partial of a module function, not a closure: units travel to worker processes (collect --workers)
    return [Unit(shard=f"pg_{seed:06d}.npz", source={"map_seed": int(seed)},
                 produce=partial(seed_windows, int(seed), horizon, config, window_config)) for seed in seeds]


def seed_windows(seed: int, horizon: Horizon, config: PGConfig, window_config: WindowConfig) -> list[Scene]:
    """The windows of map ``seed``'s rollout: one store unit's scenes."""
    return windows(rollout(seed, config), horizon, config, window_config)
