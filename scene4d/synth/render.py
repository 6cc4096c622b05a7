"""Vectorised ray casting of synth scenes: exact RGB, camera z-depth and instance ids.

Shading is Lambertian under one directional light plus ambient, so a surface point has the same
colour from every view (what reprojection tests and Gaussian splatting assume). No OpenGL:
every ray is intersected analytically with every surface in plain torch.
"""

from dataclasses import dataclass

import torch
from torch import Tensor

from scene4d.errors import Scene4DError
from scene4d.geometry import Cameras
from scene4d.synth.scene import DOME_RADIUS, Scene, SceneObject

AMBIENT = 0.45
# float32 keeps depth exact to ~1e-6 relative at the dome's 30 units and halves the cost.
RAY_DTYPE = torch.float32
NO_HIT = torch.inf


@dataclass
class RenderOutput:
    rgb: Tensor  # [H, W, 3] in [0, 1]
    depth: Tensor  # [H, W] camera z-depth
    instance: Tensor  # [H, W] int, 0 = background


def render_view(scene: Scene, camera: Cameras, time: float, supersample: int = 1) -> RenderOutput:
    """Render one camera (a batch of one) at clip time ``time``.

    With ``supersample`` s > 1, RGB averages s x s rays per pixel (anti-aliasing), while depth and
    instance ids come from the ray through the pixel centre so they stay exact.
    """
    if len(camera) != 1:
        raise Scene4DError(f"render_view renders one camera, got a batch of {len(camera)}")
    height, width = camera.height, camera.width
    origin = camera.centers[0].to(RAY_DTYPE)
    centre_rays = camera.ray_directions()[0].to(RAY_DTYPE).reshape(-1, 3)
    rgb, distance, instance = shade(scene, origin, centre_rays, time)
    if supersample > 1:
        fine = camera.resized(height * supersample, width * supersample)
        fine_rgb, _, _ = shade(scene, origin, fine.ray_directions()[0].to(RAY_DTYPE).reshape(-1, 3), time)
        rgb = fine_rgb.reshape(height, supersample, width, supersample, 3).mean(dim=(1, 3))
    forward = camera.R[0, 2].to(RAY_DTYPE)  # camera +z in world coordinates
    depth = distance * (centre_rays @ forward)
    return RenderOutput(
        rgb.reshape(height, width, 3).float().clamp(0, 1),
        depth.reshape(height, width).float(),
        instance.reshape(height, width),
    )


def shade(scene: Scene, origin: Tensor, directions: Tensor, time: float) -> tuple[Tensor, Tensor, Tensor]:
    """Colour [P, 3], hit distance [P] and instance id [P] of unit rays from ``origin`` [3].

    Two passes: the distance to every surface for every ray, then normals and texture
    coordinates only where a surface is the nearest.
    """
    poses = [obj.obj2world(time).to(directions.dtype) for obj in scene.objects]
    distances = [ground_distance(origin, directions), dome_distance(origin, directions)]
    for obj, obj2world in zip(scene.objects, poses, strict=True):
        local_origin, local_directions = to_local(obj2world, origin, directions)
        distances.append(PRIMITIVES[obj.shape][0](local_origin, local_directions, half_size(obj, directions.dtype)))
    nearest_distance, nearest = torch.stack(distances).min(dim=0)
    rgb = torch.zeros(directions.shape[0], 3, dtype=directions.dtype)
    instance = torch.zeros(directions.shape[0], dtype=torch.long)
    light = torch.tensor(scene.light_dir, dtype=directions.dtype)
    for index in range(len(distances)):
        selected = nearest == index
        if not bool(selected.any()):
            continue
        point = origin + nearest_distance[selected, None] * directions[selected]
        if index == 0:
            (normal, uv), texture = ground_surface(point, scene.ground_repeat), scene.ground_texture
        elif index == 1:  # the sky dome is emissive
            rgb[selected] = sample_texture(scene.textures[scene.sky_texture], dome_uv(point))
            continue
        else:
            obj, obj2world = scene.objects[index - 2], poses[index - 2]
            normal, uv = object_surface(obj, obj2world, point)
            texture = obj.texture
            instance[selected] = obj.instance_id
        lambert = (normal @ light).clamp(min=0)
        rgb[selected] = sample_texture(scene.textures[texture], uv) * (AMBIENT + (1 - AMBIENT) * lambert[:, None])
    return rgb, nearest_distance, instance


def sample_texture(texture: Tensor, uv: Tensor) -> Tensor:
    """Bilinear lookup [P, 3] in ``texture`` [H, W, 3] at ``uv`` [P, 2] (tiles), wrapping around."""
    height, width = texture.shape[:2]
    x = (uv[:, 0] % 1.0) * width - 0.5
    y = (uv[:, 1] % 1.0) * height - 0.5
    x0, y0 = x.floor(), y.floor()
    fx, fy = (x - x0)[:, None], (y - y0)[:, None]
    x0, y0 = x0.long() % width, y0.long() % height
    x1, y1 = (x0 + 1) % width, (y0 + 1) % height
    texture = texture.to(uv.dtype)
    top = texture[y0, x0] * (1 - fx) + texture[y0, x1] * fx
    bottom = texture[y1, x0] * (1 - fx) + texture[y1, x1] * fx
    return top * (1 - fy) + bottom * fy


def ground_distance(origin: Tensor, directions: Tensor) -> Tensor:
    """Distance [P] to the plane y = 0 seen from above (inf where missed)."""
    distance = torch.where(directions[:, 1] < -1e-9, -origin[1] / directions[:, 1], NO_HIT)
    return torch.where(distance > 1e-6, distance, NO_HIT)


def ground_surface(point: Tensor, repeat: float) -> tuple[Tensor, Tensor]:
    """Normal [P, 3] and UVs [P, 2] of ground points [P, 3]."""
    normal = torch.tensor([0.0, 1.0, 0.0], dtype=point.dtype).expand_as(point)
    return normal, point[:, [0, 2]] * repeat


def dome_distance(origin: Tensor, directions: Tensor) -> Tensor:
    """Distance [P] to the inside of the sky sphere of radius ``DOME_RADIUS`` about the origin."""
    b = directions @ origin
    c = origin @ origin - DOME_RADIUS**2
    return -b + torch.sqrt((b * b - c).clamp(min=0))


def dome_uv(point: Tensor) -> Tensor:
    """Equirectangular UVs [P, 2] of dome points; the upper hemisphere spans the texture."""
    unit = point / DOME_RADIUS
    u = torch.atan2(unit[:, 2], unit[:, 0]) / (2 * torch.pi) + 0.5
    v = torch.acos(unit[:, 1].clamp(-1, 1)) / torch.pi * 2
    return torch.stack([u, v.clamp(max=0.999)], dim=-1)


def to_local(obj2world: Tensor, origin: Tensor, directions: Tensor) -> tuple[Tensor, Tensor]:
    """A ray origin [3] and directions [P, 3] in the object's frame."""
    rotation, centre = obj2world[:3, :3], obj2world[:3, 3]
    return rotation.T @ (origin - centre), directions @ rotation


def half_size(obj: SceneObject, dtype: torch.dtype) -> Tensor:
    return torch.tensor(obj.half_size, dtype=dtype)


def object_surface(obj: SceneObject, obj2world: Tensor, point: Tensor) -> tuple[Tensor, Tensor]:
    """World normals [P, 3] and UVs [P, 2] (in texture tiles) of world points [P, 3] on ``obj``."""
    rotation = obj2world[:3, :3]
    local = (point - obj2world[:3, 3]) @ rotation
    normal, uv = PRIMITIVES[obj.shape][1](local, half_size(obj, point.dtype))
    return normal @ rotation.T, uv * obj.texture_repeat


def sphere_distance(origin: Tensor, directions: Tensor, half: Tensor) -> Tensor:
    """Distance [P] to the sphere of radius ``half[0]`` about the local origin, seen from outside."""
    b = directions @ origin
    c = origin @ origin - half[0] ** 2
    discriminant = b * b - c
    distance = -b - torch.sqrt(discriminant.clamp(min=0))
    return torch.where((discriminant > 0) & (distance > 1e-6), distance, NO_HIT)


def sphere_surface(local: Tensor, half: Tensor) -> tuple[Tensor, Tensor]:
    """Local normals and UVs (longitude, colatitude in scene units) of sphere points."""
    normal = local / half[0]
    u = (torch.atan2(normal[:, 2], normal[:, 0]) / (2 * torch.pi) + 0.5) * 2 * torch.pi * half[0]
    v = torch.acos(normal[:, 1].clamp(-1, 1)) * half[0]
    return normal, torch.stack([u, v], dim=-1)


def box_distance(origin: Tensor, directions: Tensor, half: Tensor) -> Tensor:
    """Distance [P] to the axis-aligned box with half extents ``half`` (slab method)."""
    safe = torch.where(directions.abs() < 1e-12, torch.full_like(directions, 1e-12), directions)
    near = (-half - origin) / safe
    far = (half - origin) / safe
    entry = torch.minimum(near, far).amax(dim=-1)
    leave = torch.maximum(near, far).amin(dim=-1)
    return torch.where((leave >= entry) & (entry > 1e-6), entry, NO_HIT)


def box_surface(local: Tensor, half: Tensor) -> tuple[Tensor, Tensor]:
    """Local normals and UVs of box points: the two in-face coordinates, in scene units."""
    face = (local / half).abs().argmax(dim=-1)
    normal = torch.nn.functional.one_hot(face, 3).to(local.dtype) * torch.sign(local)
    first = torch.tensor([2, 0, 0])[face]  # x-faces use (z, y), y-faces (x, z), z-faces (x, y)
    second = torch.tensor([1, 2, 1])[face]
    uv = torch.stack([local.gather(1, first[:, None])[:, 0], local.gather(1, second[:, None])[:, 0]], dim=-1)
    return normal, uv


def cylinder_distance(origin: Tensor, directions: Tensor, half: Tensor) -> Tensor:
    """Distance [P] to the capped cylinder about the local y axis: radius ``half[0]``, half height ``half[1]``."""
    radius, half_height = half[0], half[1]
    a = directions[:, 0] ** 2 + directions[:, 2] ** 2
    b = origin[0] * directions[:, 0] + origin[2] * directions[:, 2]
    c = origin[0] ** 2 + origin[2] ** 2 - radius**2
    discriminant = b * b - a * c
    side = (-b - torch.sqrt(discriminant.clamp(min=0))) / a.clamp(min=1e-12)
    side_y = origin[1] + side * directions[:, 1]
    side = torch.where((discriminant > 0) & (side > 1e-6) & (side_y.abs() <= half_height), side, NO_HIT)
    # Only the cap on the camera's side can be seen first; the other is behind the side wall.
    cap_y = half_height if float(origin[1]) > 0 else -half_height
    safe_y = torch.where(directions[:, 1].abs() < 1e-12, torch.full_like(a, 1e-12), directions[:, 1])
    cap = (cap_y - origin[1]) / safe_y
    cap_x, cap_z = origin[0] + cap * directions[:, 0], origin[2] + cap * directions[:, 2]
    cap = torch.where((cap_x**2 + cap_z**2 <= radius**2) & (cap > 1e-6), cap, NO_HIT)
    return torch.minimum(side, cap)


def cylinder_surface(local: Tensor, half: Tensor) -> tuple[Tensor, Tensor]:
    """Local normals and UVs of cylinder points; a point belongs to the nearer of side and cap."""
    radius, half_height = half[0], half[1]
    radial = torch.sqrt(local[:, 0] ** 2 + local[:, 2] ** 2)
    on_side = (radial - radius).abs() < (local[:, 1].abs() - half_height).abs()
    side_normal = torch.stack([local[:, 0], torch.zeros_like(radial), local[:, 2]], dim=-1) / radius
    cap_normal = torch.zeros_like(local)
    cap_normal[:, 1] = torch.sign(local[:, 1])
    normal = torch.where(on_side[:, None], side_normal, cap_normal)
    around = torch.atan2(local[:, 2], local[:, 0]) * radius
    uv = torch.where(on_side[:, None], torch.stack([around, local[:, 1]], -1), local[:, [0, 2]])
    return normal, uv


PRIMITIVES = {
    "sphere": (sphere_distance, sphere_surface),
    "box": (box_distance, box_surface),
    "cylinder": (cylinder_distance, cylinder_surface),
}
