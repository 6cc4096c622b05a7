"""Render-path planning in free space (DimensionX, "Building Dimension-variant Dataset").

A path is feasible when every camera centre lies in known free space (an occupancy grid from
TSDF fusion) and inside the PCA box of the captured cameras grown by a margin: DimensionX plans
spatial-variant render paths so that they neither pass through geometry nor leave the region
the capture covers. Matrices are world-to-camera (OpenCV), as everywhere.
"""

from dataclasses import dataclass

import torch
from torch import Tensor

from scene4d.errors import Scene4DError
from scene4d.geometry.bounds import PCABox
from scene4d.geometry.cameras import rigid_inverse
from scene4d.geometry.trajectories import get_move, named_trajectory_w2c


@dataclass(frozen=True)
class OccupancyGrid:
    origin: Tensor  # [3] world centre of voxel (0, 0, 0)
    voxel_size: float
    free: Tensor  # [X, Y, Z] bool, True where space is known to be empty

    def is_free(self, points: Tensor) -> Tensor:
        """Bool [P] for world points [P, 3]: inside the grid and in a free voxel."""
        index = torch.round((points.double() - torch.as_tensor(self.origin).double()) / self.voxel_size).long()
        shape = torch.tensor(self.free.shape)
        inside = ((index >= 0) & (index < shape)).all(dim=-1)
        result = torch.zeros(len(points), dtype=torch.bool)
        kept = index[inside]
        result[inside] = self.free[kept[:, 0], kept[:, 1], kept[:, 2]]
        return result


def plan_trajectory(
    name: str,
    start_w2c: Tensor,  # [4, 4] the first camera of the path
    num_frames: int,
    occupancy: OccupancyGrid,
    box: PCABox,
    orbit_distance: float,
    box_margin: float = 0.0,
    attempts: int = 8,
) -> tuple[Tensor, float]:
    """The named move from ``start_w2c`` at the largest feasible magnitude, and that magnitude.

    Starts at the move's default magnitude and shrinks it by 0.7 per attempt until every centre is
    free and inside the box; raises ``Scene4DError`` when no attempt is feasible.
    """
    magnitude = get_move(name).default_magnitude
    for _ in range(attempts):
        w2c = named_trajectory_w2c(name, num_frames, magnitude, orbit_distance) @ start_w2c
        centres = rigid_inverse(w2c)[:, :3, 3]
        if bool(occupancy.is_free(centres).all() and box.contains(centres.to(box.center.dtype), box_margin).all()):
            return w2c, magnitude
        magnitude *= 0.7
    raise Scene4DError(f"no feasible {name!r} path from this camera stays in free space and the camera box")
