"""Optical flow and DimensionX's static-camera test ("Flow guidance for temporal-variant data").

A fixed camera leaves the background still, a moving camera moves almost every pixel. Raw flow
also moves with objects, so the test measures only the camera-induced part: a homography fitted
with RANSAC to the flow explains the dominant (background) motion and ignores objects covering
less than about half of the frame. The score is the median displacement that homography gives
the pixels, in percent of the image diagonal per frame; a static camera scores about 0.
"""

from dataclasses import dataclass

import numpy as np

from scene4d.errors import Scene4DError
from scene4d.io.media import to_uint8


@dataclass(frozen=True)
class CameraMotion:
    homography: np.ndarray  # [3, 3] maps pixels of frame a to frame b (the camera-induced part)
    inliers: np.ndarray  # [P] bool, flow samples that follow it
    points: np.ndarray  # [P, 2] sampled pixel centres of frame a
    flow: np.ndarray  # [P, 2] their flow vectors


def dense_flow(frame_a: np.ndarray, frame_b: np.ndarray, full_resolution: bool = False) -> np.ndarray:
    """DIS optical flow [H, W, 2] (pixels) from ``frame_a`` to ``frame_b`` ([H, W, 3] in [0, 1]).

    The MEDIUM preset refines down to half resolution; ``full_resolution`` refines the last
    pyramid level too (slower; about half the error where sub-pixel accuracy matters, as in stereo).
    """
    import cv2

    grey_a = cv2.cvtColor(to_uint8(frame_a), cv2.COLOR_RGB2GRAY)
    grey_b = cv2.cvtColor(to_uint8(frame_b), cv2.COLOR_RGB2GRAY)
    dis = cv2.DISOpticalFlow_create(cv2.DISOPTICAL_FLOW_PRESET_MEDIUM)
    if full_resolution:
        dis.setFinestScale(0)
    return dis.calc(grey_a, grey_b, None)


def upsampled_flow(frame_a: np.ndarray, frame_b: np.ndarray, upsample: int = 4) -> np.ndarray:
    """DIS flow [H, W, 2] (pixels of the frames) of a pair upsampled ``upsample`` times (bicubic),
    refined at full resolution and area-averaged back: DIS matches 8-pixel patches, so on frames of
    64 pixels it cannot resolve an object a few pixels wide and reads its motion several times too low."""
    import cv2

    pair = [cv2.resize(frame, None, fx=upsample, fy=upsample, interpolation=cv2.INTER_CUBIC)
            for frame in (frame_a, frame_b)]  # fmt: skip
    flow = dense_flow(pair[0], pair[1], full_resolution=True)
    return cv2.resize(flow, frame_a.shape[1::-1], interpolation=cv2.INTER_AREA) / upsample


def landed(image: np.ndarray, flow: np.ndarray) -> np.ndarray:
    """``image`` [H, W, C] bilinearly sampled where ``flow`` [H, W, 2] moves each pixel (edges replicated)."""
    import cv2

    height, width = flow.shape[:2]
    cols, rows = np.meshgrid(np.arange(width, dtype=np.float32), np.arange(height, dtype=np.float32))
    return cv2.remap(image.astype(np.float32), cols + flow[..., 0], rows + flow[..., 1], cv2.INTER_LINEAR,
                     borderMode=cv2.BORDER_REPLICATE)  # fmt: skip


def cycle_error(forward: np.ndarray, backward: np.ndarray) -> np.ndarray:
    """Forward-backward disagreement [H, W] in pixels: where ``forward`` [H, W, 2] then ``backward``
    [H, W, 2] (taken where the forward flow lands) leave each pixel; 0 for exactly inverse flows."""
    return np.linalg.norm(forward + landed(backward, forward), axis=-1)


def flow_samples(flow: np.ndarray, step: int = 4) -> tuple[np.ndarray, np.ndarray]:
    """Pixel centres [P, 2] on a grid of ``step`` pixels and their flow vectors [P, 2]."""
    height, width = flow.shape[:2]
    rows, cols = np.mgrid[step // 2 : height : step, step // 2 : width : step]
    points = np.stack([cols, rows], -1).reshape(-1, 2).astype(np.float64) + 0.5
    return points, flow[rows, cols].reshape(-1, 2).astype(np.float64)


def landing_matches(flow: np.ndarray, step: int = 4) -> tuple[np.ndarray, np.ndarray]:
    """Pixel centres [P, 2] on a grid of ``step`` pixels and where ``flow`` [H, W, 2] moves them
    [P, 2], for those that land inside the frame."""
    points, vectors = flow_samples(flow, step)
    moved = points + vectors
    inside = (moved >= 0).all(1) & (moved[:, 0] < flow.shape[1]) & (moved[:, 1] < flow.shape[0])
    return points[inside], moved[inside]


def camera_motion(flow: np.ndarray, threshold_px: float = 1.0) -> CameraMotion:
    """The dominant, camera-induced motion of ``flow`` [H, W, 2] as a RANSAC homography."""
    import cv2

    points, vectors = flow_samples(flow)
    homography, inliers = cv2.findHomography(points, points + vectors, cv2.RANSAC, threshold_px, maxIters=2000)
    if homography is None:
        raise Scene4DError("flow: no dominant motion found (a degenerate frame pair)")
    return CameraMotion(homography, inliers[:, 0].astype(bool), points, vectors)


def apply_homography(homography: np.ndarray, points: np.ndarray) -> np.ndarray:
    """H x [P, 2] for pixel centres ``points`` [P, 2]."""
    mapped = np.concatenate([points, np.ones((len(points), 1))], 1) @ homography.T
    return mapped[:, :2] / mapped[:, 2:]


def homography_displacement(homography: np.ndarray, points: np.ndarray) -> np.ndarray:
    """|H x - x| [P] in pixels for pixel centres ``points`` [P, 2]."""
    return np.linalg.norm(apply_homography(homography, points) - points, axis=1)


def static_camera_score(frames: np.ndarray, gap: int = 4) -> float:
    """Camera-induced motion of a video [T, H, W, 3]: percent of the image diagonal per frame.

    Pairs are ``gap`` frames apart (so slow moves stand out of the flow noise), one pair starting
    at every ``gap``-th frame; per pair, the median over pixels of the homography displacement,
    divided by the gap; the score is the median over pairs.
    """
    if len(frames) < 2:
        return 0.0
    gap = min(gap, len(frames) - 1)
    diagonal = float(np.hypot(frames.shape[1], frames.shape[2]))
    per_frame = []
    for start in range(0, len(frames) - gap, gap):
        motion = camera_motion(dense_flow(frames[start], frames[start + gap]))
        per_frame.append(np.median(homography_displacement(motion.homography, motion.points)) / gap)
    return float(100.0 * np.median(per_frame) / diagonal)
