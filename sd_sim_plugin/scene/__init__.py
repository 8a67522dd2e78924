"""Scene model: maps, agents and trajectories in the ego frame; transforms; storage."""

from sd_sim_plugin.scene.io import load_scene, save_scene
from sd_sim_plugin.scene.transform import Pose2D, agents_to_local, agents_to_world, map_to_local
from sd_sim_plugin.scene.types import Agents, AgentType, Horizon, MapGeometry, Scene, wrap_angle

__all__ = ["Agents", "AgentType", "Horizon", "MapGeometry", "Pose2D", "Scene", "agents_to_local", "agents_to_world",
           "load_scene", "map_to_local", "save_scene", "wrap_angle"]
