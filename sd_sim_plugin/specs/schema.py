"""The scenario spec schema, version 1: a situation in a few lines, in human units, with values or ranges.

Units: metres, seconds, m/s, degrees. Placement is in the ego frame (x forward, y left) or relative to the ego's
lane. See ``docs/specs.md`` for an annotated example.
"""

from __future__ import annotations

import re
from typing import Annotated, Any, Literal, Union

from pydantic import BaseModel, ConfigDict, Discriminator, Field, Tag, field_validator, model_validator

from sd_sim_plugin.specs.leaves import Choice, Range, category, number

SPEC_VERSION = 1
MAX_SEED = 2**31 - 1

SIZE_PRESETS: dict[str, tuple[float, float, str]] = {
    # preset: (length m, width m, agent type)
    "car": (4.6, 1.9, "vehicle"),
    "bus": (12.0, 2.55, "vehicle"),
    "truck": (8.5, 2.5, "vehicle"),
    "cyclist": (1.8, 0.7, "cyclist"),
    "pedestrian": (0.6, 0.6, "pedestrian"),
}
AGENT_TYPES = ("vehicle", "cyclist", "pedestrian")
MANOEUVRES = ("straight", "left", "right", "lane_change", "lane_change_left", "lane_change_right", "stop")
LANES = ("ego", "left", "right", "left2", "right2", "oncoming")
PG_BLOCKS = "CSrRXTO"  # curve, straight, on-ramp, off-ramp, intersection, T-junction, roundabout (MetaDrive ids)
OBJECTIVES = ("min_ttc", "min_gap")
STOP_SPEED_MPS = 0.5
_POLICY = re.compile(r"^(idm|expert|[A-Za-z_][\w.]*:[A-Za-z_]\w*)$")
_NAME = re.compile(r"^[A-Za-z0-9_\-]{1,64}$")

Metres = number(-200.0, 200.0, "m")
Speed = number(0.0, 50.0, "m/s")
Seed = number(0, MAX_SEED, integer=True)


class _Strict(BaseModel):
    """Unknown keys are errors: a typo must not silently become a default."""

    model_config = ConfigDict(extra="forbid", validate_default=False)


class PGMap(_Strict):
    """A procedural MetaDrive map: a block sequence after MetaDrive's first straight block."""

    blocks: str = Field(min_length=1, max_length=8, description=f"block ids, any of '{PG_BLOCKS}'")
    lanes: number(1, 4, "lanes per direction", integer=True) = 2
    lane_width: number(2.5, 5.0, "m") = 3.5
    seed: Seed = 0

    @field_validator("blocks")
    @classmethod
    def _blocks(cls, v: str) -> str:
        bad = sorted(set(v) - set(PG_BLOCKS))
        if bad:
            raise ValueError(f"unknown block ids {bad}; use {list(PG_BLOCKS)}")
        return v


class ScenarioNetMap(_Strict):
    """A real map from a ScenarioNet file (a pickle: use trusted files only); the ego is the logged one at ``frame``."""

    file: str = Field(min_length=1, max_length=1024)
    frame: number(0, 100_000, integer=True) = 0


class MapSpec(_Strict):
    """Exactly one of ``pg`` and ``scenarionet``."""

    pg: PGMap | None = None
    scenarionet: ScenarioNetMap | None = None

    @model_validator(mode="after")
    def _one(self) -> MapSpec:
        if (self.pg is None) == (self.scenarionet is None):
            raise ValueError("give exactly one of 'pg' and 'scenarionet'")
        return self


class EgoSpec(_Strict):
    """The vehicle under test: its policy, start on the map (PG maps) and initial speed."""

    policy: str = "idm"
    lane: number(0, 3, integer=True) | None = None
    start: number(0.0, 45.0, "m") | None = None  # from the map's start, along its first (50 m) straight
    speed: Speed | None = None
    turn: category(("straight", "left", "right")) | None = None  # route through the map (PG maps with one junction)

    @field_validator("policy")
    @classmethod
    def _policy(cls, v: str) -> str:
        if not _POLICY.match(v):
            raise ValueError(f"policy must be idm, expert or module:callable, got {v[:40]!r}")
        return v


class Placement(_Strict):
    """Where the agent is at t = 0: in the ego frame (x, y) or along a lane relative to the ego's lane."""

    lane: category(LANES) | None = None
    distance: Metres | None = None
    offset: number(-5.0, 5.0, "m") | None = None
    x: Metres | None = None
    y: Metres | None = None

    @model_validator(mode="after")
    def _one_kind(self) -> Placement:
        lane_kind = any(v is not None for v in (self.lane, self.distance, self.offset))
        frame_kind = self.x is not None or self.y is not None
        if lane_kind and frame_kind:
            raise ValueError("use either lane/distance/offset or x/y, not both")
        if frame_kind and (self.x is None or self.y is None):
            raise ValueError("an ego-frame placement needs both x and y")
        if lane_kind and (self.lane is None or self.distance is None):
            raise ValueError("a lane placement needs 'lane' and 'distance'")
        if not lane_kind and not frame_kind:
            raise ValueError("give lane and distance, or x and y")
        return self

    @property
    def lane_relative(self) -> bool:
        """True for placements along a lane."""
        return self.lane is not None


class AgentSpec(_Strict):
    """A key agent: placement, heading, size, speed now and at +2 s, manoeuvre over the next 2 s."""

    name: str | None = None
    type: category(AGENT_TYPES) | None = None
    size: category(tuple(SIZE_PRESETS)) = "car"
    length: number(0.2, 25.0, "m") | None = None
    width: number(0.2, 5.0, "m") | None = None
    placement: Placement
    heading: number(-180.0, 180.0, "deg") = 0.0
    speed: Speed = 0.0
    speed_2s: Speed | None = None
    manoeuvre: category(MANOEUVRES) = "straight"

    @field_validator("name")
    @classmethod
    def _name(cls, v: str | None) -> str | None:
        if v is not None and not _NAME.match(v):
            raise ValueError("name must be 1-64 letters, digits, '_' or '-'")
        return v

    @model_validator(mode="after")
    def _consistent(self) -> AgentSpec:
        if self.manoeuvre == "stop":
            for field in ("speed", "speed_2s"):
                v = getattr(self, field)
                top = v.hi if isinstance(v, Range) else v
                if top is not None and top > STOP_SPEED_MPS:
                    raise ValueError(f"a 'stop' agent is stationary, so {field} must be <= {STOP_SPEED_MPS} m/s; "
                                     "for braking use manoeuvre straight with a lower speed_2s")
        if self.manoeuvre == "lane_change" and self.placement.lane == "ego":
            raise ValueError("'lane_change' means towards the ego's lane; an agent in the ego's lane needs "
                             "lane_change_left or lane_change_right")
        return self


class OutcomeSpec(_Strict):
    """What counts as critical: the objective the search minimises (a collision counts as 0)."""

    objective: Literal["min_ttc", "min_gap"] = "min_ttc"
    ttc_cap: float = Field(default=10.0, ge=0.5, le=60.0, strict=True, allow_inf_nan=False,
                           description="s; a TTC above this (or no closing agent) counts as this")


AgentCount = number(0, 64, "agents", integer=True)
# Union tags: pydantic puts them in error paths; describe_errors leaves them out.
DENSITY_TAGS = ("count", "by_type")


class DensityByType(_Strict):
    """Agents to add of each agent type (a type left out: none of it)."""

    vehicle: AgentCount = 0
    cyclist: AgentCount = 0
    pedestrian: AgentCount = 0

    def counts(self) -> dict[str, int]:
        """{agent type: count}, every leaf fixed."""
        values = {name: getattr(self, name) for name in AGENT_TYPES}
        if any(isinstance(v, Range) for v in values.values()):
            raise ValueError("density still has a range: resolve the spec first")
        return values


def _density_kind(value: Any) -> str:
    """Which form a density takes: a count (number or range) or a mapping per agent type."""
    by_type = isinstance(value, DensityByType) or (isinstance(value, dict) and "range" not in value)
    return DENSITY_TAGS[1] if by_type else DENSITY_TAGS[0]


SpecDensity = Annotated[Union[Annotated[AgentCount, Tag(DENSITY_TAGS[0])],  # noqa: UP007 - tags need Union
                              Annotated[DensityByType, Tag(DENSITY_TAGS[1])]], Discriminator(_density_kind)]


class Spec(_Strict):
    """A scenario spec (version 1)."""

    version: int
    name: str
    description: str = Field(min_length=1, max_length=300)
    map: MapSpec
    ego: EgoSpec = Field(default_factory=EgoSpec)
    agents: list[AgentSpec] = Field(default_factory=list, max_length=16)
    density: SpecDensity | None = None
    duration: number(1.0, 120.0, "s") = 10.0
    outcome: OutcomeSpec = Field(default_factory=OutcomeSpec)
    generator: str | None = Field(default=None, min_length=1, max_length=64)
    seed: Seed | None = None

    @field_validator("version", mode="before")
    @classmethod
    def _version(cls, v: object) -> int:
        if v != SPEC_VERSION or isinstance(v, bool):
            raise ValueError(f"unsupported spec version {str(v)[:20]!r}; this sd-sim reads version {SPEC_VERSION}")
        return SPEC_VERSION

    @field_validator("name")
    @classmethod
    def _name(cls, v: str) -> str:
        if not _NAME.match(v):
            raise ValueError("name must be 1-64 letters, digits, '_' or '-'")
        return v

    @field_validator("description")
    @classmethod
    def _description(cls, v: str) -> str:
        if "\n" in v.strip():
            raise ValueError("description must be one line")
        return v.strip()

    @model_validator(mode="after")
    def _consistent(self) -> Spec:
        names = [a.name for a in self.agents if a.name is not None]
        dup = sorted({n for n in names if names.count(n) > 1})
        if dup:
            raise ValueError(f"agent names must be unique, repeated: {dup}")
        if self.map.scenarionet is not None and any(
                v is not None for v in (self.ego.lane, self.ego.start, self.ego.speed, self.ego.turn)):
            raise ValueError("on a ScenarioNet map the ego starts and drives as logged: "
                             "remove ego.lane, ego.start, ego.speed and ego.turn")
        return self

    def generator_density(self) -> int | dict[str, int] | None:
        """The density to ask the generator for: a count, {agent type: count} or None (the generator chooses)."""
        return self.density.counts() if isinstance(self.density, DensityByType) else self.density

    def agent_name(self, index: int) -> str:
        """The agent's name, or ``agent<index>`` when it has none."""
        return self.agents[index].name or f"agent{index}"


__all__ = ["Spec", "DensityByType", "AgentSpec", "Placement", "EgoSpec", "MapSpec", "PGMap", "ScenarioNetMap",
           "OutcomeSpec", "Range", "Choice", "SIZE_PRESETS", "SPEC_VERSION", "MANOEUVRES", "LANES", "AGENT_TYPES",
           "OBJECTIVES"]
