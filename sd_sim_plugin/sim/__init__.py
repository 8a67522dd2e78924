"""Generated traffic in MetaDrive: a traffic manager, Gymnasium envs, export to ScenarioNet, criticality signals.

Importing this package registers the Gymnasium ids (cheap: MetaDrive loads only when an env is made):
``sd_sim_plugin/ScenarioDiffusion-v0`` (PG maps) and ``sd_sim_plugin/ScenarioDiffusionReal-v0`` (ScenarioNet maps).
``gymnasium.make("sd_sim_plugin.sim:sd_sim_plugin/ScenarioDiffusion-v0")`` imports it for you.
"""

from __future__ import annotations

import gymnasium

ENV_ID = "sd_sim_plugin/ScenarioDiffusion-v0"
REAL_ENV_ID = "sd_sim_plugin/ScenarioDiffusionReal-v0"


def register_envs() -> None:
    """Register both env ids with Gymnasium (idempotent)."""
    for env_id, entry in ((ENV_ID, "ScenarioDiffusionEnv"), (REAL_ENV_ID, "ScenarioDiffusionRealEnv")):
        if env_id not in gymnasium.registry:
            gymnasium.register(id=env_id, entry_point=f"sd_sim_plugin.sim.envs:{entry}")


register_envs()

__all__ = ["ENV_ID", "REAL_ENV_ID", "register_envs"]
