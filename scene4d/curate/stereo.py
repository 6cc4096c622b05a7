"""Depth from calibrated views by triangulating dense optical flow (two-view stereo).

A Clip with cameras but no depth (a generated video, or a synth clip given without depth) still
fixes the geometry of its textured surfaces: a pixel and its flow in a neighbouring view are two
rays, and where they meet is the surface. Each frame is matched with its nearest cameras (at the
same time, when the clip has several cameras per time, so object motion is not read as depth),
every pixel is triangulated with the midpoint of the two rays, and a depth survives only if it is
consistent: forward-backward flow, rays that converge in front of both cameras with enough parallax,
and agreeing estimates from different partners. A pixel whose flow is consistent but whose rays
are parallel to within a pixel lies too far for these baselines to measure: its depth is +inf
(the sky, distant hills). The rest is NaN. Initialising 3DGS at these depths instead of random
ones is what multi-view stereo does for the INRIA pipeline (where COLMAP's SfM points play the
part); COLMAP is not used here because its sparse features leave most pixels of a 128x128 frame
without a point.
"""

import warnings
from dataclasses import dataclass

import numpy as np
import torch
from torch import Tensor

from scene4d.curate.flow import cycle_error, dense_flow
from scene4d.errors import Scene4DError
from scene4d.geometry import Cameras
from scene4d.io import Clip


@dataclass(frozen=True)
class StereoConfig:
    partners: int = 2  # nearest cameras each frame is matched with
    max_flow_error_px: float = 0.5  # forward-backward flow disagreement
    min_parallax_px: float = 2.0  # angle between the two rays at the surface, in pixels of focal length
    far_parallax_px: float = 1.0  # below this angle (in pixels) a consistent match is beyond measuring: +inf
    max_gap_px: float = 1.0  # distance between the two rays at the surface, in pixels
    max_disagreement: float = 0.1  # relative spread of the partners' depths

    def __post_init__(self) -> None:
        if self.partners < 1:
            raise Scene4DError(f"stereo needs at least 1 partner camera, got {self.partners}")
        if not 0 <= self.far_parallax_px <= self.min_parallax_px:
            raise Scene4DError(f"need 0 <= far_parallax_px <= min_parallax_px, got {self.far_parallax_px} and "
                               f"{self.min_parallax_px}")  # fmt: skip


def triangulate_midpoints(
    origins_a: Tensor,  # [P, 3]
    directions_a: Tensor,  # [P, 3] unit
    origins_b: Tensor,  # [P, 3]
    directions_b: Tensor,  # [P, 3] unit
) -> tuple[Tensor, Tensor, Tensor, Tensor]:
    """Closest points of ray pairs: distances along ray a [P] and ray b [P], midpoints [P, 3] and gaps [P].

    With w = o_a - o_b and c = d_a . d_b, minimising |o_a + s d_a - o_b - u d_b| gives
    s = (c (d_b . w) - d_a . w) / (1 - c^2) and u = (d_b . w - c (d_a . w)) / (1 - c^2).
    Parallel rays give infinite or NaN distances.
    """
    offset = origins_a - origins_b
    cosine = (directions_a * directions_b).sum(-1)
    along_a, along_b = (directions_a * offset).sum(-1), (directions_b * offset).sum(-1)
    denominator = 1 - cosine**2
    distance_a = (cosine * along_b - along_a) / denominator
    distance_b = (along_b - cosine * along_a) / denominator
    point_a = origins_a + distance_a[:, None] * directions_a
    point_b = origins_b + distance_b[:, None] * directions_b
    return distance_a, distance_b, (point_a + point_b) / 2, (point_a - point_b).norm(dim=-1)


def triangulate_matches(pair: Cameras, pixels_a: Tensor, pixels_b: Tensor) -> tuple[Tensor, Tensor, Tensor, Tensor]:
    """Pixels [P, 2] of camera 0 of ``pair`` matched to pixels [P, 2] of camera 1: z-depth in camera 0 [P],
    parallax (the angle between the rays) [P] and the rays' gap at the surface [P], both in pixels of
    camera 0's focal length, and whether the rays meet in front of both cameras [P]."""
    directions = pair.directions_through(torch.stack([pixels_a, pixels_b]))
    origins = pair.centers[:, None].expand_as(directions)
    ray_a, ray_b = (origins[0], directions[0]), (origins[1], directions[1])
    distance_a, distance_b, midpoints, gaps = triangulate_midpoints(*ray_a, *ray_b)
    _, depth = pair[0].project(midpoints[None])
    sine = torch.linalg.cross(directions[0], directions[1]).norm(dim=-1)
    focal = pair.K[0, 0, 0]
    parallax_px = torch.atan2(sine, (directions[0] * directions[1]).sum(-1)) * focal
    return depth[0], parallax_px, gaps / depth[0].abs() * focal, (distance_a > 0) & (distance_b > 0)


def pair_depth(frames: np.ndarray, cameras: Cameras, index: int, partner: int, config: StereoConfig) -> np.ndarray:
    """Z-depth [H, W] of frame ``index`` triangulated with frame ``partner``: +inf where the flow is
    consistent but the rays are parallel to within ``far_parallax_px``, NaN where inconsistent."""
    forward = dense_flow(frames[index], frames[partner], full_resolution=True)
    backward = dense_flow(frames[partner], frames[index], full_resolution=True)
    consistent = torch.from_numpy(cycle_error(forward, backward).reshape(-1) <= config.max_flow_error_px)
    pair = cameras[[index, partner]].to(dtype=torch.float64)  # float32 loses the depth of small parallaxes
    pixels = pair.pixel_centers().reshape(-1, 2)
    matched = pixels + torch.from_numpy(forward).reshape(-1, 2).double()
    depth, parallax_px, gap_px, in_front = triangulate_matches(pair, pixels, matched)
    measured = consistent & in_front & (gap_px <= config.max_gap_px) & (parallax_px >= config.min_parallax_px)
    depth = torch.where(measured, depth, torch.nan)
    depth = torch.where(consistent & (parallax_px < config.far_parallax_px), torch.inf, depth)
    return depth.reshape(frames.shape[1:3]).numpy().astype(np.float32)


def stereo_partners(cameras: Cameras, times: np.ndarray, index: int, count: int) -> list[int]:
    """The ``count`` frames whose camera centres are nearest to frame ``index``'s, with a baseline
    (a millionth of the centres' distance from the origin, at least 1e-6), at the same time as
    frame ``index`` when the clip has such frames, else at any time."""
    centers = cameras.centers.double()
    distances = (centers - centers[index]).norm(dim=-1).numpy()
    candidates = np.flatnonzero(distances > 1e-6 * max(float(centers.norm(dim=-1).max()), 1.0))
    same_time = candidates[times[candidates] == times[index]]
    if len(same_time):
        candidates = same_time
    return candidates[np.argsort(distances[candidates], kind="stable")][:count].tolist()


def stereo_depth(clip: Clip, config: StereoConfig = StereoConfig()) -> np.ndarray:
    """Z-depth [T, H, W] of each frame of ``clip`` by two-view stereo with its nearest cameras;
    +inf where too far to measure, NaN where unknown.

    With several partners a depth is kept only where at least two of them measured it and their
    estimates agree to ``max_disagreement`` (the median is kept); with one partner its estimate.
    A pixel is +inf where no partner measured a depth and at least one found it beyond measuring.
    """
    depths = np.full(clip.frames.shape[:3], np.nan, np.float32)
    for index in range(len(clip)):
        partners = stereo_partners(clip.cameras, clip.times, index, config.partners)
        if not partners:
            continue
        estimates = np.stack([pair_depth(clip.frames, clip.cameras, index, partner, config) for partner in partners])
        beyond = np.isposinf(estimates).any(axis=0)
        estimates[np.isposinf(estimates)] = np.nan
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", RuntimeWarning)  # all-NaN pixels
            median = np.nanmedian(estimates, axis=0)
            spread = (np.nanmax(estimates, axis=0) - np.nanmin(estimates, axis=0)) / median
        measured = np.isfinite(estimates).sum(axis=0)
        agree = (measured >= min(2, len(partners))) & (spread <= config.max_disagreement)
        depths[index] = np.where(agree, median, np.where(beyond & (measured == 0), np.inf, np.nan))
    return depths
