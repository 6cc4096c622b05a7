"""Keypoints and tracking: OpenCV corners and pyramidal Lucas-Kanade with a forward-backward check.

Points are pixel positions in the scene4d convention (the centre of the top-left pixel is
(0.5, 0.5)); OpenCV puts that centre at (0, 0), so positions shift by 0.5 at the OpenCV calls.
"""

import numpy as np

from scene4d.io.media import to_uint8

LK_WINDOW = 15  # pixels
LK_LEVELS = 3


def grey(frame: np.ndarray) -> np.ndarray:
    import cv2

    return cv2.cvtColor(to_uint8(frame), cv2.COLOR_RGB2GRAY)


def corner_points(frame: np.ndarray, region: np.ndarray | None, count: int, min_distance: int = 4) -> np.ndarray:
    """Up to ``count`` Shi-Tomasi corners [P, 2] of ``frame`` [H, W, 3], inside bool ``region`` [H, W]."""
    import cv2

    mask = None if region is None else region.astype(np.uint8) * 255
    if count < 1 or (mask is not None and not mask.any()):
        return np.zeros((0, 2), np.float32)
    corners = cv2.goodFeaturesToTrack(grey(frame), count, 0.005, min_distance, mask=mask, blockSize=5)
    return np.zeros((0, 2), np.float32) if corners is None else corners[:, 0] + 0.5


def track_points(
    frame_a: np.ndarray, frame_b: np.ndarray, points: np.ndarray, max_error_px: float = 0.5
) -> tuple[np.ndarray, np.ndarray]:
    """Positions [P, 2] in ``frame_b`` of ``points`` [P, 2] of ``frame_a``, and bool [P] where trusted.

    A point is trusted when LK finds it both ways and tracking it back lands within
    ``max_error_px`` of where it started, inside the frame.
    """
    import cv2

    if len(points) == 0:
        return points.astype(np.float32), np.zeros(0, bool)
    grey_a, grey_b = grey(frame_a), grey(frame_b)
    options = {
        "winSize": (LK_WINDOW, LK_WINDOW),
        "maxLevel": LK_LEVELS,
        "criteria": (cv2.TERM_CRITERIA_EPS | cv2.TERM_CRITERIA_COUNT, 30, 0.01),
    }
    start = (points - 0.5).astype(np.float32).reshape(-1, 1, 2)
    forward, found, _ = cv2.calcOpticalFlowPyrLK(grey_a, grey_b, start, None, **options)
    backward, found_back, _ = cv2.calcOpticalFlowPyrLK(grey_b, grey_a, forward, None, **options)
    moved = forward[:, 0] + 0.5
    height, width = grey_b.shape
    ok = (found[:, 0] == 1) & (found_back[:, 0] == 1)
    ok &= np.linalg.norm(backward[:, 0] - start[:, 0], axis=1) < max_error_px
    ok &= (moved[:, 0] >= 0) & (moved[:, 0] < width) & (moved[:, 1] >= 0) & (moved[:, 1] < height)
    return moved, ok


def pixel_rows_cols(points: np.ndarray, shape: tuple[int, int]) -> tuple[np.ndarray, np.ndarray]:
    """(rows, cols) of the pixels under ``points`` [P, 2], clipped to the image."""
    rows = np.clip(np.floor(points[:, 1]).astype(int), 0, shape[0] - 1)
    cols = np.clip(np.floor(points[:, 0]).astype(int), 0, shape[1] - 1)
    return rows, cols


def sift_matches(
    frame_a: np.ndarray, frame_b: np.ndarray, ratio: float = 0.8, size: int = 512, contrast: float = 0.01
) -> tuple[np.ndarray, np.ndarray]:
    """Pixel positions [M, 2] of SIFT matches between two frames that pass Lowe's ratio test.

    For wide baselines, where dense flow and LK tracking lose the correspondence. Each frame is
    detected at a working ``size`` (its longer side; small frames are enlarged, large ones reduced,
    which bounds time and memory) with a low ``contrast`` threshold (OpenCV's default is 0.04):
    small, low-contrast frames then give many more correct matches.
    """
    import cv2

    sift = cv2.SIFT_create(contrastThreshold=contrast, enable_precise_upscale=True)  # else keypoints sit 0.25 px off
    (image_a, scale_a), (image_b, scale_b) = (grey_at_size(frame, size) for frame in (frame_a, frame_b))
    (keys_a, features_a), (keys_b, features_b) = (sift.detectAndCompute(image, None) for image in (image_a, image_b))
    if features_a is None or features_b is None or min(len(keys_a), len(keys_b)) < 2:
        return np.zeros((0, 2)), np.zeros((0, 2))
    pairs = cv2.BFMatcher().knnMatch(features_a, features_b, k=2)
    good = [pair[0] for pair in pairs if len(pair) == 2 and pair[0].distance < ratio * pair[1].distance]
    # OpenCV's pixel centres sit at integers at either size: x = (x_resized + 0.5) / scale in ours.
    points_a = (np.float64([keys_a[match.queryIdx].pt for match in good]).reshape(-1, 2) + 0.5) / scale_a
    points_b = (np.float64([keys_b[match.trainIdx].pt for match in good]).reshape(-1, 2) + 0.5) / scale_b
    return points_a, points_b


def grey_at_size(frame: np.ndarray, size: int) -> tuple[np.ndarray, np.ndarray]:
    """``frame`` [H, W, 3] in grey, resized so that its longer side is ``size`` pixels, and the
    scale [2] (x, y) from its pixels to the resized ones."""
    import cv2

    image = grey(frame)
    height, width = image.shape
    factor = size / max(height, width)
    shape = (max(1, round(width * factor)), max(1, round(height * factor)))
    method = cv2.INTER_LINEAR if factor >= 1 else cv2.INTER_AREA
    return cv2.resize(image, shape, interpolation=method), np.array([shape[0] / width, shape[1] / height])
