"""Camera motion measured from frames: dense optical flow -> essential matrix -> relative rotation.

Used to check that generated videos follow the requested camera (GenXD and DimensionX report
camera-trajectory errors). Flow is OpenCV's DIS on the pair upsampled 4x; the essential matrix
comes from OpenCV's USAC five-point solver (RANSAC with local optimisation) on a grid of flow
correspondences.
"""

import numpy as np
import torch
from torch import Tensor

from scene4d.curate.flow import landing_matches, upsampled_flow
from scene4d.geometry import Cameras
from scene4d.geometry.rotations import rotation_error_deg
from scene4d.geometry.trajectories import direction_error_deg

FLOW_UPSAMPLE = 4  # flow is measured on frames upsampled this many times (``upsampled_flow``)


def relative_rotation(
    frame_a: np.ndarray,  # [H, W, 3]
    frame_b: np.ndarray,  # [H, W, 3]
    K: Tensor,  # [3, 3]  # noqa: N803
    threshold_px: float = 0.25,
) -> Tensor | None:
    """Rotation [3, 3] of camera b relative to camera a (``R_b @ R_a^T`` for w2c rotations), or None.

    Correspondences are flow vectors on every second pixel, from ``upsampled_flow`` (a generated
    video is small: on 64-pixel frames DIS's 8-pixel patches blur the flow), and the solver is
    OpenCV's USAC essential matrix with local optimisation, inliers within ``threshold_px``. Of its
    two rotations the smaller one is returned: between neighbouring frames the camera turns by a
    few degrees, while the other candidate differs by 180 degrees about the baseline (and
    ``recoverPose``'s cheirality vote is unreliable when the baseline is tiny, e.g. a pure pan).
    Returns None when no essential matrix is found.
    """
    import cv2

    points_a, points_b = landing_matches(upsampled_flow(frame_a, frame_b, FLOW_UPSAMPLE), step=2)
    if len(points_a) < 16:
        return None
    camera = K.double().numpy()
    essential, _ = cv2.findEssentialMat(points_a, points_b, camera, cv2.USAC_ACCURATE, 0.999, threshold_px)
    if essential is None or essential.shape[0] < 3:
        return None
    first, second, _ = cv2.decomposeEssentialMat(essential[:3])  # RANSAC may stack several solutions
    identity = torch.eye(3, dtype=torch.float64)
    candidates = [torch.from_numpy(first), torch.from_numpy(second)]
    return min(candidates, key=lambda rotation: rotation_error_deg(identity, rotation))


def chained_rotation(frames: np.ndarray, K: Tensor) -> Tensor | None:  # noqa: N803
    """Rotation [3, 3] of the last frame's camera relative to the first, chained over consecutive frames.

    Consecutive frames keep the flow small enough for DIS; None when any pair fails.
    """
    total = torch.eye(3, dtype=torch.float64)
    for index in range(len(frames) - 1):
        step = relative_rotation(frames[index], frames[index + 1], K)
        if step is None:
            return None
        total = step.double() @ total
    return total


def relative_pose_errors(estimated: Cameras, truth: Cameras) -> tuple[float, float]:
    """Median over frames of the rotation error (deg) and translation-direction error (deg)
    of each camera relative to the first, in the first camera's frame: the comparison an SfM
    result, known up to a similarity, allows. The direction is nan when no camera translates."""
    rotations, directions = [], []
    r0_est, r0_true = estimated.R[0].double(), truth.R[0].double()
    c_est, c_true = estimated.centers.double(), truth.centers.double()
    for index in range(1, len(truth)):
        relative_est = estimated.R[index].double() @ r0_est.T
        relative_true = truth.R[index].double() @ r0_true.T
        rotations.append(rotation_error_deg(relative_est, relative_true))
        step_est, step_true = r0_est @ (c_est[index] - c_est[0]), r0_true @ (c_true[index] - c_true[0])
        if step_true.norm() > 1e-6 and step_est.norm() > 1e-9:
            directions.append(direction_error_deg(step_true, step_est))
    return float(np.median(rotations)), float(np.median(directions)) if directions else float("nan")


def similarity_transform(source: np.ndarray, target: np.ndarray) -> tuple[float, np.ndarray, np.ndarray]:
    """(scale s, rotation R [3, 3], translation t [3]) minimising ``sum |s R source_i + t - target_i|^2``
    over point pairs [N, 3] (Umeyama 1991): how an SfM reconstruction, known up to a similarity, sits
    in a true world."""
    mean_source, mean_target = source.mean(axis=0), target.mean(axis=0)
    centred_source, centred_target = source - mean_source, target - mean_target
    u, singular, v_t = np.linalg.svd(centred_target.T @ centred_source / len(source))
    flip = np.diag([1.0, 1.0, np.sign(np.linalg.det(u @ v_t))])  # a rotation, never a reflection
    rotation = u @ flip @ v_t
    scale = float(np.trace(np.diag(singular) @ flip) / centred_source.var(axis=0).sum())
    return scale, rotation, mean_target - scale * rotation @ mean_source


def image_shift(frames: np.ndarray, upsample: int = FLOW_UPSAMPLE) -> np.ndarray:
    """How far the picture travels over a video: the sum over consecutive frames of the median
    flow vector [2] (x, y, pixels of ``frames`` [T, H, W, 3]; ``upsampled_flow``).

    Under a camera that pans or tilts in small steps this is close to the shift the rotation
    gives the middle of the image, whatever the scene's depth, so the shift of a generated video
    against that of the renders of its requested cameras tells how much of the turn it carried
    out, where an essential matrix on small, soft frames confuses a turn with a sideways step.
    The median ignores moving objects that cover less than half the frame.
    """
    steps = [np.median(upsampled_flow(frames[i], frames[i + 1], upsample).reshape(-1, 2), axis=0)
             for i in range(len(frames) - 1)]  # fmt: skip
    return np.sum(steps, axis=0) if steps else np.zeros(2)


def dynamic_degree(frames: np.ndarray, masks: np.ndarray, upsample: int = FLOW_UPSAMPLE) -> float:
    """Mean optical-flow magnitude (pixels of ``frames`` per frame) inside ``masks`` over consecutive frames.

    ``frames`` [T, H, W, 3]; ``masks`` [T, H, W] bool, the region of frame t measured. The flow of
    each pair is ``curate.flow.upsampled_flow`` (``upsample`` times finer, so that objects a few
    pixels wide are resolved).
    """
    magnitudes = []
    for index in range(len(frames) - 1):
        region = masks[index]
        if not region.any():
            continue
        flow = upsampled_flow(frames[index], frames[index + 1], upsample)
        magnitudes.append(np.linalg.norm(flow[region], axis=-1))
    return float(np.concatenate(magnitudes).mean()) if magnitudes else 0.0
