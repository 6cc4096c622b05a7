import math

import numpy as np
import pytest
import torch

from scene4d.errors import Scene4DError
from scene4d.geometry import Cameras
from scene4d.synth import SynthConfig, make_clip, render_view
from scene4d.synth.motion import motion_strength
from scene4d.synth.scene import RigidMotion, Scene, SceneObject
from scene4d.synth.textures import noise_texture

STILL = RigidMotion()


def one_sphere_scene(center, radius, motion=STILL):
    rng = np.random.default_rng(0)
    sphere = SceneObject("sphere", (radius,) * 3, center, 0.0, 2, 2.0, 1, motion)
    return Scene((sphere,), (noise_texture(rng), noise_texture(rng), noise_texture(rng)), 0, 0.5, 1, (0.0, 1.0, 0.0))


def camera_at(eye, rows, size=33, fov_x_deg=50.0):
    """A camera at ``eye`` whose world-to-camera rotation has the given rows (x, y, z axes)."""
    w2c = torch.eye(4)
    w2c[:3, :3] = torch.tensor(rows, dtype=torch.float32)
    w2c[:3, 3] = -w2c[:3, :3] @ torch.tensor(eye, dtype=torch.float32)
    return Cameras.from_fov(fov_x_deg, size, size, w2c[None])


LOOK_FORWARD = [[-1, 0, 0], [0, -1, 0], [0, 0, 1]]  # looks along world +z, +y up: right is -x
LOOK_DOWN = [[1, 0, 0], [0, 0, 1], [0, -1, 0]]  # camera looks along world -y


def test_ground_plane_depth_equals_height_for_a_downward_camera():
    scene = one_sphere_scene((50.0, 1.0, 50.0), 0.5)  # sphere far out of view
    out = render_view(scene, camera_at((0.0, 2.5, 0.0), LOOK_DOWN), 0.0)
    torch.testing.assert_close(out.depth, torch.full((33, 33), 2.5), atol=1e-5, rtol=0)
    assert int(out.instance.max()) == 0


def test_sphere_depth_and_silhouette_match_geometry():
    distance, radius = 6.0, 0.8
    scene = one_sphere_scene((0.0, 1.0, distance), radius)
    camera = camera_at((0.0, 1.0, 0.0), LOOK_FORWARD, size=65)
    out = render_view(scene, camera, 0.0)
    # The centre pixel's ray is the optical axis (odd size): it meets the sphere at D - r.
    assert math.isclose(float(out.depth[32, 32]), distance - radius, abs_tol=1e-5)
    # The silhouette is a disc of radius f * tan(asin(r / D)) pixels.
    focal = float(camera.K[0, 0, 0])
    disc_radius = focal * math.tan(math.asin(radius / distance))
    area = float((out.instance == 1).sum())
    assert abs(area - math.pi * disc_radius**2) < 2 * math.pi * disc_radius  # within one perimeter


def test_box_face_cylinder_cap_and_dome_depths():
    rng = np.random.default_rng(0)
    textures = (noise_texture(rng), noise_texture(rng), noise_texture(rng))
    box = SceneObject("box", (0.5, 0.5, 0.4), (0.0, 1.0, 6.0), 0.0, 2, 1.0, 1)
    cylinder = SceneObject("cylinder", (0.7, 0.3, 0.7), (0.0, 0.3, 0.0), 0.0, 2, 1.0, 2)
    forward = render_view(Scene((box,), textures, 0, 0.5, 1, (0, 1, 0)), camera_at((0, 1, 0), LOOK_FORWARD), 0.0)
    assert math.isclose(float(forward.depth[16, 16]), 6.0 - 0.4, abs_tol=1e-5)  # the box's front face
    down = render_view(Scene((cylinder,), textures, 0, 0.5, 1, (0, 1, 0)), camera_at((0, 3, 0), LOOK_DOWN), 0.0)
    assert math.isclose(float(down.depth[16, 16]), 3.0 - 0.6, abs_tol=1e-5)  # the top cap at y = 0.6
    assert int(down.instance[16, 16]) == 2
    up = [[1, 0, 0], [0, 0, -1], [0, 1, 0]]  # looks along world +y, into the sky
    sky = render_view(Scene((), textures, 0, 0.5, 1, (0, 1, 0)), camera_at((0, 1, 0), up), 0.0)
    assert math.isclose(float(sky.depth[16, 16]), 30.0 - 1.0, abs_tol=1e-4)  # the dome of radius 30


def test_recorded_object_motion_matches_the_rendered_frames():
    # Points carried by the recorded poses into the next frame, where visible there, land on their
    # own object at the rendered depth; for translating objects, points assumed static do not.
    clip = make_clip(SynthConfig(kind="hybrid", resolution=64, num_frames=4, supersample=1, speed=1.5), seed=6)
    carried, kept = [], []
    for obj in clip.meta["objects"]:
        poses = torch.tensor(obj["obj2world"], dtype=torch.float64)
        for i in range(len(clip) - 1):
            points = object_points(clip, i, obj["instance_id"])
            motion = poses[i + 1] @ torch.linalg.inv(poses[i])
            carried += landed_on_object(clip, i + 1, points @ motion[:3, :3].T + motion[:3, 3], obj["instance_id"])
            if obj["motion"]["kind"] in ("translate", "bounce"):
                kept += landed_on_object(clip, i + 1, points, obj["instance_id"])
    assert len(carried) > 200 and np.mean(carried) > 0.9  # misses: rounding at silhouettes
    assert len(kept) > 20 and np.mean(kept) < np.mean(carried) - 0.3


def object_points(clip, frame, instance_id):
    """World points [P, 3] (float64) of the object's pixels in ``frame``, from the exact depth."""
    visible = torch.from_numpy(clip.masks[frame] == instance_id)
    pixels = clip.cameras.pixel_centers()[visible][None].double()
    depth = torch.from_numpy(clip.depth[frame])[visible][None].double()
    return clip.cameras[frame].to(dtype=torch.float64).unproject(pixels, depth)[0]


def landed_on_object(clip, frame, points, instance_id):
    """For points in view and not hidden in ``frame``: does each land on the object?"""
    uv, z = clip.cameras[frame].to(dtype=torch.float64).project(points[None])
    col, row = (uv[0, :, 0] - 0.5).round().long(), (uv[0, :, 1] - 0.5).round().long()
    inside = (col >= 0) & (col < clip.width) & (row >= 0) & (row < clip.height)
    col, row = col[inside], row[inside]
    depth = torch.from_numpy(clip.depth[frame])[row, col].double()
    unoccluded = z[0, inside] < depth * 1.05
    hits = (torch.from_numpy(clip.masks[frame])[row, col] == instance_id) & (
        (z[0, inside] - depth).abs() < 0.05 * depth
    )
    return hits[unoccluded].tolist()


def test_rendered_sphere_centre_lands_where_the_camera_projects_it():
    center = (1.1, 1.4, 6.0)
    scene = one_sphere_scene(center, 0.3)
    camera = camera_at((0.0, 1.0, 0.0), LOOK_FORWARD, size=128)
    out = render_view(scene, camera, 0.0)
    rows, cols = torch.nonzero(out.instance == 1, as_tuple=True)
    centroid = torch.stack([cols.double().mean() + 0.5, rows.double().mean() + 0.5])
    projected, _ = camera.project(torch.tensor([center]))
    assert (centroid - projected[0, 0].double()).norm() < 0.3


def test_spatial_clip_reprojects_into_other_frames():
    clip = make_clip(
        SynthConfig(kind="spatial", resolution=96, num_frames=5, supersample=1, trajectory="orbit-left"), seed=4
    )
    error, matched = reprojection_error(clip, source_camera=0)
    assert matched > 2500 and error < 0.03
    wrong_error, _ = reprojection_error(clip, source_camera=4)  # a wrong camera must fail
    assert wrong_error > 3 * error


def reprojection_error(clip, source_camera):
    """Median colour error and matched pixel count when frame 0 is back-projected with the
    camera of ``source_camera`` and re-projected into frame 4."""
    cameras = clip.cameras
    pixels = cameras.pixel_centers().reshape(1, -1, 2)
    depth = torch.from_numpy(clip.depth[0]).reshape(1, -1)
    points = cameras[source_camera].unproject(pixels, depth)[0]
    target, target_depth = cameras[4].project(points)
    u, v = target[0, :, 0], target[0, :, 1]
    inside = (u > 1) & (u < clip.width - 1) & (v > 1) & (v < clip.height - 1) & (depth[0] < 20)
    col, row = (u - 0.5).round().long().clamp(0, clip.width - 1), (v - 0.5).round().long().clamp(0, clip.height - 1)
    seen = torch.from_numpy(clip.depth[4])[row, col]
    visible = inside & ((seen - target_depth[0]).abs() < 0.02 * seen)
    sampled = bilinear(torch.from_numpy(clip.frames[4]), u[visible], v[visible])
    source = torch.from_numpy(clip.frames[0]).reshape(-1, 3)[visible]
    return float((sampled - source).abs().mean(dim=-1).median()), int(visible.sum())


def bilinear(image, u, v):
    x, y = u - 0.5, v - 0.5
    x0, y0 = x.floor().long(), y.floor().long()
    fx, fy = (x - x0)[:, None], (y - y0)[:, None]
    return (
        image[y0, x0] * (1 - fx) * (1 - fy)
        + image[y0, x0 + 1] * fx * (1 - fy)
        + image[y0 + 1, x0] * (1 - fx) * fy
        + image[y0 + 1, x0 + 1] * fx * fy
    )


def test_motion_strength_of_a_sideways_translation_matches_the_hand_formula():
    # A sphere slides along world +x, parallel to the image plane of a fixed camera: a point at
    # z-depth z moves by fx * dx / z pixels per frame, and not at all vertically.
    frames, travel = 5, 1.0
    scene = one_sphere_scene((0.0, 1.0, 6.0), 0.6, RigidMotion("translate", velocity=(travel, 0.0, 0.0)))
    camera = camera_at((0.0, 1.0, 0.0), LOOK_FORWARD, size=48)
    times = np.linspace(0, 1, frames)
    outputs = [render_view(scene, camera, float(t)) for t in times]
    depth = torch.stack([o.depth for o in outputs])
    masks = torch.stack([o.instance for o in outputs])
    cameras = Cameras(camera.K.expand(frames, 3, 3), camera.w2c.expand(frames, 4, 4), 48, 48)
    poses = {1: torch.stack([scene.objects[0].obj2world(float(t)) for t in times])}
    strength, _ = motion_strength(cameras, depth, masks, poses, [(k, k + 1) for k in range(frames - 1)])
    focal = float(camera.K[0, 0, 0])
    step = travel / (frames - 1)
    expected = float(
        torch.cat([focal * step / depth[k][masks[k] == 1].double() / 48 for k in range(frames - 1)]).mean()
    )
    assert math.isclose(strength, expected, rel_tol=1e-6)


def test_camera_motion_alone_gives_zero_motion_strength():
    still = make_clip(SynthConfig(kind="hybrid", resolution=48, num_frames=4, supersample=1, speed=0.0), seed=2)
    moving = make_clip(SynthConfig(kind="hybrid", resolution=48, num_frames=4, supersample=1, speed=1.0), seed=2)
    assert still.meta["motion_strength"] < 1e-9
    assert moving.meta["motion_strength"] > 1e-3
    assert not np.allclose(still.cameras.w2c[0], still.cameras.w2c[-1])


def test_clip_kinds_have_the_right_cameras_and_times():
    config = dict(resolution=32, num_frames=4, supersample=1)
    spatial = make_clip(SynthConfig(kind="spatial", **config), seed=1)
    temporal = make_clip(SynthConfig(kind="temporal", **config), seed=1)
    assert (spatial.times == 0).all() and spatial.meta["motion_strength"] == 0.0
    assert not torch.allclose(spatial.cameras.w2c[0], spatial.cameras.w2c[-1])
    np.testing.assert_allclose(temporal.times, np.linspace(0, 1, 4))
    assert torch.equal(temporal.cameras.w2c[0], temporal.cameras.w2c[-1])
    assert temporal.meta["motion_strength"] > 0


def test_multiview_video_is_view_major_and_synchronised():
    clip = make_clip(
        SynthConfig(kind="multiview-video", resolution=32, num_frames=3, num_views=4, supersample=1), seed=5
    )
    assert len(clip) == 12 and clip.meta["num_views"] == 4 and clip.meta["num_times"] == 3
    np.testing.assert_allclose(clip.times, np.tile([0.0, 0.5, 1.0], 4))
    w2c = clip.cameras.w2c.reshape(4, 3, 4, 4)
    assert torch.equal(w2c[:, 0], w2c[:, 2]) and not torch.allclose(w2c[0, 0], w2c[1, 0])
    for obj in clip.meta["objects"]:
        assert obj["obj2world"][1] == obj["obj2world"][4] == obj["obj2world"][7]
    # All views keep the same distance to the shared look-at point (an arc).
    centres = clip.cameras.centers[::3]
    spread = centres.norm(dim=-1)
    assert float(spread.max() - spread.min()) < 0.5


def test_same_seed_same_clip_and_different_seed_different_clip():
    config = SynthConfig(kind="hybrid", resolution=32, num_frames=3, supersample=1)
    first, again, other = make_clip(config, 7), make_clip(config, 7), make_clip(config, 8)
    assert np.array_equal(first.frames, again.frames) and first.meta == again.meta
    assert not np.array_equal(first.frames, other.frames)


def test_supersampling_changes_rgb_only():
    sharp = make_clip(SynthConfig(kind="spatial", resolution=32, num_frames=2, supersample=1, trajectory="pan-left"), 3)
    smooth = make_clip(
        SynthConfig(kind="spatial", resolution=32, num_frames=2, supersample=3, trajectory="pan-left"), 3
    )
    assert np.array_equal(sharp.depth, smooth.depth) and np.array_equal(sharp.masks, smooth.masks)
    assert np.abs(sharp.frames - smooth.frames).mean() > 1e-3


@pytest.mark.parametrize(
    "kwargs, message",
    [
        ({"kind": "panorama"}, "valid kinds: spatial"),
        ({"trajectory": "spin"}, "valid names: pan-left"),
        ({"num_frames": -3}, "at least 1"),
        ({"resolution": 4}, "resolution"),
    ],
)
def test_bad_config_raises(kwargs, message):
    with pytest.raises(Scene4DError, match=message):
        SynthConfig(**kwargs)
