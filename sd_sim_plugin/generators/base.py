"""The ``Generator`` interface: anything that maps (map, tokens, seed) to scenes.

The diffusion model and every baseline implement it, so the simulator, the specs and the metrics never care
which one they get.
"""

from __future__ import annotations

from typing import Protocol, runtime_checkable

from sd_sim_plugin.scene.tokens import AgentToken, Density
from sd_sim_plugin.scene.types import Agents, AgentType, Horizon, MapGeometry, Scene


@runtime_checkable
class Generator(Protocol):
    """Generates traffic scenes on a map, in the ego frame.

    Arguments of :meth:`generate`:
    - ``map``: the map geometry in the ego frame (x forward, y left);
    - ``ego``: the ego's own state as a one-agent :class:`Agents` (optional); generated agents never include it;
    - ``agent_tokens``: agents that must appear as described;
    - ``density``: the global scene token, i.e. how many agents to add beyond the agent tokens: a number (of any
      types), a mapping from agent type to number (:func:`density_by_type`), or ``None`` to let the generator choose
      a count that fits the map;
    - ``seed``: the same seed gives the same scenes;
    - ``count``: number of scenes.
    Returned scenes have ``ego_index = -1`` (agents only) and the generator's ``horizon``.

    A generator may say which agent types it generates in an ``agent_types`` attribute (vehicles when absent):
    evaluation then asks for the reference's count of each of those types.
    """

    name: str
    horizon: Horizon

    def generate(
        self,
        map: MapGeometry,
        *,
        ego: Agents | None = None,
        agent_tokens: list[AgentToken] | None = None,
        density: Density = None,
        seed: int = 0,
        count: int = 1,
    ) -> list[Scene]:
        """Generate ``count`` scenes on ``map``."""
        ...


def generated_types(generator: object) -> tuple[AgentType, ...]:
    """The agent types ``generator`` generates (its ``agent_types``; vehicles when it does not say)."""
    return tuple(getattr(generator, "agent_types", (AgentType.VEHICLE,)))
