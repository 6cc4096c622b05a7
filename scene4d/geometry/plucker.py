"""Plücker-ray camera embedding (GenXD eq. 6)."""

import torch
from torch import Tensor

from scene4d.geometry.cameras import Cameras


def plucker_rays(cameras: Cameras, height: int | None = None, width: int | None = None) -> Tensor:
    """Eq. 6 of GenXD: per-pixel rays ``r = (d, o x d)`` [N, h, w, 6].

    ``d`` is the unit world-space direction from the camera centre ``o`` through the centre of
    each pixel of an ``h x w`` grid spanning the image (the image grid by default; pass the latent
    size for latent-resolution rays: the grid's pixel centres sit at integer + 0.5 of that grid).
    """
    grid = cameras.resized(height or cameras.height, width or cameras.width)
    directions = grid.ray_directions()
    origins = grid.centers[:, None, None].expand_as(directions)
    moments = torch.linalg.cross(origins, directions, dim=-1)
    return torch.cat([directions, moments], dim=-1)
