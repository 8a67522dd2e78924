"""The search loop: journal, failed runs recorded, interruption and resume lose no completed evaluation."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from sd_sim_plugin.errors import SdSimError
from sd_sim_plugin.search.loop import Evaluation, Journal, evaluation_seed, run_search


@pytest.mark.parametrize("method", ["gp-ucb", "random", "sobol"])
def test_interrupt_and_resume_loses_nothing(method: str, noisy_two_bumps, tmp_path: Path) -> None:
    journal = tmp_path / "journal.jsonl"
    calls: list[int] = []

    def interrupted(u: np.ndarray, seed: int) -> Evaluation:
        if len(calls) == 7:
            raise KeyboardInterrupt  # Ctrl-C while the 8th simulation runs
        calls.append(seed)
        return noisy_two_bumps(u, seed)

    with pytest.raises(KeyboardInterrupt):
        run_search(interrupted, 2, method=method, budget=12, seed=3, journal_path=journal, progress=False)
    _, done = Journal(journal).read()
    assert [r.seed for r in done] == calls and len(done) == 7
    with open(journal, "a") as f:
        f.write('{"kind": "eval", "i": 7, "u": [0.1')  # a write torn by the interruption
    with pytest.raises(SdSimError, match="--resume"):
        run_search(noisy_two_bumps, 2, method=method, budget=12, seed=3, journal_path=journal, progress=False)
    records, _ = run_search(noisy_two_bumps, 2, method=method, budget=12, seed=3, journal_path=journal,
                            resume=True, progress=False)
    assert len(records) == 12 and [r.i for r in records] == list(range(12))
    assert [r.seed for r in records[:7]] == [r.seed for r in done]
    assert [r.u for r in records[:7]] == [r.u for r in done]
    assert [r.seed for r in records] == [evaluation_seed(3, i) for i in range(12)]
    lines = journal.read_text().splitlines()
    assert len(lines) == 13 and all(json.loads(line) for line in lines)
    if method != "gp-ucb":  # stateless proposers continue exactly as an uninterrupted run
        fresh, _ = run_search(noisy_two_bumps, 2, method=method, budget=12, seed=3,
                              journal_path=tmp_path / "fresh.jsonl", progress=False)
        assert [r.u for r in fresh] == [r.u for r in records]


def test_resume_refuses_a_different_search(noisy_two_bumps, tmp_path: Path) -> None:
    journal = tmp_path / "journal.jsonl"
    run_search(noisy_two_bumps, 2, method="random", budget=2, seed=0, journal_path=journal, progress=False)
    with pytest.raises(SdSimError, match="method: 'random' there, 'sobol' now"):
        run_search(noisy_two_bumps, 2, method="sobol", budget=4, seed=0, journal_path=journal, resume=True,
                   progress=False)


def test_failed_runs_are_recorded_not_fatal(tmp_path: Path) -> None:
    def flaky(u: np.ndarray, seed: int) -> Evaluation:
        if u[0] < 0.3:
            raise RuntimeError("simulator crashed")
        return Evaluation(value=float(u.sum()))

    records, _ = run_search(flaky, 2, method="gp-ucb", budget=10, seed=1, journal_path=tmp_path / "j.jsonl",
                            progress=False)
    failed = [r for r in records if r.status == "failed"]
    assert len(records) == 10 and failed
    assert all(r.value is None and "RuntimeError: simulator crashed" in r.error for r in failed)
    assert all(r.status == "ok" for r in records if r.u[0] >= 0.3)


def test_nothing_to_search(tmp_path: Path) -> None:
    with pytest.raises(SdSimError, match="nothing to search"):
        run_search(lambda u, s: Evaluation(0.0), 0, method="random", budget=3, seed=0,
                   journal_path=tmp_path / "j.jsonl", progress=False)
