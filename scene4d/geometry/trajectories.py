"""Camera trajectories relative to the first camera.

Every trajectory returns world-to-camera matrices ``w2c`` [T, 4, 4] expressed in the frame of its
first camera (``w2c[0]`` is the identity), OpenCV axes: +x right, +y down, +z forward.

DimensionX's S-Directors cover the 12 single-degree-of-freedom moves (+/- translation and
rotation about each camera axis) and orbits about a subject. Their user-facing names follow film
vocabulary; the sign of each is pinned by a test from first principles.
"""

from dataclasses import dataclass
from typing import Literal

import torch
from torch import Tensor

from scene4d.errors import Scene4DError
from scene4d.geometry.cameras import Cameras, rigid_inverse
from scene4d.geometry.rotations import (
    axis_angle_to_matrix,
    matrix_to_quaternion,
    quaternion_to_matrix,
    rotation_error_deg,
    slerp,
)

MoveKind = Literal["translate", "rotate", "orbit"]


@dataclass(frozen=True)
class Move:
    kind: MoveKind
    axis: tuple[float, float, float]  # camera-frame axis; translation direction or rotation axis
    default_magnitude: float  # scene units for "translate", degrees for "rotate" and "orbit"
    description: str


MOVES: dict[str, Move] = {
    "pan-left": Move("rotate", (0, -1, 0), 30.0, "rotate to look left; content slides right"),
    "pan-right": Move("rotate", (0, 1, 0), 30.0, "rotate to look right; content slides left"),
    "tilt-up": Move("rotate", (1, 0, 0), 20.0, "rotate to look up; content slides down"),
    "tilt-down": Move("rotate", (-1, 0, 0), 20.0, "rotate to look down; content slides up"),
    "roll-cw": Move("rotate", (0, 0, 1), 30.0, "roll clockwise; content turns counter-clockwise"),
    "roll-ccw": Move("rotate", (0, 0, -1), 30.0, "roll counter-clockwise; content turns clockwise"),
    "truck-left": Move("translate", (-1, 0, 0), 1.0, "move left; content slides right"),
    "truck-right": Move("translate", (1, 0, 0), 1.0, "move right; content slides left"),
    "pedestal-up": Move("translate", (0, -1, 0), 1.0, "move up; content slides down"),
    "pedestal-down": Move("translate", (0, 1, 0), 1.0, "move down; content slides up"),
    "dolly-in": Move("translate", (0, 0, 1), 1.0, "move forward; content grows"),
    "dolly-out": Move("translate", (0, 0, -1), 1.0, "move backward; content shrinks"),
    "orbit-left": Move("orbit", (0, 1, 0), 45.0, "circle the subject towards the camera's left"),
    "orbit-right": Move("orbit", (0, -1, 0), 45.0, "circle the subject towards the camera's right"),
    "orbit-up": Move("orbit", (-1, 0, 0), 30.0, "circle the subject upwards, looking down at it"),
    "orbit-down": Move("orbit", (1, 0, 0), 30.0, "circle the subject downwards, looking up at it"),
}

TRAJECTORY_NAMES: tuple[str, ...] = tuple(MOVES)


def get_move(name: str) -> Move:
    """The move called ``name``; an unknown name raises with the list of valid ones."""
    if name not in MOVES:
        raise Scene4DError(f"unknown trajectory {name!r}; valid names: {', '.join(TRAJECTORY_NAMES)}")
    return MOVES[name]


def check_num_frames(num_frames: int) -> None:
    if num_frames < 1:
        raise Scene4DError(f"the number of frames must be at least 1, got {num_frames}")


def named_trajectory_w2c(
    name: str, num_frames: int, magnitude: float | None = None, orbit_distance: float = 4.0
) -> Tensor:
    """World-to-camera [T, 4, 4] of the named move at constant speed, first camera = identity.

    ``magnitude`` is the total move (scene units for translations, degrees for rotations and
    orbits; the move's default when None). Orbits turn about the look-at point
    ``(0, 0, orbit_distance)`` in front of the first camera, so that point stays centred and
    at constant distance.
    """
    move = get_move(name)
    check_num_frames(num_frames)
    if orbit_distance <= 0:
        raise Scene4DError(f"orbit distance must be positive, got {orbit_distance}")
    amount = move.default_magnitude if magnitude is None else magnitude
    progress = (
        torch.linspace(0, 1, num_frames, dtype=torch.float64) if num_frames > 1 else torch.zeros(1, dtype=torch.float64)
    )
    axis = torch.tensor(move.axis, dtype=torch.float64)
    if move.kind == "orbit":
        return orbit_w2c(axis, progress * amount, orbit_distance)
    c2w = torch.eye(4, dtype=torch.float64).repeat(num_frames, 1, 1)
    if move.kind == "translate":
        c2w[:, :3, 3] = progress[:, None] * amount * axis
    else:
        c2w[:, :3, :3] = axis_angle_to_matrix(axis.expand(num_frames, 3), torch.deg2rad(progress * amount))
    return rigid_inverse(c2w).float()


def orbit_w2c(axis: Tensor, angles_deg: Tensor, orbit_distance: float) -> Tensor:
    """World-to-camera [T, 4, 4]: the first camera turned by ``angles_deg`` [T] about ``axis`` [3]
    (camera frame) through the look-at point ``(0, 0, orbit_distance)``, which stays centred."""
    rotation = axis_angle_to_matrix(axis.double().expand(len(angles_deg), 3), torch.deg2rad(angles_deg.double()))
    target = torch.tensor([0.0, 0.0, orbit_distance], dtype=torch.float64)
    c2w = torch.eye(4, dtype=torch.float64).repeat(len(angles_deg), 1, 1)
    c2w[:, :3, :3] = rotation
    c2w[:, :3, 3] = target - rotation @ target
    return rigid_inverse(c2w).float()


def swing_w2c(num_frames: int, amplitude_deg: float, orbit_distance: float) -> Tensor:
    """A preview path [T, 4, 4]: orbit left and right about the look-at point, ``amplitude_deg`` each way."""
    check_num_frames(num_frames)
    phase = torch.arange(num_frames, dtype=torch.float64) / num_frames
    return orbit_w2c(torch.tensor([0.0, 1.0, 0.0]), amplitude_deg * torch.sin(2 * torch.pi * phase), orbit_distance)


@dataclass(frozen=True)
class Keyframe:
    time: float  # in [0, 1] along the path
    position: Tensor  # [3] camera centre
    rotation_c2w: Tensor  # [3, 3] camera-to-world rotation (OpenCV axes)


def keyframed_w2c(keyframes: list[Keyframe], num_frames: int, magnitude: float = 1.0) -> Tensor:
    """World-to-camera [T, 4, 4] through ``keyframes``, re-expressed relative to the first frame.

    Positions follow a Catmull-Rom spline (C1, passes through every keyframe), rotations are
    SLERPed between neighbouring keyframes, both parameterised by keyframe time. ``magnitude``
    scales the path's translations.
    """
    check_num_frames(num_frames)
    if len(keyframes) < 2:
        raise Scene4DError(f"a keyframed path needs at least 2 keyframes, got {len(keyframes)}")
    times = torch.tensor([k.time for k in keyframes], dtype=torch.float64)
    if bool((times[1:] <= times[:-1]).any()):
        raise Scene4DError(f"keyframe times must increase strictly, got {times.tolist()}")
    positions = torch.stack([k.position.double() for k in keyframes])
    quats = matrix_to_quaternion(torch.stack([k.rotation_c2w.double() for k in keyframes]))
    query = torch.linspace(float(times[0]), float(times[-1]), num_frames, dtype=torch.float64)
    segment = (torch.searchsorted(times, query, right=True) - 1).clamp(0, len(keyframes) - 2)
    local = (query - times[segment]) / (times[segment + 1] - times[segment])
    c2w = torch.eye(4, dtype=torch.float64).repeat(num_frames, 1, 1)
    c2w[:, :3, :3] = quaternion_to_matrix(slerp(quats[segment], quats[segment + 1], local))
    c2w[:, :3, 3] = catmull_rom(times, positions, segment, local)
    relative_c2w = rigid_inverse(c2w[:1]) @ c2w
    relative_c2w[:, :3, 3] *= magnitude
    return rigid_inverse(relative_c2w).float()


def catmull_rom(times: Tensor, points: Tensor, segment: Tensor, local: Tensor) -> Tensor:
    """Cubic Hermite interpolation [Q, 3] of ``points`` [K, 3] at ``times`` [K].

    Tangents are the non-uniform Catmull-Rom ones, ``(p[k+1] - p[k-1]) / (t[k+1] - t[k-1])``,
    one-sided at the ends; ``segment`` [Q] and ``local`` [Q] in [0, 1] locate each query.
    """
    previous = torch.cat([points[:1], points[:-1]])
    following = torch.cat([points[1:], points[-1:]])
    previous_t = torch.cat([times[:1], times[:-1]])
    following_t = torch.cat([times[1:], times[-1:]])
    tangents = (following - previous) / (following_t - previous_t)[:, None]
    duration = (times[segment + 1] - times[segment])[:, None]
    s = local[:, None]
    h00, h10 = 2 * s**3 - 3 * s**2 + 1, s**3 - 2 * s**2 + s
    h01, h11 = -2 * s**3 + 3 * s**2, s**3 - s**2
    return (
        h00 * points[segment]
        + h10 * duration * tangents[segment]
        + h01 * points[segment + 1]
        + h11 * duration * tangents[segment + 1]
    )


def nearest_move(
    rotation_w2c: Tensor,  # [3, 3] the second camera's rotation, world = the first camera
    direction: Tensor | None,  # [3] unit direction from the first centre to the second, first-camera frame
    orbit_distance: float = 4.0,
) -> tuple[str, float]:
    """The named move, and its magnitude, whose end camera best matches a relative camera pose.

    DimensionX's adaptive trajectory planning picks the S-Director whose motion matches the pose
    difference of two views. Relative poses from images carry no scale, so translations compare
    by direction only: score = rotation error + angle between the directions (degrees; 45 when
    exactly one side has no translation, ``direction`` None meaning a shared centre). Rotations
    and orbits try 5% to 200% of their default size; translations keep their default.
    """
    best: tuple[float, str, float] = (float("inf"), "", 0.0)
    for name, move in MOVES.items():
        scales = [1.0] if move.kind == "translate" else torch.linspace(0.05, 2.0, 40).tolist()
        for scale in scales:
            magnitude = move.default_magnitude * scale
            end_c2w = rigid_inverse(named_trajectory_w2c(name, 2, magnitude, orbit_distance)[1:].double())[0]
            score = rotation_error_deg(end_c2w[:3, :3].T, rotation_w2c) + direction_error_deg(end_c2w[:3, 3], direction)
            best = min(best, (score, name, magnitude))
    return best[1], best[2]


def direction_error_deg(offset: Tensor, direction: Tensor | None) -> float:
    """Angle between a camera offset [3] and a unit direction; 0 when both are absent, 45 when one is."""
    moves = bool(offset.norm() > 1e-9)
    if direction is None or not moves:
        return 0.0 if direction is None and not moves else 45.0
    cosine = (offset / offset.norm()) @ direction.double() / direction.double().norm()
    return float(torch.rad2deg(torch.arccos(cosine.clamp(-1.0, 1.0))))


def pose_change(cameras: Cameras) -> tuple[Tensor, Tensor | None]:
    """Rotation [3, 3] of the last camera in the first camera's frame, and the unit direction [3]
    from the first centre to the last (None when they coincide): what ``nearest_move`` compares."""
    relative = cameras.relative_to(0)
    centre = rigid_inverse(relative.w2c[-1:].double())[0, :3, 3]
    direction = centre / centre.norm() if centre.norm() > 1e-6 else None
    return relative.w2c[-1, :3, :3].double(), direction
