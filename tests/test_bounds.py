import torch
from scipy.spatial.transform import Rotation

from scene4d.geometry import camera_pca_box


def test_pca_box_recovers_a_rotated_box():
    half = torch.tensor([4.0, 2.0, 0.5], dtype=torch.float64)
    rotation = torch.from_numpy(Rotation.from_euler("xyz", [20, -35, 60], degrees=True).as_matrix())
    centre = torch.tensor([1.0, -2.0, 3.0], dtype=torch.float64)
    # A symmetric grid: its covariance is diagonal in the box frame, so PCA must find the box axes.
    steps = torch.linspace(-1, 1, 5, dtype=torch.float64)
    local = torch.cartesian_prod(steps, steps, steps) * half
    box = camera_pca_box(local @ rotation.T + centre)
    torch.testing.assert_close(box.center, centre)
    torch.testing.assert_close(box.half_extents, half)
    # Each principal axis is a column of the rotation, up to sign.
    alignment = (box.axes @ rotation).abs()
    torch.testing.assert_close(alignment, torch.eye(3, dtype=torch.float64), atol=1e-6, rtol=0)
    assert box.contains(centre[None])[0] and not box.contains((centre + 5 * rotation[:, 0])[None])[0]


def test_optical_axes_centre_of_an_orbit_and_of_a_forward_facing_rig():
    from scene4d.geometry import Cameras, named_trajectory_w2c
    from scene4d.geometry.bounds import optical_axes_centre

    orbit = Cameras.from_fov(60.0, 8, 8, named_trajectory_w2c("orbit-left", 5, 60.0, orbit_distance=3.0))
    torch.testing.assert_close(optical_axes_centre(orbit.c2w), torch.tensor([0.0, 0.0, 3.0]), atol=1e-5, rtol=0)
    trucking = Cameras.from_fov(60.0, 8, 8, named_trajectory_w2c("truck-left", 5))
    assert optical_axes_centre(trucking.c2w) is None
