"""DimensionX's ablations on the bundled model and its directors, held-out synth scenes (dataset seed 777).

Sections, each one table, every variant measured in the same run on the same scenes and seeds:

- ``control``: hybrid scenes (things can move) under a camera that only turns (pan / tilt, so
  camera motion is a homography): the base model, the S-Director alone, the T-Director alone and
  Switch-Once (S for the first k steps, then T; k from ``--switch-steps``, default 3), all asked
  for the same cameras and gamma = 1. Camera:
  rotation of the last frame relative to the first, estimated from the frames, against the
  requested one, and the share of the renders' image shift (``eval.camera.image_shift``) the
  video carries out. Objects: flow the camera's homography does not explain (px / frame).
- ``temporal``: temporal scenes, fixed camera, gamma = 1: base against T-Director. Static-camera
  score (% of the diagonal per frame; the curation test passes below 0.03) and dynamic degree
  (flow on the pixels the objects cover).
- ``4d``: identity-preserving 4D generation, K = 6 views (orbit-left 30 degrees) x N = 6 times:
  no sharing (each view's video from noise, no blending, no refinement), + reference latent
  sharing and blending (eq. 4-5), + SDEdit refinement (eq. 6). View synchronisation (pixels whose
  dense flow is forward-backward consistent and fits one fundamental matrix, between neighbouring
  views at one time, DimensionX's Mat. Pix.) and temporal consistency (SSIM of consecutive frames).
- ``interp``: one spatial scene per named move; frames 0 and 15 given (with their cameras), 14
  generated, PSNR / SSIM against the renders: the matched S-Director against none. Also how
  often the move read off the two images alone (256 px renders) is the true one.

    python benchmarks/directors.py --scenes 2
"""

import argparse

import numpy as np
import torch
from generation import held_out_clip

from scene4d.curate.flow import static_camera_score
from scene4d.directors.lora import use_director
from scene4d.directors.schedule import DirectorSchedule, single, switch_once
from scene4d.eval.camera import chained_rotation, dynamic_degree, image_shift
from scene4d.eval.consistency import residual_motion, temporal_consistency, view_synchronisation
from scene4d.eval.metrics import psnr, ssim
from scene4d.geometry import TRAJECTORY_NAMES
from scene4d.geometry.rotations import rotation_error_deg
from scene4d.models.bundle import ModelBundle, load_bundle
from scene4d.pipelines.four_d import FourDConfig, generate_4d
from scene4d.pipelines.generate import TEMPORAL, generate_clip
from scene4d.pipelines.interpolate import plan_interpolation
from scene4d.synth import SynthConfig, make_clip

CONTROL_MOVES = ("pan-left", "pan-right", "tilt-up", "tilt-down")


def control_schedules(move: str, switch_steps: list[int]) -> dict[str, DirectorSchedule]:
    schedules = {"base": single(None), "S-Director": single(move), "T-Director": single(TEMPORAL)}
    return schedules | {f"Switch-Once at step {k}": switch_once(move, TEMPORAL, k) for k in switch_steps}


def run_control(
    bundle: ModelBundle, scenes: int, steps: int, switch_steps: list[int]
) -> dict[str, list[tuple[float, float, float, float]]]:
    """Per variant: (rotation error, achieved rotation, residual motion, share of the image shift) of
    every scene and move."""
    rows: dict[str, list[tuple[float, float, float, float]]] = {}
    identity = torch.eye(3, dtype=torch.float64)
    for m_index, move in enumerate(CONTROL_MOVES):
        for scene in range(scenes):
            clip, cameras = held_out_clip("hybrid", move, 2000 + m_index * scenes + scene, bundle.info.resolution)
            truth = cameras.R[-1].double()
            requested_shift = image_shift(clip.frames)
            for label, schedule in control_schedules(move, switch_steps).items():
                video = generate_clip(bundle, clip.frames[[0]], cameras, [0], 1.0, steps, seed=scene, schedule=schedule)
                estimated = chained_rotation(video.frames, cameras.K[0])  # once: its flow is the slow part
                error, achieved = (
                    (float("nan"), float("nan")) if estimated is None
                    else (rotation_error_deg(truth, estimated), rotation_error_deg(identity, estimated))
                )  # fmt: skip
                carried = float(image_shift(video.frames) @ requested_shift / (requested_shift @ requested_shift))
                rows.setdefault(label, []).append((error, achieved, residual_motion(video.frames), carried))
            print(move, scene, {label: np.round(values[-1], 2).tolist() for label, values in rows.items()}, flush=True)
    return rows


def run_temporal(bundle: ModelBundle, scenes: int, steps: int) -> dict[str, list[tuple[float, float, float]]]:
    """Per variant: (static-camera score, dynamic degree on the objects, on the background) of every scene."""
    rows: dict[str, list[tuple[float, float, float]]] = {}
    for scene in range(scenes):
        clip, cameras = held_out_clip("temporal", None, 3000 + scene, bundle.info.resolution)
        objects = np.repeat((clip.masks > 0).any(axis=0, keepdims=True), len(clip), axis=0)
        for label, schedule in (("base", single(None)), ("T-Director", single(TEMPORAL))):
            video = generate_clip(bundle, clip.frames[[0]], cameras, [0], 1.0, steps, seed=scene, schedule=schedule)
            degrees = dynamic_degree(video.frames, objects), dynamic_degree(video.frames, ~objects)
            rows.setdefault(label, []).append((static_camera_score(video.frames), *degrees))
    return rows


def run_4d(bundle: ModelBundle, scenes: int, steps: int) -> dict[str, list[tuple[float, float]]]:
    """Per variant: (view synchronisation, temporal consistency) of every scene."""
    common = dict(trajectory="orbit-left", magnitude=30.0, num_views=6, num_times=6, steps=steps)
    common |= dict(spatial_director="orbit-left", temporal_director=TEMPORAL)
    variants = {
        "no sharing": FourDConfig(**common, share_reference=False, refine_strengths=()),
        "+ reference latent (eq. 4-5)": FourDConfig(**common, refine_strengths=()),
        "+ refinement (eq. 6)": FourDConfig(**common),
    }
    rows: dict[str, list[tuple[float, float]]] = {}
    for scene in range(scenes):
        clip, _ = held_out_clip("temporal", None, 4000 + scene, bundle.info.resolution)
        for label, config in variants.items():
            result = generate_4d(bundle, clip.frames[0], FourDConfig(**{**config.__dict__, "seed": scene}))
            views = [view.frames for view in result.views]
            smooth = float(np.mean([temporal_consistency(frames) for frames in views]))
            rows.setdefault(label, []).append((view_synchronisation(views), smooth))
        print("4d", scene, {label: np.round(values[-1], 3).tolist() for label, values in rows.items()}, flush=True)
    return rows


def opposite(move: str) -> str:
    """The move in the other direction (pan-left -> pan-right, dolly-in -> dolly-out, ...)."""
    pairs = (("left", "right"), ("up", "down"), ("ccw", "cw"), ("in", "out"))
    stem, _, side = move.rpartition("-")
    flipped = {a: b for pair in pairs for a, b in (pair, pair[::-1])}
    return f"{stem}-{flipped[side]}"


def run_interp(bundle: ModelBundle, steps: int) -> tuple[list[dict], int]:
    """Per move: PSNR / SSIM of the 14 in-between frames with the matched S-Director, none, and the opposite one."""
    rows, correct = [], 0
    for m_index, move in enumerate(TRAJECTORY_NAMES):
        clip, _ = held_out_clip("spatial", move, 5000 + m_index, bundle.info.resolution)
        ends = [clip.frames[0], clip.frames[15]]
        images, path, positions, matched, _ = plan_interpolation(
            bundle, ends, 16, clip.cameras[[0, 15]], lambda _: None
        )
        row = {"move": move, "matched": matched}
        for label, name in (("director", matched), ("none", None), ("opposite", opposite(matched))):
            video = generate_clip(bundle, images, path, positions, 0.0, steps, seed=0, schedule=single(name))
            image, target = torch.from_numpy(video.frames[1:15]), torch.from_numpy(clip.frames[1:15])
            row[label] = (float(psnr(image, target).mean()), float(ssim(image, target).mean()))
        seed = int(np.random.SeedSequence([777, 5000 + m_index]).generate_state(1)[0])
        sharp = make_clip(SynthConfig(kind="spatial", resolution=256, num_frames=16, trajectory=move), seed)
        try:
            read = plan_interpolation(bundle, [sharp.frames[0], sharp.frames[15]], 16, None, lambda _: None)[3]
        except Exception as error:  # noqa: BLE001 -- counted as a miss, reported
            read = f"failed: {error}"
        correct += read == move
        row["read_from_images"] = read
        rows.append(row)
        print(row, flush=True)
    return rows, correct


def load_directors(bundle: ModelBundle) -> None:
    """Every director the model ships (a section that needs a missing one stops with its name)."""
    for name in bundle.directors:
        use_director(bundle.denoiser, name, bundle.directors)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", default=None, help="model folder with directors/ (default: the bundled model)")
    parser.add_argument("--scenes", type=int, default=2, help="held-out scenes per move / variant")
    parser.add_argument("--steps", type=int, default=25)
    parser.add_argument("--sections", default="control,temporal,4d,interp")
    parser.add_argument("--switch-steps", default="3", help="control: Switch-Once variants, comma-separated")
    args = parser.parse_args()
    torch.set_num_threads(2)
    bundle = load_bundle(args.model)
    load_directors(bundle)
    sections = args.sections.split(",")
    if "control" in sections:
        rows = run_control(bundle, args.scenes, args.steps, [int(k) for k in args.switch_steps.split(",")])
        print(
            "\n| variant | rot. error deg (median) | rotation achieved deg (median) "
            "| image shift carried out (median) | object motion px/frame (mean) |"
        )
        print("|---|---|---|---|---|")
        for label, values in rows.items():
            table = np.array(values)
            print(
                f"| {label} | {np.nanmedian(table[:, 0]):.1f} | {np.nanmedian(table[:, 1]):.1f} "
                f"| {np.median(table[:, 3]):.2f} | {table[:, 2].mean():.3f} |"
            )
        requested = [
            rotation_error_deg(torch.eye(3), held_out_clip("hybrid", m, 0, 64)[1].R[-1]) for m in CONTROL_MOVES
        ]
        print(f"requested rotation: {np.mean(requested):.1f} deg (mean of the moves' first scene)")
    if "temporal" in sections:
        rows = run_temporal(bundle, args.scenes * 2, args.steps)
        print("\n| variant | static-camera score (median) | passes < 0.03 | dynamic degree, objects / background |")
        print("|---|---|---|---|")
        for label, values in rows.items():
            table = np.array(values)
            passes = int((table[:, 0] < 0.03).sum())
            degrees = f"{table[:, 1].mean():.3f} / {table[:, 2].mean():.3f}"
            print(f"| {label} | {np.median(table[:, 0]):.4f} | {passes}/{len(table)} | {degrees} |")
    if "4d" in sections:
        rows = run_4d(bundle, args.scenes, args.steps)
        print("\n| variant | view sync. (matched pixels) | temporal SSIM |\n|---|---|---|")
        for label, values in rows.items():
            table = np.array(values)
            print(f"| {label} | {table[:, 0].mean():.0f} | {table[:, 1].mean():.4f} |")
    if "interp" in sections:
        rows, correct = run_interp(bundle, args.steps)
        print("\n| move | matched | matched S-Director PSNR / SSIM | none | opposite move's | read from images |")
        print("|---|---|---|---|---|---|")
        for row in rows:
            cells = " | ".join(f"{row[key][0]:.2f} / {row[key][1]:.3f}" for key in ("director", "none", "opposite"))
            print(f"| {row['move']} | {row['matched']} | {cells} | {row['read_from_images']} |")
        means = {key: np.mean([row[key] for row in rows], axis=0) for key in ("director", "none", "opposite")}
        cells = " | ".join(f"{value[0]:.2f} / {value[1]:.3f}" for value in means.values())
        print(f"| **mean** | | {cells} | {correct}/{len(rows)} |")


if __name__ == "__main__":
    main()
