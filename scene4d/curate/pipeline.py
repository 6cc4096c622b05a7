"""Curation of one video and of a folder of videos into labelled training Clips.

Per video: decode -> static-camera test -> potentially moving masks -> masked SfM -> depth
aligned to the SfM points (GenXD eq. 2) -> object motion strength (eq. 3-4) -> label. The
labels follow DimensionX's dataset kinds: ``spatial`` (camera moves, nothing else), ``temporal``
(camera still, objects move), ``hybrid`` (both); a still camera over a still scene, black
frames or a single frame are rejected, and a video SfM cannot register fails.
"""

import json
import os
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from scene4d.curate.depth import (
    DepthEstimator,
    align_depth_video,
    interpolated_sparse_depth,
    sparse_depth,
    transformers_depth,
)
from scene4d.curate.flow import static_camera_score
from scene4d.curate.frames import DecodeConfig, SourceFrames, find_sources, read_source
from scene4d.curate.masks import MaskConfig, motion_masks, read_user_masks, segmentation_masks, sfm_mask
from scene4d.curate.motion import motion_strength
from scene4d.curate.sfm import SfMConfig, SfMResult, centred_intrinsics, estimate_cameras
from scene4d.errors import Scene4DError
from scene4d.geometry import Cameras
from scene4d.io import Clip, save_clip


@dataclass(frozen=True)
class CurateConfig:
    decode: DecodeConfig = field(default_factory=DecodeConfig)
    masks: MaskConfig = field(default_factory=MaskConfig)
    sfm: SfMConfig = field(default_factory=SfMConfig)
    static_camera_max: float = 0.03  # camera-induced motion (% of diagonal per frame) of a still camera
    moving_strength_min: float = 0.002  # motion strength (eq. 4, per frame) above which objects move
    black_max: float = 0.02  # frames whose brightest pixel is below this are black
    focal_px: float | None = None  # known focal length at the curated size (principal point centred)

    def __post_init__(self) -> None:
        if self.focal_px is not None and not self.focal_px > 0:
            raise Scene4DError(f"the focal length must be positive, got {self.focal_px}")


@dataclass
class Curated:
    record: dict[str, Any]  # one line of index.jsonl (without "video" and "clip")
    clip: Clip | None  # None unless status is "ok"


def label(camera_static: bool, strength: float, config: CurateConfig) -> str:
    """``temporal`` / ``spatial`` / ``hybrid``, or ``reject`` when neither camera nor objects move."""
    moving = strength >= config.moving_strength_min
    if camera_static:
        return "temporal" if moving else "reject"
    return "hybrid" if moving else "spatial"


def curate_frames(
    source: SourceFrames,
    config: CurateConfig = CurateConfig(),
    objects: np.ndarray | None = None,  # [T, H, W] instance ids of potentially moving pixels
    depth_estimator: DepthEstimator | None = None,
) -> Curated:
    """Annotate one decoded video. Bad input is a ``rejected`` record; SfM failure ``failed``."""
    frames = source.frames
    record = index_defaults()
    if len(frames) < 2:
        return Curated({**record, "status": "rejected", "reason": "a single frame"}, None)
    if float(frames.max(axis=(1, 2, 3)).mean()) < config.black_max:
        return Curated({**record, "status": "rejected", "reason": "black frames"}, None)
    score = static_camera_score(frames)
    record.update(camera_static_score=score, camera_static=score < config.static_camera_max)
    objects = motion_masks(frames, config.masks) if objects is None else objects
    relative = None if depth_estimator is None else depth_estimator(frames)
    height, width = frames.shape[1:3]
    K = None if config.focal_px is None else centred_intrinsics(config.focal_px, width, height)  # noqa: N806
    try:
        sfm = estimate_cameras(frames, sfm_mask(objects, config.masks.dilate), K, config.sfm)
    except Scene4DError as error:
        return Curated({**record, "status": "failed", "reason": str(error)}, None)
    keep = sfm.registered
    record["registered_frames"] = len(keep)
    frames, objects = frames[keep], objects[keep]
    depth = dense_depth(relative, keep, sfm.cameras, sfm.points)
    # with no SfM points (a camera that only rotates) object motion does not depend on depth
    strength, per_object = motion_strength(
        frames, sfm.cameras, np.ones_like(frames[..., 0]) if depth is None else depth, objects
    )
    kind = label(record["camera_static"], strength, config)
    record.update(motion_strength=strength, label=kind)
    if kind == "reject":
        return Curated({**record, "status": "rejected", "reason": "neither the camera nor objects move"}, None)
    clip = curated_clip(source, keep, frames, sfm, depth, objects, kind, strength, per_object)
    return Curated({**record, "status": "ok", "reason": None}, clip)


def dense_depth(
    relative: np.ndarray | None,  # [T, H, W] from a depth estimator, all source frames
    keep: np.ndarray,  # [R] registered frames
    cameras: Cameras,  # [R]
    points: np.ndarray,  # [P, 3] SfM points
) -> np.ndarray | None:
    """Depth [R, H, W] in SfM units: the estimator's aligned by eq. 2, else the nearest SfM point's;
    None without SfM points (no scale to align to)."""
    if len(points) == 0:
        return None
    sparse = sparse_depth(cameras, points)
    return interpolated_sparse_depth(sparse) if relative is None else align_depth_video(relative[keep], sparse)


def curated_clip(
    source: SourceFrames,
    keep: np.ndarray,
    frames: np.ndarray,
    sfm: SfMResult,
    depth: np.ndarray | None,
    objects: np.ndarray,
    kind: str,
    strength: float,
    per_object: dict[int, float],
) -> Clip:
    """The accepted frames as a Clip in the first camera's frame (the SfM points moved with it);
    times span [0, 1] over source frame numbers (0 if spatial)."""
    index = source.source_index[keep]
    span = max(int(index[-1] - index[0]), 1)
    times = np.zeros(len(index)) if kind == "spatial" else (index - index[0]) / span
    meta = {
        "kind": kind,
        "source": "scene4d.curate",
        "source_index": index.tolist(),
        "source_fps": source.fps,
        "unregistered_source_index": sorted(set(source.source_index.tolist()) - set(index.tolist())),
        "motion_strength": strength,
        "motion_strength_per_object": {str(k): v for k, v in per_object.items()},
    }
    moved = sfm.relative_to_first()
    return Clip(frames, moved.cameras, times, depth, objects, meta, moved.points, moved.colors)


@dataclass(frozen=True)
class Models:
    """Optional local transformers models; None means the weight-free default."""

    depth: Path | None = None  # depth estimator (e.g. Depth-Anything-V2)
    segmentation: Path | None = None  # semantic segmentation for potentially moving masks


def curate_one(path: Path, out: Path, config: CurateConfig, user_masks: Path | None, models: Models) -> dict[str, Any]:
    """Curate ``path`` into ``out/clips/<file name>``; the index record (never raises on bad input).

    Masks come from ``user_masks/<file name without suffix>/`` when present, else the segmentation model, else flow.
    """
    name = path.stem if path.is_file() else path.name
    clip_path = None
    try:
        source = read_source(path, config.decode)
        objects = None
        if user_masks is not None and (user_masks / name).is_dir():
            objects = read_user_masks(user_masks / name, source.source_index, source.frames.shape[1:3])
        elif models.segmentation is not None:
            objects = segmentation_masks(models.segmentation)(source.frames)
        estimator = None if models.depth is None else transformers_depth(models.depth)
        curated = curate_frames(source, config, objects, estimator)
        if curated.clip is not None:
            clip_path = f"clips/{path.name}"  # the full name: a.mp4 and a.mov are different videos
            save_clip(curated.clip, out / clip_path)
    except Scene4DError as error:
        curated, clip_path = Curated({"status": "failed", "reason": str(error)}, None), None
    except Exception as error:  # noqa: BLE001 -- one broken video must not stop a dataset run
        reason = f"{type(error).__name__}: {error}".splitlines()[0]
        curated, clip_path = Curated({"status": "failed", "reason": reason}, None), None
    return {"video": path.name, **index_defaults(), **curated.record, "clip": clip_path}


def index_defaults() -> dict[str, Any]:
    """The fields of an index.jsonl record (besides ``video`` and ``clip``) before anything is known."""
    return {
        "status": None,
        "reason": None,
        "label": None,
        "camera_static": None,
        "camera_static_score": None,
        "motion_strength": None,
        "registered_frames": 0,
    }


def last_byte(path: Path) -> bytes:
    with open(path, "rb") as handle:
        handle.seek(-1, 2)
        return handle.read(1)


def finished_videos(index_path: Path, retry_failed: bool = False) -> set[str]:
    """Videos already recorded in ``index.jsonl`` (a torn last line is ignored); with ``retry_failed``,
    only those whose last record did not fail."""
    if not index_path.is_file():
        return set()
    status = {}
    for line in index_path.read_text().splitlines():
        try:
            record = json.loads(line)
            status[record["video"]] = record.get("status")
        except (json.JSONDecodeError, KeyError, TypeError):
            continue
    return {video for video, last in status.items() if not (retry_failed and last == "failed")}


def append_record(index_path: Path, record: dict[str, Any]) -> None:
    """One JSON line, flushed and synced so that a crash loses at most the line being written."""
    line = json.dumps(record) + "\n"
    torn = index_path.is_file() and index_path.stat().st_size > 0 and last_byte(index_path) != b"\n"
    with open(index_path, "a") as handle:
        handle.write(("\n" if torn else "") + line)
        handle.flush()
        os.fsync(handle.fileno())


def check_workers(workers: int) -> None:
    if workers < 1:
        raise Scene4DError(f"workers must be at least 1, got {workers}")


def pending_sources(
    videos: Path, out: Path, shard: tuple[int, int] = (0, 1), retry_failed: bool = False
) -> tuple[list[Path], int]:
    """The sources of ``videos`` in shard ``i`` of ``n`` not yet in ``out/index.jsonl`` (or recorded
    as failed, with ``retry_failed``), and how many of the shard's sources are skipped."""
    part, parts = shard
    if not 0 <= part < parts:
        raise Scene4DError(f"shard must be i/n with 0 <= i < n, got {part}/{parts}")
    done = finished_videos(out / "index.jsonl", retry_failed)
    in_shard = find_sources(videos)[part::parts]
    todo = [path for path in in_shard if path.name not in done]
    return todo, len(in_shard) - len(todo)


def curate_folder(
    videos: Path,
    out: Path,
    config: CurateConfig = CurateConfig(),
    workers: int = 1,
    shard: tuple[int, int] = (0, 1),
    user_masks: Path | None = None,
    models: Models = Models(),
    on_done: Callable[[dict[str, Any]], None] | None = None,
) -> list[dict[str, Any]]:
    """Curate every source of ``videos`` in shard ``i`` of ``n`` into ``out``; resumable.

    Sources already in ``out/index.jsonl`` are skipped; each finished source appends its record
    at once, so an interrupted run loses at most the videos in flight. Returns this run's records.
    """
    todo, _ = pending_sources(videos, out, shard)
    return curate_sources(todo, out, config, workers, user_masks, models, on_done)


def curate_sources(
    todo: list[Path],
    out: Path,
    config: CurateConfig = CurateConfig(),
    workers: int = 1,
    user_masks: Path | None = None,
    models: Models = Models(),
    on_done: Callable[[dict[str, Any]], None] | None = None,
) -> list[dict[str, Any]]:
    """Curate ``todo`` into ``out``, appending each record to ``out/index.jsonl`` as it finishes."""
    from concurrent.futures import ProcessPoolExecutor

    check_workers(workers)
    out.mkdir(parents=True, exist_ok=True)
    index_path = out / "index.jsonl"
    records = []

    def finish(record: dict[str, Any]) -> None:
        append_record(index_path, record)
        records.append(record)
        if on_done is not None:
            on_done(record)

    if workers == 1:
        for path in todo:
            finish(curate_one(path, out, config, user_masks, models))
    else:
        repeat = [[value] * len(todo) for value in (out, config, user_masks, models)]
        with ProcessPoolExecutor(workers) as pool:
            for record in pool.map(curate_one, todo, *repeat):
                finish(record)
    return records
