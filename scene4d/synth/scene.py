"""Procedural scenes: a textured ground, a sky dome, walls and 3-8 primitives, some moving.

Synth world frame: right-handed, +y up, the ground is the plane y = 0 and the scene is centred
on the origin. Object motion is rigid and recorded exactly: ``SceneObject.obj2world(t)``.
"""

from dataclasses import dataclass, field, replace
from typing import Literal

import numpy as np
import torch
from torch import Tensor

from scene4d.geometry.rotations import axis_angle_to_matrix
from scene4d.synth.textures import ground_texture, random_texture, sky_texture

Shape = Literal["sphere", "box", "cylinder"]
MotionKind = Literal["static", "translate", "rotate", "bounce"]
SCENE_RADIUS = 2.2  # objects rest within this distance of the origin
DOME_RADIUS = 30.0


@dataclass(frozen=True)
class RigidMotion:
    """Rigid motion over clip time t in [0, 1], scaled by ``speed``.

    ``translate``: moves by ``velocity`` (scene units per clip); ``rotate``: turns by ``angle_deg``
    about ``axis``; ``bounce``: hops ``bounces`` times up to ``height`` along +y.
    """

    kind: MotionKind = "static"
    velocity: tuple[float, float, float] = (0.0, 0.0, 0.0)
    axis: tuple[float, float, float] = (0.0, 1.0, 0.0)
    angle_deg: float = 0.0
    height: float = 0.0
    bounces: float = 0.0
    speed: float = 1.0

    def transform(self, t: float) -> tuple[Tensor, Tensor]:
        """Rotation [3, 3] about the object's centre and world offset [3] at time ``t``."""
        rotation = torch.eye(3, dtype=torch.float64)
        offset = torch.zeros(3, dtype=torch.float64)
        if self.kind == "translate":
            offset = torch.tensor(self.velocity, dtype=torch.float64) * self.speed * t
        elif self.kind == "rotate":
            angle = torch.deg2rad(torch.tensor(self.angle_deg * self.speed * t, dtype=torch.float64))
            rotation = axis_angle_to_matrix(torch.tensor(self.axis, dtype=torch.float64), angle)
        elif self.kind == "bounce":
            hop = self.height * abs(np.sin(np.pi * self.bounces * self.speed * t))
            offset = torch.tensor([0.0, hop, 0.0], dtype=torch.float64)
        return rotation, offset


@dataclass(frozen=True)
class SceneObject:
    shape: Shape
    half_size: tuple[float, float, float]  # sphere: (r, r, r); box: half extents; cylinder: (r, h/2, r)
    position: tuple[float, float, float]  # rest centre, world
    yaw_deg: float  # rest rotation about +y
    texture: int  # index into Scene.textures
    texture_repeat: float  # texture tiles per scene unit
    instance_id: int  # > 0 for objects, 0 for walls (background)
    motion: RigidMotion = field(default_factory=RigidMotion)

    def obj2world(self, t: float) -> Tensor:
        """Object-to-world [4, 4] at clip time ``t``: motion applied about the rest centre."""
        rest = axis_angle_to_matrix(
            torch.tensor([0.0, 1.0, 0.0], dtype=torch.float64),
            torch.deg2rad(torch.tensor(self.yaw_deg, dtype=torch.float64)),
        )
        rotation, offset = self.motion.transform(t)
        matrix = torch.eye(4, dtype=torch.float64)
        matrix[:3, :3] = rotation @ rest
        matrix[:3, 3] = torch.tensor(self.position, dtype=torch.float64) + offset
        return matrix


@dataclass(frozen=True)
class Scene:
    objects: tuple[SceneObject, ...]  # primitives (instance ids 1..K) and walls (id 0)
    textures: tuple[Tensor, ...]  # [H, W, 3] each
    ground_texture: int
    ground_repeat: float
    sky_texture: int
    light_dir: tuple[float, float, float]  # unit, world, towards the light

    @property
    def dynamic_objects(self) -> tuple[SceneObject, ...]:
        return tuple(o for o in self.objects if o.motion.kind != "static")


def random_scene(
    rng: np.random.Generator, dynamic: bool, speed: float = 1.0, wall_azimuth_rad: float = 0.0, props: int = 0
) -> Scene:
    """A seeded random scene: 3-8 primitives on textured ground, walls on the far side.

    ``wall_azimuth_rad`` points (in the ground plane) to where the walls stand, typically away
    from the cameras. With ``dynamic``, 1-3 primitives move with a random rigid motion. ``props``
    static background pillars (instance id 0) stand between the primitives and the walls.
    """
    textures = [ground_texture(rng), sky_texture(rng)]
    objects: list[SceneObject] = []
    for footprint, center in place_footprints(rng, int(rng.integers(3, 9))):
        shape: Shape = ("sphere", "box", "cylinder")[int(rng.integers(3))]
        half_size = primitive_half_size(rng, shape, footprint)
        textures.append(random_texture(rng))
        objects.append(
            SceneObject(
                shape,
                half_size,
                (center[0], half_size[1], center[1]),
                float(rng.uniform(0, 360)),
                len(textures) - 1,
                float(rng.uniform(1.0, 2.5)),
                len(objects) + 1,
            )
        )
    if dynamic:
        movers = rng.choice(len(objects), size=int(rng.integers(1, min(3, len(objects)) + 1)), replace=False)
        objects = [
            replace(o, motion=random_motion(rng, speed)) if index in movers else o for index, o in enumerate(objects)
        ]
    for wall in random_walls(rng, wall_azimuth_rad, first_texture=len(textures)):
        textures.append(random_texture(rng, photo_probability=0.8))
        objects.append(wall)
    for prop in random_props(rng, props, wall_azimuth_rad, first_texture=len(textures)):
        textures.append(random_texture(rng, photo_probability=0.8))
        objects.append(prop)
    light = np.array([rng.uniform(-0.6, 0.6), 1.0, rng.uniform(-0.6, 0.6)])
    return Scene(
        tuple(objects),
        tuple(textures),
        ground_texture=0,
        ground_repeat=float(rng.uniform(0.3, 0.8)),
        sky_texture=1,
        light_dir=tuple(float(v) for v in light / np.linalg.norm(light)),
    )


def place_footprints(rng: np.random.Generator, count: int) -> list[tuple[float, tuple[float, float]]]:
    """Non-overlapping ground footprints (radius, (x, z)) inside ``SCENE_RADIUS``, by rejection."""
    placed: list[tuple[float, tuple[float, float]]] = []
    for _ in range(200):
        if len(placed) == count:
            break
        radius = float(rng.uniform(0.3, 0.7))
        distance, angle = float(rng.uniform(0, SCENE_RADIUS - radius)), float(rng.uniform(0, 2 * np.pi))
        center = (distance * np.cos(angle), distance * np.sin(angle))
        if all(np.hypot(center[0] - c[0], center[1] - c[1]) > radius + r + 0.1 for r, c in placed):
            placed.append((radius, center))
    return placed


def primitive_half_size(rng: np.random.Generator, shape: Shape, footprint: float) -> tuple[float, float, float]:
    if shape == "sphere":
        return (footprint, footprint, footprint)
    if shape == "box":
        side = footprint / np.sqrt(2)
        return (side, float(rng.uniform(0.3, 1.2)) * side * 1.5, side * float(rng.uniform(0.6, 1.0)))
    return (footprint, float(rng.uniform(0.4, 1.2)) * footprint * 1.5, footprint)


def random_motion(rng: np.random.Generator, speed: float) -> RigidMotion:
    """A translate, rotate or bounce motion of random direction and amount."""
    kind: MotionKind = ("translate", "rotate", "bounce")[int(rng.integers(3))]
    heading = rng.uniform(0, 2 * np.pi)
    distance = rng.uniform(0.6, 1.2)
    axis = rng.normal(size=3) * np.array([0.3, 1.0, 0.3])
    return RigidMotion(
        kind=kind,
        velocity=(float(distance * np.cos(heading)), 0.0, float(distance * np.sin(heading))),
        axis=tuple(float(v) for v in axis / np.linalg.norm(axis)),
        angle_deg=float(rng.uniform(60, 150) * rng.choice([-1, 1])),
        height=float(rng.uniform(0.3, 0.8)),
        bounces=float(rng.uniform(1.0, 2.0)),
        speed=speed,
    )


def random_walls(rng: np.random.Generator, azimuth_rad: float, first_texture: int) -> list[SceneObject]:
    """0-2 thin textured walls standing about 4.5 units from the origin around ``azimuth_rad``."""
    walls = []
    for index in range(int(rng.integers(0, 3))):
        angle = azimuth_rad + float(rng.uniform(-0.7, 0.7))
        distance = float(rng.uniform(4.2, 5.0))
        half = (float(rng.uniform(1.5, 3.0)), float(rng.uniform(0.8, 1.6)), 0.1)
        yaw = float(np.degrees(-angle) + 90.0)
        position = (distance * np.cos(angle), half[1], distance * np.sin(angle))
        walls.append(
            SceneObject("box", half, position, yaw, first_texture + index, float(rng.uniform(0.4, 0.8)), instance_id=0)
        )
    return walls


def random_props(rng: np.random.Generator, count: int, azimuth_rad: float, first_texture: int) -> list[SceneObject]:
    """``count`` static textured pillars (boxes and cylinders, instance id 0) on the walls' side.

    They stand 2.8-4.2 units from the origin within 100 degrees of ``azimuth_rad``, clear of the
    primitives and of the cameras on the other side, and give the static background depth
    variation (a ground plane and walls alone are nearly planar, a degenerate case for SfM).
    """
    props = []
    for index in range(count):
        angle = azimuth_rad + float(rng.uniform(-1.75, 1.75))
        distance = float(rng.uniform(SCENE_RADIUS + 0.6, 4.2))
        shape: Shape = ("box", "cylinder")[int(rng.integers(2))]
        width, height = float(rng.uniform(0.15, 0.35)), float(rng.uniform(0.5, 1.5))
        half = (width, height, width)
        position = (distance * np.cos(angle), height, distance * np.sin(angle))
        yaw = float(rng.uniform(0, 360))
        texture_repeat = float(rng.uniform(1.0, 2.5))
        props.append(SceneObject(shape, half, position, yaw, first_texture + index, texture_repeat, instance_id=0))
    return props
