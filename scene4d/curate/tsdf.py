"""TSDF fusion of depth maps into a mesh and an occupancy grid (DimensionX, dataset section).

DimensionX renders depth of a reconstructed scene, fuses it with TSDF and extracts a mesh; the
mesh's occupancy and the camera PCA box bound where new render paths may go. Open3D's TSDF
returns empty meshes in the version we can install, so fusion is written here (plain numpy,
one projective pass per frame); marching cubes comes from scikit-image.
"""

from dataclasses import dataclass

import numpy as np
import torch

from scene4d.errors import Scene4DError
from scene4d.geometry import Cameras
from scene4d.geometry.planning import OccupancyGrid


@dataclass(frozen=True)
class TSDFVolume:
    origin: np.ndarray  # [3] world position of voxel (0, 0, 0)'s centre
    voxel_size: float
    tsdf: np.ndarray  # [X, Y, Z] truncated signed distance / truncation, in [-1, 1]; 1 where unseen
    weight: np.ndarray  # [X, Y, Z] number of observations


def fuse_tsdf(
    cameras: Cameras,  # [T]
    depth: np.ndarray,  # [T, H, W] z-depth, NaN or <= 0 where unknown
    bounds: tuple[np.ndarray, np.ndarray],  # world (min [3], max [3]) of the volume
    voxel_size: float,
    truncation: float | None = None,  # default: 3 voxels
) -> TSDFVolume:
    """Curless-Levoy fusion: per voxel, the running average of clipped (depth - z) / truncation.

    Voxels further than ``truncation`` behind the observed surface are not updated.
    """
    low, high = (np.asarray(b, np.float64) for b in bounds)
    shape = np.maximum(np.ceil((high - low) / voxel_size).astype(int), 1)
    if np.prod(shape) > 2e7:
        raise Scene4DError(f"tsdf: {shape.tolist()} voxels is too many; use a larger voxel size")
    truncation = 3 * voxel_size if truncation is None else truncation
    axes = [low[d] + voxel_size * (np.arange(shape[d]) + 0.5) for d in range(3)]
    centres = np.stack(np.meshgrid(*axes, indexing="ij"), -1).reshape(-1, 3)
    tsdf, weight = np.ones(len(centres), np.float32), np.zeros(len(centres), np.float32)
    centres_world = torch.as_tensor(centres, dtype=torch.float32)[None]
    for index in range(len(cameras)):
        pixels, z = cameras[[index]].project(centres_world)
        observed = observed_depth(depth[index], pixels[0].numpy(), z[0].numpy())
        distance = observed - z[0].numpy()
        update = np.isfinite(distance) & (distance >= -truncation)
        value = np.minimum(distance[update] / truncation, 1.0)
        tsdf[update] = (tsdf[update] * weight[update] + value) / (weight[update] + 1)
        weight[update] += 1
    return TSDFVolume(low + voxel_size / 2, voxel_size, tsdf.reshape(shape), weight.reshape(shape))


def observed_depth(depth: np.ndarray, pixels: np.ndarray, z: np.ndarray) -> np.ndarray:
    """Depth [P] under each projected voxel (NaN when outside the image, behind or unknown)."""
    height, width = depth.shape
    cols, rows = np.floor(pixels[:, 0]).astype(int), np.floor(pixels[:, 1]).astype(int)
    inside = (z > 0) & (cols >= 0) & (cols < width) & (rows >= 0) & (rows < height)
    observed = np.full(len(z), np.nan, np.float32)
    observed[inside] = depth[rows[inside], cols[inside]]
    observed[~(observed > 0)] = np.nan
    return observed


def extract_mesh(volume: TSDFVolume) -> tuple[np.ndarray, np.ndarray]:
    """Marching cubes (scikit-image) of the zero level: vertices [V, 3] world, faces [F, 3]."""
    from skimage.measure import marching_cubes

    seen = volume.weight > 0
    if not ((volume.tsdf[seen] < 0).any() and (volume.tsdf[seen] > 0).any()):
        raise Scene4DError("tsdf: the volume has no surface (no depth crosses it)")
    vertices, faces, _, _ = marching_cubes(volume.tsdf, level=0.0, mask=seen)
    return (volume.origin + vertices * volume.voxel_size).astype(np.float32), faces.astype(np.int64)


def occupancy(volume: TSDFVolume) -> OccupancyGrid:
    """Free space = voxels seen in front of a surface (tsdf > 0, weight > 0); the rest is blocked."""
    free = (volume.weight > 0) & (volume.tsdf > 0)
    return OccupancyGrid(volume.origin, volume.voxel_size, torch.as_tensor(free))


def depth_bounds(cameras: Cameras, depth: np.ndarray, percentile: float = 1.0) -> tuple[np.ndarray, np.ndarray]:
    """World box (min, max) [3] around the unprojected depth (``percentile`` trimmed at each end)
    and every camera centre."""
    points = []
    grid = cameras.pixel_centers()
    for index in range(len(cameras)):
        known = np.isfinite(depth[index]) & (depth[index] > 0)
        pixels = grid[torch.as_tensor(known)]
        values = torch.as_tensor(depth[index][known])
        points.append(cameras[index].unproject(pixels[None], values[None])[0].numpy())
    cloud, centres = np.concatenate(points), cameras.centers.numpy()
    low = np.minimum(np.percentile(cloud, percentile, axis=0), centres.min(axis=0))
    high = np.maximum(np.percentile(cloud, 100 - percentile, axis=0), centres.max(axis=0))
    return low, high
