"""Fixed PG map seeds: the evaluation seeds are reserved here, in code, and never used for training.

Every consumer (collection, training, evaluation, benchmarks) imports these instead of choosing its own seeds.
"""

from __future__ import annotations

# Held-out evaluation maps: 50 seeds in their own range, far from the training range.
EVAL_PG_SEEDS: tuple[int, ...] = tuple(range(100_000, 100_050))
# Training maps are drawn from this range, in order; the default collection uses the first DEFAULT_TRAIN_MAPS.
TRAIN_PG_SEED_RANGE: range = range(0, 100_000)
DEFAULT_TRAIN_MAPS = 220
# A few training seeds for quick tests and development runs.
DEV_PG_SEEDS: tuple[int, ...] = (0, 1, 2)


def train_pg_seeds(count: int = DEFAULT_TRAIN_MAPS) -> tuple[int, ...]:
    """The first ``count`` training map seeds."""
    return tuple(TRAIN_PG_SEED_RANGE[:count])


def split_seeds(split: str) -> tuple[int, ...]:
    """Map seeds of a named split: ``train`` (default count) or ``eval``."""
    if split == "train":
        return train_pg_seeds()
    if split == "eval":
        return EVAL_PG_SEEDS
    raise ValueError(f"unknown split {split!r}: use 'train' or 'eval'")


assert not set(EVAL_PG_SEEDS) & set(TRAIN_PG_SEED_RANGE), "evaluation seeds must be disjoint from training seeds"
