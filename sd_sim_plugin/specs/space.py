"""The search box of a spec: each open leaf (range or choice) is one dimension of [0, 1]^d."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
from pydantic import BaseModel

from sd_sim_plugin.specs.leaves import Choice, Range
from sd_sim_plugin.specs.schema import Spec
from sd_sim_plugin.specs.yaml_lines import Path, format_path


@dataclass(frozen=True)
class Dimension:
    """One open leaf of a spec: where it is and what values it spans."""

    path: Path
    leaf: Range | Choice

    @property
    def name(self) -> str:
        """Field path, e.g. ``agents[0].speed``."""
        return format_path(self.path)

    def value(self, u: float) -> Any:
        """The leaf's value at ``u`` in [0, 1]."""
        return self.leaf.at(u)


def open_dimensions(spec: Spec) -> list[Dimension]:
    """Every range and choice in ``spec``, in field order."""
    out: list[Dimension] = []
    _collect(spec, (), out)
    return out


def _collect(obj: Any, path: Path, out: list[Dimension]) -> None:
    if isinstance(obj, (Range, Choice)):
        out.append(Dimension(path, obj))
    elif isinstance(obj, BaseModel):
        for name in type(obj).model_fields:
            _collect(getattr(obj, name), path + (name,), out)
    elif isinstance(obj, list):
        for i, item in enumerate(obj):
            _collect(item, path + (i,), out)


def concretize(spec: Spec, u: np.ndarray | list[float], seed: int | None = None) -> Spec:
    """The fixed-value spec at point ``u`` of the box (one coordinate per open dimension), with ``seed`` if given."""
    dims = open_dimensions(spec)
    u = np.asarray(u, dtype=float).reshape(-1)
    if len(u) != len(dims):
        raise ValueError(f"point has {len(u)} coordinates, the spec has {len(dims)} open dimensions")
    data = spec.model_dump(mode="python", exclude_none=True)
    for dim, ui in zip(dims, u):
        _set(data, dim.path, dim.value(ui))
    if seed is not None:
        data["seed"] = int(seed)
    return Spec.model_validate(data)


def sample_concrete(spec: Spec, rng: np.random.Generator, seed: int | None = None) -> tuple[Spec, np.ndarray]:
    """A uniformly drawn fixed-value spec and its point in the box."""
    u = rng.random(len(open_dimensions(spec)))
    return concretize(spec, u, seed), u


def point_values(spec: Spec, u: np.ndarray) -> dict[str, Any]:
    """Human-unit value of each open dimension at ``u``, keyed by field path."""
    return {d.name: d.value(ui) for d, ui in zip(open_dimensions(spec), np.asarray(u).reshape(-1))}


def _set(data: Any, path: Path, value: Any) -> None:
    for key in path[:-1]:
        data = data[key]
    data[path[-1]] = value
