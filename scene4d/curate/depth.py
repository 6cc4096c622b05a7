"""Dense depth for curated Clips: SfM sparse depth (GenXD eq. 1) and median alignment (eq. 2).

A monocular estimator gives relative depth up to an unknown scale and shift; GenXD aligns it to
the depth of the sparse SfM points seen in the same frame. Estimators are callables
``frames [T, H, W, 3] -> relative depth [T, H, W]``; ``transformers_depth`` wraps a local
Depth-Anything-V2 (or any transformers depth-estimation model).
"""

import functools
from collections.abc import Callable
from pathlib import Path

import numpy as np
import torch

from scene4d.errors import Scene4DError
from scene4d.geometry import Cameras

DepthEstimator = Callable[[np.ndarray], np.ndarray]


def sparse_depth(cameras: Cameras, points: np.ndarray) -> np.ndarray:
    """Eq. 1 of GenXD: z-depth [T, H, W] of world ``points`` [P, 3] at the pixels they project to.

    Pixels no point falls on are NaN; where several land, the nearest wins.
    """
    depth = np.full((len(cameras), cameras.height, cameras.width), np.inf, np.float32)
    if len(points):
        pixels, z = cameras.project(torch.as_tensor(points, dtype=torch.float32)[None].expand(len(cameras), -1, -1))
        cols, rows = np.floor(pixels[..., 0].numpy()).astype(int), np.floor(pixels[..., 1].numpy()).astype(int)
        z = z.numpy()
        inside = (z > 0) & (cols >= 0) & (cols < cameras.width) & (rows >= 0) & (rows < cameras.height)
        for index in range(len(cameras)):
            keep = inside[index]
            np.minimum.at(depth[index], (rows[index, keep], cols[index, keep]), z[index, keep])
    depth[np.isinf(depth)] = np.nan
    return depth


def align_depth(relative: np.ndarray, sparse: np.ndarray) -> tuple[np.ndarray, float, float]:
    """Eq. 2 of GenXD: ``alpha * relative + beta`` with median scale and shift.

    ``alpha = median(d_sfm) / median(d_rel)`` and ``beta = median(d_sfm - alpha d_rel)``, the
    medians taken over pixels [H, W] where ``sparse`` is finite. Returns (aligned, alpha, beta).
    """
    known = np.isfinite(sparse)
    if known.sum() < 3:
        raise Scene4DError(f"depth alignment needs at least 3 sparse depths, got {int(known.sum())}")
    d_sfm, d_rel = sparse[known], relative[known]
    alpha = float(np.median(d_sfm) / np.median(d_rel))
    beta = float(np.median(d_sfm - alpha * d_rel))
    return alpha * relative + beta, alpha, beta


def align_depth_video(relative: np.ndarray, sparse: np.ndarray, min_points: int = 10) -> np.ndarray:
    """Eq. 2 per frame of ``relative`` [T, H, W]; frames with too few sparse depths use the
    scale and shift of the nearest frame that has them."""
    counts = np.isfinite(sparse).reshape(len(sparse), -1).sum(axis=1)
    usable = np.flatnonzero(counts >= min_points)
    if len(usable) == 0:
        raise Scene4DError(f"depth alignment: no frame sees {min_points} or more SfM points")
    factors = {int(i): align_depth(relative[i], sparse[i])[1:] for i in usable}
    aligned = []
    for index in range(len(relative)):
        alpha, beta = factors[int(usable[np.argmin(np.abs(usable - index))])]
        aligned.append(alpha * relative[index] + beta)
    return np.stack(aligned).astype(np.float32)


@functools.cache  # one model per process, however many videos
def transformers_depth(model_path: str | Path, device: str = "cpu") -> DepthEstimator:
    """A local transformers depth model (e.g. Depth-Anything-V2) as an estimator.

    Depth-Anything predicts relative inverse depth; its output (resized to the frame by the
    processor's own post-processing) is normalised to [0.05, 1] and inverted, so that eq. 2's
    affine alignment acts on a depth-like quantity.
    """
    from transformers import AutoImageProcessor, AutoModelForDepthEstimation

    path = Path(model_path)
    if not (path / "config.json").is_file():
        raise Scene4DError(f"depth model not found: {path} (expected a transformers folder with config.json)")
    processor = AutoImageProcessor.from_pretrained(path, local_files_only=True)
    model = AutoModelForDepthEstimation.from_pretrained(path, local_files_only=True).to(device).eval()

    def estimate(frames: np.ndarray) -> np.ndarray:
        relative = []
        for frame in frames:
            inputs = processor(images=(frame * 255).astype(np.uint8), return_tensors="pt").to(device)
            with torch.no_grad():
                prediction = model(**inputs)
            resized = processor.post_process_depth_estimation(prediction, target_sizes=[frame.shape[:2]])[0]
            disparity = resized["predicted_depth"].cpu().numpy()
            span = float(disparity.max() - disparity.min()) or 1.0  # a constant prediction stays constant
            relative.append(1.0 / (0.05 + 0.95 * (disparity - disparity.min()) / span))
        return np.stack(relative).astype(np.float32)

    return estimate


def interpolated_sparse_depth(sparse: np.ndarray) -> np.ndarray:
    """Weight-free dense depth [T, H, W]: each frame's sparse SfM depths spread to every pixel by
    nearest neighbour (1 everywhere in frames without points, e.g. a camera that only rotates,
    where object motion does not depend on depth)."""
    from scipy.interpolate import NearestNDInterpolator

    dense = np.ones(sparse.shape, np.float32)
    rows, cols = np.mgrid[0 : sparse.shape[1], 0 : sparse.shape[2]]
    for index, frame in enumerate(sparse):
        known = np.isfinite(frame)
        if known.sum() >= 1:
            interpolate = NearestNDInterpolator(np.stack([rows[known], cols[known]], 1), frame[known])
            dense[index] = interpolate(rows, cols)
    return dense
