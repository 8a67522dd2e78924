"""Fixtures for source tests: the shared real-data folder (located relative to the repository, as CI has it)."""

from __future__ import annotations

from pathlib import Path

import pytest

DEV_DIR = Path(__file__).resolve().parents[2].parent / "shared" / "data" / "scenarionet" / "dev"


@pytest.fixture(scope="session")
def dev_dir() -> Path:
    """The 17 real ScenarioNet dev scenes; skip with a reason when the shared folder is absent."""
    if not DEV_DIR.is_dir() or not any(DEV_DIR.glob("sd_*.pkl")):
        pytest.skip(f"real ScenarioNet dev data not found at {DEV_DIR} (the shared data folder beside the repo)")
    return DEV_DIR
