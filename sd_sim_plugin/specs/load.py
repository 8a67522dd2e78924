"""Read a spec file: YAML with line numbers, then schema validation; every problem becomes one line naming file,
line and field path."""

from __future__ import annotations

from pathlib import Path

import yaml
from pydantic import ValidationError

from sd_sim_plugin.errors import SdSimError
from sd_sim_plugin.specs.schema import DENSITY_TAGS, Spec
from sd_sim_plugin.specs.yaml_lines import LocatedYaml, format_path, load_yaml_with_lines


def load_spec(path: str | Path) -> Spec:
    """Load and validate the spec at ``path``; raise :class:`SdSimError` with file:line: field: problem."""
    path = Path(path)
    try:
        raw = path.read_bytes()
    except FileNotFoundError:
        raise SdSimError(f"{path}: no such spec file") from None
    except IsADirectoryError:
        raise SdSimError(f"{path}: is a folder, expected a YAML spec file") from None
    except OSError as exc:
        raise SdSimError(f"{path}: cannot read: {exc.strerror or exc}") from None
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise SdSimError(f"{path}: not UTF-8 text (byte {exc.start})") from None
    spec = parse_spec(text, str(path))
    real = spec.map.scenarionet
    if real is not None and not Path(real.file).is_absolute():
        # relative ScenarioNet paths are relative to the spec file, so specs can travel with their data
        resolved = (path.resolve().parent / real.file).resolve()
        spec = spec.model_copy(update={"map": spec.map.model_copy(
            update={"scenarionet": real.model_copy(update={"file": str(resolved)})})})
    return spec


def parse_spec(text: str, source: str = "<spec>") -> Spec:
    """Validate spec YAML ``text``; ``source`` names it in messages."""
    located = load_yaml_with_lines(text, source)
    if located.duplicates:
        key_path, line = located.duplicates[0]
        raise SdSimError(f"{source}:{line}: {format_path(key_path)}: key given twice")
    if located.data is None:
        raise SdSimError(f"{source}: spec is empty")
    if not isinstance(located.data, dict):
        raise SdSimError(f"{source}:1: <top>: a spec must be a mapping of fields, got {type(located.data).__name__}")
    try:
        return Spec.model_validate(located.data)
    except ValidationError as exc:
        raise SdSimError(describe_errors(exc, located, source)) from None
    except RecursionError:
        raise SdSimError(f"{source}: spec is nested too deeply") from None


def describe_errors(exc: ValidationError, located: LocatedYaml, source: str) -> str:
    """The first validation error as ``file:line: path: message``, plus how many more there are."""
    errors = exc.errors(include_url=False)
    first = errors[0]
    loc = tuple(part for part in first["loc"] if part not in DENSITY_TAGS)
    line = located.line_of(loc)
    where = f"{source}:{line}" if line is not None else source
    msg = _message(first)
    more = f" (and {len(errors) - 1} more error{'s' if len(errors) > 2 else ''})" if len(errors) > 1 else ""
    return f"{where}: {format_path(loc)}: {msg}{more}"


def _message(error: dict) -> str:
    kind = error["type"]
    if kind == "extra_forbidden":
        return "unknown field"
    if kind == "missing":
        return "required field is missing"
    msg = str(error["msg"])
    for prefix in ("Value error, ", "Assertion failed, "):
        if msg.startswith(prefix):
            msg = msg[len(prefix):]
    if kind in ("model_type", "model_attributes_type", "dict_type"):
        msg = f"expected a mapping of fields, got {type(error.get('input')).__name__}"
    elif kind in ("list_type",):
        msg = f"expected a list, got {type(error.get('input')).__name__}"
    return " ".join(msg.split())[:300]


def spec_to_yaml(spec: Spec) -> str:
    """A spec as YAML text (ranges and choices kept), for writing concrete scenarios."""
    data = spec.model_dump(mode="python", exclude_none=True)
    return yaml.safe_dump(data, sort_keys=False, default_flow_style=None, width=120)
