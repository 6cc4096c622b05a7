"""The pseudo-view warp loss: virtual cameras between training views, and the warp of a virtual render."""

import numpy as np
import pytest
import torch

from scene4d.geometry import Cameras, named_trajectory_w2c
from scene4d.geometry.rotations import rotation_error_deg
from scene4d.io import Clip
from scene4d.splat.fit import FitConfig, Trainer, fit_gaussians, initial_splats, sh_degree_of
from scene4d.splat.pseudo_view import camera_between, warp_loss
from scene4d.splat.rasterize import rasterize
from scene4d.synth import SynthConfig, make_clip


def test_virtual_cameras_lie_between_a_view_and_one_of_its_two_nearest_cameras():
    cameras = Cameras.from_fov(60.0, 24, 24, named_trajectory_w2c("orbit-left", 5, 60.0))  # 15 degrees apart
    view = cameras[1]  # nearest: the cameras at 0 and 30 degrees
    picked = set()
    for seed in range(40):
        virtual = camera_between(view, cameras.w2c, torch.Generator().manual_seed(seed))
        centre, start = virtual.centers[0].double(), view.centers[0].double()
        errors = {}
        for other in (0, 2, 3):  # which segment the centre lies on, and where
            end = cameras.centers[other].double()
            fraction = float((centre - start) @ (end - start) / (end - start).norm() ** 2)
            errors[other] = (float((start + fraction * (end - start) - centre).norm()), fraction)
        other = min(errors, key=lambda k: errors[k][0])
        distance_off, fraction = errors[other]
        assert distance_off < 1e-5 and other in (0, 2) and 0.25 <= fraction <= 0.75
        # The rotation is slerped at the same fraction: its angle from the view is that share of the whole.
        whole = rotation_error_deg(view.w2c[0, :3, :3], cameras.w2c[other, :3, :3])
        assert abs(rotation_error_deg(view.w2c[0, :3, :3], virtual.w2c[0, :3, :3]) - fraction * whole) < 1e-3
        torch.testing.assert_close(virtual.K, view.K)
        picked.add(other)
    assert picked == {0, 2}


def test_cameras_that_only_turn_give_no_virtual_camera_and_their_fit_runs_without_one():
    turning = Cameras.from_fov(60.0, 24, 24, named_trajectory_w2c("pan-left", 4, 20.0))  # one centre
    assert camera_between(turning[1], turning.w2c, torch.Generator().manual_seed(0)) is None
    clip = make_clip(SynthConfig(kind="spatial", trajectory="pan-left", resolution=24, num_frames=4), seed=1)
    fit_gaussians(clip, FitConfig(iterations=3, init_points=200, sh_degree=0, pseudo_view_weight=0.5))  # no error


def plane_scene(width=20, height=16, focal=16.0, depth=4.0, shift_px=2):
    """A training camera at the origin facing a plane at ``depth``, and a virtual camera moved sideways so
    that every point lands ``shift_px`` pixels to the left (f t / z): the hand-evaluated warp."""
    K = torch.tensor([[[focal, 0, width / 2], [0, focal, height / 2], [0, 0, 1]]])
    camera = Cameras(K, torch.eye(4)[None], width, height)
    moved = torch.eye(4)[None]
    moved[0, 0, 3] = -shift_px * depth / focal  # w2c translation of a camera at x = shift_px z / f
    target = torch.rand(1, height, width, 3, generator=torch.Generator().manual_seed(0))
    return camera, Cameras(K, moved, width, height), torch.full((height, width), depth), target


def test_warp_loss_of_a_consistent_render_is_zero_and_of_an_inconsistent_one_is_the_hand_computed_l1():
    camera, virtual, depth, target = plane_scene()
    consistent = torch.roll(target, shifts=-2, dims=2)  # training column c is seen at virtual column c - 2
    assert float(warp_loss(consistent, depth[None], camera, virtual, depth, target)) < 1e-6
    # The virtual render equal to the training image: L1 of the image against itself 2 columns to the
    # left, over the columns 2.. that land inside the virtual frame.
    expected = (target[0, :, 2:] - target[0, :, :-2]).abs().mean()
    torch.testing.assert_close(warp_loss(target, depth[None], camera, virtual, depth, target), expected)


def test_warp_loss_leaves_out_occluded_pixels_and_pixels_without_depth():
    camera, virtual, depth, target = plane_scene()
    consistent = torch.roll(target, shifts=-2, dims=2)
    spoiled, virtual_depth = consistent.clone(), depth[None].clone()
    spoiled[0, :, :8] = 0.0  # an occluder the training view does not see, nearer the virtual camera
    assert float(warp_loss(spoiled, virtual_depth, camera, virtual, depth, target)) > 0.1
    virtual_depth[0, :, :8] = 2.0
    assert float(warp_loss(spoiled, virtual_depth, camera, virtual, depth, target)) < 1e-6
    no_surface = depth.clone()
    no_surface[:, :10] = 0.0  # training columns 0-9 have no depth: the ones that would see the occluder
    assert float(warp_loss(spoiled, depth[None], camera, virtual, no_surface, target)) < 1e-6
    # Unprojected at depth 0 a pixel is the training camera's centre, which a camera 1 behind it sees
    # at depth 1 in the middle of its frame, where its render may well be 1 deep: still no depth.
    w2c = torch.eye(4)[None].clone()
    w2c[0, 2, 3] = 1.0
    behind = Cameras(camera.K, w2c, camera.width, camera.height)
    assert float(warp_loss(spoiled, torch.ones_like(depth)[None], camera, behind, depth * 0, target)) == 0.0


def test_pseudo_view_weight_adds_the_weighted_warp_loss_to_the_step_loss():
    clip = make_clip(SynthConfig(kind="spatial", trajectory="orbit-left", resolution=32, num_frames=6), seed=3)
    config = FitConfig(init_points=400, sh_degree=0, pseudo_view_weight=0.4, random_background=False)
    splats = initial_splats(clip, config)
    camera, target = clip.cameras[1], torch.from_numpy(clip.frames[1:2])
    virtual = camera_between(camera, clip.cameras.w2c, torch.Generator().manual_seed(0))
    colors = torch.cat([splats["sh0"], splats["shN"]], dim=1)
    gaussians = (splats["means"], splats["quats"], splats["scales"], splats["opacities"], colors)
    options = {"sh_degree": sh_degree_of(splats), "mode": config.rasterize_mode}
    rendered = rasterize(*gaussians, camera, torch.zeros(3), **options)
    seen = rasterize(*gaussians, virtual, torch.zeros(3), **options)
    depth = rendered.depth[0] * (rendered.alpha[0] > 0.5)
    expected = 0.4 * float(warp_loss(seen.rgb, seen.depth, camera, virtual, depth, target))
    assert expected > 0.01
    plain = Trainer(splats, config, scene_scale=1.0).train_step(camera, target, None, None)
    both = Trainer(splats, config, scene_scale=1.0).train_step(camera, target, None, None, virtual=virtual)
    assert np.isclose(both - plain, expected, rtol=1e-5)


def test_fits_draw_a_virtual_camera_each_step_only_where_the_clip_has_several_poses(monkeypatch):
    import scene4d.splat.fit as fit

    clip = make_clip(SynthConfig(kind="spatial", trajectory="orbit-left", resolution=24, num_frames=4), seed=1)
    drawn = []
    monkeypatch.setattr(fit, "camera_between", lambda view, poses, generator: drawn.append(len(poses)) or view)
    config = FitConfig(iterations=3, init_points=200, sh_degree=0, pseudo_view_weight=0.5)
    fit.fit_gaussians(clip, config)
    assert drawn == [4, 4, 4]
    fit.fit_gaussians(clip, FitConfig(iterations=3, init_points=200, sh_degree=0))
    still = Cameras(clip.cameras.K, clip.cameras.w2c[[0] * 4], clip.width, clip.height)  # one pose, four frames
    fit.fit_gaussians(Clip(clip.frames, still, clip.times, depth=clip.depth), config)
    assert drawn == [4, 4, 4]


def test_a_negative_pseudo_view_weight_is_refused():
    from scene4d.errors import Scene4DError

    with pytest.raises(Scene4DError, match="pseudo-view weight must be non-negative"):
        FitConfig(pseudo_view_weight=-0.1)
