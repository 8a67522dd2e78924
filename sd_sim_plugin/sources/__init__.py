"""Sources of scenes: ScenarioNet logs, MetaDrive procedural-map rollouts, and the live map of a running env."""
