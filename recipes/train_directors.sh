#!/usr/bin/env bash
# The recipe of the bundled directors (scene4d/assets/default_model/directors), as run for BENCHMARKS.md:
# one S-Director per named move (24 synthetic spatial clips each) and a T-Director (120 temporal clips),
# LoRA rank 16 on the frozen base model (BASE: the base stage of recipes/train_default_model.sh, before its
# still-sample fine-tune), 300 steps at lr 1e-3. Benchmarks hold out dataset seed 777.
set -euo pipefail
S4D=${S4D:-.venv/bin/scene4d}
DATA=${DATA:-data/directors}
RUN=${RUN:-outputs/directors}
BASE=${BASE:-outputs/model_run/model}
MOVES="pan-left pan-right tilt-up tilt-down roll-cw roll-ccw truck-left truck-right pedestal-up pedestal-down
    dolly-in dolly-out orbit-left orbit-right orbit-up orbit-down"

for move in $MOVES; do
    $S4D synth --out "$DATA/spatial/$move" --kind spatial --trajectory "$move" --num 24 --res 64 --frames 16 \
        --supersample 2 --seed 21
done
$S4D synth --out "$DATA/temporal" --kind temporal --num 120 --res 64 --frames 16 --supersample 2 --seed 22
for move in $MOVES; do
    $S4D train director --kind spatial --trajectory "$move" --data "$DATA/spatial/$move" \
        --out "$RUN/$move.safetensors" --base "$BASE" --steps 300 --seed 0
done
$S4D train director --kind temporal --data "$DATA/temporal" --out "$RUN/temporal.safetensors" --base "$BASE" \
    --steps 300 --seed 0
mkdir -p scene4d/assets/default_model/directors
cp "$RUN"/*.safetensors scene4d/assets/default_model/directors/
