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
