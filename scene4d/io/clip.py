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

    def __len__(self) -> int:
        return self.frames.shape[0]

    @property
    def height(self) -> int:
        return self.frames.shape[1]

    @property
    def width(self) -> int:
        return self.frames.shape[2]


def check_per_pixel(array: np.ndarray, shape: tuple[int, int, int], what: str) -> None:
    if array.shape != shape:
        raise Scene4DError(f"clip: {what} must be {list(shape)}, got {list(array.shape)}")
