"""The dataset store: shards of scenes (``.npz``, no pickles) plus ``manifest.json``.

A shard holds the scenes of one input unit (a PG map seed, a ScenarioNet file): scene ``i``'s arrays from
:func:`scene_to_arrays` under the prefix ``"{i:05d}/"``, and a ``shard/json`` header (format version, count, unit
info). Shards are written atomically (temp file + rename), so a finished shard is always whole; a rerun skips
them (resume). ``manifest.json`` records the config, sources, units, counts, skipped inputs and package version.
"""

from __future__ import annotations

import json
import os
import time
import zipfile
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from sd_sim_plugin.errors import SdSimError
from sd_sim_plugin.scene.io import scene_from_arrays, scene_to_arrays
from sd_sim_plugin.scene.types import Scene

SHARD_FORMAT_VERSION = 1
MANIFEST = "manifest.json"
_HEADER = "shard/json"
_DAMAGE = (OSError, ValueError, KeyError, EOFError, zipfile.BadZipFile, json.JSONDecodeError)


def write_shard(path: str | Path, scenes: list[Scene], info: dict) -> Path:
    """Write ``scenes`` and a header with ``info`` to ``path`` atomically."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    header = {"format_version": SHARD_FORMAT_VERSION, "count": len(scenes),
              "agents": int(sum(len(s.agents) for s in scenes)), **info}
    arrays = {_HEADER: np.array(json.dumps(header))}
    for i, scene in enumerate(scenes):
        arrays.update({f"{i:05d}/{k}": v for k, v in scene_to_arrays(scene).items()})
    tmp = path.with_name(path.name + ".tmp")
    with open(tmp, "wb") as f:
        np.savez_compressed(f, **arrays)
    os.replace(tmp, path)
    return path


def _open(path: Path):
    try:
        return np.load(path, allow_pickle=False)
    except FileNotFoundError:
        raise SdSimError(f"{path}: no such shard") from None
    except _DAMAGE as exc:
        raise SdSimError(f"{path}: not a readable shard ({type(exc).__name__}: {exc})") from None


def _header(npz, path: Path) -> dict:
    try:
        info = json.loads(str(npz[_HEADER]))
    except _DAMAGE as exc:
        raise SdSimError(f"{path}: shard header is unreadable ({type(exc).__name__}: {exc})") from None
    if info.get("format_version") != SHARD_FORMAT_VERSION:
        raise SdSimError(f"{path}: shard format version {info.get('format_version')} is not {SHARD_FORMAT_VERSION}")
    return info


def read_shard_info(path: str | Path) -> dict:
    """The header of a shard (format version, count, unit info); reads no scene."""
    path = Path(path)
    with _open(path) as npz:
        return _header(npz, path)


class ShardReader:
    """Random access to the scenes of one shard; members are decompressed on demand."""

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)
        self._npz = _open(self.path)
        self.info = _header(self._npz, self.path)
        self._keys: dict[int, list[str]] = {}
        for key in self._npz.files:
            head, _, rest = key.partition("/")
            if rest and head.isdigit():
                self._keys.setdefault(int(head), []).append(key)
        if len(self._keys) != self.info["count"]:
            raise SdSimError(f"{self.path}: shard holds {len(self._keys)} scenes, header says {self.info['count']}")

    def __len__(self) -> int:
        return self.info["count"]

    def scene(self, i: int) -> Scene:
        """Scene ``i`` of the shard."""
        if not 0 <= i < len(self):
            raise IndexError(f"scene {i} out of range for {self.path} ({len(self)} scenes)")
        prefix = len(f"{i:05d}/")
        try:
            return scene_from_arrays({k[prefix:]: self._npz[k] for k in self._keys[i]})
        except SdSimError as exc:
            raise SdSimError(f"{self.path}: scene {i}: {exc}") from None
        except _DAMAGE as exc:
            raise SdSimError(f"{self.path}: scene {i} is unreadable ({type(exc).__name__}: {exc})") from None

    def close(self) -> None:
        """Release the file."""
        self._npz.close()


def read_shard(path: str | Path) -> list[Scene]:
    """All scenes of a shard; a damaged shard raises :class:`SdSimError` naming it."""
    reader = ShardReader(path)
    try:
        return [reader.scene(i) for i in range(len(reader))]
    finally:
        reader.close()


def shard_paths(directory: str | Path) -> list[Path]:
    """The shards of a dataset folder, in name order."""
    directory = Path(directory)
    if not directory.is_dir():
        raise SdSimError(f"{directory}: no such dataset folder")
    return sorted(p for p in directory.glob("*.npz"))


def iter_scenes(directory: str | Path) -> Iterator[Scene]:
    """Every scene of a dataset folder, shard by shard."""
    for path in shard_paths(directory):
        yield from read_shard(path)


def read_manifest(directory: str | Path) -> dict:
    """The manifest of a dataset folder."""
    path = Path(directory) / MANIFEST
    try:
        return json.loads(path.read_text())
    except FileNotFoundError:
        raise SdSimError(f"{path}: no manifest (not a dataset folder written by `sd-sim collect`)") from None
    except (OSError, json.JSONDecodeError) as exc:
        raise SdSimError(f"{path}: unreadable manifest ({exc})") from None


def package_version() -> str:
    """Installed version of this package."""
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version("sd_sim_plugin")
    except PackageNotFoundError:
        return "unknown"


def _write_json(path: Path, data: dict) -> None:
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(json.dumps(data, indent=1, sort_keys=False))
    os.replace(tmp, path)


@dataclass
class Unit:
    """One input of a collection: a shard name, a description for the manifest, and how to make its scenes."""

    shard: str
    source: dict
    produce: Callable[[], list[Scene]]


def collect(units: Iterable[Unit], out: str | Path, config: dict, *, sources: dict | None = None,
            progress: bool = True, workers: int = 1) -> dict:
    """Write one shard per unit into ``out`` (skipping finished ones), then the manifest; returns the manifest.

    ``config`` must match the folder's previous runs; ``sources`` (inputs, seeds) may change, e.g. to add seeds.
    ``workers`` > 1 makes the shards in that many processes (spawned: MetaDrive allows one engine per process), so
    units must be picklable; the shards are the same as one process makes, and the manifest lists units in order.

    A unit whose ``produce`` raises :class:`SdSimError` (an unreadable input, or one a source's filter rejects, such
    as a car-park scene under ``--min-drivable-share``) is named, skipped with its reason and counted.
    A folder holding a manifest with a different config is refused, so a resume never mixes configs.
    """
    from tqdm import tqdm

    if workers < 1:
        raise SdSimError(f"workers {workers}: expected at least 1")
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    manifest_path = out / MANIFEST
    if manifest_path.exists():
        old = read_manifest(out)
        if old.get("config") != config:
            raise SdSimError(f"{out} holds data collected with another config; use a new --out folder")
    for stale in out.glob("*.tmp"):
        stale.unlink()
    units = list(units)
    start = time.time()
    manifest = {"format": "sd_sim_plugin scene shards", "shard_format_version": SHARD_FORMAT_VERSION,
                "package_version": package_version(), "status": "running", "config": config,
                "sources": sources or {}, "units": [], "skipped": []}
    _write_json(manifest_path, manifest)
    done: dict[int, dict] = {}  # unit index -> its manifest entry, or {"skipped": reason}
    for i, unit in enumerate(units):
        path = out / unit.shard
        if path.exists():
            try:
                info = read_shard_info(path)
                done[i] = {"scenes": info["count"], "agents": info.get("agents", 0), "resumed": True}
            except SdSimError:
                path.unlink()  # damaged (not written by us atomically): make it again
    todo = [i for i in range(len(units)) if i not in done]
    bar = tqdm(total=len(units), initial=len(done), desc=f"collect -> {out.name}", unit="unit",
               disable=not progress, dynamic_ncols=True)
    scenes_total = sum(d["scenes"] for d in done.values())

    def finished(i: int, result: dict) -> None:
        nonlocal scenes_total
        done[i] = result
        if "skipped" in result:
            bar.write(f"skipped: {result['skipped']}")
        else:
            scenes_total += result["scenes"]
        bar.update(1)
        bar.set_postfix(scenes=scenes_total)

    if workers == 1 or len(todo) <= 1:
        for i in todo:
            finished(i, make_shard(units[i], out))
    else:
        import multiprocessing
        from concurrent.futures import ProcessPoolExecutor, as_completed

        with ProcessPoolExecutor(max_workers=min(workers, len(todo)),
                                 mp_context=multiprocessing.get_context("spawn")) as pool:
            futures = {pool.submit(make_shard, units[i], out): i for i in todo}
            try:
                for future in as_completed(futures):
                    finished(futures[future], future.result())
            except BaseException:
                pool.shutdown(wait=False, cancel_futures=True)  # finished shards stay: a rerun resumes
                raise
    bar.close()
    resumed = 0
    for i, unit in enumerate(units):
        d = done[i]
        if "skipped" in d:
            manifest["skipped"].append({**unit.source, "reason": d["skipped"]})
        else:
            manifest["units"].append({"shard": unit.shard, **unit.source, "scenes": d["scenes"],
                                      "agents": d["agents"]})
            resumed += bool(d.get("resumed"))
    manifest["status"] = "complete"
    manifest["counts"] = {"units": len(units), "shards": len(manifest["units"]), "scenes": scenes_total,
                          "agents": int(sum(u["agents"] for u in manifest["units"])),
                          "skipped": len(manifest["skipped"]), "resumed_shards": resumed}
    manifest["wall_time_s_this_run"] = round(time.time() - start, 1)
    _write_json(manifest_path, manifest)
    return manifest


def make_shard(unit: Unit, out: Path) -> dict:
    """Make and write one unit's shard -> its scene and agent counts, or ``{"skipped": reason}`` when its
    ``produce`` raises :class:`SdSimError` (runs in a worker process with ``collect(workers > 1)``)."""
    try:
        scenes = unit.produce()
    except SdSimError as exc:
        return {"skipped": str(exc)}
    write_shard(out / unit.shard, scenes, {"source": unit.source})
    return {"scenes": len(scenes), "agents": int(sum(len(s.agents) for s in scenes))}
