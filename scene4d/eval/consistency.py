"""Consistency of generated videos: motion the camera does not explain, view synchronisation, smoothness.

- ``residual_motion``: optical flow left after the camera's motion (a RANSAC homography of the
  flow) is removed, in pixels per frame. Under a camera that only rotates this is object
  motion: an S-Director should freeze it, a T-Director create it.
- ``matched_pixels`` / ``view_synchronisation``: DimensionX Table 4's "Mat. Pix.", with SIFT
  matches that agree on one RANSAC fundamental matrix in place of LoFTR matches: how much of two
  views at the same time shows one consistent scene.
- ``temporal_consistency``: mean SSIM of consecutive frames, a weight-free stand-in for CLIP-F.
"""

import numpy as np
import torch

from scene4d.curate.flow import apply_homography, camera_motion, dense_flow
from scene4d.curate.tracks import sift_matches
from scene4d.eval.metrics import ssim


def residual_motion(frames: np.ndarray) -> float:
    """Mean |flow - camera homography flow| over pixels and consecutive pairs of ``frames`` [T, H, W, 3]."""
    residuals = []
    for frame_a, frame_b in zip(frames[:-1], frames[1:], strict=True):
        motion = camera_motion(dense_flow(frame_a, frame_b))
        explained = apply_homography(motion.homography, motion.points) - motion.points
        residuals.append(np.linalg.norm(motion.flow - explained, axis=1).mean())
    return float(np.mean(residuals))


def matched_pixels(frame_a: np.ndarray, frame_b: np.ndarray, min_side: int = 256) -> int:
    """SIFT matches of two views that are inliers of one RANSAC fundamental matrix (1 px).

    Frames smaller than ``min_side`` are first upsampled (bicubic) to it: SIFT finds few
    keypoints in a 64 px frame.
    """
    import cv2

    scale = max(1.0, min_side / min(frame_a.shape[:2]))
    if scale > 1.0:
        size = (round(frame_a.shape[1] * scale), round(frame_a.shape[0] * scale))
        frame_a, frame_b = (cv2.resize(f, size, interpolation=cv2.INTER_CUBIC).clip(0, 1) for f in (frame_a, frame_b))
    points_a, points_b = sift_matches(frame_a, frame_b)
    if len(points_a) < 8:
        return 0
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
