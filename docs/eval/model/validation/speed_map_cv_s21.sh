#!/bin/bash
# The speed map's rule (docs/model.md, *A speed map fitted on unseen maps*): nested cross-validation on the seed-0
# fold models.
set -e
cd /work/s21run  # a snapshot of the package: edits in /work/main cannot reach a running job
[ -e data ] || ln -s /work/main/data data; [ -e outputs ] || ln -s /work/main/outputs outputs
run() { /work/main/.venv/bin/python -m "$@"; }
# every fold model samples with checkpoints/real's per-model choices (as the sweep's shipped setting does)
/work/main/.venv/bin/python - <<'PY'
import json
ship = json.load(open("checkpoints/real/config.json"))["model"]
for k in range(3):
    p = f"outputs/s21/f{k}_ro/config.json"; c = json.load(open(p))
    for n in ("sampler", "sampler_steps", "guidance_scale", "guidance_interval", "guidance_contrast",
              "offroad_vehicle_scale", "misaligned_vehicle_scale", "ego_flag", "real_flag", "lane_snap_deg",
              "refill_rounds", "draws_per_scene", "trajectory_overlap"):
        c["model"][n] = ship[n]
    json.dump(c, open(p, "w"), indent=1)
PY
V=(data/real_val data/real_val1 data/real_val2)
for K in 0 1 2; do
  O=outputs/s21/f${K}_sm; rm -rf $O; mkdir -p $O; cp outputs/s21/f${K}_ro/*.safetensors outputs/s21/f${K}_ro/config.json $O/
  PAIRS=""; for J in 0 1 2; do [ $J -ne $K ] && PAIRS="$PAIRS outputs/s21/f${J}_ro ${V[$J]}"; done
  date; run sd_sim_plugin.model.speed_map $PAIRS --write-to $O --limit 39 --seeds 6 --threads 2
done
SW="--limit 39 --threads 2 --guidance 1 --seeds 6 --per-scene"
date; run sd_sim_plugin.model.sampler_sweep outputs/s21/f0_ro data/real_val --fold outputs/s21/f1_ro data/real_val1 --fold outputs/s21/f2_ro data/real_val2 $SW
date; run sd_sim_plugin.model.sampler_sweep outputs/s21/f0_sm data/real_val --fold outputs/s21/f1_sm data/real_val1 --fold outputs/s21/f2_sm data/real_val2 $SW
date; echo CV DONE
