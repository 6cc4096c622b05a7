import numpy as np
import pytest
import torch


@pytest.fixture(autouse=True)
def _seed_everything():
    torch.manual_seed(0)


def random_w2c(num: int, generator: torch.Generator | None = None) -> torch.Tensor:
    """Random rigid world-to-camera matrices [num, 4, 4] (float64)."""
    from scene4d.geometry.rotations import quaternion_to_matrix

    quat = torch.randn(num, 4, dtype=torch.float64, generator=generator)
    w2c = torch.eye(4, dtype=torch.float64).repeat(num, 1, 1)
    w2c[:, :3, :3] = quaternion_to_matrix(quat)
    w2c[:, :3, 3] = torch.randn(num, 3, dtype=torch.float64, generator=generator)
    return w2c


def warp(image: np.ndarray, homography: np.ndarray) -> np.ndarray:
    """``image`` moved by the pixel-centre homography (OpenCV's origin is the pixel centre)."""
    import cv2

    shift = np.array([[1, 0, 0.5], [0, 1, 0.5], [0, 0, 1]])
    opencv = np.linalg.inv(shift) @ homography @ shift
    return cv2.warpPerspective(image, opencv, image.shape[1::-1], flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_REFLECT)
