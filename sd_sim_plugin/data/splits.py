"""Fixed splits: PG map seeds and development ScenarioNet scenes reserved here, in code, for validation and evaluation.

Every consumer (collection, training, evaluation, benchmarks) imports these instead of choosing its own.
"""

from __future__ import annotations

from pathlib import Path

# Held-out evaluation maps: 50 seeds in their own range, far from the training range.
EVAL_PG_SEEDS: tuple[int, ...] = tuple(range(100_000, 100_050))
# Validation maps, for choices made while developing (steps, decoding settings), so that the evaluation maps are
# only ever measured, never chosen on: 80 seeds in their own range (20 until the fifth session, when 212 windows
# proved too few to rank sampler settings).
VAL_PG_SEEDS: tuple[int, ...] = tuple(range(99_000, 99_080))
# Training maps are drawn from this range, in order; the default collection uses the first DEFAULT_TRAIN_MAPS.
TRAIN_PG_SEED_RANGE: range = range(0, 99_000)
DEFAULT_TRAIN_MAPS = 220
# A few training seeds for quick tests and development runs.
DEV_PG_SEEDS: tuple[int, ...] = (0, 1, 2)


def train_pg_seeds(count: int = DEFAULT_TRAIN_MAPS) -> tuple[int, ...]:
    """The first ``count`` training map seeds."""
    return tuple(TRAIN_PG_SEED_RANGE[:count])


def split_seeds(split: str) -> tuple[int, ...]:
    """Map seeds of a named split: ``train`` (default count), ``val`` or ``eval``."""
    if split == "train":
        return train_pg_seeds()
    if split == "val":
        return VAL_PG_SEEDS
    if split == "eval":
        return EVAL_PG_SEEDS
    raise ValueError(f"unknown split {split!r}: use 'train', 'val' or 'eval'")


# Development ScenarioNet scenes (../shared/data/scenarionet/dev) held out of training: the real-scene evaluation
# set. 6 of 17, chosen to span both datasets and traffic from sparse to dense (3 nuScenes, 3 Waymo); by file name.
HELDOUT_REAL_SCENES: tuple[str, ...] = (
    "sd_nuscenes_v1.0-mini_scene-0103.pkl",
    "sd_nuscenes_v1.0-mini_scene-0757.pkl",
    "sd_nuscenes_v1.0-mini_scene-1100.pkl",
    "sd_training.tfrecord-00000-of-01000_c403d5992cab9e0.pkl",
    "sd_waymo_v0.3_6f85f27e0243fc10.pkl",
    "sd_waymo_v1.2_eb4b91b10ca94ff2.pkl",
)


# Real validation scenes: the three training scenes whose share of logged vehicles on the drivable area is closest
# to the median of the eleven (0.83; docs/model.md). A model whose settings are chosen on real data is trained
# without them (``train-minus-val``), its settings are chosen on them (``val``), and the chosen settings then go to
# the model trained on all eleven. (A first choice, nuScenes scene-0553 and scene-0916 and Waymo 4d320edc9cb801a3,
# held two of the three parking-heavy scenes and was replaced.)
VAL_REAL_SCENES: tuple[str, ...] = (
    "sd_nuscenes_v1.0-mini_scene-0553.pkl",
    "sd_nuscenes_v1.0-mini_scene-0796.pkl",
    "sd_training.tfrecord-00000-of-01000_8a346109094cd5aa.pkl",
)
# Validation folds: fold 0 is VAL_REAL_SCENES; folds 1 and 2 split the other five training scenes that are not car
# parks (nuScenes and Waymo in each), so that settings can be chosen on all eight street scenes, each measured with
# a model trained without it (cross-validation), rather than on three. The three car parks are in no fold.
REAL_VAL_FOLDS: tuple[tuple[str, ...], ...] = (
    VAL_REAL_SCENES,
    ("sd_nuscenes_v1.0-mini_scene-0061.pkl", "sd_nuscenes_v1.0-mini_scene-1077.pkl",
     "sd_training.tfrecord-00000-of-01000_2a1e44d405a6833f.pkl"),
    ("sd_nuscenes_v1.0-mini_scene-1094.pkl", "sd_waymo_v0.3_b36a6d0bc9e525bc.pkl"),
)
SCENE_SPLITS: tuple[str, ...] = ("train", "val", "train-minus-val", "eval")


def split_scene_files(files: list[Path], split: str, fold: int = 0) -> list[Path]:
    """ScenarioNet files of a named split: ``eval`` (the held-out scenes), ``train`` (all others), ``val`` (the
    validation scenes of ``fold`` among those) or ``train-minus-val`` (the training scenes without them)."""
    if split not in SCENE_SPLITS:
        raise ValueError(f"unknown split {split!r}: use one of {', '.join(SCENE_SPLITS)}")
    if not 0 <= fold < len(REAL_VAL_FOLDS):
        raise ValueError(f"unknown validation fold {fold}: use 0 to {len(REAL_VAL_FOLDS) - 1}")
    held, val = set(HELDOUT_REAL_SCENES), set(REAL_VAL_FOLDS[fold])
    keep = {"eval": lambda n: n in held, "train": lambda n: n not in held, "val": lambda n: n in val,
            "train-minus-val": lambda n: n not in held and n not in val}[split]
    return [f for f in files if keep(f.name)]


assert not set(EVAL_PG_SEEDS) & set(TRAIN_PG_SEED_RANGE), "evaluation seeds must be disjoint from training seeds"
assert not set(VAL_PG_SEEDS) & (set(TRAIN_PG_SEED_RANGE) | set(EVAL_PG_SEEDS)), "validation seeds must be their own"
assert not {n for f in REAL_VAL_FOLDS for n in f} & set(HELDOUT_REAL_SCENES), \
    "validation scenes must not be evaluation scenes"
assert sum(map(len, REAL_VAL_FOLDS)) == len({n for f in REAL_VAL_FOLDS for n in f}), "folds must not overlap"
