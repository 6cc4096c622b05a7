"""Generation quality, control and speed on held-out synth scenes (dataset seed 777; training used 11-13).

Sections, each one table:

- ``views``: for every named trajectory, ``--scenes`` spatial clips (16 frames); frame 0 is the
  condition, frames 1-15 are scored (PSNR / SSIM against the renders) for the model and two
  baselines in the same run: (a) repeating the input frame, (b) the model with its Plücker
  rays zeroed. Also 3 condition views (frames 0, 7, 15) against 1, scored on the other 13.
- ``camera``: rotation of the last camera relative to the first, estimated from the frames
  (DIS flow + essential matrix, chained over consecutive frames), against the requested one;
  the same estimator on the ground-truth renders gives its own error floor.
- ``motion``: 2 x ``--scenes`` temporal clips (fixed camera, moving objects); dynamic degree
  (mean flow on object pixels) of videos generated with gamma = 0, 0.25, 0.5, 1, and of the
  ground-truth renders; the same on the background pixels, where a still camera should show none.
- ``speed``: 16 frames with 25 steps, wall time and peak resident memory.

    python benchmarks/generation.py --scenes 2 [--sections speed,views,motion]
"""

import argparse
import resource
import time

import numpy as np
import torch

from scene4d.eval.camera import chained_rotation, dynamic_degree
from scene4d.eval.metrics import psnr, ssim
from scene4d.geometry import TRAJECTORY_NAMES, Cameras
from scene4d.geometry.rotations import rotation_error_deg
from scene4d.models.bundle import ModelBundle, load_bundle
from scene4d.pipelines.generate import generate_clip
from scene4d.synth import SynthConfig, make_clip

HELD_OUT_SEED = 777
GAMMAS = (0.0, 0.25, 0.5, 1.0)
SECTIONS = ("speed", "views", "motion")


class ZeroCameras(torch.nn.Module):
    """Baseline (b): the same denoiser with its camera conditioning zeroed."""

    def __init__(self, denoiser: torch.nn.Module) -> None:
        super().__init__()
        self.denoiser = denoiser

    def forward(self, latents, sigma, cond_mask, plucker, **conditioning):
        return self.denoiser(latents, sigma, cond_mask, torch.zeros_like(plucker), **conditioning)


def held_out_clip(kind: str, trajectory: str | None, index: int, resolution: int):
    seed = int(np.random.SeedSequence([HELD_OUT_SEED, index]).generate_state(1)[0])
    config = SynthConfig(kind=kind, resolution=resolution, num_frames=16, trajectory=trajectory)
    clip = make_clip(config, seed)
    relative = clip.cameras.relative_to(0)
    return clip, relative


def scored(frames: np.ndarray, truth: np.ndarray, keep: list[int]) -> tuple[float, float]:
    image, target = torch.from_numpy(frames[keep]), torch.from_numpy(truth[keep])
    return float(psnr(image, target).mean()), float(ssim(image, target).mean())


def run_views(bundle: ModelBundle, scenes: int, steps: int) -> list[dict]:
    rows = []
    blind = ModelBundle(bundle.info, bundle.vae, ZeroCameras(bundle.denoiser))
    for t_index, name in enumerate(TRAJECTORY_NAMES):
        for scene in range(scenes):
            clip, cameras = held_out_clip("spatial", name, t_index * scenes + scene, bundle.info.resolution)
            one = generate_clip(bundle, clip.frames[[0]], cameras, [0], 0.0, steps, seed=scene)
            zero = generate_clip(blind, clip.frames[[0]], cameras, [0], 0.0, steps, seed=scene)
            three = generate_clip(bundle, clip.frames[[0, 7, 15]], cameras, [0, 7, 15], 0.0, steps, seed=scene)
            targets, others = list(range(1, 16)), [k for k in range(1, 15) if k != 7]
            repeat = np.repeat(clip.frames[:1], 16, axis=0)
            true_rotation = cameras.R[-1].double()
            rows.append(
                {
                    "trajectory": name,
                    "model": scored(one.frames, clip.frames, targets),
                    "repeat": scored(repeat, clip.frames, targets),
                    "zero_camera": scored(zero.frames, clip.frames, targets),
                    "one_view_on_others": scored(one.frames, clip.frames, others),
                    "three_views_on_others": scored(three.frames, clip.frames, others),
                    "rotation_error_model": rotation_error(one.frames, cameras, true_rotation),
                    "rotation_error_truth": rotation_error(clip.frames, cameras, true_rotation),
                    "rotation_deg": rotation_error_deg(torch.eye(3, dtype=torch.float64), true_rotation),
                }
            )
            print(rows[-1]["trajectory"], rows[-1]["model"], rows[-1]["repeat"], rows[-1]["zero_camera"], flush=True)
    return rows


def rotation_error(frames: np.ndarray, cameras: Cameras, true_rotation: torch.Tensor) -> float:
    estimated = chained_rotation(frames, cameras.K[0])
    return float("nan") if estimated is None else rotation_error_deg(true_rotation, estimated)


def run_motion(bundle: ModelBundle, scenes: int, steps: int) -> dict[str, list[tuple[float, float]]]:
    """Per video source (the renders, then the model at each gamma): (object, background) dynamic
    degree of each scene. The camera is still, so background flow is flicker, not motion."""
    degrees: dict[str, list[tuple[float, float]]] = {"ground truth": []} | {f"{g:g}": [] for g in GAMMAS}
    for scene in range(scenes):
        clip, cameras = held_out_clip("temporal", None, 1000 + scene, bundle.info.resolution)
        objects = np.repeat((clip.masks > 0).any(axis=0, keepdims=True), 16, axis=0)
        videos = {"ground truth": clip.frames}
        for gamma in GAMMAS:
            video = generate_clip(bundle, clip.frames[[0]], cameras, [0], gamma, steps, seed=scene)
            videos[f"{gamma:g}"] = video.frames
        for source, frames in videos.items():
            degrees[source].append((dynamic_degree(frames, objects), dynamic_degree(frames, ~objects)))
    return degrees


def run_speed(bundle: ModelBundle) -> tuple[float, float]:
    clip, cameras = held_out_clip("spatial", "orbit-left", 5000, bundle.info.resolution)
    start = time.perf_counter()
    generate_clip(bundle, clip.frames[[0]], cameras, [0], 0.0, 25, seed=0)
    return time.perf_counter() - start, resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def mean_pair(rows: list[dict], key: str) -> tuple[float, float]:
    values = np.array([row[key] for row in rows])
    return float(values[:, 0].mean()), float(values[:, 1].mean())


def table_row(label: str, rows: list[dict]) -> str:
    """Mean scores, median rotation errors (model / ground-truth renders) and the mean true angle."""
    cells = [label]
    for key in ("model", "repeat", "zero_camera"):
        value = mean_pair(rows, key)
        cells.append(f"{value[0]:.2f} / {value[1]:.3f}")
    errors = np.nanmedian([row["rotation_error_model"] for row in rows])
    floor = np.nanmedian([row["rotation_error_truth"] for row in rows])
    angle = np.mean([row["rotation_deg"] for row in rows])
    cells.append(f"{errors:.1f} / {floor:.1f} ({angle:.1f})")
    return "| " + " | ".join(cells) + " |"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", default=None, help="model folder (default: the bundled model)")
    parser.add_argument("--scenes", type=int, default=2, help="held-out scenes per trajectory / for motion")
    parser.add_argument("--steps", type=int, default=25)
    parser.add_argument("--sections", default=",".join(SECTIONS), help="comma-separated: " + ", ".join(SECTIONS))
    args = parser.parse_args()
    sections = args.sections.split(",")
    torch.set_num_threads(2)
    bundle = load_bundle(args.model)
    if "speed" in sections:
        seconds, peak_mb = run_speed(bundle)
        print(f"speed: 16 frames x 25 steps at {bundle.info.resolution}px: {seconds:.1f} s, peak RSS {peak_mb:.0f} MB")
    if "views" in sections:
        print_views(run_views(bundle, args.scenes, args.steps))
    if "motion" in sections:
        print_motion(run_motion(bundle, args.scenes * 2, args.steps))


def print_views(rows: list[dict]) -> None:
    print("\n| trajectory | model PSNR / SSIM | repeat input | zero camera | rot. err model / truth (of) deg |")
    print("|---|---|---|---|---|")
    for name in TRAJECTORY_NAMES:
        print(table_row(name, [row for row in rows if row["trajectory"] == name]))
    print(table_row("**mean**", rows))
    one, three = mean_pair(rows, "one_view_on_others"), mean_pair(rows, "three_views_on_others")
    print(
        f"\ncondition views (scored on frames other than 0, 7, 15): 1 view {one[0]:.2f} dB / {one[1]:.3f}, "
        f"3 views {three[0]:.2f} dB / {three[1]:.3f}"
    )


def print_motion(degrees: dict[str, list[tuple[float, float]]]) -> None:
    print("\n| video | dynamic degree, object pixels (per scene) | mean | background pixels (mean) |")
    print("|---|---|---|---|")
    for source, values in degrees.items():
        objects, background = np.array(values).T
        label = source if source == "ground truth" else f"model, gamma {source}"
        per_scene = " / ".join(f"{v:.3f}" for v in objects)
        print(f"| {label} | {per_scene} | {objects.mean():.3f} | {background.mean():.3f} |")


if __name__ == "__main__":
    main()
