"""Let MetaDrive start headless and offline, with no manual step.

On its first engine start MetaDrive downloads its assets from GitHub, which fails offline. With rendering off the
engine only checks ``assets/version.txt`` (first line = package version) and one grass texture. When the real assets
are missing we write those two files, plus a marker, so every headless feature runs. 3D rendering needs the real
assets: :func:`require_real_assets` says so clearly instead of letting panda3d fail deep inside.
"""

from __future__ import annotations

from pathlib import Path

from sd_sim_plugin.errors import SdSimError

STUB_MARKER = ".sd_sim_headless_stub"
_TEXTURE = Path("textures/grass1/GroundGrassGreen002_COL_1K.jpg")


def metadrive_assets_dir() -> Path:
    """The folder where MetaDrive looks for its assets."""
    import metadrive

    return Path(metadrive.__file__).resolve().parent / "assets"


def assets_are_stub() -> bool:
    """True when the assets folder was written by :func:`ensure_headless_assets` rather than downloaded."""
    return (metadrive_assets_dir() / STUB_MARKER).exists()


def ensure_headless_assets() -> Path:
    """Make sure the engine's asset checks pass; write minimal stubs if the real assets are absent."""
    from metadrive.version import VERSION

    assets = metadrive_assets_dir()
    version_file = assets / "version.txt"
    texture = assets / _TEXTURE
    ok = version_file.exists() and version_file.read_text().splitlines()[:1] == [VERSION] and texture.exists()
    if ok:
        return assets
    try:
        texture.parent.mkdir(parents=True, exist_ok=True)
        if not texture.exists():
            texture.write_bytes(b"")
        version_file.write_text(f"{VERSION}\n")
        (assets / STUB_MARKER).write_text("written by sd_sim_plugin so MetaDrive runs headless without its assets\n")
    except OSError as exc:
        raise SdSimError(f"cannot prepare MetaDrive's asset folder {assets}: {exc}") from None
    # A stale download lock makes MetaDrive wait forever; nothing is downloading now.
    for lock in assets.parent.glob("assets*.lock"):
        lock.unlink(missing_ok=True)
    return assets


def require_real_assets() -> None:
    """Raise a clear error if 3D rendering is asked for without MetaDrive's real assets."""
    if assets_are_stub() or not (metadrive_assets_dir() / "models").exists():
        raise SdSimError(
            "3D rendering needs MetaDrive's real assets, which are not installed (only headless stubs are). "
            "On a machine with network access run `python -m metadrive.pull_asset --update`, "
            "or use headless mode (use_render=False) and the top-down renderer."
        )
