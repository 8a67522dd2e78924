"""The MetaDrive-traffic baseline (PG maps only): what a MetaDrive user gets today.

Definition. A reference PG window carries in its ``meta`` the map seed, block count, traffic density, its time
``t0_s`` in the episode and the world pose of its centre (``frame``) (see ``sd_sim_plugin.sources.pg``). For such a
map this generator runs its own MetaDrive episode on the same map seed, with MetaDrive's own traffic manager in
respawn mode at the given density and an IDM ego, exactly as the PG source does, except that the traffic's random
stream is drawn from the generator's seed (``random_traffic=True``), so the traffic is a fresh sample rather than a
replay of the reference. It records every vehicle, then cuts the window at the same time and in the same world frame
as the reference: vehicles valid at t = 0 inside the 80 m box, with at least half their poses valid. Its own ego and
vehicles overlapping the reference ego's box at t = 0 are left out (MetaDrive never spawns traffic on its ego).

Agent tokens and ``density`` are ignored: MetaDrive traffic can only be set by its density. One rollout per
(map seed, traffic seed) is cached and serves every window of that map. The traffic seed comes from the ``seed`` of
each call, or, with ``episode_seed`` set, from it alone, so that all windows of a map share one episode, as the
reference windows do (the evaluation harness does this: one episode per map instead of one per window).
"""

from __future__ import annotations

import numpy as np

from sd_sim_plugin.errors import SdSimError
from sd_sim_plugin.generators.log import map_fingerprint
from sd_sim_plugin.scene.geometry import boxes_overlap
from sd_sim_plugin.scene.tokens import AgentToken, Density
from sd_sim_plugin.scene.transform import Pose2D, agents_to_local
from sd_sim_plugin.scene.types import Agents, AgentType, Horizon, MapGeometry, Scene
from sd_sim_plugin.sources.tracks import Tracks, WindowConfig, resample

_REQUIRED_META = ("map_seed", "t0_s", "frame")
MAX_STEP_M = 6.0  # a longer jump between two 0.1 s env steps is a respawn, not motion


class MetaDriveTrafficGenerator:
    """MetaDrive's own PG traffic around the pose of a reference PG window (see the module docstring)."""

    name = "metadrive"

    def __init__(self, scenes: list[Scene] | None = None, traffic_density: float | None = None,
                 horizon: Horizon | None = None, window_config: WindowConfig = WindowConfig(),
                 episode_seed: int | None = None) -> None:
        self.windows: dict[str, dict] = {}
        self.episode_seed = episode_seed
        self.horizon = horizon or (scenes[0].horizon if scenes else Horizon())
        self.traffic_density = traffic_density
        self.window_config = window_config
        self._rollouts: dict[tuple[int, int], Tracks] = {}
        self._episode_s: dict[int, float] = {}
        for scene in scenes or []:
            self.add_reference(scene)

    def add_reference(self, scene: Scene) -> None:
        """Register a PG window so that its map can be generated on; other scenes are refused."""
        meta = scene.meta
        if meta.get("source") != "pg" or any(k not in meta for k in _REQUIRED_META):
            raise SdSimError(f"the metadrive generator works on PG windows only (scene {meta.get('id', '?')} has "
                             f"source {meta.get('source')!r}; it needs meta {', '.join(_REQUIRED_META)})")
        seed = int(meta["map_seed"])
        self.windows.setdefault(map_fingerprint(scene.map), {"meta": meta, "ego": _ego_box(scene)})
        end = float(meta["t0_s"]) + self.horizon.future_s
        self._episode_s[seed] = max(self._episode_s.get(seed, 0.0), end)

    def generate(self, map: MapGeometry, *, ego: Agents | None = None, agent_tokens: list[AgentToken] | None = None,
                 density: Density = None, seed: int = 0, count: int = 1) -> list[Scene]:
        """``count`` scenes of MetaDrive traffic on a registered PG window's map (one traffic seed each)."""
        window = self.windows.get(map_fingerprint(map))
        if window is None:
            raise SdSimError("metadrive generator: this map is not the map of a registered PG window")
        meta = window["meta"]
        ego_box = window["ego"]
        if ego is not None and len(ego):
            t0 = self.horizon.t0_index if ego.num_steps == self.horizon.num_steps else 0
            ego_box = np.array([*ego.trajectory[0, t0], ego.length[0], ego.width[0]], dtype=np.float64)
        out = []
        for k in range(count):
            base = seed if self.episode_seed is None else self.episode_seed
            traffic_seed = int(np.random.default_rng([base, k, int(meta["map_seed"]), 13]).integers(1, 2**31 - 1))
            tracks = self._rollout(meta, traffic_seed)
            agents = self._window(tracks, meta, ego_box)
            info = {"generator": self.name, "seed": int(seed), "index": k, "map_seed": int(meta["map_seed"]),
                    "traffic_seed": traffic_seed, "traffic_density": self._density(meta)}
            out.append(Scene(map=map, agents=agents, horizon=self.horizon, ego_index=-1, meta=info))
        return out

    def _density(self, meta: dict) -> float:
        """Traffic density: the constructor's, else the reference's."""
        return float(self.traffic_density if self.traffic_density is not None else meta.get("traffic_density", 0.3))

    def _rollout(self, meta: dict, traffic_seed: int) -> Tracks:
        """Tracks of an episode on the window's map with a fresh traffic sample (cached)."""
        map_seed = int(meta["map_seed"])
        key = (map_seed, traffic_seed)
        if key not in self._rollouts:
            self._rollouts[key] = run_traffic_episode(map_seed, int(meta.get("blocks", 3)), self._density(meta),
                                                      traffic_seed, self._episode_s[map_seed] + 0.5)
        return self._rollouts[key]

    def _window(self, tracks: Tracks, meta: dict, ego_box: np.ndarray) -> Agents:
        """The rollout's vehicles in the reference window's frame and time, selected like the PG source does."""
        h = self.horizon
        pose, vel, valid = resample(tracks, float(meta["t0_s"]) + h.times)
        world = Agents(types=tracks.types, length=tracks.length, width=tracks.width, trajectory=pose,
                       velocity=np.where(valid[..., None], vel, 0.0), valid=valid, ids=list(tracks.ids))
        local = agents_to_local(world, Pose2D(*(float(v) for v in meta["frame"])))
        t0 = h.t0_index
        keep = (valid[:, t0] & (valid.sum(axis=1) >= self.window_config.min_valid(h))
                & np.all(np.abs(local.trajectory[:, t0, :2]) <= self.window_config.box_half_m, axis=1))
        if tracks.ego_index >= 0:
            keep[tracks.ego_index] = False
        boxes = np.concatenate([local.trajectory[:, t0], local.length[:, None], local.width[:, None]], axis=1)
        keep &= ~boxes_overlap(boxes, ego_box[None])[:, 0]
        idx = np.flatnonzero(keep)
        # MetaDrive names vehicles with random ids: order by position so that a seed always gives the same scene.
        idx = idx[np.lexsort((boxes[idx, 1], boxes[idx, 0]))]
        agents = local.select(idx)
        agents.trajectory[~agents.valid] = 0.0
        return agents


def _ego_box(scene: Scene) -> np.ndarray:
    """The reference centre's box at t = 0 (x, y, heading, length, width)."""
    if scene.ego_index < 0:
        return np.array([0.0, 0.0, 0.0, 4.5, 1.9])
    a, t0, i = scene.agents, scene.horizon.t0_index, scene.ego_index
    return np.array([*a.trajectory[i, t0], a.length[i], a.width[i]], dtype=np.float64)


def run_traffic_episode(map_seed: int, blocks: int, traffic_density: float, traffic_seed: int,
                        episode_s: float) -> Tracks:
    """World-frame tracks of every vehicle in a headless MetaDrive episode on PG map ``map_seed``.

    Same env settings as the PG source (IDM ego, respawn traffic), except that the traffic manager draws from
    ``traffic_seed`` and the episode runs on for ``episode_s`` whatever happens to the ego.
    """
    from metadrive.base_class.randomizable import Randomizable
    from metadrive.envs import MetaDriveEnv

    from sd_sim_plugin.sources.metadrive_assets import ensure_headless_assets
    from sd_sim_plugin.sources.pg import PGConfig, env_config

    ensure_headless_assets()
    config = env_config(map_seed, PGConfig())
    config.update(map=int(blocks), traffic_density=float(traffic_density), random_traffic=True,
                  out_of_road_done=False, crash_vehicle_done=False, crash_object_done=False)
    env = MetaDriveEnv(config)
    try:
        env.reset()
        # With random_traffic the traffic manager is no longer re-seeded from the map seed: seed it ourselves and
        # reset again (same map, fresh traffic).
        Randomizable.seed(env.engine.traffic_manager, traffic_seed)
        env.reset()
        dt = float(env.config["physics_world_step_size"]) * int(env.config["decision_repeat"])
        frames = [_vehicle_states(env)]
        for _ in range(int(np.ceil(episode_s / dt))):
            env.step([0.0, 0.0])
            frames.append(_vehicle_states(env))
        return _to_tracks(frames, dt)
    except SdSimError:
        raise
    except Exception as exc:  # MetaDrive failures surface as one line naming the seed
        raise SdSimError(f"PG map seed {map_seed}: MetaDrive traffic rollout failed "
                         f"({type(exc).__name__}: {exc})") from None
    finally:
        env.close()


def _vehicle_states(env) -> dict[str, tuple]:
    """MetaDrive object id -> (x, y, heading, vx, vy, length, width, is_ego) of every vehicle now."""
    from metadrive.component.vehicle.base_vehicle import BaseVehicle

    ego_id = env.agent.id
    return {obj.id: (*(float(v) for v in obj.position), float(obj.heading_theta),
                     *(float(v) for v in obj.velocity), float(obj.LENGTH), float(obj.WIDTH), obj.id == ego_id)
            for obj in env.engine.get_objects().values() if isinstance(obj, BaseVehicle)}


def _to_tracks(frames: list[dict[str, tuple]], dt: float) -> Tracks:
    """Per-frame vehicle states -> tracks; a vehicle that jumps (respawn) or disappears starts a new track."""
    spans: list[tuple[str, list[int]]] = []  # (object id, frames) per track
    current: dict[str, int] = {}  # object id -> index of its open span
    for f, states in enumerate(frames):
        for oid, st in states.items():
            k = current.get(oid)
            if k is not None:
                last = frames[spans[k][1][-1]][oid]
                if spans[k][1][-1] != f - 1 or np.hypot(st[0] - last[0], st[1] - last[1]) > MAX_STEP_M:
                    k = None
            if k is None:
                current[oid] = k = len(spans)
                spans.append((oid, []))
            spans[k][1].append(f)
    n, t = len(spans), len(frames)
    state = np.zeros((n, t, 5))
    valid = np.zeros((n, t), bool)
    for i, (oid, fr) in enumerate(spans):
        state[i, fr] = [frames[f][oid][:5] for f in fr]
        valid[i, fr] = True
    first = [frames[fr[0]][oid] for oid, fr in spans]
    ego = next((i for i, st in enumerate(first) if st[7]), -1)
    return Tracks(times=np.arange(t) * dt, pose=state[..., :3], velocity=state[..., 3:5], valid=valid,
                  length=np.array([st[5] for st in first]), width=np.array([st[6] for st in first]),
                  types=np.full(n, int(AgentType.VEHICLE)), ids=[f"md{i:04d}" for i in range(n)], ego_index=ego)
