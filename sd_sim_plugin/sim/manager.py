"""A MetaDrive manager that fills every episode with generated traffic (replaces the engine's "traffic_manager").

On each reset (``after_reset``: the map and the ego exist by then):
live map (world frame, cached per map) -> ego-frame map around the ego -> ``generator.generate(...)`` ->
world-frame agents -> drop agents overlapping the ego (counted) -> spawn them:
vehicles as ``GeneratedVehicle`` (a ``VaryingDynamicsVehicle``) of the generated size, pedestrians and cyclists as MetaDrive's own objects.

Actor modes:
- ``replay``: every step the pose and velocity come from the trajectory (interpolated between horizon steps),
  then from a lane route at the final speed (:class:`~sd_sim_plugin.sim.routes.ActorPath`); not reactive;
- ``idm``: vehicles start from the generated state and drive with IDM (:class:`GeneratedIDMPolicy`) along a
  route made of their trajectory and its lane continuation; pedestrians and cyclists replay.

On PG maps every generated vehicle gets a ``NodeNetworkNavigation`` updated each step, and pedestrians and cyclists
a ``lane`` attribute (the lane under them, else ``OFF_LANE``): MetaDrive's ``IDMPolicy`` ego finds the car ahead
through each object's ``.lane`` and ignores every object when one of them lacks it (see :mod:`.objects`).
"""

from __future__ import annotations

import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass

import numpy as np
from shapely.geometry import LineString
from metadrive.component.lane.point_lane import PointLane
from metadrive.component.navigation_module.node_network_navigation import NodeNetworkNavigation
from metadrive.component.road_network.node_road_network import NodeRoadNetwork
from metadrive.component.traffic_participants.cyclist import Cyclist
from metadrive.component.traffic_participants.pedestrian import Pedestrian
from metadrive.manager.base_manager import BaseManager
from metadrive.utils.pg.utils import ray_localization

from sd_sim_plugin.errors import SdSimError
from sd_sim_plugin.generators.base import Generator
from sd_sim_plugin.scene.transform import Pose2D, agents_to_world, map_to_local
from sd_sim_plugin.scene.types import Agents, AgentType, MapGeometry, Scene
from sd_sim_plugin.sim.config import SceneRequest, SimConfig
from sd_sim_plugin.sim.criticality import Criticality, box_gaps, ego_criticality
from sd_sim_plugin.sim.objects import OFF_LANE, GeneratedVehicle
from sd_sim_plugin.sim.policies import GeneratedIDMPolicy
from sd_sim_plugin.sim.routes import ActorPath, LaneGraph
from sd_sim_plugin.sources.map_features import crop_map, live_map

MPS_TO_KMH = 3.6
# Vehicle modules traffic does not need (same as MetaDrive's own traffic vehicles).
TRAFFIC_VEHICLE_CONFIG = dict(show_navi_mark=False, show_dest_mark=False, show_line_to_dest=False, enable_reverse=False,
                              show_lidar=False, show_lane_line_detector=False, show_side_detector=False,
                              use_special_color=False, spawn_velocity=None)
_LANE_GRAPH_CACHE_SIZE = 16
_DESTINATION_STRIDE = 10  # path points (about 1 m apart) between lane look-ups for a vehicle's destination


@dataclass
class Actor:
    """One spawned agent: its MetaDrive object, generated id, type, size and path."""

    agent_id: str
    agent_type: AgentType
    obj: object
    path: ActorPath
    length: float
    width: float
    replay: bool  # pose set from the path every step (else an IDM policy drives it)


@contextmanager
def torch_threads(n: int | None) -> Iterator[None]:
    """Run with torch limited to ``n`` intra-op threads, then restore (no-op if None or torch is not loaded).

    Inside a MetaDrive process torch's default 2 threads made a tiny model's sampling ~80x slower than 1 thread
    (10-13 s against 0.14 s per scene on the 2-core sandbox), presumably threads fighting over the cores.
    """
    torch = sys.modules.get("torch")
    if n is None or torch is None or torch.get_num_threads() == n:
        yield
        return
    before = torch.get_num_threads()
    torch.set_num_threads(n)
    try:
        yield
    finally:
        torch.set_num_threads(before)


def _ego_agents(ego, num_steps: int, t0: int) -> Agents:
    """The ego as a one-agent set in its own frame: at the origin at t = 0, past unknown."""
    traj = np.zeros((1, num_steps, 3))
    vel = np.zeros((1, num_steps, 2))
    vel[0, t0] = Pose2D(0.0, 0.0, float(ego.heading_theta)).rotate_to_local(np.asarray(ego.velocity, dtype=np.float64))
    valid = np.zeros((1, num_steps), bool)
    valid[0, t0] = True
    return Agents(types=[int(AgentType.VEHICLE)], length=[ego.LENGTH], width=[ego.WIDTH], trajectory=traj,
                  velocity=vel, valid=valid, ids=["ego"])


def ego_box(ego) -> np.ndarray:
    """(x, y, heading, length, width) of a MetaDrive vehicle."""
    return np.array([ego.position[0], ego.position[1], ego.heading_theta, ego.LENGTH, ego.WIDTH], dtype=np.float64)


class GeneratedTrafficManager(BaseManager):
    """Spawns and drives generated agents; see the module docstring. The generator comes in through the constructor."""

    PRIORITY = 10

    def __init__(self, generator: Generator, config: SimConfig) -> None:
        super().__init__()
        self.generator = generator
        self.config = config
        self.request = config.request
        self.scene_seed = 0
        self.actors: list[Actor] = []
        self.scene: Scene | None = None  # the generated scene (ego frame), agents as spawned
        self.ego_start: Agents | None = None
        self.frame: Pose2D | None = None  # the ego's pose at reset: the scene's frame in world coordinates
        self.stats: dict = {}
        self._lane_graphs: dict[int, tuple[MapGeometry, LaneGraph]] = {}
        self._rng = np.random.default_rng(0)

    # ----- episode set-up -------------------------------------------------------------------------------------
    def set_episode(self, request: SceneRequest, scene_seed: int) -> None:
        """What the next reset generates: the request and the generator's seed (the env's own random stream)."""
        self.request = request
        self.scene_seed = int(scene_seed)

    def before_reset(self) -> None:
        """Clear last episode's agents."""
        super().before_reset()
        self.actors = []
        self.scene = None

    def after_reset(self) -> None:
        """Generate the scene around the ego and spawn it."""
        ego = self._ego
        frame = self.frame = Pose2D(float(ego.position[0]), float(ego.position[1]), float(ego.heading_theta))
        world_map = live_map(self)
        radius = self.config.map_radius_m
        local_map = crop_map(map_to_local(world_map, frame, radius=radius), radius)
        if local_map.num_lanes == 0:
            raise SdSimError(
                f"no lanes within {radius:g} m of the ego at ({frame.x:.1f}, {frame.y:.1f}) on map "
                f"{self.engine.global_seed}: generated traffic needs lanes near the ego's spawn point")
        horizon = self.generator.horizon
        self.ego_start = _ego_agents(ego, horizon.num_steps, horizon.t0_index)
        started = time.perf_counter()
        with torch_threads(self.config.generator_threads):
            scene = self.generator.generate(local_map, ego=self.ego_start,
                                            agent_tokens=list(self.request.agent_tokens),
                                            density=self.request.density, seed=self.scene_seed, count=1)[0]
        generation_s = time.perf_counter() - started
        self._rng = np.random.default_rng(self.scene_seed)
        keep, n_invalid, n_overlap = self._select(scene, frame, ego)
        kept = scene.agents.select(keep)
        self.scene = Scene(map=local_map, agents=kept, horizon=scene.horizon, ego_index=-1, meta=dict(scene.meta))
        self._spawn_all(agents_to_world(kept, frame), scene.horizon, world_map)
        self.stats = {"num_generated": len(scene.agents), "num_agents": len(self.actors),
                      "num_removed_overlap": n_overlap, "num_invalid_at_t0": n_invalid,
                      "generation_s": generation_s, "scene_seed": self.scene_seed}

    def _select(self, scene: Scene, frame: Pose2D, ego) -> tuple[np.ndarray, int, int]:
        """Indices of agents to spawn: valid at t = 0 and clear of the ego; counts of the others."""
        agents, t0 = scene.agents, scene.horizon.t0_index
        valid = agents.valid[:, t0] if len(agents) else np.zeros(0, bool)
        boxes = np.concatenate([agents.trajectory[:, t0], agents.length[:, None], agents.width[:, None]], axis=1)
        ego_local = np.array([0.0, 0.0, 0.0, ego.LENGTH, ego.WIDTH])
        clear = box_gaps(ego_local, boxes) > self.config.spawn_clearance_m
        return np.flatnonzero(valid & clear), int((~valid).sum()), int((valid & ~clear).sum())

    def _spawn_all(self, agents: Agents, horizon, world_map: MapGeometry) -> None:
        """Spawn world-frame agents with their paths."""
        lanes = self._lane_graph(world_map)
        t0 = horizon.t0_index
        times = horizon.times[t0:]
        pg = self._is_pg_map
        for i in range(len(agents)):
            valid = np.flatnonzero(agents.valid[i, t0:])
            valid = valid[: np.argmax(np.diff(valid) > 1) + 1] if np.any(np.diff(valid) > 1) else valid
            kind = AgentType(int(agents.types[i]))
            path = ActorPath(times[valid], agents.trajectory[i, t0:][valid], agents.velocity[i, t0:][valid],
                             lanes, self.config.route_length_m, self._rng,
                             follow_lanes=kind != AgentType.PEDESTRIAN)
            xy, heading, velocity = path.state(0.0)
            length, width = float(agents.length[i]), float(agents.width[i])
            if kind == AgentType.VEHICLE:
                obj = self._spawn_vehicle(xy, heading, length, width, path if pg else None)
                replay = self.config.actor_mode == "replay"
                if not replay:
                    obj.set_velocity(velocity)
                    self._add_idm(obj, path, np.linalg.norm(agents.velocity[i, t0:][valid], axis=1).max())
            else:
                cls = Pedestrian if kind == AgentType.PEDESTRIAN else Cyclist
                obj = self.spawn_object(cls, position=list(xy), heading_theta=heading)
                replay = True
                if pg:
                    obj.lane = self._lane_at(xy)
            self.actors.append(Actor(agents.ids[i], kind, obj, path, length, width, replay))

    def _spawn_vehicle(self, xy: np.ndarray, heading: float, length: float, width: float, path: ActorPath | None):
        """A vehicle of the generated size; with a ``path`` (PG maps) also a navigation module started on the lane
        under it (else the nearest lane) and routed to where the path leaves the lanes."""
        cfg = dict(TRAFFIC_VEHICLE_CONFIG, length=length, width=width, height=None, navigation_module=None,
                   spawn_lane_index=None, destination=None)
        if path is None:
            return self.spawn_object(GeneratedVehicle, vehicle_config=cfg, position=list(xy), heading=heading)
        cfg["navigation_module"] = NodeNetworkNavigation
        direction = (np.cos(heading), np.sin(heading))
        on_lanes = (ray_localization(direction, tuple(xy), self.engine)
                    or ray_localization(direction, tuple(xy), self.engine, use_heading_filter=False))
        lane = on_lanes[0][0] if on_lanes else self._closest_lane(xy)
        cfg["spawn_lane_index"] = lane.index
        # An explicit destination: MetaDrive's own pick (auto_assign_task) raises "list.remove(x): x not in list"
        # when its random socket is the one the vehicle starts at (e.g. on an intersection's roads).
        cfg["destination"] = self._destination(lane.index, path)
        if on_lanes:
            return self.spawn_object(GeneratedVehicle, vehicle_config=cfg, position=list(xy), heading=heading)
        # Off the road: the navigation module can only start on a lane, so spawn on the nearest one and move.
        long, _ = lane.local_coordinates(xy)
        long = float(np.clip(long, 0.0, lane.length))
        v = self.spawn_object(GeneratedVehicle, vehicle_config=cfg, position=list(lane.position(long, 0.0)),
                              heading=lane.heading_theta_at(long))
        v.set_position(list(xy))
        v.set_heading_theta(heading)
        v.localise()
        return v

    def _destination(self, spawn_lane_index: tuple, path: ActorPath) -> str:
        """Road node for a vehicle's navigation: the end of the road under the last point of its path that lies on a
        lane of its heading, if the road network reaches it from the spawn lane; else the end of the spawn road."""
        network = self.engine.current_map.road_network
        points = path.polyline()
        for k in range(len(points) - 1, 0, -_DESTINATION_STRIDE):
            step = points[k] - points[k - 1]
            hits = ray_localization(tuple(step / max(float(np.linalg.norm(step)), 1e-9)), tuple(points[k]), self.engine)
            if not hits:
                continue
            node = hits[0][1][1]
            if node != spawn_lane_index[1] and network.shortest_path(spawn_lane_index, node):
                return node
            break
        return spawn_lane_index[1]

    def _add_idm(self, vehicle, path: ActorPath, max_speed_mps: float) -> None:
        """IDM along the agent's path at the fastest generated speed."""
        points = path.polyline()
        if len(points) < 2:  # a stopped agent with no route: a short stub ahead keeps PointLane valid
            x, y = points[0]
            h = vehicle.heading_theta
            points = np.array([[x, y], [x + np.cos(h), y + np.sin(h)]])
        route = PointLane(points, width=3.5, polygon=_strip_polygon(points, 1.75))
        self.add_policy(vehicle.id, GeneratedIDMPolicy, vehicle, self.generate_seed(), route,
                        float(max_speed_mps) * MPS_TO_KMH)

    def _lane_at(self, xy: np.ndarray):
        """The MetaDrive lane under a point, or OFF_LANE (PG maps)."""
        on_lanes = ray_localization((1.0, 0.0), tuple(xy), self.engine, use_heading_filter=False)
        return on_lanes[0][0] if on_lanes else OFF_LANE

    def _closest_lane(self, xy: np.ndarray):
        """The MetaDrive lane nearest to a point (PG maps)."""
        network = self.engine.current_map.road_network
        index, _ = network.get_closest_lane_index(tuple(xy))
        return network.get_lane(index)

    def _lane_graph(self, world_map: MapGeometry) -> LaneGraph:
        """Lane graph of a world map, cached per map object (live maps are cached per MetaDrive map)."""
        hit = self._lane_graphs.get(id(world_map))
        if hit is not None and hit[0] is world_map:
            return hit[1]
        graph = LaneGraph(world_map)
        if len(self._lane_graphs) >= _LANE_GRAPH_CACHE_SIZE:
            self._lane_graphs.pop(next(iter(self._lane_graphs)))
        self._lane_graphs[id(world_map)] = (world_map, graph)
        return graph

    # ----- stepping -------------------------------------------------------------------------------------------
    def before_step(self, *args, **kwargs) -> dict:
        """IDM actors decide."""
        for actor in self.actors:
            if not actor.replay:
                actor.obj.before_step(self.engine.get_policy(actor.obj.id).act(True))
        return {}

    def after_step(self, *args, **kwargs) -> dict:
        """Replay actors take their pose at the current time; lanes of PG-map actors are re-localised."""
        t = self.engine.episode_step * self._dt
        pg = self._is_pg_map
        for actor in self.actors:
            obj = actor.obj
            if actor.replay:
                xy, heading, velocity = actor.path.state(t)
                obj.set_position(list(xy))
                obj.set_heading_theta(heading)
                obj.set_velocity(list(velocity))
            if pg:
                if actor.agent_type == AgentType.VEHICLE:
                    obj.localise()
                else:
                    obj.lane = self._lane_at(np.asarray(obj.position))
        return {}

    # ----- signals --------------------------------------------------------------------------------------------
    def criticality(self) -> Criticality:
        """Gap and TTC between the ego and the generated agents now."""
        ego = self._ego
        boxes = np.array([[a.obj.position[0], a.obj.position[1], a.obj.heading_theta, a.length, a.width]
                          for a in self.actors]).reshape(-1, 5)
        velocities = np.array([a.obj.velocity for a in self.actors]).reshape(-1, 2)
        return ego_criticality(ego_box(ego), np.asarray(ego.velocity), boxes, velocities,
                               [a.agent_id for a in self.actors])

    def actor_states(self) -> dict[str, tuple[np.ndarray, float, np.ndarray]]:
        """Current (position, heading, velocity) of each generated agent, by agent id (world frame)."""
        return {a.agent_id: (np.asarray(a.obj.position, dtype=np.float64), float(a.obj.heading_theta),
                             np.asarray(a.obj.velocity, dtype=np.float64)) for a in self.actors}

    # ----- helpers --------------------------------------------------------------------------------------------
    @property
    def _ego(self):
        return next(iter(self.engine.agents.values()))

    @property
    def _dt(self) -> float:
        cfg = self.engine.global_config
        return float(cfg["physics_world_step_size"] * cfg["decision_repeat"])

    @property
    def _is_pg_map(self) -> bool:
        return self.engine.current_map.road_network_type == NodeRoadNetwork

    def get_state(self) -> dict:
        """State for MetaDrive's recorder: generated agent ids by object name."""
        state = super().get_state()
        state["agent_ids"] = {a.obj.name: a.agent_id for a in self.actors}
        return state


def _strip_polygon(points: np.ndarray, half_width: float) -> list[list[float]]:
    """Outline of a strip ``half_width`` either side of a polyline: a valid polygon even where the route loops
    (PointLane's own outline is a slow Python loop and self-intersects on loops, which breaks its point tests)."""
    strip = LineString(points).buffer(half_width, cap_style="flat")
    if strip.geom_type != "Polygon":  # pieces of a degenerate route: keep the largest
        strip = max(strip.geoms, key=lambda g: g.area)
    return np.asarray(strip.exterior.coords)[:-1].tolist()
