import torch
from conftest import random_w2c

from scene4d.geometry import Cameras, plucker_rays


def cameras():
    K = torch.tensor([[40.0, 0, 16.0], [0, 42.0, 12.0], [0, 0, 1]], dtype=torch.float64)
    return Cameras(K.repeat(2, 1, 1), random_w2c(2), 32, 24)


def test_directions_are_unit_and_moments_orthogonal():
    rays = plucker_rays(cameras())
    assert rays.shape == (2, 24, 32, 6)
    direction, moment = rays[..., :3], rays[..., 3:]
    torch.testing.assert_close(direction.norm(dim=-1), torch.ones(2, 24, 32, dtype=torch.float64))
    assert (direction * moment).sum(-1).abs().max() < 1e-12


def test_moment_equals_point_cross_direction_for_any_point_on_the_ray():
    cams = cameras()
    rays = plucker_rays(cams)
    row, col = 5, 20
    pixel = torch.tensor([[[col + 0.5, row + 0.5]]], dtype=torch.float64).expand(2, 1, 2)
    for depth in (0.7, 3.0, 11.0):
        point = cams.unproject(pixel, torch.full((2, 1), depth, dtype=torch.float64))[:, 0]
        expected = torch.linalg.cross(point, rays[:, row, col, :3], dim=-1)
        torch.testing.assert_close(rays[:, row, col, 3:], expected)


def test_latent_grid_rays_pass_through_latent_pixel_centres():
    cams = cameras()
    latent = plucker_rays(cams, height=3, width=4)  # an 8x coarser grid
    assert latent.shape == (2, 3, 4, 6)
    # Latent pixel (1, 2) has its centre at (2.5, 1.5) latent px = (20, 12) image px.
    image_point = cams.unproject(
        torch.tensor([[[20.0, 12.0]]], dtype=torch.float64).expand(2, 1, 2), torch.ones(2, 1, dtype=torch.float64)
    )[:, 0]
    direction = image_point - cams.centers
    torch.testing.assert_close(latent[:, 1, 2, :3], direction / direction.norm(dim=-1, keepdim=True))
