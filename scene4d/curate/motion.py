"""Object motion from a curated video: GenXD eq. 3-4 with tracked keypoints and aligned depth.

Keypoints are sampled on each object's mask, tracked into the next frame (pyramidal LK with a
forward-backward check, or any tracker with the same signature), back-projected with the aligned
depth (eq. 3) and projected into the next camera (eq. 1). The motion field is the tracked
position minus that projection, normalised by the image size (eq. 4): camera motion alone
gives zero. The motion strength is the maximum over objects of the mean field magnitude.

Near an occluding edge the depth under a keypoint is ambiguous: the tracker's window holds both
surfaces, and the track may follow either, or slide between them. There each keypoint takes
the depth between the nearest and the farthest in its tracking window that best explains its
track by the camera's motion, so that a static scene seen by a moving camera does not measure
motion at its silhouettes. A still camera is unaffected: its field does not depend on depth.
"""

from collections.abc import Callable

import numpy as np
import torch

from scene4d.curate.tracks import LK_WINDOW, corner_points, pixel_rows_cols, track_points
from scene4d.geometry import Cameras

Tracker = Callable[[np.ndarray, np.ndarray, np.ndarray], tuple[np.ndarray, np.ndarray]]


def object_motion_field(
    cameras: Cameras,  # 2 cameras: frame i, frame j
    points_i: np.ndarray,  # [P, 2] keypoints in frame i
    points_j: np.ndarray,  # [P, 2] the same keypoints tracked into frame j
    depth_i: np.ndarray,  # [H, W] aligned z-depth of frame i
) -> np.ndarray:
    """Eq. 3-4 of GenXD: ((u_j - u_ij) / W, (v_j - v_ij) / H) [P, 2].

    ``kp_i = R_i^-1 (Z_i K^-1 (u_i, v_i, 1) - t_i)`` with ``Z_i`` the depth under the keypoint;
    ``(u_ij, v_ij)`` is ``kp_i`` projected into camera j.
    """
    depth = torch.as_tensor(depth_i[pixel_rows_cols(points_i, depth_i.shape)], dtype=torch.float64)
    cameras = cameras.to(dtype=torch.float64)
    keypoints_world = cameras[0].unproject(torch.as_tensor(points_i, dtype=torch.float64)[None], depth[None])[0]
    projected, _ = cameras[1].project(keypoints_world[None])
    size = np.array([cameras.width, cameras.height], np.float64)
    return (points_j - projected[0].numpy()) / size


def window_depth_range(depth: np.ndarray, radius: int = LK_WINDOW // 2) -> np.ndarray:
    """[2, H, W]: the nearest and farthest positive depth of ``depth`` [H, W] over each pixel's
    window of side ``2 radius + 1`` (by default the LK window); (inf, 0) where the window holds
    none. Non-positive or non-finite depths count as missing: eq. 2's shift can push an estimated
    depth below zero, where a point would lie behind the camera."""
    import cv2

    kernel = np.ones((2 * radius + 1, 2 * radius + 1), np.uint8)
    z = depth.astype(np.float32)
    valid = np.isfinite(z) & (z > 0)
    nearest = cv2.erode(np.where(valid, z, np.inf), kernel, borderType=cv2.BORDER_REPLICATE)
    farthest = cv2.dilate(np.where(valid, z, 0.0), kernel, borderType=cv2.BORDER_REPLICATE)
    return np.stack([nearest, farthest])


def least_motion_field(
    cameras: Cameras,  # 2 cameras: frame i, frame j
    points_i: np.ndarray,  # [P, 2] keypoints in frame i
    points_j: np.ndarray,  # [P, 2] the same keypoints tracked into frame j
    depth_range_i: np.ndarray,  # [2, H, W] nearest and farthest z-depth around each pixel of frame i
) -> np.ndarray:
    """Eq. 4 [P, 2] with, per keypoint, the depth in its range that gives the smallest field.

    The points of a keypoint's ray between its nearest and farthest depth project into camera j
    onto a segment (of its epipolar line); eq. 4 is linear in that projection, so the fields
    over the range form the segment between the fields at its two ends, and the smallest is the
    point of that segment closest to zero.
    """
    near, far = (object_motion_field(cameras, points_i, points_j, depth) for depth in depth_range_i)
    along = near - far
    length2 = (along**2).sum(axis=1)
    share = np.clip((near * along).sum(axis=1) / np.where(length2 > 0, length2, 1.0), 0.0, 1.0)
    return near - share[:, None] * along


def motion_strength(
    frames: np.ndarray,  # [T, H, W, 3]
    cameras: Cameras,  # [T]
    depth: np.ndarray,  # [T, H, W] aligned z-depth
    objects: np.ndarray,  # [T, H, W] instance ids (persistent over frames), 0 = background
    points_per_object: int = 64,
    min_points: int = 4,
    min_pairs: float = 0.25,
    tracker: Tracker = track_points,
) -> tuple[float, dict[int, float]]:
    """GenXD's motion strength over consecutive frames: max over objects of mean |field| (eq. 4).

    Per frame pair (i, i+1) and object id, up to ``points_per_object`` corners of the object's
    mask in frame i are tracked into frame i+1 (keypoints with no positive depth in their window
    are dropped, and pairs with fewer than ``min_points`` tracks skipped) and measured with the
    depth within their window's range that best explains the track (``least_motion_field``);
    each object's magnitudes are averaged over its pairs. Objects seen in fewer than
    ``min_pairs`` of the pairs are left out: a brief, thin region is more likely a flow or
    tracking artefact than an object. Returns the strength and the per-object means.
    """
    magnitudes: dict[int, list[np.ndarray]] = {}
    for index in range(len(frames) - 1):
        pair = cameras[[index, index + 1]]
        depth_range = window_depth_range(depth[index])
        for object_id in np.unique(objects[index]):
            if object_id == 0:
                continue
            points = corner_points(frames[index], objects[index] == object_id, points_per_object, min_distance=2)
            moved, ok = tracker(frames[index], frames[index + 1], points)
            ok &= np.isfinite(depth_range[0][pixel_rows_cols(points, depth_range.shape[1:])])
            if ok.sum() >= min_points:
                field = least_motion_field(pair, points[ok], moved[ok], depth_range)
                magnitudes.setdefault(int(object_id), []).append(np.linalg.norm(field, axis=1))
    enough = min_pairs * (len(frames) - 1)
    per_object = {key: float(np.concatenate(v).mean()) for key, v in magnitudes.items() if len(v) >= enough}
    return max(per_object.values(), default=0.0), per_object
