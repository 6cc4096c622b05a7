"""Two (or more) views -> the video between them (DimensionX sec. 3.3, sparse-view generation).

The first and last frames are the given images (masked latent conditioning plays the role of
DimensionX's first/last-frame interpolation model). Adaptive trajectory planning: the relative
pose of the first and last view — from their cameras when given, else estimated from the two
images — picks the named move, hence the S-Director, that matches it best.
"""

from collections.abc import Callable

import numpy as np
import torch
from torch import Tensor

from scene4d.curate.sfm import nearest_rotation
from scene4d.curate.tracks import sift_matches
from scene4d.errors import Scene4DError
from scene4d.geometry import Cameras, Keyframe, keyframed_w2c, named_trajectory_w2c
from scene4d.geometry.trajectories import nearest_move, pose_change
from scene4d.models.bundle import ModelBundle
from scene4d.pipelines.generate import place_views, spread_positions, square_crop, squared_images, views_at_size

RESIDUAL_PX = 1.5  # median homography residual below which the views may share their centre
ROTATION_SPREAD = 0.05  # ... if K^-1 H K is this close to a scaled rotation (singular values' spread)
MIN_MATCHES = 8


def relative_motion(image_a: np.ndarray, image_b: np.ndarray, K: Tensor) -> tuple[Tensor, Tensor | None]:  # noqa: N803
    """Rotation [3, 3] of camera b in camera a's frame and the unit direction to b's centre (None: same centre).

    SIFT matches (wide baselines defeat dense flow). When a RANSAC homography explains them to
    within ``RESIDUAL_PX`` and ``K^-1 H K`` is a scaled rotation, the camera only turned: R is the
    rotation nearest to it. Otherwise OpenCV's essential matrix (USAC with local optimisation: the
    matches of a wide baseline hold many outliers) and ``recoverPose`` give R and t (x_b = R x_a + t),
    and b's centre lies along ``-R^T t``.
    """
    import cv2

    points_a, points_b = sift_matches(image_a, image_b)
    if len(points_a) < MIN_MATCHES:
        raise Scene4DError(
            f"the two views share {len(points_a)} matched features, too few to estimate their relative pose"
        )
    camera = K.double().numpy()
    homography, _ = cv2.findHomography(points_a, points_b, cv2.RANSAC, 2.0)
    if homography is not None:
        residual = np.linalg.norm(cv2.perspectiveTransform(points_a[None], homography)[0] - points_b, axis=1)
        rotation_like = np.linalg.inv(camera) @ homography @ camera
        singular = np.linalg.svd(rotation_like, compute_uv=False)
        if np.median(residual) < RESIDUAL_PX and (singular.max() - singular.min()) / singular.mean() < ROTATION_SPREAD:
            return torch.from_numpy(nearest_rotation(rotation_like)), None
    essential, inliers = cv2.findEssentialMat(points_a, points_b, camera, cv2.USAC_ACCURATE, 0.9999, 1.0, 20_000)
    if essential is None:
        raise Scene4DError("no relative pose fits the two views' matched features")
    _, rotation, translation, _ = cv2.recoverPose(essential[:3], points_a, points_b, camera, mask=inliers)
    centre = -rotation.T @ translation[:, 0]
    return torch.from_numpy(rotation), torch.from_numpy(centre / np.linalg.norm(centre))


def path_between(views: Cameras, num_frames: int) -> Tensor:
    """World-to-camera [T, 4, 4] from the first view to the last: centres along a line, rotations SLERPed."""
    relative_c2w = views.relative_to(0).c2w.double()
    ends = [Keyframe(float(t), relative_c2w[i, :3, 3], relative_c2w[i, :3, :3]) for t, i in ((0.0, 0), (1.0, -1))]
    return keyframed_w2c(ends, num_frames)


def plan_interpolation(
    bundle: ModelBundle,
    images: list[np.ndarray],  # [H, W, 3] in [0, 1]; the first and the last are the ends
    num_frames: int,
    views: Cameras | None,  # cameras of the images, or None to estimate the motion from the first and last
    notify: Callable[[str], None] = print,
) -> tuple[np.ndarray, Cameras, list[int], str, float]:
    """Images at the model's size, every frame's camera, condition positions, and the matched move and size."""
    if len(images) < 2:
        raise Scene4DError(f"interpolation needs at least 2 images, got {len(images)}")
    resolution, info = bundle.info.resolution, bundle.info
    views = views_at_size(views, len(images), resolution)
    squared = squared_images(images, resolution, notify)
    positions = spread_positions(len(images), num_frames)
    if views is not None:
        move, magnitude = nearest_move(*pose_change(views), orbit_distance=info.orbit_distance)
        path = Cameras(views.K[:1].expand(num_frames, 3, 3), path_between(views, num_frames), resolution, resolution)
        path = place_views(path, views, positions)
    else:
        first, last = square_crop(images[0]), square_crop(images[-1])
        K = Cameras.from_fov(info.fov_x_deg, first.shape[1], first.shape[0]).K[0]  # noqa: N806
        if first.shape != last.shape:
            raise Scene4DError("without --cameras the first and last image must have the same size")
        try:
            rotation_w2c, direction = relative_motion(first, last, K)
        except Scene4DError as error:
            raise Scene4DError(f"{error}; pass --cameras") from None
        move, magnitude = nearest_move(rotation_w2c, direction, orbit_distance=info.orbit_distance)
        w2c = named_trajectory_w2c(move, num_frames, magnitude, orbit_distance=info.orbit_distance)
        path = Cameras.from_fov(info.fov_x_deg, resolution, resolution, w2c)
    return squared, path, positions, move, magnitude
