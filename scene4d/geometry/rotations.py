"""Rotation helpers: axis-angle, quaternions (w, x, y, z) and look-at frames.

All matrices act on column vectors. Quaternions are unit, scalar first (w, x, y, z).
"""

import torch
from torch import Tensor

from scene4d.errors import Scene4DError


def axis_angle_to_matrix(axis: Tensor, angle_rad: Tensor) -> Tensor:
    """Rodrigues' formula: rotation by ``angle_rad`` [...] about unit ``axis`` [..., 3] -> [..., 3, 3]."""
    axis = axis / axis.norm(dim=-1, keepdim=True)
    x, y, z = axis.unbind(-1)
    zero = torch.zeros_like(x)
    cross = torch.stack([zero, -z, y, z, zero, -x, -y, x, zero], dim=-1).reshape(*axis.shape[:-1], 3, 3)
    sin = torch.sin(angle_rad)[..., None, None]
    cos = torch.cos(angle_rad)[..., None, None]
    eye = torch.eye(3, dtype=axis.dtype, device=axis.device).expand_as(cross)
    return eye + sin * cross + (1 - cos) * (cross @ cross)


def quaternion_to_matrix(quat_wxyz: Tensor) -> Tensor:
    """Unit quaternion [..., 4] (w, x, y, z) -> rotation matrix [..., 3, 3]."""
    w, x, y, z = (quat_wxyz / quat_wxyz.norm(dim=-1, keepdim=True)).unbind(-1)
    rows = [
        1 - 2 * (y * y + z * z),
        2 * (x * y - w * z),
        2 * (x * z + w * y),
        2 * (x * y + w * z),
        1 - 2 * (x * x + z * z),
        2 * (y * z - w * x),
        2 * (x * z - w * y),
        2 * (y * z + w * x),
        1 - 2 * (x * x + y * y),
    ]
    return torch.stack(rows, dim=-1).reshape(*quat_wxyz.shape[:-1], 3, 3)


def matrix_to_quaternion(rot: Tensor) -> Tensor:
    """Rotation matrix [..., 3, 3] -> unit quaternion [..., 4] (w, x, y, z) with w >= 0.

    Picks, per matrix, the numerically safest of the four branches of Shepperd's method.
    """
    m = rot
    trace = m[..., 0, 0] + m[..., 1, 1] + m[..., 2, 2]
    candidates = torch.stack(
        [
            torch.stack(
                [1 + trace, m[..., 2, 1] - m[..., 1, 2], m[..., 0, 2] - m[..., 2, 0], m[..., 1, 0] - m[..., 0, 1]], -1
            ),
            torch.stack(
                [
                    m[..., 2, 1] - m[..., 1, 2],
                    1 + 2 * m[..., 0, 0] - trace,
                    m[..., 0, 1] + m[..., 1, 0],
                    m[..., 0, 2] + m[..., 2, 0],
                ],
                -1,
            ),
            torch.stack(
                [
                    m[..., 0, 2] - m[..., 2, 0],
                    m[..., 0, 1] + m[..., 1, 0],
                    1 + 2 * m[..., 1, 1] - trace,
                    m[..., 1, 2] + m[..., 2, 1],
                ],
                -1,
            ),
            torch.stack(
                [
                    m[..., 1, 0] - m[..., 0, 1],
                    m[..., 0, 2] + m[..., 2, 0],
                    m[..., 1, 2] + m[..., 2, 1],
                    1 + 2 * m[..., 2, 2] - trace,
                ],
                -1,
            ),
        ],
        dim=-2,
    )  # [..., 4, 4]: row k is 4 * q * q_k, largest when |q_k| is largest
    diagonal = torch.stack(
        [1 + trace, 1 + 2 * m[..., 0, 0] - trace, 1 + 2 * m[..., 1, 1] - trace, 1 + 2 * m[..., 2, 2] - trace], -1
    )
    best = diagonal.argmax(dim=-1)
    quat = torch.gather(candidates, -2, best[..., None, None].expand(*best.shape, 1, 4))[..., 0, :]
    quat = quat / quat.norm(dim=-1, keepdim=True)
    return torch.where(quat[..., :1] < 0, -quat, quat)


def slerp(quat0: Tensor, quat1: Tensor, s: Tensor) -> Tensor:
    """Spherical linear interpolation of unit quaternions [..., 4] at fractions ``s`` [...].

    Takes the short way round (flips ``quat1`` when the dot product is negative).
    """
    dot = (quat0 * quat1).sum(-1, keepdim=True)
    quat1 = torch.where(dot < 0, -quat1, quat1)
    dot = dot.abs().clamp(max=1.0)
    theta = torch.acos(dot)
    s = s[..., None]
    sin_theta = torch.sin(theta)
    near = sin_theta < 1e-6
    weight0 = torch.where(near, 1 - s, torch.sin((1 - s) * theta) / sin_theta.clamp(min=1e-12))
    weight1 = torch.where(near, s, torch.sin(s * theta) / sin_theta.clamp(min=1e-12))
    quat = weight0 * quat0 + weight1 * quat1
    return quat / quat.norm(dim=-1, keepdim=True)


def look_at_c2w_rotation(eye: Tensor, target: Tensor, up: Tensor) -> Tensor:
    """Camera-to-world rotation [..., 3, 3] of an OpenCV camera at ``eye`` looking at ``target``.

    Columns are the camera axes in world coordinates: +x right, +y down, +z forward.
    ``up`` [..., 3] is the world direction that should appear upwards in the image (-y).
    """
    forward = target - eye
    forward = forward / forward.norm(dim=-1, keepdim=True)
    right = torch.linalg.cross(forward, up, dim=-1)
    norm = right.norm(dim=-1, keepdim=True)
    if bool((norm < 1e-8).any()):
        raise Scene4DError("look-at: the viewing direction is parallel to the up vector")
    right = right / norm
    down = torch.linalg.cross(forward, right, dim=-1)
    return torch.stack([right, down, forward], dim=-1)


def rotation_error_deg(rotation_a: Tensor, rotation_b: Tensor) -> float:
    """Angle in degrees of ``rotation_a^T rotation_b`` (the geodesic distance on SO(3))."""
    relative = rotation_a.double().T @ rotation_b.double()
    cosine = ((torch.trace(relative) - 1) / 2).clamp(-1.0, 1.0)
    return float(torch.rad2deg(torch.arccos(cosine)))
