"""Suite-wide set-up: MetaDrive runs headless and offline, and tests find the shared data beside the repo."""

from __future__ import annotations

from pathlib import Path

import pytest

from sd_sim_plugin.sources.metadrive_assets import ensure_headless_assets

REPO_ROOT = Path(__file__).resolve().parents[1]
SHARED_DEV_DATA = REPO_ROOT.parent / "shared" / "data" / "scenarionet" / "dev"


def pytest_configure(config: pytest.Config) -> None:
    """Prepare MetaDrive's asset folder once, before any test creates an env."""
    ensure_headless_assets()


@pytest.fixture(scope="session")
def dev_data_dir() -> Path:
    """The 17 real ScenarioNet scenes in ../shared (skips with the reason when they are absent)."""
    if not (SHARED_DEV_DATA / "dataset_summary.pkl").exists():
        pytest.skip(f"real development scenes not found at {SHARED_DEV_DATA}")
    return SHARED_DEV_DATA
