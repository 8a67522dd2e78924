"""The log baseline: real agents from a pool of held-out reference scenes.

- ``mode="same"`` (the reference): for a map, the agents of the pool scene recorded on that map. Its metrics are
  the reference's own values (compliance, collisions, kinematics); its distances to the reference are 0 by construction.
- ``mode="random"`` (random log selection, the paper's weakest baseline): the agents of a random pool scene from
  another recording (another log or PG map), pasted on this map in the ego frame; it shows what realism scores look
  like when the map is ignored.

Scenes are matched to maps by identity, else by a fingerprint of the lane geometry (so a map that went through
save/load still matches; among scenes with identical maps the first is taken).
Agent tokens and ``density`` are ignored: a log cannot follow them.
"""

from __future__ import annotations

import hashlib

import numpy as np

from sd_sim_plugin.errors import SdSimError
from sd_sim_plugin.scene.tokens import AgentToken, Density
from sd_sim_plugin.scene.types import Agents, MapGeometry, Scene


def map_fingerprint(map: MapGeometry) -> str:
    """A short hash of a map's lane ids and centrelines (rounded to 1 cm)."""
    h = hashlib.sha1()
    for lane_id, centre in zip(map.lane_ids, map.lane_centrelines):
        h.update(lane_id.encode())
        h.update(np.round(np.asarray(centre, np.float64) * 100).astype(np.int64).tobytes())
    return h.hexdigest()[:16]


def _recording(scene: Scene, index: int) -> str:
    """Which recording a window was cut from: its log (``scenario_id``) or PG map seed; else its own index."""
    meta = scene.meta
    for key in ("scenario_id", "map_seed", "file"):
        if key in meta:
            return f"{key}={meta[key]}"
    return f"index={index}"


class LogGenerator:
    """Real agents of held-out scenes (see the module docstring)."""

    def __init__(self, scenes: list[Scene], mode: str = "same") -> None:
        if mode not in ("same", "random"):
            raise SdSimError(f"log generator mode {mode!r} is not one of: same, random")
        if not scenes:
            raise SdSimError("the log generator needs reference scenes (none given)")
        self.mode = mode
        self.name = "log" if mode == "same" else "log-random"
        self.scenes = scenes
        self.horizon = scenes[0].horizon
        # By map object first (windows of a parked ego can share identical maps), then by fingerprint.
        self._by_id = {id(scene.map): i for i, scene in enumerate(scenes)}
        self._by_map: dict[str, int] = {}
        for i, scene in enumerate(scenes):
            self._by_map.setdefault(map_fingerprint(scene.map), i)

    def _other_recordings(self, own: int | None) -> list[int]:
        """Pool scenes from other recordings than scene ``own`` (other log or PG map); any other scene if none."""
        if own is None:
            return list(range(len(self.scenes)))
        key = _recording(self.scenes[own], own)
        others = [i for i, s in enumerate(self.scenes) if _recording(s, i) != key]
        return others or [i for i in range(len(self.scenes)) if i != own]

    def generate(self, map: MapGeometry, *, ego: Agents | None = None, agent_tokens: list[AgentToken] | None = None,
                 density: Density = None, seed: int = 0, count: int = 1) -> list[Scene]:
        """``count`` scenes holding the agents of the matching (``same``) or a random other (``random``) log scene."""
        own = self._by_id.get(id(map))
        if own is None or self.scenes[own].map is not map:
            own = self._by_map.get(map_fingerprint(map))
        rng = np.random.default_rng(seed)
        out = []
        for k in range(count):
            if self.mode == "same":
                if own is None:
                    raise SdSimError("log generator: this map is not the map of any reference scene")
                src = own
            else:
                others = self._other_recordings(own)
                src = others[rng.integers(len(others))] if others else own
            scene = self.scenes[src]
            meta = {"generator": self.name, "seed": int(seed), "index": int(k),
                    "source_scene": scene.meta.get("id", src)}
            out.append(Scene(map=map, agents=scene.others, horizon=scene.horizon, ego_index=-1, meta=meta))
        return out
