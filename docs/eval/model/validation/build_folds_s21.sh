#!/bin/bash
# Rebuild seed-0 fold models (outputs/ is not kept between sessions). Sequential, resumable by skipping done steps.
set -e
cd /work/main
export PYTHONPATH=/work/s21run  # sd-sim runs a snapshot of the package: edits here cannot reach a running job
S=.venv/bin/sd-sim
DEV=../shared/data/scenarionet/dev
[ -f data/pg_train/.done ] || { $S collect --source pg --split train --workers 2 --out data/pg_train --no-progress 2>&1 | tail -2; touch data/pg_train/.done; }
for K in 0 1 2; do
  F=""; [ $K -gt 0 ] && F="--fold $K"
  SUF=""; [ $K -gt 0 ] && SUF=$K
  [ -f data/real_train_minus_val${SUF}_streets/.done ] || { $S collect --source scenarionet --data-dir $DEV --split train-minus-val $F --others-per-t0 8 --others-min-speed 1 --min-drivable-share 0.5 --window-stride-s 0.5 --out data/real_train_minus_val${SUF}_streets --no-progress 2>&1 | tail -1; touch data/real_train_minus_val${SUF}_streets/.done; }
  [ -f data/real_val${SUF}/.done ] || { $S collect --source scenarionet --data-dir $DEV --split val $F --out data/real_val${SUF} --no-progress 2>&1 | tail -1; touch data/real_val${SUF}/.done; }
done
[ -f outputs/default_32x64/denoiser.safetensors ] || { mkdir -p outputs/default_32x64; for f in config.json autoencoder.safetensors denoiser.safetensors; do git show 3bc4742:checkpoints/default/$f > outputs/default_32x64/$f; done; }
for K in 0 1 2; do
  SUF=""; [ $K -gt 0 ] && SUF=$K
  D=data/real_train_minus_val${SUF}_streets
  O=outputs/s21/f$K
  if [ ! -f $O/.done ]; then
    mkdir -p $O; [ -f $O/autoencoder.safetensors ] || cp checkpoints/real/autoencoder.safetensors checkpoints/real/config.json $O/
    R=""; [ -f $O/train_state.pt ] && R="--resume"
    INIT="--init outputs/default_32x64"; [ -n "$R" ] && INIT=""
    date; $S train --stage diffusion $INIT $R --domain-flag --data data/pg_train --data $D --data $D --data $D --data $D --data $D --data $D --data $D --val data/real_val${SUF} --eval-every 100000 --out $O --steps 4000 --batch-size 32 --lr 1e-3 --threads 2 --seed 0 2>&1 | tail -2
    touch $O/.done
  fi
  if [ ! -f ${O}_ro/.done ]; then
    mkdir -p ${O}_ro; [ -f ${O}_ro/autoencoder.safetensors ] || cp $O/autoencoder.safetensors $O/config.json ${O}_ro/
    date; $S train --stage diffusion --init $O --data $D --val data/real_val${SUF} --eval-every 100000 --out ${O}_ro --steps 2000 --batch-size 32 --lr 5e-4 --threads 2 --seed 0 2>&1 | tail -2
    .venv/bin/python - ${O}_ro/config.json <<'PY'
import json, sys
p = sys.argv[1]; c = json.load(open(p)); c["model"]["trajectory_overlap"] = True; json.dump(c, open(p, "w"), indent=1)
PY
    touch ${O}_ro/.done
  fi
done
date; echo ALL DONE
