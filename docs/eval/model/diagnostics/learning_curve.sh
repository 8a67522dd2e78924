#!/bin/bash
# Diagnosis (no choice): held-out realism of models trained on fewer real street scenes (fold models: 5, 5, 6
# scenes) against checkpoints/real (8), same sampling settings, per-type density, three samplings.
cd "$(dirname "$0")/../../../.."  # the repository root
.venv/bin/python -m sd_sim_plugin.model.sampler_sweep checkpoints/real outputs/real_heldout --fold outputs/f0_ro_traj outputs/real_heldout --fold outputs/f1_ro_traj outputs/real_heldout --fold outputs/f2_ro_traj outputs/real_heldout --limit 87 --threads 2 --guidance 1 --steps 6 --ego-flag 0 --real-flag 1 --lane-snap 180 --seeds 3
