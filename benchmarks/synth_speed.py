"""Synthetic clip throughput: clips per second at 64 and 128 px, rendering alone and with saving.

python benchmarks/synth_speed.py --clips 10
"""

import argparse
import tempfile
import time
from pathlib import Path

import torch

from scene4d.io import save_clip
from scene4d.synth import SynthConfig, make_clip


def measure(config: SynthConfig, clips: int, folder: Path) -> tuple[float, float]:
    """Clips per second for rendering only, and for rendering plus writing the Clip folder."""
    render_seconds = save_seconds = 0.0
    for seed in range(clips):
        start = time.perf_counter()
        clip = make_clip(config, seed)
        render_seconds += time.perf_counter() - start
        start = time.perf_counter()
        save_clip(clip, folder / f"{config.kind}_{config.resolution}_{seed}")
        save_seconds += time.perf_counter() - start
    return clips / render_seconds, clips / (render_seconds + save_seconds)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--clips", type=int, default=10, help="clips per configuration")
    parser.add_argument("--frames", type=int, default=16)
    args = parser.parse_args()
    make_clip(SynthConfig(resolution=32, num_frames=2), seed=0)  # warm the texture cache
    print(f"torch {torch.__version__}, {torch.get_num_threads()} threads, {args.frames} frames per clip")
    print("| kind | px | supersample | clips/s (render) | clips/s (render + save) |")
    print("|---|---|---|---|---|")
    with tempfile.TemporaryDirectory() as folder:
        for resolution in (64, 128):
            for kind in ("spatial", "hybrid"):
                for supersample in (1, 2):
                    config = SynthConfig(
                        kind=kind, resolution=resolution, num_frames=args.frames, supersample=supersample
                    )
                    render_rate, total_rate = measure(config, args.clips, Path(folder))
                    print(f"| {kind} | {resolution} | {supersample} | {render_rate:.2f} | {total_rate:.2f} |")


if __name__ == "__main__":
    main()
