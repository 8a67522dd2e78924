"""Property-based fuzzing of ``sd-sim validate``: every malformed spec exits with code 2 and one line, no traceback.

Six families of malformed specs, 100 examples each (600 in all): wrong types, missing fields, lo > hi, unknown keys,
bad YAML (and arbitrary text or bytes), huge values. Each is written to a file and run through the CLI in-process.
"""

from __future__ import annotations

import copy
import itertools
import tempfile
from pathlib import Path

import pytest
import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from sd_sim_plugin.cli import main

from spec_fixtures import BASE_SPEC  # tests/specs is on sys.path

EXAMPLES = 100
FUZZ = settings(max_examples=EXAMPLES, deadline=None, derandomize=True,
                suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])
_DIR = Path(tempfile.mkdtemp(prefix="sd_sim_fuzz_"))
_COUNTER = itertools.count()

# Leaves of BASE_SPEC by kind (paths into the dict).
NUMBER_LEAVES = [("ego", "speed"), ("ego", "start"), ("agents", 0, "placement", "distance"), ("agents", 0, "speed"),
                 ("agents", 0, "speed_2s"), ("agents", 0, "heading"), ("agents", 1, "placement", "x"),
                 ("agents", 1, "length"), ("duration",), ("density",), ("map", "pg", "lanes"), ("map", "pg", "seed"),
                 ("seed",), ("outcome", "ttc_cap"), ("ego", "lane"), ("agents", 0, "placement", "offset")]
RANGE_BOUNDS = {("ego", "speed"): (0, 50), ("agents", 0, "speed"): (0, 50), ("duration",): (1, 120),
                ("agents", 0, "placement", "distance"): (-200, 200), ("agents", 0, "heading"): (-180, 180),
                ("density",): (0, 64), ("map", "pg", "lanes"): (1, 4), ("agents", 1, "width"): (0.2, 5)}
INTEGER_LEAVES = {("density",), ("map", "pg", "lanes"), ("map", "pg", "seed"), ("seed",), ("ego", "lane")}
STRING_LEAVES = [("name",), ("description",), ("map", "pg", "blocks"), ("ego", "policy"), ("agents", 0, "name"),
                 ("generator",)]
CATEGORY_LEAVES = [("agents", 0, "size"), ("agents", 0, "manoeuvre"), ("agents", 0, "placement", "lane"),
                   ("agents", 1, "type"), ("outcome", "objective")]
MAPPINGS = [(), ("map",), ("map", "pg"), ("ego",), ("agents", 0), ("agents", 1), ("agents", 0, "placement"),
            ("agents", 1, "placement"), ("outcome",), ("ego", "speed"), ("agents", 1, "size")]
REQUIRED = [("version",), ("name",), ("description",), ("map",), ("map", "pg"), ("map", "pg", "blocks"),
            ("agents", 0, "placement"), ("agents", 0, "placement", "lane"), ("agents", 0, "placement", "distance"),
            ("agents", 1, "placement", "x"), ("agents", 1, "placement", "y"), ("ego", "speed", "range")]


def _set(data: dict, path: tuple, value: object) -> None:
    for key in path[:-1]:
        data = data[key]
    data[path[-1]] = value


def _delete(data: dict, path: tuple) -> None:
    for key in path[:-1]:
        data = data[key]
    del data[path[-1]]


def _get(data: dict, path: tuple) -> object:
    for key in path:
        data = data[key]
    return data


def _check(text: str | bytes, capsys: pytest.CaptureFixture) -> None:
    """Run ``sd-sim validate`` on ``text``: exit code 2, one line on stderr naming the file, nothing else."""
    path = _DIR / f"spec_{next(_COUNTER)}.yaml"
    path.write_bytes(text if isinstance(text, bytes) else text.encode("utf-8", "surrogatepass"))
    try:
        code = main(["validate", str(path)])
    except SystemExit as exc:  # pragma: no cover - would itself be a failure below
        code = exc.code
    out, err = capsys.readouterr()
    path.unlink()
    assert code == 2, (code, out, err, text[:300])
    assert out == ""
    assert err.endswith("\n") and err.count("\n") == 1, err
    assert err.startswith(f"sd-sim validate: error: {path}"), err
    assert "Traceback" not in err


def _dump(data: dict) -> str:
    return yaml.dump(data, Dumper=getattr(yaml, "CSafeDumper", yaml.SafeDumper), sort_keys=False, allow_unicode=True)


def test_base_spec_is_valid(capsys: pytest.CaptureFixture) -> None:
    path = _DIR / "base.yaml"
    path.write_text(_dump(BASE_SPEC))
    assert main(["validate", str(path)]) == 0


WRONG_FOR_NUMBER = st.one_of(st.text(min_size=1, max_size=8), st.booleans(), st.lists(st.integers(), max_size=3),
                             st.dictionaries(st.sampled_from(["lo", "hi", "rng", "min"]), st.integers(), min_size=1))
WRONG_FOR_STRING = st.one_of(st.integers(), st.floats(allow_nan=False), st.booleans(), st.lists(st.text(), max_size=2),
                             st.dictionaries(st.text(min_size=1, max_size=4), st.integers(), min_size=1, max_size=2))
WRONG_FOR_MAPPING = st.one_of(st.integers(), st.text(max_size=8), st.lists(st.integers(), max_size=3), st.booleans())


@FUZZ
@given(data=st.data())
def test_wrong_types(data: st.DataObject, capsys: pytest.CaptureFixture) -> None:
    spec = copy.deepcopy(BASE_SPEC)
    kind = data.draw(st.sampled_from(["number", "string", "category", "mapping", "list"]))
    if kind == "number":
        path, value = data.draw(st.sampled_from(NUMBER_LEAVES)), data.draw(WRONG_FOR_NUMBER)
    elif kind == "string":
        path, value = data.draw(st.sampled_from(STRING_LEAVES)), data.draw(WRONG_FOR_STRING)
    elif kind == "category":
        path = data.draw(st.sampled_from(CATEGORY_LEAVES))
        value = data.draw(st.one_of(WRONG_FOR_STRING, st.text(min_size=1, max_size=10).filter(
            lambda s: s not in {"car", "bus", "truck", "cyclist", "pedestrian", "straight", "left", "right", "stop",
                                "lane_change", "lane_change_left", "lane_change_right", "ego", "left2", "right2",
                                "oncoming", "vehicle", "min_ttc", "min_gap"})))
    elif kind == "mapping":
        path, value = data.draw(st.sampled_from([m for m in MAPPINGS if m])), data.draw(WRONG_FOR_MAPPING)
    else:
        path, value = ("agents",), data.draw(st.one_of(st.integers(), st.text(max_size=8), st.booleans(),
                                                       st.lists(st.integers(), min_size=1, max_size=3)))
    _set(spec, path, value)
    _check(_dump(spec), capsys)


@FUZZ
@given(path=st.sampled_from(REQUIRED), also=st.sets(st.sampled_from(REQUIRED), max_size=2))
def test_missing_fields(path: tuple, also: set, capsys: pytest.CaptureFixture) -> None:
    spec = copy.deepcopy(BASE_SPEC)
    for p in sorted({path} | also, key=len, reverse=True):
        try:
            _delete(spec, p)
        except (KeyError, TypeError):
            pass  # a parent was deleted already
    _check(_dump(spec), capsys)


@FUZZ
@given(path=st.sampled_from(sorted(RANGE_BOUNDS)), a=st.floats(0, 1), gap=st.floats(0.01, 1))
def test_range_lo_above_hi(path: tuple, a: float, gap: float, capsys: pytest.CaptureFixture) -> None:
    spec = copy.deepcopy(BASE_SPEC)
    lo_b, hi_b = RANGE_BOUNDS[path]
    lo = lo_b + a * (hi_b - lo_b)
    hi = min(hi_b, lo + gap * (hi_b - lo_b))
    if path in INTEGER_LEAVES:
        lo, hi = int(lo), int(lo) + 1 if int(lo) < hi_b else int(lo)
        lo, hi = (lo, hi) if lo < hi else (lo - 1, lo)
    elif hi <= lo:
        lo, hi = hi_b - 0.5, hi_b
    _set(spec, path, {"range": [hi, lo]})
    _check(_dump(spec), capsys)


@FUZZ
@given(where=st.sampled_from(MAPPINGS), key=st.text(alphabet="abcdefghijklmnopqrstuvwxyz_", min_size=1, max_size=12),
       value=st.one_of(st.integers(), st.text(max_size=5), st.none()))
def test_unknown_keys(where: tuple, key: str, value: object, capsys: pytest.CaptureFixture) -> None:
    spec = copy.deepcopy(BASE_SPEC)
    _get(spec, where)["unknown_" + key] = value
    _check(_dump(spec), capsys)


BROKEN_SNIPPETS = ["[unclosed", "{a: 1", "key: : value", "\tversion: 1", "- a\nb: c", "*undefined_alias",
                   "!!python/object:os.system ls", "a: !!binary '###'", "%YAML 9.9\n---\na: 1", "--- a\n--- b",
                   "version: 1\n  name: x", "'unterminated", "a: [1, 2", "? complex\n: key", "@reserved", "`tick"]


@FUZZ
@given(data=st.data())
def test_bad_yaml_and_garbage(data: st.DataObject, capsys: pytest.CaptureFixture) -> None:
    kind = data.draw(st.sampled_from(["snippet", "text", "bytes", "truncate"]))
    base = _dump(BASE_SPEC)
    if kind == "snippet":
        snippet = data.draw(st.sampled_from(BROKEN_SNIPPETS))
        cut = data.draw(st.integers(0, len(base)))
        cut = base.rfind("\n", 0, cut) + 1  # insert at a line start so indentation breaks
        text: str | bytes = base[:cut] + snippet + "\n" + base[cut:]
    elif kind == "text":
        text = data.draw(st.text(max_size=200))
    elif kind == "bytes":
        text = data.draw(st.binary(min_size=1, max_size=200))
    else:
        # cut a spec whose last field is the required version line, so that every prefix lacks it
        last_version = _dump({**{k: v for k, v in BASE_SPEC.items() if k != "version"}, "version": 1})
        text = last_version[: data.draw(st.integers(0, len(last_version) - len("version: 1\n")))]
    _check(text, capsys)


HUGE_NUMBERS = st.sampled_from([1e300, -1e300, 10**30, -(10**30), 2**64, float("inf"), float("-inf"),
                                float("nan"), 1e16, -1e16])


@FUZZ
@given(data=st.data())
def test_huge_values(data: st.DataObject, capsys: pytest.CaptureFixture) -> None:
    spec = copy.deepcopy(BASE_SPEC)
    kind = data.draw(st.sampled_from(["number", "range", "string", "agents", "nesting", "file"]))
    if kind == "number":
        _set(spec, data.draw(st.sampled_from(NUMBER_LEAVES)), data.draw(HUGE_NUMBERS))
    elif kind == "range":
        _set(spec, data.draw(st.sampled_from(sorted(RANGE_BOUNDS))), {"range": [0, data.draw(HUGE_NUMBERS)]})
    elif kind == "string":
        path = data.draw(st.sampled_from([("name",), ("description",), ("map", "pg", "blocks"), ("agents", 0, "name"),
                                          ("generator",)]))
        _set(spec, path, "S" * data.draw(st.integers(301, 20_000)))
    elif kind == "agents":
        spec["agents"] = [copy.deepcopy(BASE_SPEC["agents"][1]) for _ in range(data.draw(st.integers(17, 80)))]
    elif kind == "nesting":
        depth = data.draw(st.integers(50, 5000))
        _check("agents: " + "[" * depth + "]" * depth + "\n", capsys)
        return
    else:
        _check("description: '" + "x" * 300_000 + "'\n", capsys)  # larger than any spec should be
        return
    _check(_dump(spec), capsys)
