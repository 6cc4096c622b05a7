"""Projection of 3D Gaussians to screen-space ellipses (EWA splatting), and SH colours.

``project_gaussians`` is plain PyTorch, differentiable, O(N) per camera: the ``torch`` rasterizer
backend and the reference for ``project_gaussians_compiled``, its numba twin with its own
backward (``cpu_projection``), which the ``cpu`` backend uses. Cameras follow the OpenCV
convention of ``scene4d.geometry``; pixel centres sit at integer + 0.5.
"""

from dataclasses import dataclass

import numpy as np
import torch
from torch import Tensor

from scene4d.geometry import Cameras
from scene4d.geometry.rotations import quaternion_to_matrix

NEAR_PLANE = 0.01
# Pixels^2 added to every 2D covariance: the low-pass filter of 3DGS (classic), and the 2D Mip filter of
# Mip-Splatting (antialiased), which approximates a one-pixel box filter and comes with ``antialiasing_compensation``.
BLUR_2D = {"classic": 0.3, "antialiased": 0.1}
SH_C0 = 0.28209479177387814
SH_C1 = 0.4886025119029199
SH_C2 = (1.0925484305920792, -1.0925484305920792, 0.31539156525252005, -1.0925484305920792, 0.5462742152960396)
SH_C3 = (
    -0.5900435899266435, 2.890611442640554, -0.4570457994644658, 0.3731763325901154,
    -0.4570457994644658, 1.445305721320277, -0.5900435899266435,
)  # fmt: skip


@dataclass
class ProjectedGaussians:
    means2d: Tensor  # [C, N, 2] pixel coordinates of the centres
    conics: Tensor  # [C, N, 3] (a, b, c) of the inverse 2D covariance [[a, b], [b, c]]
    depths: Tensor  # [C, N] camera z of the centres
    radii: Tensor  # [C, N, 2] int32 half-extents of the 3-sigma box in pixels; 0 = culled


def covariance_3d(quats: Tensor, log_scales: Tensor) -> Tensor:
    """World covariances [N, 3, 3] = R S S^T R^T from quaternions [N, 4] (w, x, y, z) and log-scales [N, 3]."""
    rotation_scale = quaternion_to_matrix(quats) * torch.exp(log_scales)[:, None, :]
    return rotation_scale @ rotation_scale.transpose(1, 2)


def project_gaussians(
    means: Tensor, quats: Tensor, log_scales: Tensor, cameras: Cameras, blur: float = BLUR_2D["classic"]
) -> ProjectedGaussians:
    """EWA projection (Zwicker et al. 2001, as in 3DGS) of Gaussians into every camera.

    ``means`` [N, 3] world; the 2D covariance is ``J W Sigma W^T J^T + blur I`` with the Jacobian
    ``J`` of the perspective map at the centre, whose x/z and y/z are clamped to 1.3x the field
    of view for stability. Gaussians behind the near plane or whose 3-sigma box misses the image
    get radius 0.
    """
    rotation, translation = cameras.R.to(means.dtype), cameras.t.to(means.dtype)
    K = cameras.K.to(means.dtype)
    points = means[None] @ rotation.transpose(1, 2) + translation[:, None]  # [C, N, 3]
    x, y, z = points.unbind(-1)
    in_front = z > NEAR_PLANE
    z = torch.where(in_front, z, torch.ones_like(z))
    fx, fy, cx, cy = (K[:, 0, 0, None], K[:, 1, 1, None], K[:, 0, 2, None], K[:, 1, 2, None])
    tan_x, tan_y = 0.5 * cameras.width / fx, 0.5 * cameras.height / fy
    x_over_z = torch.clamp(x / z, -(cx / fx + 0.3 * tan_x), (cameras.width - cx) / fx + 0.3 * tan_x)
    y_over_z = torch.clamp(y / z, -(cy / fy + 0.3 * tan_y), (cameras.height - cy) / fy + 0.3 * tan_y)
    zero = torch.zeros_like(z)
    jacobian = torch.stack([fx / z, zero, -fx * x_over_z / z, zero, fy / z, -fy * y_over_z / z], dim=-1).reshape(
        *z.shape, 2, 3
    )
    jacobian_w2c = jacobian @ rotation[:, None]  # [C, N, 2, 3]
    cov2d = jacobian_w2c @ covariance_3d(quats, log_scales)[None] @ jacobian_w2c.transpose(-1, -2)
    a, b, c = cov2d[..., 0, 0] + blur, cov2d[..., 0, 1], cov2d[..., 1, 1] + blur
    determinant = a * c - b * b
    valid = in_front & (determinant > 0)
    safe_det = torch.where(valid, determinant, torch.ones_like(determinant))
    conics = torch.stack([c / safe_det, -b / safe_det, a / safe_det], dim=-1)
    means2d = torch.stack([fx * x / z + cx, fy * y / z + cy], dim=-1)
    radii = screen_radii(means2d.detach(), a.detach(), c.detach(), valid, cameras.width, cameras.height)
    return ProjectedGaussians(means2d, conics, points[..., 2], radii)


def to_numpy(tensor: Tensor) -> np.ndarray:
    """A contiguous NumPy view of ``tensor`` without its autograd history, for the compiled kernels."""
    return tensor.detach().contiguous().numpy()


def project_gaussians_compiled(
    means: Tensor, quats: Tensor, log_scales: Tensor, cameras: Cameras, blur: float = BLUR_2D["classic"]
) -> ProjectedGaussians:
    """``project_gaussians`` by the compiled CPU kernels: same outputs, gradients by their own backward."""
    means2d, conics, depths, radii = _CompiledProjection.apply(means, quats, log_scales, cameras, blur)
    return ProjectedGaussians(means2d, conics, depths, radii)


class _CompiledProjection(torch.autograd.Function):
    @staticmethod
    def forward(ctx, means, quats, log_scales, cameras, blur):  # noqa: ANN001
        from scene4d.splat import cpu_projection

        inputs = [to_numpy(t) for t in (means, quats, log_scales)]
        dtype = inputs[0].dtype
        camera_arrays = [to_numpy(t.to(means.dtype)) for t in (cameras.R, cameras.t, cameras.K)]
        layout = (*inputs, *camera_arrays, cameras.width, cameras.height, blur)
        num_cameras, num = len(cameras), means.shape[0]
        means2d, conics = np.empty((num_cameras, num, 2), dtype), np.empty((num_cameras, num, 3), dtype)
        depths, radii = np.empty((num_cameras, num), dtype), np.empty((num_cameras, num, 2), np.int32)
        cpu_projection.project_forward(*layout, means2d, conics, depths, radii)
        ctx.layout = layout
        radii = torch.from_numpy(radii)
        ctx.mark_non_differentiable(radii)
        return torch.from_numpy(means2d), torch.from_numpy(conics), torch.from_numpy(depths), radii

    @staticmethod
    def backward(ctx, grad_means2d, grad_conics, grad_depths, _grad_radii):  # noqa: ANN001
        from scene4d.splat import cpu_projection

        means, quats, log_scales = ctx.layout[:3]
        grads = [np.empty_like(array) for array in (means, quats, log_scales)]
        upstream = [to_numpy(g) for g in (grad_means2d, grad_conics, grad_depths)]
        cpu_projection.project_backward(*ctx.layout, *upstream, *grads)
        return (*(torch.from_numpy(g) for g in grads), None, None)


def antialiasing_compensation(conics: Tensor, blur: float) -> Tensor:
    """``sqrt(det(S) / det(S + blur I))`` [...] of each 2D covariance ``S`` from the conic [..., 3] (a, b, c)
    of ``S + blur I``: the factor on opacity that keeps a Gaussian's total weight when the filter widens
    it (Mip-Splatting eq. 10, gsplat's ``antialiased`` mode). With ``(a, b, c) = (S + blur I)^-1`` the
    ratio is ``1 - blur (a + c) + blur^2 (a c - b^2)``; 1e-12 inside the root keeps its gradient finite
    where a Gaussian seen edge-on has no area."""
    a, b, c = conics.unbind(-1)
    ratio = 1 - blur * (a + c) + blur * blur * (a * c - b * b)
    return (ratio.clamp(min=0) + 1e-12).sqrt()


def screen_radii(means2d: Tensor, var_x: Tensor, var_y: Tensor, valid: Tensor, width: int, height: int) -> Tensor:
    """Half-extents [C, N, 2] of each ellipse's 3-sigma bounding box; 0 where culled or off-screen."""
    radii = torch.stack([torch.ceil(3 * var_x.clamp(min=0).sqrt()), torch.ceil(3 * var_y.clamp(min=0).sqrt())], -1)
    on_screen = (
        (means2d[..., 0] + radii[..., 0] > 0)
        & (means2d[..., 0] - radii[..., 0] < width)
        & (means2d[..., 1] + radii[..., 1] > 0)
        & (means2d[..., 1] - radii[..., 1] < height)
    )
    keep = valid & on_screen
    return torch.where(keep[..., None], radii, torch.zeros_like(radii)).int()


def spherical_harmonics(coefficients: Tensor, directions: Tensor, degree: int) -> Tensor:
    """Colour [..., 3] of SH ``coefficients`` [..., K, 3] (K >= (degree+1)^2) along unit ``directions`` [..., 3].

    The real SH basis and the +0.5 offset of 3DGS, clamped at 0; degrees 0-3. The basis is built
    once as [..., (degree+1)^2] and contracted with the coefficients in one einsum (a batched
    matrix product of N 1x16 rows runs about 3x slower on the CPU).
    """
    if not 0 <= degree <= 3 or coefficients.shape[-2] < (degree + 1) ** 2:
        raise ValueError(f"SH degree {degree} needs {(degree + 1) ** 2} coefficients, got {coefficients.shape[-2]}")
    basis = sh_basis(directions, degree)  # [..., B]
    used = coefficients[..., : basis.shape[-1], :]
    return torch.clamp(torch.einsum("...k,...kc->...c", basis, used) + 0.5, min=0.0)


def sh_basis(directions: Tensor, degree: int) -> Tensor:
    """Real spherical-harmonic basis [..., (degree+1)^2] of unit ``directions`` [..., 3] (3DGS ordering)."""
    x, y, z = directions.unbind(-1)
    terms = [torch.full_like(x, SH_C0)]
    if degree >= 1:
        terms += [-SH_C1 * y, SH_C1 * z, -SH_C1 * x]
    if degree >= 2:
        xx, yy, zz, xy, yz, xz = x * x, y * y, z * z, x * y, y * z, x * z
        basis2 = (xy, yz, 2 * zz - xx - yy, xz, xx - yy)
        terms += [constant * value for constant, value in zip(SH_C2, basis2, strict=True)]
    if degree >= 3:
        basis3 = (
            y * (3 * xx - yy), xy * z, y * (4 * zz - xx - yy), z * (2 * zz - 3 * xx - 3 * yy),
            x * (4 * zz - xx - yy), z * (xx - yy), x * (xx - 3 * yy),
        )  # fmt: skip
        terms += [constant * value for constant, value in zip(SH_C3, basis3, strict=True)]
    return torch.stack(terms, dim=-1)
