import math

import numpy as np
import pytest
import torch
from scipy.spatial.transform import Rotation, Slerp

from scene4d.errors import Scene4DError
from scene4d.geometry import TRAJECTORY_NAMES, Cameras, Keyframe, keyframed_w2c, named_trajectory_w2c
from scene4d.geometry.rotations import look_at_c2w_rotation

WIDTH = HEIGHT = 64


def cameras_along(name, frames=9, **kwargs):
    w2c = named_trajectory_w2c(name, frames, **kwargs)
    return Cameras.from_fov(60.0, WIDTH, HEIGHT, w2c)


def last_pixel(name, point, **kwargs):
    """Where a world point (first-camera frame) lands in the last frame, and its depth."""
    pixels, depth = cameras_along(name, **kwargs).project(torch.tensor([point]))
    return pixels[-1, 0], depth[-1, 0]


def test_all_sixteen_names_start_at_identity():
    assert len(TRAJECTORY_NAMES) == 16
    for name in TRAJECTORY_NAMES:
        w2c = named_trajectory_w2c(name, 5)
        torch.testing.assert_close(w2c[0], torch.eye(4))


@pytest.mark.parametrize(
    "name, axis, sign",
    [
        ("pan-left", 0, +1),
        ("pan-right", 0, -1),  # content slides right / left
        ("truck-left", 0, +1),
        ("truck-right", 0, -1),
        ("tilt-up", 1, +1),
        ("tilt-down", 1, -1),  # content slides down (+v) / up
        ("pedestal-up", 1, +1),
        ("pedestal-down", 1, -1),
    ],
)
def test_content_slides_the_expected_way(name, axis, sign):
    centre = WIDTH / 2
    pixel, _ = last_pixel(name, [0.0, 0.0, 5.0])
    assert sign * (pixel[axis] - centre) > 1.0
    assert abs(pixel[1 - axis] - centre) < 1e-3


def test_dolly_in_enlarges_and_dolly_out_shrinks_a_centred_object():
    def apparent_width(name):
        pixels, _ = cameras_along(name).project(torch.tensor([[-0.5, 0.0, 5.0], [0.5, 0.0, 5.0]]))
        return pixels[:, 1, 0] - pixels[:, 0, 0]

    grow, shrink = apparent_width("dolly-in"), apparent_width("dolly-out")
    assert bool((grow[1:] > grow[:-1]).all()) and bool((shrink[1:] < shrink[:-1]).all())


def test_roll_cw_turns_content_counter_clockwise():
    # A point right of centre moves up the image (-v) when content turns counter-clockwise.
    pixel, _ = last_pixel("roll-cw", [1.0, 0.0, 5.0])
    assert pixel[1] < HEIGHT / 2 - 1
    pixel, _ = last_pixel("roll-ccw", [1.0, 0.0, 5.0])
    assert pixel[1] > HEIGHT / 2 + 1


def test_rotation_magnitude_is_in_degrees():
    w2c = named_trajectory_w2c("pan-right", 3, magnitude=40.0)
    forward_world = w2c[-1, 2, :3]  # third row of R = camera +z in world coordinates
    assert math.isclose(math.degrees(math.atan2(forward_world[0], forward_world[2])), 40.0, abs_tol=1e-4)


@pytest.mark.parametrize("name", ["orbit-left", "orbit-right", "orbit-up", "orbit-down"])
def test_orbit_keeps_distance_and_centres_the_target(name):
    cameras = cameras_along(name, orbit_distance=3.0)
    target = torch.tensor([0.0, 0.0, 3.0])
    distance = (cameras.centers - target).norm(dim=-1)
    torch.testing.assert_close(distance, torch.full_like(distance, 3.0))
    pixels, _ = cameras.project(target[None])
    torch.testing.assert_close(pixels[:, 0], torch.full((9, 2), WIDTH / 2.0))


@pytest.mark.parametrize(
    "name, axis, sign",
    [("orbit-left", 0, -1), ("orbit-right", 0, 1), ("orbit-up", 1, -1), ("orbit-down", 1, 1)],
)
def test_orbit_direction(name, axis, sign):
    centre = cameras_along(name).centers[-1]
    assert sign * centre[axis] > 0.5  # -x is left, -y is up in the first camera's frame


def test_bad_trajectory_requests_raise():
    with pytest.raises(Scene4DError, match="valid names: pan-left"):
        named_trajectory_w2c("spin", 4)
    with pytest.raises(Scene4DError, match="at least 1"):
        named_trajectory_w2c("pan-left", -2)


def keyframes_about_y(angles_deg, positions, times):
    return [
        Keyframe(
            time,
            torch.tensor(position, dtype=torch.float64),
            torch.from_numpy(Rotation.from_euler("y", angle, degrees=True).as_matrix()),
        )
        for angle, position, time in zip(angles_deg, positions, times, strict=True)
    ]


def test_keyframed_path_passes_through_keyframes_and_slerps_like_scipy():
    angles = [0.0, 30.0, 100.0]
    positions = [[0.0, 0.0, 0.0], [1.0, 0.5, 0.0], [2.0, 0.0, 1.0]]
    w2c = keyframed_w2c(keyframes_about_y(angles, positions, [0.0, 0.25, 1.0]), num_frames=9)
    c2w = torch.linalg.inv(w2c.double())
    # Frame 2 is at time 0.25 (keyframe 1), frame 8 at time 1 (keyframe 2).
    torch.testing.assert_close(c2w[2, :3, 3], torch.tensor(positions[1], dtype=torch.float64), atol=1e-5, rtol=0)
    torch.testing.assert_close(c2w[8, :3, 3], torch.tensor(positions[2], dtype=torch.float64), atol=1e-5, rtol=0)
    reference = Slerp([0.0, 0.25, 1.0], Rotation.from_euler("y", np.array(angles)[:, None], degrees=True))
    expected = reference(np.linspace(0, 1, 9)).as_matrix()
    np.testing.assert_allclose(c2w[:, :3, :3].numpy(), expected, atol=1e-5)


def test_keyframed_path_is_smooth_and_re_expressed_from_its_first_camera():
    positions = [[3.0, 1.0, 0.0], [4.0, 1.0, 1.0], [5.0, 0.0, 1.0], [6.0, 1.0, 0.0]]
    keyframes = keyframes_about_y([10.0, 10.0, 10.0, 10.0], positions, [0.0, 0.3, 0.6, 1.0])
    w2c = keyframed_w2c(keyframes, num_frames=201)
    torch.testing.assert_close(w2c[0], torch.eye(4), atol=1e-6, rtol=0)
    centres = torch.linalg.inv(w2c.double())[:, :3, 3]
    velocity = centres[1:] - centres[:-1]
    # C1: the change between neighbouring steps is a small fraction of a step (0.06 here);
    # piecewise-linear interpolation has kinks where it reaches 1.4.
    kink = (velocity[1:] - velocity[:-1]).norm(dim=-1).max() / velocity.norm(dim=-1).mean()
    assert kink < 0.2


def test_keyframed_magnitude_scales_translation():
    keyframes = keyframes_about_y([0.0, 0.0], [[0, 0, 0], [1.0, 0, 0]], [0.0, 1.0])
    w2c = keyframed_w2c(keyframes, num_frames=3, magnitude=2.5)
    assert math.isclose(float(torch.linalg.inv(w2c[-1])[0, 3]), 2.5, abs_tol=1e-6)


def test_look_at_points_the_camera_at_the_target():
    eye, target = torch.tensor([1.0, -2.0, 0.5]), torch.tensor([0.0, 0.0, 4.0])
    rotation = look_at_c2w_rotation(eye, target, torch.tensor([0.0, -1.0, 0.0]))
    torch.testing.assert_close(rotation.T @ rotation, torch.eye(3))
    assert math.isclose(float(torch.linalg.det(rotation)), 1.0, abs_tol=1e-6)
    w2c = torch.eye(4)
    w2c[:3, :3], w2c[:3, 3] = rotation.T, -rotation.T @ eye
    pixels, depth = Cameras.from_fov(60.0, 64, 64, w2c[None]).project(target[None])
    torch.testing.assert_close(pixels[0, 0], torch.tensor([32.0, 32.0]))
    assert depth[0, 0] > 0
    # World up (-y) appears upwards: a point above the target projects above the centre.
    above, _ = Cameras.from_fov(60.0, 64, 64, w2c[None]).project(torch.tensor([[0.0, -1.0, 4.0]]))
    assert above[0, 0, 1] < 32.0


def pose_from_scipy(rotvec_c2w, centre):
    """(w2c rotation, unit direction of the centre or None) of a camera built with scipy's rotations."""
    rotation_c2w = torch.from_numpy(Rotation.from_rotvec(rotvec_c2w).as_matrix())
    centre = torch.tensor(centre, dtype=torch.float64)
    return rotation_c2w.T, (centre / centre.norm() if centre.norm() > 0 else None)


@pytest.mark.parametrize(
    ("rotvec_c2w", "centre", "expected"),
    [
        ((0.0, -math.radians(12), 0.0), (0.0, 0.0, 0.0), "pan-left"),  # look left: c2w turns about -y
        ((math.radians(8), 0.0, 0.0), (0.0, 0.0, 0.0), "tilt-up"),
        ((0.0, 0.0, math.radians(20)), (0.0, 0.0, 0.0), "roll-cw"),
        ((0.0, 0.0, 0.0), (0.9, 0.05, 0.02), "truck-right"),
        ((0.0, 0.0, 0.0), (0.0, -0.4, 0.0), "pedestal-up"),
        ((0.0, 0.0, 0.0), (0.03, 0.0, 0.7), "dolly-in"),
    ],
)
def test_nearest_move_names_hand_built_poses(rotvec_c2w, centre, expected):
    from scene4d.geometry.trajectories import nearest_move

    rotation_w2c, direction = pose_from_scipy(rotvec_c2w, centre)
    assert nearest_move(rotation_w2c, direction)[0] == expected


@pytest.mark.parametrize(("side", "expected"), [(-1.0, "orbit-left"), (1.0, "orbit-right")])
def test_nearest_move_recognises_an_orbit_built_with_look_at(side, expected):
    from scene4d.geometry import look_at_w2c, rigid_inverse
    from scene4d.geometry.trajectories import nearest_move

    angle, distance = math.radians(25), 4.0
    eye = torch.tensor([side * distance * math.sin(angle), 0.0, distance - distance * math.cos(angle)])
    w2c = look_at_w2c(
        eye.double(), torch.tensor([0.0, 0.0, distance]).double(), torch.tensor([0.0, -1.0, 0.0]).double()
    )
    centre = rigid_inverse(w2c[None])[0, :3, 3]
    name, magnitude = nearest_move(w2c[:3, :3], centre / centre.norm(), orbit_distance=distance)
    assert name == expected and magnitude == pytest.approx(25.0, abs=1.5)
