"""Camera coverage: the PCA bounding box of camera centres (DimensionX, dataset section)."""

from dataclasses import dataclass

import torch
from torch import Tensor

from scene4d.errors import Scene4DError


@dataclass(frozen=True)
class PCABox:
    center: Tensor  # [3] box centre, world
    axes: Tensor  # [3, 3] rows: principal directions, largest variance first
    half_extents: Tensor  # [3] half side lengths along each axis

    def contains(self, points: Tensor, margin: float = 0.0) -> Tensor:
        """Boolean [P] for world points [P, 3] inside the box grown by ``margin``."""
        local = (points - self.center) @ self.axes.T
        return (local.abs() <= self.half_extents + margin).all(dim=-1)


def camera_pca_box(centers: Tensor) -> PCABox:
    """Oriented bounding box of camera centres [N, 3] along their principal axes.

    DimensionX bounds the cameras of a scene with PCA to choose feasible render paths: the
    axes are the eigenvectors of the centres' covariance, the extents the range of the
    centres projected on each axis.
    """
    if centers.dim() != 2 or centers.shape[1] != 3 or centers.shape[0] < 1:
        raise Scene4DError(f"camera PCA box: expected centres [N>=1, 3], got {list(centers.shape)}")
    mean = centers.mean(dim=0)
    _, _, v_t = torch.linalg.svd(centers - mean, full_matrices=True)
    axes = v_t[:3]
    if torch.linalg.det(axes) < 0:
        axes = torch.cat([axes[:2], -axes[2:]])
    local = (centers - mean) @ axes.T
    low, high = local.amin(dim=0), local.amax(dim=0)
    return PCABox(mean + ((low + high) / 2) @ axes, axes, (high - low) / 2)


def optical_axes_centre(c2w: Tensor) -> Tensor | None:
    """The point [3] nearest (least squares) to every camera's optical axis, or None.

    ``c2w`` [N, 4, 4] camera-to-world (OpenCV: the axis is the +z column). None when the axes
    are close to parallel (a forward-facing capture) or the point lies behind the cameras.
    """
    forward = c2w[:, :3, 2].double()
    centres = c2w[:, :3, 3].double()
    projector = torch.eye(3, dtype=torch.float64) - forward[:, :, None] * forward[:, None, :]
    normal_matrix = projector.sum(dim=0)
    if len(c2w) < 2 or torch.linalg.cond(normal_matrix) > 1e4:
        return None
    point = torch.linalg.solve(normal_matrix, (projector @ centres[:, :, None]).sum(dim=0))[:, 0]
    if bool((((point - centres) * forward).sum(dim=-1) <= 0).any()):
        return None
    return point.to(c2w.dtype)
