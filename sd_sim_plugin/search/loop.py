"""The search loop: propose a point of [0, 1]^d, evaluate it, journal it; resumable and failure-tolerant.

The journal is append-only JSON lines: a header (what search this is), then one line per finished evaluation,
flushed and fsynced before the next one starts, so an interruption loses at most the evaluation in flight.
"""

from __future__ import annotations

import json
import os
import time
import traceback
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np

from sd_sim_plugin.errors import SdSimError
from sd_sim_plugin.search.gp_ucb import GPUCB, Proposal, SobolDesign

METHODS = ("gp-ucb", "random", "sobol")
JOURNAL_VERSION = 1


@dataclass
class Evaluation:
    """What one evaluation returns: ``value`` is the criticality (higher = more critical)."""

    value: float
    collision: bool = False
    metrics: dict = field(default_factory=dict)


@dataclass
class Record:
    """One journal line: the point, its seed, and the outcome (or the error of a failed run)."""

    i: int
    u: list[float]
    seed: int
    status: str  # "ok" or "failed"
    value: float | None = None
    collision: bool = False
    metrics: dict = field(default_factory=dict)
    error: str | None = None
    propose_s: float = 0.0
    eval_s: float = 0.0
    info: dict = field(default_factory=dict)


Objective = Callable[[np.ndarray, int], Evaluation]


def evaluation_seed(search_seed: int, i: int) -> int:
    """Seed of the ``i``-th evaluation: the same for every method, so methods face the same generator noise."""
    return int(np.random.SeedSequence([int(search_seed), int(i)]).generate_state(1)[0] % (2**31 - 1))


class RandomSearch:
    """Uniform random points, the ``i``-th drawn from its own stream (resuming needs no state)."""

    name = "random"

    def __init__(self, dim: int, seed: int = 0) -> None:
        self.dim, self.seed = dim, seed

    def propose(self, x: np.ndarray, y: np.ndarray, failed: np.ndarray) -> Proposal:
        """The next point."""
        return Proposal(np.random.default_rng([self.seed, 17, len(x) + len(failed)]).random(self.dim))


class SobolSearch:
    """Scrambled Sobol sequence (quasi-random space filling)."""

    name = "sobol"

    def __init__(self, dim: int, seed: int = 0) -> None:
        self.design = SobolDesign(dim, seed)

    def propose(self, x: np.ndarray, y: np.ndarray, failed: np.ndarray) -> Proposal:
        """The next point."""
        return Proposal(self.design.point(len(x) + len(failed)))


def make_method(method: str, dim: int, seed: int, kernel: str = "matern52", **options):
    """A proposer by name."""
    if method == "gp-ucb":
        return GPUCB(dim, seed=seed, kernel=kernel, **options)
    if method == "random":
        return RandomSearch(dim, seed)
    if method == "sobol":
        return SobolSearch(dim, seed)
    raise SdSimError(f"unknown search method {method!r}; use one of {', '.join(METHODS)}")


class Journal:
    """Append-only JSONL journal of a search."""

    def __init__(self, path: Path) -> None:
        self.path = Path(path)

    def read(self) -> tuple[dict | None, list[Record]]:
        """Header and records; a torn last line (interrupted write) is cut off the file."""
        if not self.path.exists():
            return None, []
        raw = self.path.read_bytes()
        good_end = raw.rfind(b"\n") + 1
        if good_end < len(raw):  # the last write was interrupted: drop the partial line
            with open(self.path, "r+b") as f:
                f.truncate(good_end)
            raw = raw[:good_end]
        header, records = None, []
        for n, line in enumerate(raw.decode("utf-8").splitlines(), 1):
            if not line.strip():
                continue
            try:
                entry = json.loads(line)
            except json.JSONDecodeError:
                raise SdSimError(f"{self.path}:{n}: corrupt journal line; fix or remove it") from None
            if entry.get("kind") == "header":
                header = entry
            elif entry.get("kind") == "eval":
                entry.pop("kind")
                records.append(Record(**entry))
        return header, records

    def write_header(self, header: dict) -> None:
        """Start a new journal."""
        self.path.parent.mkdir(parents=True, exist_ok=True)
        with open(self.path, "w") as f:
            f.write(json.dumps({"kind": "header", **header}) + "\n")
            f.flush()
            os.fsync(f.fileno())

    def append(self, record: Record) -> None:
        """Append one evaluation, durably."""
        with open(self.path, "a") as f:
            f.write(json.dumps({"kind": "eval", **asdict(record)}, default=_json_default) + "\n")
            f.flush()
            os.fsync(f.fileno())


def describe_exception(exc: BaseException) -> str:
    """One line for a journal: the user-facing message of an SdSimError, else type, message and where it was raised."""
    if isinstance(exc, SdSimError):
        return str(exc)[:500]
    last = traceback.extract_tb(exc.__traceback__)[-1:]
    where = f" ({Path(last[0].filename).name}:{last[0].lineno})" if last else ""
    return f"{type(exc).__name__}: {exc}{where}"[:500]


def _json_default(v: object) -> object:
    if isinstance(v, (np.floating, np.integer, np.bool_)):
        return v.item()
    if isinstance(v, np.ndarray):
        return v.tolist()
    raise TypeError(f"not JSON serialisable: {type(v).__name__}")


_HEADER_KEYS = ("journal_version", "method", "seed", "kernel", "dim", "objective_id")


def open_journal(path: Path, header: dict, resume: bool) -> list[Record]:
    """Records already done (resume) or a fresh journal; refuse to mix different searches."""
    journal = Journal(path)
    old_header, records = journal.read()
    if old_header is None:
        journal.write_header(header)
        return []
    if not resume:
        raise SdSimError(f"{path} already holds results ({len(records)} done); pass --resume to continue, or "
                         "choose another --out")
    diff = [k for k in _HEADER_KEYS if old_header.get(k) != header.get(k)]
    if diff:
        k = diff[0]
        raise SdSimError(f"{path} belongs to another job ({k}: {old_header.get(k)!r} there, {header.get(k)!r} "
                         "now); resume with the same spec and options or choose another --out")
    return records


def run_search(objective: Objective, dim: int, *, method: str, budget: int, seed: int, journal_path: Path,
               kernel: str = "matern52", objective_id: str = "", resume: bool = False, progress: bool = True,
               on_record: Callable[[list[Record]], None] | None = None, method_options: dict | None = None,
               proposer: object | None = None) -> tuple[list[Record], object]:
    """Run (or resume) a search of ``budget`` evaluations; returns every record and the proposer.

    ``proposer`` (an object with ``propose(x, y, failed) -> Proposal``) replaces the named method, e.g. an external
    sampler in a benchmark; ``method`` then only names it in the journal.
    """
    if dim < 1:
        raise SdSimError("the spec has no ranges or choices: there is nothing to search")
    if budget < 1:
        raise SdSimError(f"--budget must be at least 1, got {budget}")
    header = {"journal_version": JOURNAL_VERSION, "method": method, "seed": int(seed), "kernel": kernel,
              "dim": int(dim), "objective_id": objective_id}
    records = open_journal(Path(journal_path), header, resume)
    if proposer is None:
        proposer = make_method(method, dim, seed, kernel, **(method_options or {}))
    journal = Journal(Path(journal_path))
    bar = None
    if progress:
        from tqdm import tqdm

        bar = tqdm(total=budget, initial=min(len(records), budget), desc=f"search {method}", unit="sim")
    try:
        while len(records) < budget:
            i = len(records)
            ok = [r for r in records if r.status == "ok"]
            x = np.array([r.u for r in ok]).reshape(-1, dim)
            y = np.array([r.value for r in ok], dtype=float)
            failed = np.array([r.u for r in records if r.status != "ok"]).reshape(-1, dim)
            t0 = time.perf_counter()
            proposal = proposer.propose(x, y, failed)
            u, info = proposal.u, proposal.info
            propose_s = time.perf_counter() - t0
            s = evaluation_seed(seed, i)
            t1 = time.perf_counter()
            try:
                result = objective(np.asarray(u, dtype=float), s)
                record = Record(i, [float(v) for v in u], s, "ok", float(result.value), bool(result.collision),
                                result.metrics, None, propose_s, time.perf_counter() - t1, info)
                if not np.isfinite(record.value):
                    raise ValueError(f"objective returned {record.value}")
            except (KeyboardInterrupt, SystemExit):
                raise
            except Exception as exc:  # a failed simulation is data, not the end of the search
                record = Record(i, [float(v) for v in u], s, "failed", None, False, {}, describe_exception(exc),
                                propose_s, time.perf_counter() - t1, info)
            journal.append(record)
            records.append(record)
            if on_record is not None:
                on_record(records)
            if bar is not None:
                values = [r.value for r in records if r.status == "ok"]
                bar.set_postfix(best=f"{max(values):.3g}" if values else "-",
                                collisions=sum(r.collision for r in records),
                                failed=sum(r.status != "ok" for r in records))
                bar.update(1)
    finally:
        if bar is not None:
            bar.close()
    return records, proposer
