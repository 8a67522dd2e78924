"""PyTorch ``Dataset`` over a dataset folder written by ``sd-sim collect``: item i -> :class:`Scene`."""

from __future__ import annotations

import os
from collections import OrderedDict
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
from torch.utils.data import Dataset

from sd_sim_plugin.data.store import ShardReader, read_shard_info, shard_paths
from sd_sim_plugin.errors import SdSimError
from sd_sim_plugin.scene.types import Scene


class SceneDataset(Dataset):
    """Scenes of one or more dataset folders, in shard order; ``transform`` (e.g. Scene -> tensors) is applied per item.

    Shards are opened lazily and kept open in a small per-process LRU cache (safe with DataLoader workers:
    a forked worker opens its own files), and a scene's arrays are decompressed only when it is read.
    """

    def __init__(self, directory: str | Path | list[str | Path], transform: Callable[[Scene], Any] | None = None,
                 max_open_shards: int = 16) -> None:
        dirs = [directory] if isinstance(directory, (str, Path)) else list(directory)
        self.paths: list[Path] = [p for d in dirs for p in shard_paths(d)]
        counts = [read_shard_info(p)["count"] for p in self.paths]
        self._starts = np.concatenate([[0], np.cumsum(counts)]).astype(np.int64)
        self.transform = transform
        self.max_open_shards = max_open_shards
        self._readers: OrderedDict[int, ShardReader] = OrderedDict()
        self._pid = os.getpid()
        if len(self) == 0:
            raise SdSimError(f"no scenes in {', '.join(str(d) for d in dirs)}")

    def __len__(self) -> int:
        return int(self._starts[-1])

    def locate(self, index: int) -> tuple[int, int]:
        """(shard number, index within that shard) of item ``index``; see ``paths`` for the shard files."""
        if not -len(self) <= index < len(self):
            raise IndexError(f"index {index} out of range for {len(self)} scenes")
        index %= len(self)
        shard = int(np.searchsorted(self._starts, index, side="right") - 1)
        return shard, index - int(self._starts[shard])

    def _reader(self, shard: int) -> ShardReader:
        if os.getpid() != self._pid:  # forked into a DataLoader worker: never share open files with the parent
            self._readers = OrderedDict()
            self._pid = os.getpid()
        reader = self._readers.get(shard)
        if reader is None:
            reader = ShardReader(self.paths[shard])
            self._readers[shard] = reader
            while len(self._readers) > self.max_open_shards:
                self._readers.popitem(last=False)[1].close()
        else:
            self._readers.move_to_end(shard)
        return reader

    def __getitem__(self, index: int) -> Any:
        shard, local = self.locate(int(index))
        scene = self._reader(shard).scene(local)
        return self.transform(scene) if self.transform is not None else scene

    def __getstate__(self) -> dict:
        state = dict(self.__dict__)
        state["_readers"] = OrderedDict()  # open files do not travel to spawned workers
        return state
