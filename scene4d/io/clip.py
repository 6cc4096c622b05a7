"""``Clip``: the one currency between stages — frames, cameras, times, optional depth and masks."""

from dataclasses import dataclass, field
from typing import Any

import numpy as np

from scene4d.errors import Scene4DError
from scene4d.geometry import Cameras


@dataclass
class Clip:
    """A sequence of frames with a camera and a time per frame.

    ``meta`` holds clip-level facts that stages pass along (``kind``, ``motion_strength``, ...)
    and must stay JSON-serialisable. A static (3D) clip has all times 0.
    """

    frames: np.ndarray  # [T, H, W, 3] float32 in [0, 1]
    cameras: Cameras  # T cameras, image size W x H
    times: np.ndarray  # [T] float32 in [0, 1]
    depth: np.ndarray | None = None  # [T, H, W] float32, camera z-depth in scene units
    masks: np.ndarray | None = None  # [T, H, W] int32 instance ids, 0 = background
    meta: dict[str, Any] = field(default_factory=dict)
    points: np.ndarray | None = None  # [P, 3] float32 sparse world points of the static scene (SfM); none: None
    point_colors: np.ndarray | None = None  # [P, 3] float32 in [0, 1], given with ``points``

    def __post_init__(self) -> None:
        self.frames = np.asarray(self.frames, dtype=np.float32)
        self.times = np.asarray(self.times, dtype=np.float32).reshape(-1)
        if self.frames.ndim != 4 or self.frames.shape[-1] != 3:
            raise Scene4DError(f"clip: frames must be [T, H, W, 3], got {list(self.frames.shape)}")
        num, height, width = self.frames.shape[:3]
        if len(self.cameras) != num:
            raise Scene4DError(f"clip: {num} frames but {len(self.cameras)} cameras")
        if (self.cameras.height, self.cameras.width) != (height, width):
            raise Scene4DError(
                f"clip: frames are {width}x{height} but cameras are {self.cameras.width}x{self.cameras.height}"
            )
        if self.times.shape != (num,):
            raise Scene4DError(f"clip: expected {num} times, got {self.times.shape[0]}")
        if not np.isfinite(self.frames).all() or not np.isfinite(self.times).all():
            raise Scene4DError("clip: frames or times contain NaN or infinite values")
        if self.times.min() < 0 or self.times.max() > 1:
            raise Scene4DError(f"clip: times must lie in [0, 1], got [{self.times.min()}, {self.times.max()}]")
        if self.depth is not None:
            self.depth = np.asarray(self.depth, dtype=np.float32)
            check_per_pixel(self.depth, (num, height, width), "depth")
        if self.masks is not None:
            self.masks = np.asarray(self.masks, dtype=np.int32)
            check_per_pixel(self.masks, (num, height, width), "masks")
        if (self.points is None) != (self.point_colors is None):
            raise Scene4DError("clip: points and point_colors come together")
        if self.points is not None:
            self.points = np.asarray(self.points, dtype=np.float32)
            self.point_colors = np.asarray(self.point_colors, dtype=np.float32)
            check_points(self.points, self.point_colors)
            if len(self.points) == 0:  # an empty cloud (a camera that only rotates) is no cloud
                self.points, self.point_colors = None, None

    def __len__(self) -> int:
        return self.frames.shape[0]

    @property
    def height(self) -> int:
        return self.frames.shape[1]

    @property
    def width(self) -> int:
        return self.frames.shape[2]

    def squared(self, size: int) -> "Clip":
        """The centre square of every frame resized to ``size`` x ``size``, cameras to match.

        Colours are area-averaged when shrinking (bilinear when growing); depth and masks take
        the nearest pixel.
        """
        left, top, side = square_box(self.width, self.height)
        cameras = self.cameras.cropped(left, top, side, side).resized(size, size)
        window = (slice(None), slice(top, top + side), slice(left, left + side))
        depth = None if self.depth is None else resize_images(self.depth[window], size, nearest=True)
        masks = None if self.masks is None else resize_images(self.masks[window], size, nearest=True)
        frames = resize_images(self.frames[window], size)
        return Clip(frames, cameras, self.times, depth, masks, dict(self.meta), self.points, self.point_colors)


def square_box(width: int, height: int) -> tuple[int, int, int]:
    """(left, top, side) of the centred square crop of a ``width`` x ``height`` image."""
    side = min(width, height)
    return (width - side) // 2, (height - side) // 2, side


def resize_images(images: np.ndarray, size: int, nearest: bool = False) -> np.ndarray:
    """[T, H, W, ...] -> [T, size, size, ...] (OpenCV area, bilinear or nearest interpolation)."""
    import cv2

    if images.shape[1:3] == (size, size):
        return images.copy()
    if nearest:
        interpolation = cv2.INTER_NEAREST
    else:
        interpolation = cv2.INTER_AREA if size < images.shape[1] else cv2.INTER_LINEAR
    return np.stack([cv2.resize(image, (size, size), interpolation=interpolation) for image in images])


def check_per_pixel(array: np.ndarray, shape: tuple[int, int, int], what: str) -> None:
    if array.shape != shape:
        raise Scene4DError(f"clip: {what} must be {list(shape)}, got {list(array.shape)}")


def check_points(points: np.ndarray, colors: np.ndarray) -> None:
    if points.ndim != 2 or points.shape[1] != 3 or colors.shape != points.shape:
        raise Scene4DError(f"clip: points and point_colors must both be [P, 3], got {list(points.shape)} and "
                           f"{list(colors.shape)}")  # fmt: skip
    if not np.isfinite(points).all() or not ((colors >= 0) & (colors <= 1)).all():
        raise Scene4DError("clip: points must be finite and point_colors in [0, 1]")
