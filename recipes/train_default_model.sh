#!/usr/bin/env bash
# The recipe of the bundled default model (scene4d/assets/default_model), as run for BENCHMARKS.md.
# Data: 1700 synthetic 64x64 clips of 16 frames (seeds 11-13; benchmarks hold out seed 777).
# Order: this script (STAGE=base), then recipes/train_directors.sh with BASE=$RUN/model_run/model, then
# this script with STAGE=finetune, which replaces the bundled denoiser and keeps the directors.
set -euo pipefail
S4D=${S4D:-.venv/bin/scene4d}
DATA=${DATA:-data/train}
RUN=${RUN:-outputs}
STAGE=${STAGE:-base}

if [ "$STAGE" = base ]; then
    $S4D synth --out "$DATA/spatial" --kind spatial --num 1200 --res 64 --frames 16 --supersample 2 --seed 11
    $S4D synth --out "$DATA/hybrid" --kind hybrid --num 300 --res 64 --frames 16 --supersample 2 --seed 12
    $S4D synth --out "$DATA/temporal" --kind temporal --num 200 --res 64 --frames 16 --supersample 2 --seed 13
    $S4D train vae --data "$DATA/spatial" --out "$RUN/vae_run" --steps 1000 --batch-size 32 --res 64 --seed 0
    # run as --steps 3000, then resumed with --steps 6000 (a resumed run equals a straight one)
    $S4D train model --preset tiny --data "$DATA" --out "$RUN/model_run" --vae "$RUN/vae_run/vae" \
        --steps 6000 --batch-size 4 --res 64 --seed 0
    rm -rf scene4d/assets/default_model  # the directors too: train them after this stage
    cp -r "$RUN/model_run/model" scene4d/assets/default_model
elif [ "$STAGE" = finetune ]; then
    # 10% still samples (a still camera on a still scene), which --motion 0 with a still camera asks for;
    # the first 600 spatial, 100 hybrid and 100 temporal clips of the data above (same seeds)
    STILL=${STILL:-data/still}
    $S4D synth --out "$STILL/spatial" --kind spatial --num 600 --res 64 --frames 16 --supersample 2 --seed 11
    $S4D synth --out "$STILL/hybrid" --kind hybrid --num 100 --res 64 --frames 16 --supersample 2 --seed 12
    $S4D synth --out "$STILL/temporal" --kind temporal --num 100 --res 64 --frames 16 --supersample 2 --seed 13
    # run as --steps 800, then resumed with --steps 1600
    $S4D train model --preset tiny --data "$STILL" --out "$RUN/still_run" --init "$RUN/model_run/model" \
        --fraction-still 0.1 --lr 2e-4 --steps 1600 --batch-size 4 --res 64 --seed 0
    cp "$RUN/still_run/model/denoiser/"* scene4d/assets/default_model/denoiser/
else
    echo "STAGE must be base or finetune, got $STAGE" >&2
    exit 2
fi
