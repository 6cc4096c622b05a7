"""Curation accuracy and throughput on synth clips with exact ground truth (seeds 5000+).

Sections, each one table:

- ``poses``: one hybrid clip (moving objects) per named trajectory, 256x256, 32 frames, with 6
  static background props (``SynthConfig.props``; the default synth background of ground plane
  and walls is nearly planar, a degenerate case for SfM). Cameras estimated with the
  flow-based motion masks (the default), with no masks, and with the ground-truth instance masks
  (what a segmentation model would give). Per clip: registered (>= 80% of frames), median over
  frames of the rotation error and of the translation-direction error relative to frame 0 (the
  similarity-invariant comparison: global rotation, translation and scale drop out), and the
  seconds for masks + SfM. Translation direction is skipped for rotation-only moves.
- ``static``: the static-camera test on ``--per-kind`` spatial, temporal and hybrid clips
  (128x128, 32 frames): accuracy of "camera is still" against kind == temporal.
- ``motion``: the motion strength of ``curate_frames`` (ground-truth depth as the depth
  estimator, aligned by eq. 2) on temporal clips (``--per-kind`` / 4 scenes, each at object
  speeds 0.4, 0.8, 1.2 and 1.6: same scene, motions scaled) and on ``--per-kind`` spatial
  clips and ``--per-kind`` / 2 hybrid clips, once with the default flow masks and once with
  the instance masks (what a segmentation model would give): Spearman correlation with the
  object speed within each scene, with the exact eq. 4 strength of synth over all clips, the
  strengths that spatial clips (no object motion) get, and how many clips get their kind as
  label.
- ``depth``: eq. 2 on synth depth distorted by a random affine map d_rel = (d - b) / a, with
  1% of pixels as the sparse SfM depth: median relative error of the aligned depth.
- ``throughput``: ``--videos`` hybrid 256x256 videos of 32 frames (mp4, 6 props) through the
  whole ``scene4d curate`` command, with 1 and with 2 workers: wall seconds (start-up
  included), and whether both runs wrote the same index.

    python benchmarks/curation.py --per-kind 12
"""

import argparse
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import torch

from scene4d.curate.depth import align_depth
from scene4d.curate.flow import static_camera_score
from scene4d.curate.frames import SourceFrames
from scene4d.curate.masks import MaskConfig, motion_masks, sfm_mask
from scene4d.curate.pipeline import CurateConfig, curate_frames
from scene4d.curate.sfm import estimate_cameras
from scene4d.errors import Scene4DError
from scene4d.eval.camera import relative_pose_errors
from scene4d.geometry import MOVES, TRAJECTORY_NAMES
from scene4d.io import Clip
from scene4d.io.media import write_video
from scene4d.synth import SynthConfig, make_clip

SEED = 5000


def sfm_masks(clip: Clip, source: str) -> np.ndarray | None:
    """What SfM ignores: flow-based motion masks (dilated), nothing, or the true instances."""
    if source == "motion":
        return sfm_mask(motion_masks(clip.frames), MaskConfig().dilate)
    return None if source == "none" else clip.masks > 0


def poses_section() -> None:
    print("## poses: hybrid clips, 256x256, 32 frames, one per trajectory\n")
    print("| trajectory | masks | registered | rot err (deg) | trans dir err (deg) | seconds |")
    print("|---|---|---|---|---|---|")
    summary: dict[str, list] = {"motion": [], "none": [], "ground truth": []}
    for offset, name in enumerate(TRAJECTORY_NAMES):
        clip = make_clip(SynthConfig("hybrid", 256, 32, trajectory=name, props=6), SEED + offset)
        K = clip.cameras.K[0]  # noqa: N806
        for masks in summary:
            start = time.perf_counter()
            moving = sfm_masks(clip, masks)
            try:
                result = estimate_cameras(clip.frames, moving, K)
                registered = len(result.registered) >= 0.8 * len(clip)
                truth = clip.cameras[torch.as_tensor(result.registered)]
                rotation, direction = relative_pose_errors(result.cameras, truth)
            except Scene4DError:
                registered, rotation, direction = False, float("nan"), float("nan")
            if MOVES[name].kind == "rotate":
                direction = float("nan")
            seconds = time.perf_counter() - start
            summary[masks].append((registered, rotation, direction, seconds))
            print(f"| {name} | {masks} | {registered} | {rotation:.3f} | {direction:.3f} | {seconds:.1f} |")
    print("\n| masks | registered | median rot err (deg) | median trans dir err (deg) | s / clip |")
    print("|---|---|---|---|---|")
    for masks, rows in summary.items():
        values = np.array(rows, dtype=np.float64)
        print(
            f"| {masks} | {values[:, 0].mean():.0%} | {np.nanmedian(values[:, 1]):.3f} | "
            f"{np.nanmedian(values[:, 2]):.3f} | {values[:, 3].mean():.1f} |"
        )


def static_section(per_kind: int) -> None:
    print(f"\n## static: {per_kind} clips per kind, 128x128, 32 frames\n")
    print("| kind | correct | scores (min / median / max, % diagonal per frame) |")
    print("|---|---|---|")
    config = CurateConfig()
    total = 0
    for kind_index, kind in enumerate(("spatial", "temporal", "hybrid")):
        scores = []
        for index in range(per_kind):
            clip = make_clip(SynthConfig(kind, 128, 32, supersample=1), SEED + 1000 * (kind_index + 1) + index)
            scores.append(static_camera_score(clip.frames))
        still = np.array(scores) < config.static_camera_max
        correct = int((still == (kind == "temporal")).sum())
        total += correct
        print(f"| {kind} | {correct}/{per_kind} | {min(scores):.4f} / {np.median(scores):.4f} / {max(scores):.4f} |")
    print(f"\naccuracy: {total / (3 * per_kind):.1%}")


SPEEDS = (0.4, 0.8, 1.2, 1.6)
KINDS = ("temporal", "spatial", "hybrid")


def motion_section(per_kind: int) -> None:
    from scipy.stats import spearmanr

    scenes = max(1, per_kind // len(SPEEDS))
    print(
        f"\n## motion: {scenes} temporal scenes x speeds {SPEEDS}, {per_kind} spatial and {per_kind // 2} hybrid "
        "clips, 256x256, 32 frames\n"
    )
    print(
        "| kind | scene | speed | eq. 4 strength (exact) | flow masks: strength | label "
        "| instance masks: strength | label |"
    )
    print("|---|---|---|---|---|---|---|---|")
    rows = []
    clips = [("temporal", scene, speed) for scene in range(scenes) for speed in SPEEDS]
    clips += [("spatial", 100 + index, None) for index in range(per_kind)]
    clips += [("hybrid", 200 + index, None) for index in range(per_kind // 2)]
    for kind, scene, speed in clips:
        clip = make_clip(SynthConfig(kind, 256, 32, speed=speed, props=6), SEED + 5000 + scene)
        source = SourceFrames(clip.frames, np.arange(len(clip)), 0.0)
        row = [kind, scene, "-" if speed is None else speed, clip.meta["motion_strength"]]
        for objects in (None, clip.masks):
            curated = curate_frames(source, CurateConfig(), objects, lambda frames, depth=clip.depth: depth)
            row += [curated.record["motion_strength"], curated.record["label"]]
        rows.append(row)
        cells = [f"{v:.5f}" if isinstance(v, float) else str(v) for v in row[2:]]
        print(f"| {kind} | {scene} | " + " | ".join(cells) + " |")
    for name, column in (("flow masks", 4), ("instance masks", 6)):
        temporal = [r for r in rows if r[0] == "temporal"]
        per_scene = [
            spearmanr(SPEEDS, [r[column] for r in temporal if r[1] == scene]).statistic for scene in range(scenes)
        ]
        exact_rho = spearmanr([r[3] for r in temporal], [r[column] for r in temporal]).statistic
        spatial = [r[column] for r in rows if r[0] == "spatial"]
        labelled = {kind: sum(r[column + 1] == kind for r in rows if r[0] == kind) for kind in KINDS}
        totals = {kind: sum(r[0] == kind for r in rows) for kind in KINDS}
        print(f"\n{name}: labelled as their kind " + ", ".join(f"{k} {labelled[k]}/{totals[k]}" for k in KINDS))
        print(
            f"\n{name}: Spearman vs object speed per scene {np.round(per_scene, 3).tolist()} (mean "
            f"{np.mean(per_scene):.3f}); vs exact eq. 4 strength over all clips {exact_rho:.3f}; median strength "
            f"temporal {np.median([r[column] for r in temporal]):.5f}, spatial {np.median(spatial):.5f}"
        )


def depth_section(count: int) -> None:
    print(f"\n## depth: eq. 2 on {count} synth depth maps under random affine distortions\n")
    rng = np.random.default_rng(SEED)
    errors = []
    for index in range(count):
        depth = make_clip(SynthConfig("spatial", 128, 1, supersample=1), SEED + 9000 + index).depth[0]
        scale, shift = float(rng.uniform(0.2, 5.0)), float(rng.uniform(-1.0, 1.0))
        relative = (depth - shift) / scale
        sparse = np.full_like(depth, np.nan)
        picked = rng.random(depth.shape) < 0.01
        sparse[picked] = depth[picked]
        aligned, _, _ = align_depth(relative, sparse)
        errors.append(float(np.median(np.abs(aligned - depth) / depth)))
    print(f"median relative error: {np.median(errors):.2e} (max over maps {np.max(errors):.2e})")


def throughput_section(videos: int) -> None:
    print(f"\n## throughput: scene4d curate on {videos} hybrid videos, 256x256, 32 frames\n")
    print("| workers | seconds | s / video | statuses |")
    print("|---|---|---|---|")
    with tempfile.TemporaryDirectory() as folder:
        sources = Path(folder) / "videos"
        for index in range(videos):
            clip = make_clip(SynthConfig("hybrid", 256, 32, props=6), SEED + 7000 + index)
            write_video(sources / f"video_{index}.mp4", clip.frames)
        indexes = []
        for workers in (1, 2):
            out = Path(folder) / f"dataset_{workers}"
            start = time.perf_counter()
            run = subprocess.run(
                [sys.executable, "-m", "scene4d", "curate", str(sources), "--out", str(out), "--workers", str(workers)],
                capture_output=True,
                text=True,
            )
            if run.returncode != 0:
                raise SystemExit(f"scene4d curate failed:\n{run.stderr}")
            seconds = time.perf_counter() - start
            records = [json.loads(line) for line in (out / "index.jsonl").read_text().splitlines()]
            indexes.append(sorted((r["video"], r["status"], r["label"], r["motion_strength"]) for r in records))
            statuses = ", ".join(sorted(f"{r['status']} {r['label']}" for r in records))
            print(f"| {workers} | {seconds:.1f} | {seconds / videos:.1f} | {statuses} |")
    print(f"\nthe same index with 1 and 2 workers: {indexes[0] == indexes[1]}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--per-kind", type=int, default=12, help="clips per kind in the static and motion sections")
    parser.add_argument("--videos", type=int, default=6, help="videos in the throughput section")
    parser.add_argument("--sections", default="poses,static,motion,depth,throughput")
    args = parser.parse_args()
    if args.videos < 1:
        parser.error("--videos must be at least 1")
    sections = args.sections.split(",")
    start = time.perf_counter()
    if "poses" in sections:
        poses_section()
    if "static" in sections:
        static_section(args.per_kind)
    if "motion" in sections:
        motion_section(args.per_kind)
    if "depth" in sections:
        depth_section(args.per_kind)
    if "throughput" in sections:
        throughput_section(args.videos)
    print(f"\ntotal {time.perf_counter() - start:.0f} s")


if __name__ == "__main__":
    main()
