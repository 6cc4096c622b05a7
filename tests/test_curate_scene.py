"""Object motion (GenXD eq. 3-4), TSDF fusion and path planning against synth ground truth."""

import numpy as np
import pytest
import torch

from scene4d.curate.motion import least_motion_field, motion_strength, object_motion_field, window_depth_range
from scene4d.curate.tsdf import depth_bounds, extract_mesh, fuse_tsdf, occupancy
from scene4d.errors import Scene4DError
from scene4d.geometry import camera_pca_box, rigid_inverse
from scene4d.geometry.planning import OccupancyGrid, plan_trajectory
from scene4d.synth import SynthConfig, make_clip


@pytest.fixture(scope="module")
def orbit_clip():
    return make_clip(SynthConfig("spatial", 64, 8, supersample=1, trajectory="orbit-left"), seed=21)


def test_motion_field_of_a_static_point_under_camera_motion_is_zero(orbit_clip):
    cameras, depth = orbit_clip.cameras, orbit_clip.depth
    pixels = torch.tensor([[[10.5, 40.5], [32.5, 50.5], [50.5, 45.5]]])
    points = cameras[0].unproject(pixels, torch.tensor(depth[0])[[40, 50, 45], [10, 32, 50]][None])
    tracked, _ = cameras[5].project(points)  # where the static points truly are in frame 5
    field = object_motion_field(cameras[[0, 5]], pixels[0].numpy(), tracked[0].numpy(), depth[0])
    np.testing.assert_allclose(field, 0.0, atol=1e-5)
    moved = tracked[0].numpy() + np.array([[6.4, 0.0], [0.0, -3.2], [3.2, 3.2]])
    field = object_motion_field(cameras[[0, 5]], pixels[0].numpy(), moved, depth[0])
    np.testing.assert_allclose(field, [[0.1, 0.0], [0.0, -0.05], [0.05, 0.05]], atol=1e-5)  # eq. 4: / W, / H


def test_tracked_motion_strength_follows_the_exact_one():
    clip = make_clip(SynthConfig("temporal", 160, 17, speed=1.0), seed=8)
    strength, per_object = motion_strength(clip.frames, clip.cameras, clip.depth, clip.masks)
    exact = clip.meta["motion_strength_per_object"]
    for object_id, value in exact.items():  # moving objects: LK tracks agree with the exact field
        assert per_object[int(object_id)] == pytest.approx(value, rel=0.25)
    for object_id, value in per_object.items():
        if str(object_id) not in exact:  # still objects: far below the moving ones
            assert value < 0.1 * clip.meta["motion_strength"]
    assert strength == pytest.approx(clip.meta["motion_strength"], rel=0.25)


def test_window_depth_range_is_the_nearest_and_farthest_depth_around_each_pixel():
    depth = np.random.default_rng(0).uniform(1.0, 9.0, (12, 15)).astype(np.float32)
    nearest, farthest = window_depth_range(depth, radius=2)
    for row, col in ((0, 0), (5, 7), (11, 14), (3, 13)):
        window = depth[max(row - 2, 0) : row + 3, max(col - 2, 0) : col + 3]
        assert (nearest[row, col], farthest[row, col]) == (window.min(), window.max())


def test_window_depth_range_leaves_out_depths_that_are_not_positive():
    depth = np.random.default_rng(1).uniform(1.0, 9.0, (12, 15)).astype(np.float32)
    depth[2:5, 3:9] = -4.0
    depth[7, 10] = 0.0
    depth[9, 1:4] = np.nan
    depth[0:3, 12:15] = -1.0  # pixel (0, 14)'s window of radius 1 holds nothing else
    nearest, farthest = window_depth_range(depth, radius=1)
    for row in range(12):
        for col in range(15):
            window = depth[max(row - 1, 0) : row + 2, max(col - 1, 0) : col + 2]
            valid = window[np.isfinite(window) & (window > 0)]
            expected = (valid.min(), valid.max()) if valid.size else (np.inf, 0.0)
            assert (nearest[row, col], farthest[row, col]) == expected


@pytest.mark.parametrize("bad_depth", [-1.0, 0.0, np.nan])
def test_motion_strength_skips_keypoints_without_a_positive_depth(orbit_clip, bad_depth):
    """A still scene under an orbit: depth that eq. 2 pushed to <= 0 (or NaN) over half the frame
    must not read as motion (unguarded: 7x, 400x and NaN)."""
    objects = np.zeros(orbit_clip.depth.shape, np.int32)
    objects[:, 16:56, 4:60] = 1
    truth, _ = motion_strength(orbit_clip.frames, orbit_clip.cameras, orbit_clip.depth, objects)
    depth = orbit_clip.depth.copy()
    depth[:, :, :32] = np.abs(depth[:, :, :32]) * bad_depth if np.isfinite(bad_depth) else np.nan
    strength, _ = motion_strength(orbit_clip.frames, orbit_clip.cameras, depth, objects)
    assert strength == pytest.approx(truth, rel=0.1)


def test_least_motion_field_takes_the_depth_that_explains_a_track_at_an_occluding_edge(orbit_clip):
    cameras = orbit_clip.cameras[[0, 5]]
    depth = np.full((64, 64), 3.0, np.float32)
    depth[:, 33:] = 6.0  # a near surface left of column 33, a far one right of it
    pixels = torch.tensor([[[31.5, 40.5], [10.5, 40.5]]])  # beside the edge; far from it
    far = cameras[0].unproject(pixels[:, :1], torch.tensor([[6.0]]))  # the first track follows the far surface
    near = cameras[0].unproject(pixels[:, 1:], torch.tensor([[3.0]]))
    tracked, _ = cameras[1].project(torch.cat([far, near], dim=1))
    moved = tracked[0].numpy() + np.array([[0.0, 0.0], [3.2, 0.0]])  # the second also moves 3.2 px
    own = object_motion_field(cameras, pixels[0].numpy(), moved, depth)
    assert np.linalg.norm(own[0]) > 0.01  # its own depth (the near surface's) says it moves
    least = least_motion_field(cameras, pixels[0].numpy(), moved, window_depth_range(depth))
    np.testing.assert_allclose(least[0], 0.0, atol=1e-5)  # the far depth explains it: static
    np.testing.assert_allclose(least[1], [0.05, 0.0], atol=1e-5)  # one surface in its window: eq. 4


def test_least_motion_field_is_the_smallest_field_over_the_whole_depth_range(orbit_clip):
    cameras = orbit_clip.cameras[[0, 5]]
    pixels = np.array([[31.5, 40.5], [20.5, 30.5], [45.5, 12.5], [12.5, 50.5]])
    depth_range = np.stack([np.full((64, 64), 3.0, np.float32), np.full((64, 64), 6.0, np.float32)])
    near, far = (object_motion_field(cameras, pixels, pixels, depth) for depth in depth_range)
    start, end = pixels - near * 64, pixels - far * 64  # where each ray's near and far points land
    moved = np.stack(
        [
            0.6 * start[0] + 0.4 * end[0],  # a track sliding between the two surfaces: static
            0.5 * (start[1] + end[1]) + np.array([0.0, 2.5]),  # between them, and off the ray
            end[2] + 2.0 * (end[2] - start[2]),  # past the far surface
            start[3] - 1.5 * (end[3] - start[3]),  # before the near surface
        ]
    )
    least = least_motion_field(cameras, pixels, moved, depth_range)
    depths = 1.0 / np.linspace(1 / 3.0, 1 / 6.0, 3001)  # even steps along each ray's image
    sampled = np.stack([object_motion_field(cameras, pixels, moved, np.full((64, 64), z)) for z in depths])
    smallest = sampled[np.linalg.norm(sampled, axis=2).argmin(axis=0), np.arange(4)]
    np.testing.assert_allclose(least, smallest, atol=1e-4)  # the segments are ~0.3 long: 1e-4 per step
    assert (np.linalg.norm(least, axis=1) <= np.linalg.norm(smallest, axis=1) + 1e-12).all()
    np.testing.assert_allclose(least[0], 0.0, atol=1e-6)
    assert np.linalg.norm(least[1]) > 0.01


def test_tsdf_mesh_lies_on_the_rendered_depth(orbit_clip):
    cameras, depth = orbit_clip.cameras, orbit_clip.depth
    low, high = depth_bounds(cameras, np.where(depth < 12, depth, np.nan))
    volume = fuse_tsdf(cameras, np.where(depth < 12, depth, np.nan), (low, high), voxel_size=0.1)
    vertices, faces = extract_mesh(volume)
    assert len(faces) > 100
    pixels, z = cameras[[3]].project(torch.tensor(vertices)[None])
    u, v, z = pixels[0, :, 0].numpy(), pixels[0, :, 1].numpy(), z[0].numpy()
    inside = (u >= 0) & (u < 64) & (v >= 0) & (v < 64) & (z > 0)
    rendered = depth[3][v[inside].astype(int), u[inside].astype(int)]
    visible = np.abs(rendered - z[inside]) < 1.0  # vertices not hidden behind other surfaces
    assert visible.mean() > 0.6
    assert np.median(np.abs(rendered - z[inside])[visible]) < 0.1  # within a voxel of the surface


def test_occupancy_marks_camera_centres_free_and_the_ground_blocked(orbit_clip):
    cameras, depth = orbit_clip.cameras, np.where(orbit_clip.depth < 12, orbit_clip.depth, np.nan)
    volume = fuse_tsdf(cameras, depth, depth_bounds(cameras, depth), voxel_size=0.15)
    grid = occupancy(volume)
    centres = cameras.centers
    between = centres + 0.3 * (torch.tensor([0.0, 0.5, 0.0]) - centres)  # in front of each camera
    assert grid.is_free(between).float().mean() > 0.8
    surface = cameras[0].unproject(torch.tensor([[[32.5, 60.5]]]), torch.tensor(depth[0])[60, 32][None, None])[0]
    below = surface + torch.tensor([0.0, -0.5, 0.0])  # under the ground the cameras see
    assert not bool(grid.is_free(below).any())


def test_plan_trajectory_shrinks_a_move_until_it_is_free():
    start = torch.eye(4)
    free = torch.ones(41, 41, 41, dtype=torch.bool)
    grid = OccupancyGrid(torch.tensor([-4.0, -4.0, -4.0]), 0.2, free)
    box = camera_pca_box(torch.tensor([[-3.0, -3, -3], [3, 3, 3], [3, -3, 0], [-3, 3, 0.5]]))
    w2c, magnitude = plan_trajectory("truck-right", start, 5, grid, box, orbit_distance=4.0, box_margin=10.0)
    assert magnitude == pytest.approx(1.0)  # the default magnitude fits
    blocked = free.clone()
    blocked[20 + 3 :, :, :] = False  # x >= 0.6 is occupied
    w2c, magnitude = plan_trajectory(
        "truck-right", start, 5, OccupancyGrid(grid.origin, 0.2, blocked), box, 4.0, box_margin=10.0
    )
    assert magnitude == pytest.approx(0.49)  # 1.0 * 0.7 * 0.7: the first that keeps x < 0.5
    assert float(rigid_inverse(w2c)[:, 0, 3].max()) == pytest.approx(0.49, abs=1e-5)
    with pytest.raises(Scene4DError, match="no feasible"):
        plan_trajectory("truck-right", start, 5, OccupancyGrid(grid.origin, 0.2, ~free), box, 4.0)
