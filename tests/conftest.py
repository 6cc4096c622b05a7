import numpy as np
import pytest
import torch


@pytest.fixture(autouse=True)
def _seed_everything():
    torch.manual_seed(0)


@pytest.fixture(autouse=True)
def _auto_backend_on_the_cpu(monkeypatch):
    """The ``auto`` rasterizer backend stays on the CPU, as on CI, so that results do not depend on
    the machine; tests/test_gsplat_cuda.py names the gsplat backend where it wants the GPU."""
    monkeypatch.setattr("scene4d.splat.rasterize.gsplat_available", lambda: False)


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


ALEXNET_CONVS = {0: (3, 64, 11), 3: (64, 192, 5), 6: (192, 384, 3), 8: (384, 256, 3), 10: (256, 256, 3)}


@pytest.fixture(scope="module")
def moving_clip():
    """A 3-camera multiview video of 4 times with moving objects (32 px), for 4D fits."""
    from scene4d.synth import SynthConfig, make_clip

    config = SynthConfig(kind="multiview-video", resolution=32, num_frames=4, num_views=3, speed=1.5)
    return make_clip(config, seed=2)


@pytest.fixture
def lpips_weights(tmp_path):
    """A folder with random weights in the layouts of torchvision's AlexNet checkpoint (with its
    classifier, which LPIPS does not use) and of the lpips package's linear layers."""
    generator = torch.Generator().manual_seed(7)
    backbone = {"classifier.1.weight": torch.randn(8, 4, generator=generator)}
    for index, (inputs, outputs, size) in ALEXNET_CONVS.items():
        scale = (inputs * size * size) ** -0.5
        backbone[f"features.{index}.weight"] = scale * torch.randn(outputs, inputs, size, size, generator=generator)
        backbone[f"features.{index}.bias"] = 0.1 * torch.randn(outputs, generator=generator)
    linear = {
        f"lin{layer}.model.1.weight": torch.rand(1, outputs, 1, 1, generator=generator)
        for layer, (_, outputs, _) in enumerate(ALEXNET_CONVS.values())
    }
    folder = tmp_path / "lpips"
    folder.mkdir()
    torch.save(backbone, folder / "alexnet-owt-7be5be79.pth")
    torch.save(linear, folder / "alex.pth")
    return folder
