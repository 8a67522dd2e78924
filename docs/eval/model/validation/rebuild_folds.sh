#!/bin/bash
# Rebuild the three real-scene validation fold models of checkpoints/real's recipe for one training seed
# (docs/model.md, *Cross-validated sampling settings*; outputs/ and data/ are not kept between sessions).
#
#   bash docs/eval/model/validation/rebuild_folds.sh [SEED]      (from the repository root; default seed 0)
#
# Makes data/ (PG training windows and the folds' real windows), outputs/default_32x64 (the earlier default the
# recipe starts from), outputs/realval_ae (the folds' autoencoder: stage 1 without fold 0's validation scenes, the
# eighth session's recipe) and outputs/folds_sSEED/f{0,1,2}_ro, each sampling with checkpoints/real's per-model
# choices. Every step is skipped when done and an interrupted training resumes, so run it again after a stop.
# About 75 minutes on two cores (twenty-first session: collection about 5 min, stage 2 14-16 min and its
# continuation 7 min per fold; the autoencoder 207 s alone). Run it from a separate clone of the repository if you edit the
# package meanwhile: a running job imports parts of it lazily. Then, e.g.:
#   .venv/bin/python -m sd_sim_plugin.model.sampler_sweep outputs/folds_s0/f0_ro data/real_val \
#     --fold outputs/folds_s0/f1_ro data/real_val1 --fold outputs/folds_s0/f2_ro data/real_val2 \
#     --limit 39 --threads 2 --guidance 1 --seeds 6 --per-scene
set -euo pipefail
SEED=${1:-0}
S=.venv/bin/sd-sim
[[ "$SEED" =~ ^[0-9]+$ ]] || { echo "rebuild_folds.sh: SEED must be a whole number (got '$SEED')" >&2; exit 2; }
[ -x "$S" ] || { echo "rebuild_folds.sh: no $S here; run it from the repository root after 'make test'" >&2; exit 2; }
DEV=../shared/data/scenarionet/dev
ROOT=outputs/folds_s$SEED

collect() {  # OUT ARGS...: one collection, once
  local out=$1; shift
  [ -f "$out/.done" ] || { $S collect "$@" --out "$out" --no-progress; touch "$out/.done"; }
}

train() {  # OUT INIT ARGS...: one training stage, resumed if interrupted, skipped when done
  local out=$1 init=$2; shift 2
  [ -f "$out/.done" ] && return
  if compgen -G "$out/train_state_*.json" > /dev/null; then
    $S train "$@" --out "$out" --resume
  else
    $S train "$@" --out "$out" --init "$init"
  fi
  touch "$out/.done"
}

collect data/pg_train --source pg --split train --workers 2
collect data/real_train_minus_val --source scenarionet --data-dir $DEV --split train-minus-val --others-per-t0 8 \
  --window-stride-s 0.5
STREETS=(--others-per-t0 8 --others-min-speed 1 --min-drivable-share 0.5 --window-stride-s 0.5)
for K in 0 1 2; do
  SUF=$([ $K -gt 0 ] && echo $K || true)
  FOLD=$([ $K -gt 0 ] && echo "--fold $K" || true)
  collect data/real_train_minus_val${SUF}_streets --source scenarionet --data-dir $DEV --split train-minus-val \
    $FOLD "${STREETS[@]}"
  collect data/real_val$SUF --source scenarionet --data-dir $DEV --split val $FOLD
done

if [ ! -f outputs/default_32x64/denoiser.safetensors ]; then
  mkdir -p outputs/default_32x64
  for f in config.json autoencoder.safetensors denoiser.safetensors; do
    git show 3bc4742:checkpoints/default/$f > outputs/default_32x64/$f
  done
fi
R=data/real_train_minus_val
train outputs/realval_ae outputs/default_32x64 --stage autoencoder --data data/pg_train --data $R --data $R \
  --data $R --val data/real_val --eval-every 100000 --steps 3000 --batch-size 16 --lr 1e-3 --threads 2

for K in 0 1 2; do
  SUF=$([ $K -gt 0 ] && echo $K || true)
  D=data/real_train_minus_val${SUF}_streets
  O=$ROOT/f$K
  mkdir -p "$O" "${O}_ro"
  [ -f "$O/autoencoder.safetensors" ] || cp outputs/realval_ae/autoencoder.safetensors outputs/realval_ae/config.json "$O/"
  train "$O" outputs/default_32x64 --stage diffusion --domain-flag --data data/pg_train --data $D --data $D \
    --data $D --data $D --data $D --data $D --data $D --val data/real_val$SUF --eval-every 100000 --steps 4000 \
    --batch-size 32 --lr 1e-3 --threads 2 --seed "$SEED"
  [ -f "${O}_ro/autoencoder.safetensors" ] || cp "$O/autoencoder.safetensors" "$O/config.json" "${O}_ro/"
  train "${O}_ro" "$O" --stage diffusion --data $D --val data/real_val$SUF --eval-every 100000 --steps 2000 \
    --batch-size 32 --lr 5e-4 --threads 2 --seed "$SEED"
  # sample as checkpoints/real does (the sweep sets the same choices on every fold; other tools use the folder's)
  .venv/bin/python - "${O}_ro/config.json" <<'PY'
import json
import sys

from sd_sim_plugin.model.checkpoint import load_config
from sd_sim_plugin.model.config import PER_MODEL_CHOICE

ship, _ = load_config("checkpoints/real")  # with defaults for fields newer than its config.json
path = sys.argv[1]
cfg = json.load(open(path))
cfg["model"].update({name: getattr(ship, name) for name in PER_MODEL_CHOICE})
json.dump(cfg, open(path, "w"), indent=1)
PY
done
echo "fold models of seed $SEED: $ROOT/f{0,1,2}_ro"
