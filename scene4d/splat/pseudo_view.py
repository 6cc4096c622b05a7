"""A pseudo-view warp loss for fits from few cameras (not from either paper; BENCHMARKS.md, 4D).

With four cameras 15 degrees apart, Gaussians can explain every training view and still smear
the scene seen from between them. Each step then also renders a virtual camera between the
training view and one of its nearest training cameras, and asks that render, looked up where the
training view's pixels land in it, to reproduce the training image. The pixels are placed at the
training render's own depth, so the term needs no depth maps; only pixels whose depth the
virtual render agrees with (no occlusion between the two views) count.
"""

import torch
import torch.nn.functional as F
from torch import Tensor

from scene4d.geometry import Cameras
from scene4d.geometry.cameras import rigid_inverse
from scene4d.geometry.rotations import matrix_to_quaternion, quaternion_to_matrix, slerp

OPAQUE = 0.5  # training-render pixels with less alpha have no depth to warp by
DEPTH_TOLERANCE = 0.03  # relative depth disagreement past which a pixel counts as occluded


def camera_between(camera: Cameras, training_w2c: Tensor, generator: torch.Generator) -> Cameras | None:
    """A camera between ``camera`` (one view) and one of the two training cameras nearest to it
    (``training_w2c`` [M, 4, 4], distinct poses, ``camera``'s own among them or not): centre
    interpolated and rotation slerped at a fraction drawn from U(0.25, 0.75); same intrinsics, on
    ``camera``'s device. None where no training camera stands elsewhere (cameras that only turn
    about one centre see no parallax for the loss to use)."""
    c2w = rigid_inverse(camera.w2c.double())[0]
    others_c2w = rigid_inverse(training_w2c.double())
    distances = (others_c2w[:, :3, 3] - c2w[:3, 3]).norm(dim=-1)
    order = torch.argsort(distances)
    nearest = order[distances[order] > 1e-6][:2]
    if len(nearest) == 0:
        return None
    other = others_c2w[nearest[torch.randint(len(nearest), (1,), generator=generator)]][0]
    fraction = 0.25 + 0.5 * torch.rand((), generator=generator, dtype=torch.float64).to(c2w.device)
    between = torch.eye(4, dtype=torch.float64, device=c2w.device)
    rotations = matrix_to_quaternion(torch.stack([c2w[:3, :3], other[:3, :3]]))
    between[:3, :3] = quaternion_to_matrix(slerp(rotations[0], rotations[1], fraction))
    between[:3, 3] = (1 - fraction) * c2w[:3, 3] + fraction * other[:3, 3]
    return Cameras(camera.K, rigid_inverse(between[None]).to(camera.w2c), camera.width, camera.height)


def warp_loss(
    virtual_rgb: Tensor,  # [1, H, W, 3] the render of the virtual camera
    virtual_depth: Tensor,  # [1, H, W] its expected depth
    camera: Cameras,  # the training view
    virtual: Cameras,  # the virtual camera
    depth: Tensor,  # [H, W] the training view's depth, 0 where none
    target: Tensor,  # [1, H, W, 3] the training image
) -> Tensor:
    """Mean L1 between the training image and the virtual render sampled (bilinearly) where the
    training view's pixels, unprojected at ``depth``, land in the virtual camera; over the pixels
    with depth that land inside the frame where the virtual depth agrees within ``DEPTH_TOLERANCE``
    (0 when there are none)."""
    height, width = camera.height, camera.width
    pixels = camera.pixel_centers().reshape(1, -1, 2)
    points = camera.unproject(pixels, depth.reshape(1, -1).to(pixels))
    landed, landed_depth = virtual.project(points)
    scale = torch.tensor([2 / width, 2 / height], dtype=landed.dtype, device=landed.device)
    grid = (landed * scale - 1).reshape(1, height, width, 2).to(virtual_rgb)
    sampled = F.grid_sample(virtual_rgb.permute(0, 3, 1, 2), grid, align_corners=False).permute(0, 2, 3, 1)
    seen_depth = F.grid_sample(virtual_depth.detach()[:, None], grid, align_corners=False)[0, 0]
    landed_depth = landed_depth.reshape(height, width).to(seen_depth)
    valid = (depth > 0) & (grid[0].abs() < 1).all(dim=-1)
    valid &= (seen_depth - landed_depth).abs() < DEPTH_TOLERANCE * landed_depth
    if not bool(valid.any()):
        return virtual_rgb.sum() * 0
    return (sampled[0] - target[0]).abs().mean(dim=-1)[valid].mean()
