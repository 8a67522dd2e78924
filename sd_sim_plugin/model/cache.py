"""Training arrays rasterised once per (data shard, config) and cached as ``.npz`` files beside the data.

Per window: map raster, agent raster (of the non-ego agents), cell targets, agent-token features of the agents in
view and their count, and whether the window is centred on the ego. Epochs then cost only the networks, never the rasteriser.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable
from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np
from tqdm import tqdm

from sd_sim_plugin.errors import SdSimError
from sd_sim_plugin.model.boxes import agents_to_targets
from sd_sim_plugin.model.config import ModelConfig
from sd_sim_plugin.model.tokens import GLOBAL_TOKEN_DIM, agent_token_features
from sd_sim_plugin.raster.bev import RasterConfig, rasterise_agents, rasterise_map
from sd_sim_plugin.scene.handedness import mirror_scene, traffic_side
from sd_sim_plugin.scene.tokens import tokens_from_agents
from sd_sim_plugin.scene.types import Agents, Scene

ARRAYS = ("map", "agents", "targets", "tokens", "num_tokens", "centre_is_ego")
CACHE_VERSION = 3


def agents_in_view(scene: Scene, cfg: ModelConfig) -> Agents:
    """Non-ego agents valid at t = 0 whose centre lies inside the raster (the ones the model learns to generate)."""
    others = scene.others
    t0 = scene.horizon.t0_index
    half = cfg.size_px * cfg.resolution_m / 2
    xy = others.trajectory[:, t0, :2]
    inside = others.valid[:, t0] & np.all(np.abs(xy) < half, axis=1)
    agents = others.select(inside)
    if len(agents) > cfg.tokens.max_tokens:  # keep the nearest ones
        order = np.argsort(np.linalg.norm(agents.trajectory[:, t0, :2], axis=1))[: cfg.tokens.max_tokens]
        agents = agents.select(np.sort(order))
    return agents


def scene_arrays(scene: Scene, cfg: ModelConfig) -> dict[str, np.ndarray]:
    """One window -> its training arrays (float16 rasters and targets); a left-hand window is mirrored first when
    the config says so."""
    if scene.horizon != cfg.horizon:
        raise SdSimError(f"scene horizon {scene.horizon} differs from the model's {cfg.horizon}")
    rcfg = RasterConfig(cfg.size_px, cfg.resolution_m)
    # MetaDrive's procedural maps keep right: no need to read their lanes
    if cfg.mirror_left_hand and scene.meta.get("source") != "pg" and traffic_side(scene.map) == "left":
        scene = mirror_scene(scene)
    agents = agents_in_view(scene, cfg)
    tokens = np.zeros((cfg.tokens.max_tokens, cfg.tokens.agent_dim), np.float16)
    feats = agent_token_features(tokens_from_agents(agents, scene.horizon), cfg.tokens)
    tokens[: len(feats)] = feats
    return {
        "map": rasterise_map(scene.map, rcfg).astype(np.float16),
        "agents": rasterise_agents(agents, scene.horizon, rcfg).astype(np.float16),
        "targets": agents_to_targets(agents, cfg).astype(np.float16),
        "tokens": tokens,
        "num_tokens": np.int64(len(feats)),
        "centre_is_ego": np.bool_(scene.meta.get("centre_is_ego", True)),
    }


@dataclass
class TrainingArrays:
    """Arrays of one or more cached data folders (in memory, or memory-mapped)."""

    map: np.ndarray
    agents: np.ndarray
    targets: np.ndarray
    tokens: np.ndarray
    num_tokens: np.ndarray
    centre_is_ego: np.ndarray
    folder: Path
    sources: tuple[str, ...] = ()  # the data folders these windows came from
    real: np.ndarray | None = None  # per window: from real logs, not PG (the global token's domain flag); None = PG

    def __len__(self) -> int:
        return len(self.num_tokens)

    @property
    def real_flags(self) -> np.ndarray:
        """Per window, whether it comes from real logs (all False when not recorded)."""
        return np.zeros(len(self), bool) if self.real is None else np.asarray(self.real, bool)


def config_key(cfg: ModelConfig) -> str:
    """Key from the config parts that shape the cached arrays."""
    shape = {k: cfg.to_dict()[k] for k in ("size_px", "resolution_m", "map_channels", "agent_channels", "horizon",
                                           "grid", "tokens")}
    # The global token is built per batch, not cached: its width (the domain flag) must not force a new cache.
    shape["tokens"] = {**shape["tokens"], "global_dim": GLOBAL_TOKEN_DIM}
    if cfg.mirror_left_hand:  # only then, so that caches written before the field keep their keys
        shape["mirror_left_hand"] = True
    return hashlib.sha1(json.dumps({"v": CACHE_VERSION, "cfg": shape}, sort_keys=True).encode()).hexdigest()[:12]


def build_arrays(scenes: Iterable[Scene], cfg: ModelConfig, folder: Path, total: int | None = None,
                 desc: str = "rasterising") -> TrainingArrays:
    """Rasterise ``scenes`` into ``folder/arrays.npz`` and return them (a scene is real unless its source is PG)."""
    scenes = list(scenes)
    folder.mkdir(parents=True, exist_ok=True)
    _write_npz(_stack_scenes(scenes, cfg, total, desc), folder / "arrays.npz")
    real = np.array([s.meta.get("source") != "pg" for s in scenes], bool)
    return replace(_read_npz(folder / "arrays.npz", folder), real=real)


def _stack_scenes(scenes: Iterable[Scene], cfg: ModelConfig, total: int | None, desc: str) -> dict[str, np.ndarray]:
    parts: dict[str, list[np.ndarray]] = {k: [] for k in ARRAYS}
    for scene in tqdm(scenes, total=total, desc=desc, unit="window", leave=False):
        for k, v in scene_arrays(scene, cfg).items():
            parts[k].append(v)
    if not parts["map"]:
        raise SdSimError("no scenes to cache")
    return {k: np.stack(v) for k, v in parts.items()}


def _write_npz(arrays: dict[str, np.ndarray], path: Path) -> None:
    tmp = path.with_name(path.name + ".tmp.npz")
    np.savez(tmp, **arrays)
    tmp.replace(path)  # complete or absent, never half-written


def _read_npz(path: Path, folder: Path) -> TrainingArrays:
    with np.load(path, allow_pickle=False) as data:
        return TrainingArrays(folder=folder, **{k: data[k] for k in ARRAYS})


def concatenate(parts: list[TrainingArrays], folder: Path | None = None) -> TrainingArrays:
    """Several caches as one (``folder``: the first part's unless given)."""
    if len(parts) == 1 and folder is None:
        return parts[0]
    folder = folder if folder is not None else parts[0].folder
    return TrainingArrays(folder=folder, sources=tuple(s for p in parts for s in p.sources),
                          real=np.concatenate([p.real_flags for p in parts]),
                          **{k: np.concatenate([getattr(p, k) for p in parts]) for k in ARRAYS})


def cached_arrays(data_dir: str | Path, cfg: ModelConfig) -> TrainingArrays:
    """Training arrays of a dataset folder (``sd-sim collect`` shards), cached per shard under ``<data_dir>/.cache``.

    Each shard is rasterised once; shards added later (a collection still running) are rasterised on the next call.
    """
    from sd_sim_plugin.data.store import read_manifest, read_shard, shard_paths

    data_dir = Path(data_dir)
    if not data_dir.is_dir():
        raise SdSimError(f"{data_dir}: no such data folder (sd-sim collect writes one)")
    folder = data_dir / ".cache" / f"model_{config_key(cfg)}"
    folder.mkdir(parents=True, exist_ok=True)
    parts = []
    for shard in tqdm(shard_paths(data_dir), desc=f"caching {data_dir.name}", unit="shard"):
        path = folder / f"{shard.stem}.{shard.stat().st_size}.npz"
        if not path.exists():
            scenes = read_shard(shard)
            _write_npz(_stack_scenes(scenes, cfg, len(scenes), shard.stem), path)
        parts.append(_read_npz(path, folder))
    if not parts:
        raise SdSimError(f"{data_dir}: no scene shards to train on")
    whole = concatenate(parts, folder)
    real = read_manifest(data_dir).get("config", {}).get("source") != "pg"  # one source per collected folder
    return replace(whole, sources=(str(data_dir),), real=np.full(len(whole), real))
