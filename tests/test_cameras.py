import cv2
import numpy as np
import pytest
import torch
from conftest import random_w2c

from scene4d.errors import Scene4DError
from scene4d.geometry import Cameras


def make_cameras(num=3, width=64, height=48):
    w2c = random_w2c(num)
    K = torch.tensor([[60.0, 0, 31.0], [0, 55.0, 25.0], [0, 0, 1]], dtype=torch.float64)
    return Cameras(K.repeat(num, 1, 1), w2c, width, height)


def test_project_matches_opencv_project_points():
    cameras = make_cameras()
    points = torch.randn(20, 3, dtype=torch.float64) + torch.tensor([0, 0, 6.0], dtype=torch.float64)
    pixels, _ = cameras.project(points)
    for index in range(len(cameras)):
        rvec, _ = cv2.Rodrigues(cameras.R[index].numpy())
        expected, _ = cv2.projectPoints(
            points.numpy(), rvec, cameras.t[index].numpy(), cameras.K[index].numpy(), np.zeros(5)
        )
        np.testing.assert_allclose(pixels[index].numpy(), expected[:, 0], atol=1e-8)


def test_project_unproject_round_trip():
    cameras = make_cameras()
    pixels = torch.rand(3, 50, 2, dtype=torch.float64) * torch.tensor([64.0, 48.0], dtype=torch.float64)
    depth = torch.rand(3, 50, dtype=torch.float64) * 5 + 0.5
    points = cameras.unproject(pixels, depth)
    reprojected, reprojected_depth = cameras.project(points)
    torch.testing.assert_close(reprojected, pixels)
    torch.testing.assert_close(reprojected_depth, depth)


def test_c2w_inverts_w2c_and_centres_map_to_camera_origin():
    cameras = make_cameras()
    torch.testing.assert_close(cameras.c2w @ cameras.w2c, torch.eye(4, dtype=torch.float64).expand(3, 4, 4))
    origin_cam = cameras.centers[:, None] @ cameras.R.transpose(1, 2) + cameras.t[:, None]
    torch.testing.assert_close(origin_cam[:, 0], torch.zeros(3, 3, dtype=torch.float64))


def test_from_fov_focal_and_centre():
    cameras = Cameras.from_fov(90.0, 64, 48)
    torch.testing.assert_close(cameras.K[0, 0, 0], torch.tensor(32.0))
    assert cameras.K[0, 0, 2] == 32.0 and cameras.K[0, 1, 2] == 24.0
    # The image's left edge (u = 0) at depth 1 lies 45 degrees off axis.
    point = cameras.unproject(torch.tensor([[[0.0, 24.0]]]), torch.ones(1, 1))
    assert torch.isclose(point[0, 0, 0], torch.tensor(-1.0))


def test_pixel_centres_are_at_half_integers():
    cameras = Cameras.from_fov(60.0, 4, 2)
    centres = cameras.pixel_centers()
    assert centres[0, 0].tolist() == [0.5, 0.5] and centres[1, 3].tolist() == [3.5, 1.5]
    # The principal point (W/2, H/2) lies on the optical axis.
    direction = cameras.ray_directions()
    mid = direction[0, :, 1:3].mean(dim=(0, 1))
    torch.testing.assert_close(mid / mid.norm(), torch.tensor([0.0, 0.0, 1.0]))


def test_indexing_cat_and_relative_to():
    cameras = make_cameras(4)
    assert len(cameras[1]) == 1 and len(cameras[1:3]) == 2 and len(cameras[-1]) == 1
    torch.testing.assert_close(cameras[-1].w2c, cameras.w2c[3:])
    joined = Cameras.cat([cameras[:2], cameras[2:]])
    torch.testing.assert_close(joined.w2c, cameras.w2c)
    torch.testing.assert_close(cameras[np.int64(2)].w2c, cameras.w2c[2:3])
    torch.testing.assert_close(cameras.relative_to(-1).w2c[-1], torch.eye(4, dtype=torch.float64))
    with pytest.raises(Scene4DError, match="out of range"):
        cameras[4]
    relative = cameras.relative_to(2)
    torch.testing.assert_close(relative.w2c[2], torch.eye(4, dtype=torch.float64))
    # Relative poses between cameras do not change.
    torch.testing.assert_close(relative.w2c[0] @ relative.c2w[1], cameras.w2c[0] @ cameras.c2w[1])


def test_resized_keeps_the_field_of_view():
    cameras = make_cameras()
    small = cameras.resized(12, 16)
    corner = torch.tensor([[[64.0, 48.0]]], dtype=torch.float64).expand(3, 1, 2)
    small_corner = torch.tensor([[[16.0, 12.0]]], dtype=torch.float64).expand(3, 1, 2)
    ones = torch.ones(3, 1, dtype=torch.float64)
    torch.testing.assert_close(cameras.unproject(corner, ones), small.unproject(small_corner, ones))


@pytest.mark.parametrize(
    "mutate, message",
    [
        (lambda w2c: w2c.__setitem__((0, 0, 0), float("nan")), "NaN"),
        (lambda w2c: w2c.__setitem__((1, slice(0, 3), slice(0, 3)), 2 * torch.eye(3)), "not rigid"),
        (lambda w2c: w2c.__setitem__((0, 3, 0), 0.5), "not rigid"),
    ],
)
def test_invalid_extrinsics_raise(mutate, message):
    w2c = random_w2c(2).float()
    mutate(w2c)
    with pytest.raises(Scene4DError, match=message):
        Cameras(torch.eye(3).repeat(2, 1, 1), w2c, 8, 8)


def test_invalid_intrinsics_and_shapes_raise():
    with pytest.raises(Scene4DError, match=r"\[N, 4, 4\]"):
        Cameras(torch.eye(3)[None], torch.eye(3)[None], 8, 8)
    with pytest.raises(Scene4DError, match="focal"):
        Cameras(torch.zeros(1, 3, 3), torch.eye(4)[None], 8, 8)
    with pytest.raises(Scene4DError, match="2 cameras"):
        Cameras(torch.eye(3).repeat(2, 1, 1), torch.eye(4)[None], 8, 8)


def test_matrix_to_quaternion_round_trips_and_matches_scipy_near_180_degrees():
    from scipy.spatial.transform import Rotation

    from scene4d.geometry.rotations import matrix_to_quaternion, quaternion_to_matrix

    axes = torch.randn(200, 3, dtype=torch.float64)
    angles = torch.cat(
        [torch.rand(100, dtype=torch.float64) * np.pi, np.pi - torch.rand(100, dtype=torch.float64) * 1e-6]
    )
    rotvec = axes / axes.norm(dim=-1, keepdim=True) * angles[:, None]
    matrices = torch.from_numpy(Rotation.from_rotvec(rotvec.numpy()).as_matrix())
    quats = matrix_to_quaternion(matrices)
    torch.testing.assert_close(quaternion_to_matrix(quats), matrices, atol=1e-9, rtol=0)
    expected = torch.from_numpy(Rotation.from_matrix(matrices.numpy()).as_quat(scalar_first=True))
    torch.testing.assert_close(quats.abs(), expected.abs(), atol=1e-6, rtol=0)  # q and -q are one rotation


def test_cropping_shifts_projections_by_the_crop_corner():
    from scene4d.geometry import Cameras

    cameras = Cameras.from_fov(60.0, 40, 30, random_w2c(2).float())
    points = torch.randn(5, 3) + torch.tensor([0.0, 0.0, 6.0])
    full, _ = cameras.project(points)
    cropped, _ = cameras.cropped(7, 3, 20, 20).project(points)
    torch.testing.assert_close(cropped, full - torch.tensor([7.0, 3.0]))
