"""The evaluation harness: generate on every reference scene's map, measure, and collect the numbers of a report.

For each evaluation set (a dataset folder) and each generator, three generation modes per reference scene:
- ``density_reference``: ego given, no tokens, density = the global token taken from the reference: its count of
  each agent type the generator makes (vehicles for the baselines; vehicles, pedestrians and cyclists for the
  diffusion model), so every generator is asked for the reference's vehicles (the realism numbers);
- ``density_free``: ego given, no tokens, density None (the generator picks the count);
- ``tokens``: half of the reference's vehicles (drawn per scene) given as agent tokens, density = the rest (per
  type, of the generator's types).
Realism and counts are measured on vehicles in every mode.
Generated scenes are stored per (set, generator, mode) as shards under ``OUT/generated``, so a rerun with the same
settings skips finished generation (resume).

Until the fifteenth session the diffusion model was asked for the reference's count of all its types together
(``DENSITY_PROTOCOL`` "total"), which it split between types as it liked; stored generation says which it used.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from sd_sim_plugin.errors import SdSimError
from sd_sim_plugin.generators.base import generated_types
from sd_sim_plugin.metrics.selection import ego_box, scene_agents, scene_vehicles
from sd_sim_plugin.metrics.suite import LaneCache, SceneStats, compare, scene_stats, summarise
from sd_sim_plugin.metrics.token_following import summarise_token_following, token_following
from sd_sim_plugin.scene.tokens import AgentToken, tokens_from_agents, total_density
from sd_sim_plugin.scene.types import Agents, AgentType, Scene

MODES = ("density_reference", "density_free", "tokens")
DENSITY_PROTOCOL = "per_type"  # part of the stored generation's key: scenes generated under "total" are not reused
TOKEN_KEEP_PROBABILITY = 0.5


@dataclass
class EvalSet:
    """Reference scenes of one dataset folder."""

    name: str
    path: Path
    scenes: list[Scene]

    @property
    def is_pg(self) -> bool:
        """Whether every scene is a PG window (the metadrive baseline needs that)."""
        return all(s.meta.get("source") == "pg" for s in self.scenes)


@dataclass
class GeneratorResult:
    """What one generator produced on one set, and its numbers."""

    generated: dict[str, list[Scene]]
    stats: dict[str, list[SceneStats]] = field(default_factory=dict)
    metrics: dict = field(default_factory=dict)


def load_eval_set(path: str | Path, limit: int | None = None, name: str | None = None) -> EvalSet:
    """The first ``limit`` scenes of a dataset folder; refuses an empty folder and scenes without a map."""
    from sd_sim_plugin.data.store import ShardReader, shard_paths

    path = Path(path)
    scenes: list[Scene] = []
    for shard in shard_paths(path):
        reader = ShardReader(shard)
        try:
            for i in range(len(reader)):
                if limit is not None and len(scenes) >= limit:
                    break
                scene = reader.scene(i)
                if scene.map.num_lanes == 0:
                    raise SdSimError(f"{shard}: scene {i} has no map (no lanes): the metrics need the lanes")
                if scene.ego_index < 0:
                    raise SdSimError(f"{shard}: scene {i} has no ego: reference scenes must hold their ego")
                scenes.append(scene)
        finally:
            reader.close()
    if not scenes:
        raise SdSimError(f"{path}: no scenes (expected shards written by `sd-sim collect`)")
    return EvalSet(name=name or path.name, path=path, scenes=scenes)


def reference_density(reference: Scene, types: tuple[AgentType, ...]) -> dict[AgentType, int]:
    """The global token taken from the reference: its agents in view of each type the generator makes."""
    agents = scene_agents(reference, types)
    return {t: int(np.sum(agents.types == int(t))) for t in types}


def token_request(reference: Scene, seed: int, types: tuple[AgentType, ...] = (AgentType.VEHICLE,)
                  ) -> tuple[list[AgentToken], dict[AgentType, int]]:
    """Agent tokens for about half of the reference's vehicles (drawn with ``seed``) and the density of the rest
    per type (the other vehicles, and the reference's agents of the other ``types``)."""
    vehicles = scene_vehicles(reference)
    keep = np.random.default_rng([seed, 17]).random(len(vehicles)) < TOKEN_KEEP_PROBABILITY
    rest = reference_density(reference, types)
    rest[AgentType.VEHICLE] = rest.get(AgentType.VEHICLE, 0) - int(keep.sum())
    return tokens_from_agents(vehicles.select(keep), reference.horizon), rest


def _ego(reference: Scene) -> Agents:
    """The reference's ego as a one-agent set."""
    return reference.agents.select(np.array([reference.ego_index]))


def generate_modes(generator, references: list[Scene], seed: int,
                   progress: Callable[[int], None] | None = None) -> dict[str, list[Scene]]:
    """Run ``generator`` on every reference's map in the three modes (see the module docstring)."""
    out: dict[str, list[Scene]] = {m: [] for m in MODES}
    types = generated_types(generator)
    for i, ref in enumerate(references):
        scene_seed = seed * 1_000_003 + i
        ego = _ego(ref)
        count = reference_density(ref, types)
        out["density_reference"].append(generator.generate(ref.map, ego=ego, density=count, seed=scene_seed)[0])
        out["density_free"].append(generator.generate(ref.map, ego=ego, density=None, seed=scene_seed)[0])
        tokens, rest = token_request(ref, scene_seed, types)
        out["tokens"].append(generator.generate(ref.map, ego=ego, agent_tokens=tokens, density=rest,
                                                seed=scene_seed)[0])
        if progress is not None:
            progress(1)
    return out


def reference_stats(references: list[Scene], lanes: LaneCache) -> list[SceneStats]:
    """Stats of the reference scenes."""
    return [scene_stats(r, lanes.get(r), ego_box(r)) for r in references]


def generated_stats(generated: list[Scene], references: list[Scene], lanes: LaneCache) -> list[SceneStats]:
    """Stats of generated scenes against their reference's lanes and ego."""
    return [scene_stats(g, lanes.get(r), ego_box(r)) for g, r in zip(generated, references, strict=True)]


def measure(result: GeneratorResult, references: list[Scene], ref_stats: list[SceneStats], lanes: LaneCache,
            seed: int, types: tuple[AgentType, ...] = (AgentType.VEHICLE,)) -> dict:
    """All numbers of one generator on one set (``types``: the agent types it generates)."""
    for mode in ("density_reference", "density_free"):
        result.stats[mode] = generated_stats(result.generated[mode], references, lanes)
    main = result.stats["density_reference"]
    free = result.stats["density_free"]
    tokens = []
    for i, (ref, gen) in enumerate(zip(references, result.generated["tokens"])):
        request, rest = token_request(ref, seed * 1_000_003 + i, types)
        tokens.append(token_following(request, total_density(rest), gen.agents, gen.horizon))
    free_cmp = compare(free, ref_stats)
    result.metrics = {
        **compare(main, ref_stats),
        "by_source": by_source(main, ref_stats, references),
        "generated": summarise(main),
        "count_correlation": _count_correlation(main, ref_stats),
        "density_free": {"mmd": free_cmp["mmd"], "jsd_agents_per_scene": free_cmp["jsd"]["agents_per_scene"],
                         "vehicles_per_scene": summarise(free)["vehicles_per_scene"],
                         "count_correlation": _count_correlation(free, ref_stats)},
        "token_following": summarise_token_following(tokens),
    }
    return result.metrics


def by_source(generated: list[SceneStats], reference: list[SceneStats], references: list[Scene]) -> dict[str, dict]:
    """Position, heading and velocity MMD over each source file's scenes (ScenarioNet windows name their file; {} when
    the set has fewer than two files): which real scenes a generator wins or loses on."""
    files = [r.meta.get("file") for r in references]
    if None in files or len(set(files)) < 2:
        return {}
    out = {}
    for name in sorted(set(files)):
        idx = [i for i, f in enumerate(files) if f == name]
        mmd = compare([generated[i] for i in idx], [reference[i] for i in idx])["mmd"]
        out[name] = {k: mmd[k] for k in ("position", "heading_vector", "velocity", "scenes_used")}
    return out


def _count_correlation(generated: list[SceneStats], reference: list[SceneStats]) -> float:
    """Pearson correlation of per-scene vehicle counts (NaN when either is constant)."""
    g = np.array([s.count for s in generated], float)
    r = np.array([s.count for s in reference], float)
    if len(g) < 2 or g.std() == 0 or r.std() == 0:
        return float("nan")
    return float(np.corrcoef(g, r)[0, 1])


def settings_key(**settings) -> str:
    """A short hash of the settings a stored generation depends on."""
    return hashlib.sha1(json.dumps(settings, sort_keys=True, default=str).encode()).hexdigest()[:12]


def load_or_generate(store_dir: Path, key: str, make: Callable[[], dict[str, list[Scene]]]) -> dict[str, list[Scene]]:
    """Generated scenes of all modes from ``store_dir`` when stored with the same ``key``, else ``make()`` them."""
    from sd_sim_plugin.data.store import read_shard, read_shard_info, write_shard

    paths = {m: store_dir / f"{m}.npz" for m in MODES}
    if all(p.exists() for p in paths.values()):
        try:
            if all(read_shard_info(p).get("settings") == key for p in paths.values()):
                return {m: read_shard(p) for m, p in paths.items()}
        except SdSimError:
            pass  # a damaged store is regenerated
    generated = make()
    for mode, scenes in generated.items():
        write_shard(paths[mode], scenes, {"settings": key, "mode": mode})
    return generated
