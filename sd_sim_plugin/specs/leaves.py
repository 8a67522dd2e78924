"""Spec leaves: a numeric leaf is a value or ``{range: [lo, hi]}``; a categorical leaf is a value or ``{choice: [...]}``."""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Annotated, Any

from pydantic import PlainSerializer, PlainValidator, WithJsonSchema
from pydantic_core import PydanticCustomError


@dataclass(frozen=True)
class Range:
    """A closed interval the spec leaves open; ``integer`` leaves take whole values."""

    lo: float
    hi: float
    integer: bool = False

    def at(self, u: float) -> float | int:
        """The value at ``u`` in [0, 1] (integers: equal-width bins, so every value has the same share)."""
        u = min(max(float(u), 0.0), 1.0)
        if self.integer:
            lo, hi = int(self.lo), int(self.hi)
            return min(hi, lo + int(math.floor(u * (hi - lo + 1))))
        return self.lo + u * (self.hi - self.lo)


@dataclass(frozen=True)
class Choice:
    """A set of categorical options the spec leaves open."""

    options: tuple

    def at(self, u: float) -> Any:
        """The option at ``u`` in [0, 1] (equal-width bins)."""
        u = min(max(float(u), 0.0), 1.0)
        return self.options[min(len(self.options) - 1, int(math.floor(u * len(self.options))))]


def _fail(message: str) -> PydanticCustomError:
    return PydanticCustomError("spec_leaf", message)


def _fmt(v: Any) -> str:
    text = repr(v) if isinstance(v, str) else str(v)
    return text if len(text) <= 40 else text[:37] + "..."


def _check_number(v: Any, lo: float, hi: float, unit: str, integer: bool) -> float | int:
    if isinstance(v, bool) or not isinstance(v, (int, float)):
        kind = "a whole number" if integer else "a number"
        raise _fail(f"expected {kind} or {{range: [lo, hi]}}, got {_fmt(v)} ({type(v).__name__})")
    if isinstance(v, float) and not math.isfinite(v):
        raise _fail(f"expected a finite number, got {v}")
    if integer and (isinstance(v, float) and not v.is_integer()):
        raise _fail(f"expected a whole number, got {v}")
    if not lo <= v <= hi:
        raise _fail(f"must lie in [{lo:g}, {hi:g}]{unit}, got {_fmt(v)}")
    return int(v) if integer else float(v)


def number(lo: float, hi: float, unit: str = "", integer: bool = False) -> Any:
    """Type of a numeric leaf bounded to [lo, hi] (``unit`` only appears in messages)."""
    unit_text = f" {unit}" if unit else ""

    def validate(v: Any) -> float | int | Range:
        if isinstance(v, Range):
            return v
        if isinstance(v, dict):
            if set(v) != {"range"}:
                extra = sorted(map(str, set(v) - {"range"}))
                raise _fail(f"expected a number or {{range: [lo, hi]}}, got a mapping with keys {extra[:3]}")
            r = v["range"]
            if not isinstance(r, list) or len(r) != 2:
                raise _fail(f"range must be a list [lo, hi] of two numbers, got {_fmt(r)}")
            a, b = (_check_number(x, lo, hi, unit_text, integer) for x in r)
            if a > b:
                raise _fail(f"range lo ({a:g}) is greater than hi ({b:g})")
            return Range(a, b, integer) if a != b else a
        return _check_number(v, lo, hi, unit_text, integer)

    def serialize(v: float | int | Range) -> Any:
        if isinstance(v, Range):
            return {"range": [int(v.lo), int(v.hi)] if integer else [v.lo, v.hi]}
        return v

    schema = {"anyOf": [{"type": "integer" if integer else "number", "minimum": lo, "maximum": hi},
                        {"type": "object", "properties": {"range": {"type": "array", "minItems": 2, "maxItems": 2}}}]}
    return Annotated[Any, PlainValidator(validate), PlainSerializer(serialize), WithJsonSchema(schema)]


def category(options: tuple[str, ...]) -> Any:
    """Type of a categorical leaf taking one of ``options``."""

    def check(v: Any) -> str:
        if not isinstance(v, str) or v not in options:
            raise _fail(f"expected one of {list(options)} or {{choice: [...]}}, got {_fmt(v)}")
        return v

    def validate(v: Any) -> str | Choice:
        if isinstance(v, Choice):
            return v
        if isinstance(v, dict):
            if set(v) != {"choice"}:
                extra = sorted(map(str, set(v) - {"choice"}))
                raise _fail(f"expected one of {list(options)} or {{choice: [...]}}, got a mapping with keys {extra[:3]}")
            c = v["choice"]
            if not isinstance(c, list) or not c:
                raise _fail(f"choice must be a non-empty list, got {_fmt(c)}")
            picked = tuple(dict.fromkeys(check(x) for x in c))
            return Choice(picked) if len(picked) > 1 else picked[0]
        return check(v)

    def serialize(v: str | Choice) -> Any:
        return {"choice": list(v.options)} if isinstance(v, Choice) else v

    schema = {"anyOf": [{"enum": list(options)}, {"type": "object", "properties": {"choice": {"type": "array"}}}]}
    return Annotated[Any, PlainValidator(validate), PlainSerializer(serialize), WithJsonSchema(schema)]
