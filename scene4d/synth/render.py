"""Vectorised ray casting of synth scenes: exact RGB, camera z-depth and instance ids.

Shading is Lambertian under one directional light plus ambient, so a surface point has the same
colour from every view (what reprojection tests and Gaussian splatting assume). No OpenGL:
every ray is intersected analytically with every surface in plain torch.
"""

from dataclasses import dataclass

import torch
from torch import Tensor

from scene4d.geometry import Cameras
from scene4d.synth.scene import DOME_RADIUS, Scene, SceneObject

AMBIENT = 0.45
NO_HIT = torch.inf


@dataclass
class Hits:
    """Nearest intersections of P rays with one surface (``distance`` is inf where missed)."""

    distance: Tensor  # [P] ray parameter t of the hit (rays have unit directions)
    normal: Tensor  # [P, 3] world-space unit normal
    uv: Tensor  # [P, 2] texture coordinates, in texture tiles


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
    height, width = camera.height, camera.width
    origin = camera.centers[0].double()
    centre_rays = camera.ray_directions()[0].double().reshape(-1, 3)
    rgb, distance, instance = shade(scene, origin, centre_rays, time)
    if supersample > 1:
        fine = camera.resized(height * supersample, width * supersample)
        fine_rgb, _, _ = shade(scene, origin, fine.ray_directions()[0].double().reshape(-1, 3), time)
        rgb = fine_rgb.reshape(height, supersample, width, supersample, 3).mean(dim=(1, 3))
    forward = camera.R[0, 2].double()  # camera +z in world coordinates
    depth = distance * (centre_rays @ forward)
    return RenderOutput(
        rgb.reshape(height, width, 3).float().clamp(0, 1),
        depth.reshape(height, width).float(),
        instance.reshape(height, width),
    )


def shade(scene: Scene, origin: Tensor, directions: Tensor, time: float) -> tuple[Tensor, Tensor, Tensor]:
    """Colour [P, 3], hit distance [P] and instance id [P] of rays from ``origin`` [3]."""
    surfaces = [intersect_ground(origin, directions, scene.ground_repeat), intersect_dome(origin, directions)]
    textures = [scene.ground_texture, scene.sky_texture]
    instance_ids = [0, 0]
    for obj in scene.objects:
        surfaces.append(intersect_object(obj, obj.obj2world(time), origin, directions))
        textures.append(obj.texture)
        instance_ids.append(obj.instance_id)
    distances = torch.stack([hit.distance for hit in surfaces])
    nearest_distance, nearest = distances.min(dim=0)
    rgb = torch.zeros(directions.shape[0], 3, dtype=torch.float64)
    light = torch.tensor(scene.light_dir, dtype=torch.float64)
    for index, hit in enumerate(surfaces):
        selected = nearest == index
        if not bool(selected.any()):
            continue
        albedo = sample_texture(scene.textures[textures[index]], hit.uv[selected])
        if index == 1:  # the sky dome is emissive
            rgb[selected] = albedo
        else:
            lambert = (hit.normal[selected] @ light).clamp(min=0)
            rgb[selected] = albedo * (AMBIENT + (1 - AMBIENT) * lambert[:, None])
    instance = torch.tensor(instance_ids)[nearest]
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
    texture = texture.double()
    top = texture[y0, x0] * (1 - fx) + texture[y0, x1] * fx
    bottom = texture[y1, x0] * (1 - fx) + texture[y1, x1] * fx
    return top * (1 - fy) + bottom * fy


def intersect_ground(origin: Tensor, directions: Tensor, repeat: float) -> Hits:
    """The plane y = 0, seen from above."""
    distance = torch.where(directions[:, 1] < -1e-9, -origin[1] / directions[:, 1], NO_HIT)
    distance = torch.where(distance > 1e-6, distance, NO_HIT)
    point = origin + distance.nan_to_num(posinf=0.0)[:, None] * directions
    normal = torch.tensor([0.0, 1.0, 0.0], dtype=torch.float64).expand_as(directions)
    return Hits(distance, normal, point[:, [0, 2]] * repeat)


def intersect_dome(origin: Tensor, directions: Tensor) -> Hits:
    """The inside of the sky sphere of radius ``DOME_RADIUS`` about the origin (equirectangular UVs)."""
    b = directions @ origin
    c = origin @ origin - DOME_RADIUS**2
    distance = -b + torch.sqrt((b * b - c).clamp(min=0))
    point = origin + distance[:, None] * directions
    unit = point / DOME_RADIUS
    u = torch.atan2(unit[:, 2], unit[:, 0]) / (2 * torch.pi) + 0.5
    v = torch.acos(unit[:, 1].clamp(-1, 1)) / torch.pi * 2  # the upper hemisphere spans the texture
    return Hits(distance, -unit, torch.stack([u, v.clamp(max=0.999)], dim=-1))


def intersect_object(obj: SceneObject, obj2world: Tensor, origin: Tensor, directions: Tensor) -> Hits:
    """Intersect rays with a primitive in its local frame; return world normals and UVs."""
    rotation, centre = obj2world[:3, :3], obj2world[:3, 3]
    local_origin = rotation.T @ (origin - centre)
    local_directions = directions @ rotation
    intersect = {"sphere": intersect_sphere, "box": intersect_box, "cylinder": intersect_cylinder}[obj.shape]
    hit = intersect(local_origin, local_directions, torch.tensor(obj.half_size, dtype=torch.float64))
    return Hits(hit.distance, hit.normal @ rotation.T, hit.uv * obj.texture_repeat)


def intersect_sphere(origin: Tensor, directions: Tensor, half_size: Tensor) -> Hits:
    """Sphere of radius ``half_size[0]`` at the local origin, seen from outside."""
    radius = half_size[0]
    b = directions @ origin
    c = origin @ origin - radius**2
    discriminant = b * b - c
    distance = -b - torch.sqrt(discriminant.clamp(min=0))
    distance = torch.where((discriminant > 0) & (distance > 1e-6), distance, NO_HIT)
    point = origin + distance.nan_to_num(posinf=0.0)[:, None] * directions
    normal = point / radius
    u = (torch.atan2(normal[:, 2], normal[:, 0]) / (2 * torch.pi) + 0.5) * 2 * torch.pi * radius
    v = torch.acos(normal[:, 1].clamp(-1, 1)) * radius
    return Hits(distance, normal, torch.stack([u, v], dim=-1))


def intersect_box(origin: Tensor, directions: Tensor, half_size: Tensor) -> Hits:
    """Axis-aligned box with half extents ``half_size`` about the local origin (slab method)."""
    safe = torch.where(directions.abs() < 1e-12, torch.full_like(directions, 1e-12), directions)
    near = (-half_size - origin) / safe
    far = (half_size - origin) / safe
    entry = torch.minimum(near, far).amax(dim=-1)
    leave = torch.maximum(near, far).amin(dim=-1)
    distance = torch.where((leave >= entry) & (entry > 1e-6), entry, NO_HIT)
    point = origin + distance.nan_to_num(posinf=0.0)[:, None] * directions
    face = (point / half_size).abs().argmax(dim=-1)
    normal = torch.nn.functional.one_hot(face, 3).double() * torch.sign(point)
    # UVs: the two in-face coordinates, in scene units (x-faces use z,y; y-faces x,z; z-faces x,y).
    first = torch.tensor([2, 0, 0])[face]
    second = torch.tensor([1, 2, 1])[face]
    uv = torch.stack([point.gather(1, first[:, None])[:, 0], point.gather(1, second[:, None])[:, 0]], dim=-1)
    return Hits(distance, normal, uv)


def intersect_cylinder(origin: Tensor, directions: Tensor, half_size: Tensor) -> Hits:
    """Capped cylinder about the local y axis: radius ``half_size[0]``, half height ``half_size[1]``."""
    radius, half_height = half_size[0], half_size[1]
    a = directions[:, 0] ** 2 + directions[:, 2] ** 2
    b = origin[0] * directions[:, 0] + origin[2] * directions[:, 2]
    c = origin[0] ** 2 + origin[2] ** 2 - radius**2
    discriminant = b * b - a * c
    side = (-b - torch.sqrt(discriminant.clamp(min=0))) / a.clamp(min=1e-12)
    side_y = origin[1] + side * directions[:, 1]
    side = torch.where((discriminant > 0) & (side > 1e-6) & (side_y.abs() <= half_height), side, NO_HIT)
    cap_sign = torch.where(origin[1] > 0, 1.0, -1.0).double()
    safe_y = torch.where(directions[:, 1].abs() < 1e-12, torch.full_like(a, 1e-12), directions[:, 1])
    cap = (cap_sign * half_height - origin[1]) / safe_y
    cap_point = origin + cap[:, None] * directions
    inside = cap_point[:, 0] ** 2 + cap_point[:, 2] ** 2 <= radius**2
    cap = torch.where(inside & (cap > 1e-6), cap, NO_HIT)
    distance = torch.minimum(side, cap)
    point = origin + distance.nan_to_num(posinf=0.0)[:, None] * directions
    on_side = side <= cap
    side_normal = torch.stack([point[:, 0], torch.zeros_like(a), point[:, 2]], dim=-1) / radius
    cap_normal = torch.tensor([0.0, 1.0, 0.0], dtype=torch.float64) * cap_sign
    normal = torch.where(on_side[:, None], side_normal, cap_normal.expand_as(side_normal))
    around = torch.atan2(point[:, 2], point[:, 0]) * radius
    uv = torch.where(on_side[:, None], torch.stack([around, point[:, 1]], -1), point[:, [0, 2]])
    return Hits(distance, normal, uv)
