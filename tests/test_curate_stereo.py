"""Two-view stereo depth against OpenCV's triangulation, hand-solved rays and synth ground truth; the
initial points of 3DGS fits built from it and from sparse points."""

import numpy as np
import pytest
import torch
from conftest import warp

import scene4d.curate.sfm as sfm
import scene4d.curate.stereo as stereo
from scene4d.geometry import Cameras
from scene4d.io import Clip
from scene4d.splat.fit import initial_points, scene_geometry
from scene4d.synth import SynthConfig, make_clip


def sideways_cameras(centres: list[list[float]]) -> Cameras:
    """Cameras looking down +z from ``centres`` (identity rotation, w2c translation = -centre)."""
    w2c = torch.eye(4).repeat(len(centres), 1, 1)
    w2c[:, :3, 3] = -torch.tensor(centres)
    K = torch.tensor([[60.0, 0, 32], [0, 60.0, 32], [0, 0, 1]]).repeat(len(centres), 1, 1)
    return Cameras(K, w2c, 64, 64)


def photo_patch(name: str) -> np.ndarray:
    """A 64x64 [H, W, 3] crop of a scikit-image photo."""
    from scene4d.synth.textures import photo_texture

    return photo_texture(name)[40:104, 100:164].numpy().copy()


def shifted(image: np.ndarray, shift: tuple[float, float]) -> np.ndarray:
    """``image`` [H, W, 3] moved by ``-shift`` (x, y) pixels: the content at x + shift lands at x."""
    return warp(image, np.array([[1, 0, -shift[0]], [0, 1, -shift[1]], [0, 0, 1]]))


def test_midpoints_of_skew_rays_solved_by_hand():
    # Ray a runs along x through the origin, ray b along y through (3, 1, 5): the closest points
    # are (3, 0, 0) on a (distance 3) and (3, 0, 5) on b (distance -1), 5 apart.
    origin_a, direction_a = torch.tensor([[0.0, 0, 0]]), torch.tensor([[1.0, 0, 0]])
    origin_b, direction_b = torch.tensor([[3.0, 1, 5]]), torch.tensor([[0.0, 1, 0]])
    distance_a, distance_b, midpoints, gaps = stereo.triangulate_midpoints(origin_a, direction_a, origin_b, direction_b)
    torch.testing.assert_close(distance_a, torch.tensor([3.0]))
    torch.testing.assert_close(distance_b, torch.tensor([-1.0]))
    torch.testing.assert_close(midpoints, torch.tensor([[3.0, 0, 2.5]]))
    torch.testing.assert_close(gaps, torch.tensor([5.0]))


def test_midpoints_of_exact_correspondences_match_opencv_triangulation():
    import cv2

    generator = torch.Generator().manual_seed(0)
    cameras = sideways_cameras([[0.0, 0, 0], [0.4, 0.1, 0]])
    points = torch.rand(50, 3, generator=generator, dtype=torch.float64) * torch.tensor([4.0, 4, 6]) + torch.tensor(
        [-2.0, -2, 2]
    )
    cameras = Cameras(cameras.K.double(), cameras.w2c.double(), 64, 64)
    pixels, _ = cameras.project(points[None].expand(2, -1, -1))
    projections = [(cameras.K[i] @ cameras.w2c[i, :3]).numpy() for i in range(2)]
    homogeneous = cv2.triangulatePoints(projections[0], projections[1], pixels[0].numpy().T, pixels[1].numpy().T)
    reference = torch.from_numpy((homogeneous[:3] / homogeneous[3]).T)
    directions = cameras.directions_through(pixels)
    origins = cameras.centers[:, None].expand_as(directions)
    _, _, midpoints, gaps = stereo.triangulate_midpoints(origins[0], directions[0], origins[1], directions[1])
    torch.testing.assert_close(midpoints, reference, atol=1e-6, rtol=1e-6)
    torch.testing.assert_close(midpoints, points, atol=1e-8, rtol=1e-8)
    assert float(gaps.max()) < 1e-8


def test_partners_are_the_nearest_cameras_at_the_same_time_with_a_baseline():
    cameras = sideways_cameras([[0.0, 0, 0], [2.0, 0, 0], [0.5, 0, 0], [0.0, 0, 0]])
    assert stereo.stereo_partners(cameras, np.array([0.0, 0.0, 1.0, 1.0]), 0, 1) == [1]  # same time, though farther
    assert stereo.stereo_partners(cameras, np.array([0.0, 1.0, 2.0, 3.0]), 0, 2) == [2, 1]  # frame 3: no baseline
    assert stereo.stereo_partners(cameras, np.zeros(4), 3, 5) == [2, 1]
    tripod = sideways_cameras([[5.0, 2, 1], [5.0 + 3e-7, 2, 1], [5.0, 2, 1 - 2e-7]])  # float32 rounding apart
    assert stereo.stereo_partners(tripod, np.arange(3.0), 0, 2) == []


@pytest.mark.parametrize(
    ("shift", "expected"),
    [
        ((3, 0), 60 * 0.4 / 3),  # disparity 3 px along the baseline: z = focal * baseline / disparity
        ((1.5, 0), np.nan),  # 1.5 px of parallax: too little to measure, too much to be far
        ((0, 0), np.inf),  # no parallax: beyond what a 0.4 baseline measures
        ((0, 3), np.nan),  # across the baseline: off the epipolar line, the rays do not meet
    ],
)
def test_pair_depth_of_a_shifted_photo_follows_the_disparity(shift, expected):
    photo = photo_patch("astronaut.png")
    cameras = sideways_cameras([[0.0, 0, 0], [0.4, 0, 0]])
    depth = stereo.pair_depth(np.stack([photo, shifted(photo, shift)]), cameras, 0, 1, stereo.StereoConfig())
    if np.isnan(expected):
        assert np.isnan(depth[16:48, 16:48]).mean() > 0.9
    else:
        assert np.median(depth[16:48, 16:48]) == pytest.approx(expected, rel=0.03)


def test_pair_depth_is_unknown_where_the_other_view_shows_something_else():
    photo = photo_patch("astronaut.png")
    moved = shifted(photo, (3, 0))
    moved[:, 32:] = photo_patch("coffee.png")[:, 32:]  # the right half is not in the first view
    cameras = sideways_cameras([[0.0, 0, 0], [0.4, 0, 0]])
    depth = stereo.pair_depth(np.stack([photo, moved]), cameras, 0, 1, stereo.StereoConfig())
    assert np.median(depth[16:48, 8:24]) == pytest.approx(8.0, rel=0.03)
    assert np.isnan(depth[16:48, 40:56]).mean() > 0.95  # forward and backward flow disagree there


def test_partners_merge_into_agreeing_medians_and_far_pixels(monkeypatch):
    # Per pixel, two partners' estimates and the merged depth the docstring of stereo_depth promises.
    nan, inf = np.nan, np.inf
    partner_1 = np.array([[2.0, 2.0, 2.0, inf, inf, nan, 5.0]], np.float32)
    partner_2 = np.array([[2.1, 3.0, nan, inf, 4.0, nan, nan]], np.float32)
    expected = np.array([[2.05, nan, nan, inf, nan, nan, nan]], np.float32)
    estimates = {1: partner_1, 2: partner_2}  # frame 0's partners; the other frames' do not matter
    monkeypatch.setattr(stereo, "pair_depth", lambda *args: estimates.get(args[3], partner_1).copy())
    cameras = sideways_cameras([[0.0, 0, 0], [0.1, 0, 0], [-0.1, 0, 0]])
    clip = Clip(np.zeros((3, 1, 7, 3), np.float32), Cameras(cameras.K, cameras.w2c, 7, 1), np.zeros(3))
    np.testing.assert_allclose(stereo.stereo_depth(clip)[0], expected, rtol=1e-6)


@pytest.fixture(scope="module")
def orbit():
    return make_clip(SynthConfig("spatial", 128, 24, supersample=1, trajectory="orbit-left"), seed=0)


def test_stereo_depth_of_a_synth_orbit_lies_on_the_true_surfaces(orbit):
    depth = stereo.stereo_depth(orbit)
    measured, beyond = np.isfinite(depth), np.isposinf(depth)
    relative = np.abs(depth[measured] - orbit.depth[measured]) / orbit.depth[measured]
    # Measured on this clip (aliased renders: supersample 1): 44% of pixels, median error 1.5%,
    # 8.5% of them off by more than 10%.
    assert measured.mean() > 0.35
    assert np.median(relative) < 0.025 and np.mean(relative > 0.1) < 0.15
    # "Too far to measure" (22% of pixels) is the sky dome and the ground near the horizon,
    # 20 or more scene units away (the dome has a radius of 30).
    assert beyond.mean() > 0.15 and np.mean(orbit.depth[beyond] > 20) > 0.95


def test_initial_points_follow_stereo_depth_its_far_pixels_and_random_depths(orbit, monkeypatch):
    single = Clip(orbit.frames[:1], orbit.cameras[[0]], orbit.times[:1])
    known = np.full((1, 128, 128), np.nan, np.float32)
    known[:, :40] = orbit.depth[:1, :40]
    known[:, 40:80] = np.inf
    monkeypatch.setattr(stereo, "stereo_depth", lambda *args: known)
    points, colors = initial_points(single, 3000, torch.Generator().manual_seed(0))
    pixels, depth = single.cameras.project(points[None])
    col, row = (pixels[0] - 0.5).round().long().T
    np.testing.assert_allclose(colors.numpy(), orbit.frames[0][row, col])
    _, near, far = scene_geometry(single.cameras)
    top, middle, bottom = row < 40, (row >= 40) & (row < 80), row >= 80
    torch.testing.assert_close(depth[0, top], torch.from_numpy(orbit.depth[0][row[top], col[top]]), rtol=1e-4, atol=0)
    torch.testing.assert_close(depth[0, middle], torch.full_like(depth[0, middle], far), rtol=1e-4, atol=0)
    assert bool(((depth[0, bottom] > near * 0.999) & (depth[0, bottom] < far * 1.001)).all())
    assert float(depth[0, bottom].std()) > 0.1 * far  # spread out, not one depth


def test_initial_points_are_the_sfm_points_topped_up_from_stereo(orbit, monkeypatch):
    known = np.full((2, 128, 128), np.inf, np.float32)  # stereo says: everything at the far bound
    monkeypatch.setattr(stereo, "stereo_depth", lambda *args: known)
    generator = np.random.default_rng(3)
    points = generator.normal(size=(500, 3)).astype(np.float32)
    colors = generator.random((500, 3)).astype(np.float32)
    clip = Clip(orbit.frames[:2], orbit.cameras[[0, 1]], orbit.times[:2], points=points, point_colors=colors)
    topped_up, topped_up_colors = initial_points(clip, 800, torch.Generator().manual_seed(0))
    np.testing.assert_array_equal(topped_up[:500].numpy(), points)
    np.testing.assert_array_equal(topped_up_colors[:500].numpy(), colors)
    _, depth = clip.cameras[[0]].project(topped_up[500:][None])
    _, _, far = scene_geometry(clip.cameras)
    assert len(topped_up) == 800
    assert float(depth.min()) > 0.5 * far  # the 300 others come from the stereo map (at its far bound)
    some, some_colors = initial_points(clip, 100, torch.Generator().manual_seed(0))
    rows = [int(np.flatnonzero((points == point).all(axis=1))[0]) for point in some.numpy()]
    assert len(set(rows)) == 100
    np.testing.assert_array_equal(some_colors.numpy(), colors[rows])


def test_initial_points_start_from_points_triangulated_at_the_cameras(orbit, monkeypatch):
    known = np.full((3, 128, 128), np.inf, np.float32)  # stereo says: everything at the far bound
    monkeypatch.setattr(stereo, "stereo_depth", lambda *args: known)
    generator = np.random.default_rng(4)
    triangulated = generator.normal(size=(40, 3)).astype(np.float32), generator.random((40, 3)).astype(np.float32)
    calls = []

    def triangulate(frames, cameras, moving):
        calls.append((frames, cameras))
        return triangulated

    monkeypatch.setattr(sfm, "triangulate_known_cameras", triangulate)
    clip = Clip(orbit.frames[:3], orbit.cameras[[0, 1, 2]], orbit.times[:3])  # no depth, no points
    points, colors = initial_points(clip, 500, torch.Generator().manual_seed(0))
    assert len(calls) == 1 and calls[0][0] is clip.frames and calls[0][1] is clip.cameras
    np.testing.assert_array_equal(points[:40].numpy(), triangulated[0])
    np.testing.assert_array_equal(colors[:40].numpy(), triangulated[1])
    far = scene_geometry(clip.cameras)[2]
    assert len(points) == 500
    assert float(torch.cdist(points[40:], clip.cameras.centers).min()) > 0.5 * far  # the rest: stereo's
    stereo_only, _ = initial_points(clip, 500, torch.Generator().manual_seed(0), triangulate=False)
    assert len(calls) == 1 and float(torch.cdist(stereo_only, clip.cameras.centers).min()) > 0.5 * far


def test_triangulation_skips_dilated_masks_only_when_the_clip_spans_several_times(orbit, monkeypatch):
    from scene4d.curate.masks import MaskConfig, sfm_mask
    from scene4d.splat.fit import triangulated_points

    seen = []

    def triangulate(frames, cameras, moving):
        seen.append(moving)
        return np.zeros((0, 3), np.float32), np.zeros((0, 3), np.float32)

    monkeypatch.setattr(sfm, "triangulate_known_cameras", triangulate)
    masks = np.zeros((2, 128, 128), np.int32)
    masks[:, 10:20, 30:50], masks[:, 60:70, 60:90] = 1, 2
    frames, cameras = orbit.frames[:2], orbit.cameras[[0, 1]]
    assert triangulated_points(Clip(frames, cameras, np.zeros(2), masks=masks)).points is None
    assert seen == [None]  # one time: nothing moves
    triangulated_points(Clip(frames, cameras, np.array([0.0, 0.5]), masks=masks))
    expected = sfm_mask(masks, MaskConfig().dilate)
    assert expected.sum() > (masks > 0).sum()
    np.testing.assert_array_equal(seen[1], expected)
    unmasked = Clip(frames, cameras, np.array([0.0, 0.5]))
    assert triangulated_points(unmasked) is unmasked and len(seen) == 2  # objects may move: no points
