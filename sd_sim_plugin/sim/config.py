"""Configuration of the generated-traffic simulator (the keys our envs add to MetaDrive's config)."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field, fields, replace
from pathlib import Path
from typing import Any

from sd_sim_plugin.errors import SdSimError
from sd_sim_plugin.generators.base import Generator
from sd_sim_plugin.scene.tokens import AgentToken, Density, density_by_type

ACTOR_MODES = ("replay", "idm")
# The shipped checkpoint (checkpoints/default) is the default generator everywhere.
DEFAULT_GENERATOR = "diffusion"


def as_agent_tokens(tokens: Any) -> list[AgentToken]:
    """Agent tokens from AgentToken objects or their ``to_dict`` form."""
    out = []
    for i, t in enumerate(tokens or []):
        if isinstance(t, AgentToken):
            out.append(t)
        elif isinstance(t, dict):
            try:
                out.append(AgentToken.from_dict(t))
            except (KeyError, TypeError, ValueError) as exc:
                raise SdSimError(f"agent_tokens[{i}] is not a valid agent token ({exc})") from None
        else:
            raise SdSimError(f"agent_tokens[{i}] must be an AgentToken or a dict, got {type(t).__name__}")
    return out


@dataclass(frozen=True)
class SceneRequest:
    """What the generator is asked for on a reset: agent tokens and the density (agents beyond the tokens)."""

    agent_tokens: tuple[AgentToken, ...] = ()
    density: Density = None

    @classmethod
    def make(cls, agent_tokens: Any = None, density: Any = None) -> SceneRequest:
        """A checked request from agent tokens (objects or dicts) and a density."""
        return cls(tuple(as_agent_tokens(agent_tokens)), _density(density))

    def with_options(self, options: dict | None) -> SceneRequest:
        """This request with per-episode overrides from ``reset(options=...)``."""
        options = options or {}
        req = self
        if "agent_tokens" in options:
            req = replace(req, agent_tokens=tuple(as_agent_tokens(options["agent_tokens"])))
        if "density" in options:
            req = replace(req, density=_density(options["density"]))
        return req


def _density(value: Any) -> Density:
    """A density (number of agents to add, in all or per agent type) or None."""
    if value is None:
        return None
    if isinstance(value, Mapping):
        return density_by_type(value)
    try:
        d = int(value)
    except (TypeError, ValueError):
        raise SdSimError(f"density must be a whole number of agents or None, got {value!r}") from None
    if d < 0 or d != value:
        raise SdSimError(f"density must be a whole number of agents >= 0, got {value!r}")
    return d


@dataclass
class SimConfig:
    """Our keys, popped from the env config before MetaDrive sees it (its Config deep-copies every value).

    - ``generator``: a generator name (``make_generator``) or a Generator object; None = the default;
    - ``generator_options``: keyword arguments for ``make_generator``;
    - ``checkpoint``: a checkpoint folder (implies the "diffusion" generator);
    - ``actor_mode``: "replay" (follow the trajectory, then the lane route) or "idm" (IDM from the generated state);
    - ``density`` / ``agent_tokens``: the scene request (see :class:`SceneRequest`); ``density`` is a number of agents
      or a mapping from agent type to number (e.g. ``{"vehicle": 10, "pedestrian": 0}``);
    - ``scene_seed``: seeds the env's random stream when no ``reset(seed=...)`` is given (None: fresh entropy);
    - ``map_radius_m``: half-size of the ego-frame map square handed to the generator;
    - ``spawn_clearance_m``: generated agents closer than this to the ego at spawn are removed and counted;
    - ``route_length_m``: length of the lane route an agent follows after its trajectory;
    - ``generator_threads``: torch intra-op threads while generating (restored after; None: torch's own setting).
      1 by default: beside MetaDrive, more threads made sampling far slower on small machines.
    """

    generator: str | Generator | None = None
    generator_options: dict = field(default_factory=dict)
    checkpoint: str | None = None
    actor_mode: str = "replay"
    density: Density = None
    agent_tokens: list[AgentToken] = field(default_factory=list)
    scene_seed: int | None = None
    map_radius_m: float = 60.0
    spawn_clearance_m: float = 0.2
    route_length_m: float = 400.0
    generator_threads: int | None = 1

    def __post_init__(self) -> None:
        if self.actor_mode not in ACTOR_MODES:
            raise SdSimError(f"unknown actor mode {self.actor_mode!r}; valid modes: {', '.join(ACTOR_MODES)}")
        self.density = _density(self.density)
        self.agent_tokens = as_agent_tokens(self.agent_tokens)
        if self.map_radius_m <= 0 or self.route_length_m <= 0 or self.spawn_clearance_m < 0:
            raise SdSimError("map_radius_m and route_length_m must be > 0 and spawn_clearance_m >= 0")
        if self.generator_threads is not None and self.generator_threads < 1:
            raise SdSimError(f"generator_threads must be >= 1 or None, got {self.generator_threads}")

    @classmethod
    def pop_from(cls, config: dict) -> SimConfig:
        """Take our keys out of an env config dict (in place) and build the config."""
        names = {f.name for f in fields(cls)}
        return cls(**{k: config.pop(k) for k in list(config) if k in names})

    @property
    def request(self) -> SceneRequest:
        """The default scene request."""
        return SceneRequest.make(self.agent_tokens, self.density)

    def build_generator(self) -> Generator:
        """The generator object: the one given, or one made by name (checks the checkpoint folder first)."""
        if self.generator is not None and not isinstance(self.generator, str):
            if not isinstance(self.generator, Generator):
                raise SdSimError(f"generator must be a name or a Generator, got {type(self.generator).__name__}")
            return self.generator
        from sd_sim_plugin.generators.registry import DEFAULT_CHECKPOINT, make_generator

        name = self.generator or ("diffusion" if self.checkpoint else DEFAULT_GENERATOR)
        options = dict(self.generator_options)
        if self.checkpoint and name != "diffusion":
            raise SdSimError(f"a checkpoint only applies to the 'diffusion' generator, not {name!r}")
        if name == "diffusion":
            path = Path(self.checkpoint) if self.checkpoint else DEFAULT_CHECKPOINT
            if not path.is_dir():
                raise SdSimError(f"checkpoint folder {path} not found (generator 'diffusion')")
            options["checkpoint"] = str(path)
        return make_generator(name, **options)
