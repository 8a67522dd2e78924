"""Generators by name, so the CLI, the simulator and the metrics can pick one from a string."""

from __future__ import annotations

from pathlib import Path

from sd_sim_plugin.errors import SdSimError
from sd_sim_plugin.generators.base import Generator

DEFAULT_CHECKPOINT = Path(__file__).resolve().parents[2] / "checkpoints" / "default"
GENERATOR_NAMES = ("lane", "log", "log-random", "metadrive", "diffusion")


def make_generator(name: str, **options) -> Generator:
    """A generator by name; ``options`` go to its constructor.

    - ``lane``: :class:`LaneHeuristicGenerator` (``horizon``, ``metres_per_vehicle``, priors);
    - ``log`` / ``log-random``: :class:`LogGenerator` (``scenes``: the reference scenes);
    - ``metadrive``: :class:`MetaDriveTrafficGenerator` (``traffic_density``, ``horizon``, ...; PG maps only);
    - ``diffusion``: ``ScenarioDiffusionGenerator.from_checkpoint(options["checkpoint"] or DEFAULT_CHECKPOINT,
      precision=options["precision"] or "auto", guidance_scale=options["guidance"])`` (None: the checkpoint's).
    """
    if name == "lane":
        from sd_sim_plugin.generators.lane_heuristic import LaneHeuristicGenerator

        return LaneHeuristicGenerator(**options)
    if name in ("log", "log-random"):
        from sd_sim_plugin.generators.log import LogGenerator

        return LogGenerator(options.get("scenes") or [], mode="same" if name == "log" else "random")
    if name == "metadrive":
        from sd_sim_plugin.generators.metadrive_traffic import MetaDriveTrafficGenerator

        return MetaDriveTrafficGenerator(**options)
    if name == "diffusion":
        from sd_sim_plugin.model.pipeline import ScenarioDiffusionGenerator

        return ScenarioDiffusionGenerator.from_checkpoint(options.get("checkpoint") or DEFAULT_CHECKPOINT,
                                                          precision=options.get("precision") or "auto",
                                                          guidance_scale=options.get("guidance"))
    raise SdSimError(f"unknown generator {name!r}; valid names: {', '.join(GENERATOR_NAMES)}")
