"""Real photographs under exact rotational camera moves: clips with real textures and exact cameras.

A camera that only rotates about its centre sees every frame as a homography of the first:
``x_source ~ K_source R^T K_view^-1 x_view`` (pan, tilt and roll). Viewing a shipped photo
(scikit-image's sample images) through a narrower virtual camera that rotates gives training
clips whose cameras are exact, so the model learns those moves on real textures as well as on
``synth`` renders.
"""

import numpy as np
import torch
from torch import Tensor

from scene4d.geometry import Cameras, named_trajectory_w2c
from scene4d.geometry.trajectories import MOVES
from scene4d.io import Clip

ROTATION_MOVES: tuple[str, ...] = tuple(name for name, move in MOVES.items() if move.kind == "rotate")
SOURCE_FOV_X_DEG = 100.0  # the photo's assumed field of view; wider than the virtual camera leaves margin


def view_to_source_homography(view: Cameras, source: Cameras) -> Tensor:
    """[N, 3, 3] maps of pixel centres of ``view`` to pixel centres of the ``source`` camera.

    Both cameras share a centre, so the map is ``K_source R_source R_view^T K_view^-1``.
    """
    rotation = source.R @ view.R.transpose(1, 2)
    return source.K @ rotation @ torch.linalg.inv(view.K)


def opencv_pixel_map(homography: np.ndarray) -> np.ndarray:
    """Re-express a homography between pixel-centre (+0.5) coordinates in OpenCV's integer-centre ones."""
    shift = np.array([[1, 0, 0.5], [0, 1, 0.5], [0, 0, 1]])
    unshift = np.array([[1, 0, -0.5], [0, 1, -0.5], [0, 0, 1]])
    return unshift @ homography @ shift


def photo_rotation_clip(
    photo: np.ndarray,  # [H, W, 3] float32 in [0, 1]
    move: str,
    num_frames: int,
    magnitude_deg: float,
    resolution: int,
    fov_x_deg: float,
) -> Clip:
    """A ``spatial`` Clip of a virtual camera turning by ``move`` inside the photo's field of view."""
    import cv2

    w2c = named_trajectory_w2c(move, num_frames, magnitude_deg)
    view = Cameras.from_fov(fov_x_deg, resolution, resolution, w2c)
    height, width = photo.shape[:2]
    source = Cameras.from_fov(SOURCE_FOV_X_DEG, width, height)
    homographies = view_to_source_homography(view, source).double().numpy()
    frames = [
        cv2.warpPerspective(
            photo,
            opencv_pixel_map(homography),
            (resolution, resolution),
            flags=cv2.INTER_LINEAR | cv2.WARP_INVERSE_MAP,
            borderMode=cv2.BORDER_REFLECT,
        )
        for homography in homographies
    ]
    meta = {"kind": "spatial", "source": "photo", "trajectory": move, "trajectory_magnitude": magnitude_deg}
    return Clip(np.stack(frames), view, np.zeros(num_frames, np.float32), meta=meta | {"motion_strength": 0.0})
