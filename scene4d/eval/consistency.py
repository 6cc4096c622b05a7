"""Consistency of generated videos: motion the camera does not explain, view synchronisation, smoothness.

- ``residual_motion``: optical flow left after the camera's motion (a RANSAC homography of the
  flow) is removed, in pixels per frame. Under a camera that only rotates this is object
  motion: an S-Director should freeze it, a T-Director create it.
- ``matched_pixels`` / ``view_synchronisation``: DimensionX Table 4's "Mat. Pix.", with
  forward-backward consistent dense flow that agrees on one RANSAC fundamental matrix in place of
  LoFTR matches: how much of two views at the same time shows one consistent scene.
- ``temporal_consistency``: mean SSIM of consecutive frames, a weight-free stand-in for CLIP-F.
"""

import numpy as np
import torch

from scene4d.curate.flow import apply_homography, camera_motion, cycle_error, dense_flow, upsampled_flow
from scene4d.eval.metrics import ssim


def residual_motion(frames: np.ndarray) -> float:
    """Mean |flow - camera homography flow| over pixels and consecutive pairs of ``frames`` [T, H, W, 3]."""
    residuals = []
    for frame_a, frame_b in zip(frames[:-1], frames[1:], strict=True):
        motion = camera_motion(dense_flow(frame_a, frame_b))
        explained = apply_homography(motion.homography, motion.points) - motion.points
        residuals.append(np.linalg.norm(motion.flow - explained, axis=1).mean())
    return float(np.mean(residuals))


def matched_pixels(frame_a: np.ndarray, frame_b: np.ndarray, upsample: int = 4, max_cycle_px: float = 0.5) -> int:
    """Pixels of ``frame_a`` [H, W, 3] matched in ``frame_b``, consistently with one camera geometry.

    Dense flow both ways (``curate.flow.upsampled_flow``); a pixel is matched when the forward flow
    then the backward flow bring it back within ``max_cycle_px`` and its match is an inlier (1 px)
    of one RANSAC fundamental matrix fitted to all such matches. LoFTR (DimensionX's matcher)
    matches densely too; SIFT finds a handful of keypoints in a 64-pixel frame.
    """
    import cv2

    forward = upsampled_flow(frame_a, frame_b, upsample)
    backward = upsampled_flow(frame_b, frame_a, upsample)
    rows, cols = np.nonzero(cycle_error(forward, backward) <= max_cycle_px)
    if len(rows) < 8:
        return 0
    points_a = np.stack([cols, rows], axis=-1).astype(np.float64) + 0.5
    points_b = points_a + forward[rows, cols]
    _, inliers = cv2.findFundamentalMat(points_a, points_b, cv2.FM_RANSAC, 1.0, 0.999)
    return 0 if inliers is None else int(inliers.sum())


def view_synchronisation(views: list[np.ndarray]) -> float:
    """Mean ``matched_pixels`` of neighbouring views at the same time; ``views``: K videos [T, H, W, 3]."""
    counts = [
        matched_pixels(view_a[time], view_b[time])
        for view_a, view_b in zip(views[:-1], views[1:], strict=True)
        for time in range(len(view_a))
    ]
    return float(np.mean(counts))


def temporal_consistency(frames: np.ndarray) -> float:
    """Mean SSIM of consecutive frames of a video [T, H, W, 3] in [0, 1]."""
    video = torch.from_numpy(np.ascontiguousarray(frames, dtype=np.float32))
    return float(ssim(video[1:], video[:-1]).mean())
