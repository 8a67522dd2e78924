"""YAML loading that remembers where each value came from (line numbers by field path), for error messages."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import yaml

from sd_sim_plugin.errors import SdSimError

Path = tuple[str | int, ...]
MAX_SPEC_BYTES = 64 * 1024  # a spec is a few dozen lines; refuse anything that could be a mistake or an attack
MAX_DEPTH = 16  # a spec nests about 5 levels; deeper input is an error, caught before the recursive composer runs


# libyaml's parser where available (10x faster on big malformed input); both construct only plain data
_SafeLoader = getattr(yaml, "CSafeLoader", yaml.SafeLoader)


class _LineLoader(_SafeLoader):
    """Safe loader (no object construction) whose node tree we also walk to record line numbers."""


@dataclass
class LocatedYaml:
    """Parsed YAML plus the 1-based line of every node, keyed by field path (keys and list indices)."""

    data: Any
    lines: dict[Path, int] = field(default_factory=dict)
    duplicates: list[tuple[Path, int]] = field(default_factory=list)

    def line_of(self, path: Path) -> int | None:
        """Line of ``path`` or, when the field is absent (a missing field), of its nearest present parent."""
        for n in range(len(path), -1, -1):
            if path[:n] in self.lines:
                return self.lines[path[:n]]
        return None


def format_path(path: Path) -> str:
    """``('agents', 0, 'speed')`` -> ``agents[0].speed``."""
    out = ""
    for part in path:
        out += f"[{part}]" if isinstance(part, int) else (f".{part}" if out else str(part))
    return out or "<top>"


def load_yaml_with_lines(text: str, source: str = "<spec>") -> LocatedYaml:
    """Parse ``text`` with a safe loader; raise :class:`SdSimError` naming ``source`` and the line on bad YAML."""
    if len(text.encode("utf-8", "surrogatepass")) > MAX_SPEC_BYTES:
        raise SdSimError(f"{source}: file is larger than {MAX_SPEC_BYTES // 1024} KiB; a spec should be a few lines")
    loader = None
    try:
        _check_depth(text, source)
        loader = _LineLoader(text)  # the reader already rejects unprintable characters here
        node = loader.get_single_node()
        if node is None:
            return LocatedYaml(data=None)
        located = LocatedYaml(data=None)
        _walk(loader, node, (), located, set())
        located.data = loader.construct_document(node)
        return located
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        line = f":{mark.line + 1}" if mark is not None else ""
        what = " ".join(str(p) for p in (exc.context, exc.problem) if p)
        raise SdSimError(f"{source}{line}: invalid YAML: {_one_line(what)}") from None
    except yaml.YAMLError as exc:
        raise SdSimError(f"{source}: invalid YAML: {_one_line(str(exc))}") from None
    except RecursionError:
        raise SdSimError(f"{source}: invalid YAML: nested too deeply") from None
    except (TypeError, ValueError, OverflowError) as exc:  # e.g. unhashable keys, out-of-range timestamps
        raise SdSimError(f"{source}: invalid YAML: {_one_line(str(exc))}") from None
    finally:
        if loader is not None:
            loader.dispose()


def _check_depth(text: str, source: str) -> None:
    """Reject deeply nested input with the event parser, which is iterative (the composer recurses)."""
    depth = 0
    for event in yaml.parse(text, Loader=_SafeLoader):
        if isinstance(event, yaml.CollectionStartEvent):
            depth += 1
            if depth > MAX_DEPTH:
                raise SdSimError(f"{source}:{event.start_mark.line + 1}: invalid spec: nested deeper than "
                                 f"{MAX_DEPTH} levels")
        elif isinstance(event, yaml.CollectionEndEvent):
            depth -= 1


def _one_line(text: str) -> str:
    return " ".join(text.split())[:200]


def _walk(loader: _SafeLoader, node: yaml.Node, path: Path, out: LocatedYaml, seen: set[int]) -> None:
    """Record the line of ``node`` and its children; aliased nodes are visited once (no exponential blow-up)."""
    out.lines.setdefault(path, node.start_mark.line + 1)
    if id(node) in seen:
        return
    seen.add(id(node))
    if isinstance(node, yaml.MappingNode):
        keys_here: set = set()
        for key_node, value_node in node.value:
            key = _key(loader, key_node)
            if key in keys_here:
                out.duplicates.append((path + (key,), key_node.start_mark.line + 1))
            keys_here.add(key)
            out.lines.setdefault(path + (key,), key_node.start_mark.line + 1)
            _walk(loader, value_node, path + (key,), out, seen)
    elif isinstance(node, yaml.SequenceNode):
        for i, child in enumerate(node.value):
            _walk(loader, child, path + (i,), out, seen)


def _key(loader: _SafeLoader, node: yaml.Node) -> Any:
    """The constructed value of a mapping key when it is a plain scalar, else its text (for paths only)."""
    if isinstance(node, yaml.ScalarNode):
        try:
            key = loader.construct_object(node, deep=True)
            hash(key)
            return key
        except (yaml.YAMLError, TypeError, ValueError, OverflowError):
            return node.value
    return f"<{node.id}>"
