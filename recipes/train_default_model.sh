#!/usr/bin/env bash
# The recipe of the bundled default model (scene4d/assets/default_model), as run for BENCHMARKS.md.
# Data: 1700 synthetic 64x64 clips of 16 frames (seeds 11-13; benchmarks hold out seed 777).
set -euo pipefail
S4D=${S4D:-.venv/bin/scene4d}
DATA=${DATA:-data/train}
RUN=${RUN:-outputs}

$S4D synth --out "$DATA/spatial" --kind spatial --num 1200 --res 64 --frames 16 --supersample 2 --seed 11
$S4D synth --out "$DATA/hybrid" --kind hybrid --num 300 --res 64 --frames 16 --supersample 2 --seed 12
$S4D synth --out "$DATA/temporal" --kind temporal --num 200 --res 64 --frames 16 --supersample 2 --seed 13
$S4D train vae --data "$DATA/spatial" --out "$RUN/vae_run" --steps 1000 --batch-size 32 --res 64 --seed 0
$S4D train model --preset tiny --data "$DATA" --out "$RUN/model_run" --vae "$RUN/vae_run/vae" \
    --steps 3000 --batch-size 4 --res 64 --seed 0
rm -rf scene4d/assets/default_model
cp -r "$RUN/model_run/model" scene4d/assets/default_model
