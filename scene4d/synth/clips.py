"""Synthetic Clips matching the papers' dataset kinds, with exact ground truth.

- ``spatial``: the camera follows a named trajectory, the scene is frozen (3D / S-Director data);
  all times are 0.
- ``temporal``: the camera is fixed, objects move (T-Director data).
- ``hybrid``: both move (4D data).
- ``multiview-video``: K synchronised cameras on an arc x T times (4D reconstruction), stored
  view-major: frame ``v * T + k`` is view v at time k; ``meta["num_views"]``, ``meta["num_times"]``.

``meta["motion_strength"]`` is GenXD's motion strength (eq. 4) from the true object motion;
``meta["objects"]`` records every primitive and its object-to-world pose per frame.
"""

from dataclasses import asdict, dataclass
from typing import Literal

import numpy as np
import torch
from torch import Tensor

from scene4d.errors import Scene4DError
from scene4d.geometry import TRAJECTORY_NAMES, Cameras, look_at_w2c, named_trajectory_w2c, rigid_inverse
from scene4d.geometry.trajectories import MOVES, check_num_frames, get_move
from scene4d.io import Clip
from scene4d.synth.motion import motion_strength
from scene4d.synth.render import render_view
from scene4d.synth.scene import SCENE_RADIUS, Scene, random_scene

ClipKind = Literal["spatial", "temporal", "hybrid", "multiview-video"]
CLIP_KINDS: tuple[str, ...] = ("spatial", "temporal", "hybrid", "multiview-video")
WORLD_UP = (0.0, 1.0, 0.0)


@dataclass(frozen=True)
class SynthConfig:
    kind: ClipKind = "hybrid"
    resolution: int = 128  # square frames, pixels
    num_frames: int = 16  # frames per clip (times per view for multiview-video)
    num_views: int = 4  # cameras of a multiview-video clip
    fov_x_deg: float = 55.0
    supersample: int = 2  # anti-aliasing: s x s rays per pixel for RGB
    trajectory: str | None = None  # spatial / hybrid: a named move, random when None
    speed: float | None = None  # object motion scale, random in [0.3, 1.5] when None
    view_arc_deg: float = 60.0  # multiview-video: angle spanned by the cameras
    props: int = 0  # static background pillars (depth variation for structure from motion)

    def __post_init__(self) -> None:
        if self.kind not in CLIP_KINDS:
            raise Scene4DError(f"unknown clip kind {self.kind!r}; valid kinds: {', '.join(CLIP_KINDS)}")
        if not 16 <= self.resolution <= 1024:
            raise Scene4DError(f"resolution must be within [16, 1024] pixels, got {self.resolution}")
        check_num_frames(self.num_frames)
        if self.num_views < 1 or self.supersample < 1:
            raise Scene4DError(f"views and supersampling must be >= 1, got {self.num_views}, {self.supersample}")
        if self.trajectory is not None:
            get_move(self.trajectory)


def make_clip(config: SynthConfig, seed: int) -> Clip:
    """Render one seeded synthetic Clip of ``config.kind`` with depth, instance masks and meta."""
    rng = np.random.default_rng(seed)
    base_azimuth = float(rng.uniform(0, 2 * np.pi))
    dynamic = config.kind != "spatial"
    speed = float(rng.uniform(0.3, 1.5)) if config.speed is None else config.speed
    scene = random_scene(rng, dynamic, speed, wall_azimuth_rad=base_azimuth + np.pi, props=config.props)
    base_w2c, target_distance = base_camera_w2c(rng, base_azimuth)
    trajectory, magnitude = None, None
    if config.kind in ("spatial", "hybrid"):
        trajectory = config.trajectory or str(rng.choice(TRAJECTORY_NAMES))
        w2c, magnitude = safe_trajectory_w2c(rng, trajectory, config.num_frames, base_w2c, target_distance)
    elif config.kind == "temporal":
        w2c = base_w2c.expand(config.num_frames, 4, 4).clone()
    else:
        w2c = multiview_w2c(base_w2c, target_distance, config)
    num_times = config.num_frames
    times = np.linspace(0, 1, num_times, dtype=np.float32) if dynamic else np.zeros(num_times, np.float32)
    views = config.num_views if config.kind == "multiview-video" else 1
    times = np.tile(times, views)
    cameras = Cameras.from_fov(config.fov_x_deg, config.resolution, config.resolution, w2c)
    frames, depth, masks = render_frames(scene, cameras, times, config.supersample)
    meta = clip_meta(config, seed, scene, times, speed, trajectory, magnitude)
    meta.update(ground_truth_motion(scene, cameras, depth, masks, times, views, seed))
    return Clip(frames.numpy(), cameras, times, depth.numpy(), masks.numpy().astype(np.int32), meta)


def base_camera_w2c(rng: np.random.Generator, azimuth_rad: float) -> tuple[Tensor, float]:
    """A camera 5.5-7 units from the origin, 1.5-2.5 up, looking at the scene centre.

    Returns its world-to-camera [1, 4, 4] and its distance to the look-at point.
    """
    distance, height = rng.uniform(5.5, 7.0), rng.uniform(1.5, 2.5)
    eye = torch.tensor([distance * np.cos(azimuth_rad), height, distance * np.sin(azimuth_rad)], dtype=torch.float64)
    target = torch.tensor([rng.uniform(-0.3, 0.3), rng.uniform(0.3, 0.6), rng.uniform(-0.3, 0.3)], dtype=torch.float64)
    w2c = look_at_w2c(eye, target, torch.tensor(WORLD_UP, dtype=torch.float64))
    return w2c[None].float(), float((target - eye).norm())


def safe_trajectory_w2c(
    rng: np.random.Generator, name: str, num_frames: int, base_w2c: Tensor, target_distance: float
) -> tuple[Tensor, float]:
    """The named move from the base camera, its magnitude shrunk until the path stays clear.

    A path is clear when every camera is above the ground, outside the objects' disc and inside
    the sky dome. Returns world-to-camera [T, 4, 4] and the magnitude used.
    """
    magnitude = MOVES[name].default_magnitude * float(rng.uniform(0.6, 1.2))
    for _ in range(12):
        relative = named_trajectory_w2c(name, num_frames, magnitude, orbit_distance=target_distance)
        w2c = relative @ base_w2c
        centers = rigid_inverse(w2c)[:, :3, 3]
        horizontal = centers[:, [0, 2]].norm(dim=-1)
        if bool((centers[:, 1] > 0.3).all() and (horizontal > SCENE_RADIUS + 1.0).all() and (horizontal < 20).all()):
            return w2c, magnitude
        magnitude *= 0.7
    raise Scene4DError(f"synth: no clear path for trajectory {name!r} from this camera")


def multiview_w2c(base_w2c: Tensor, target_distance: float, config: SynthConfig) -> Tensor:
    """K cameras on an arc of ``view_arc_deg`` around the look-at point, each repeated T times."""
    half_arc = config.view_arc_deg / 2
    start = named_trajectory_w2c("orbit-right", 2, half_arc, target_distance)[-1] @ base_w2c[0]
    arc = named_trajectory_w2c("orbit-left", config.num_views, config.view_arc_deg, target_distance) @ start
    return arc.repeat_interleave(config.num_frames, dim=0)


def render_frames(scene: Scene, cameras: Cameras, times: np.ndarray, supersample: int) -> tuple[Tensor, Tensor, Tensor]:
    """Frames [T, H, W, 3], depth [T, H, W] and instance ids [T, H, W] for each (camera, time)."""
    outputs = [render_view(scene, cameras[index], float(time), supersample) for index, time in enumerate(times)]
    return (
        torch.stack([o.rgb for o in outputs]),
        torch.stack([o.depth for o in outputs]),
        torch.stack([o.instance for o in outputs]),
    )


def ground_truth_motion(
    scene: Scene, cameras: Cameras, depth: Tensor, masks: Tensor, times: np.ndarray, views: int, seed: int
) -> dict:
    """Motion strength over consecutive times of each view, and the true object speed."""
    num_times = len(times) // views
    pairs = [(v * num_times + k, v * num_times + k + 1) for v in range(views) for k in range(num_times - 1)]
    poses = {o.instance_id: torch.stack([o.obj2world(float(t)) for t in times]) for o in scene.dynamic_objects}
    generator = torch.Generator().manual_seed(seed)
    strength, per_object = motion_strength(cameras, depth, masks, poses, pairs, generator)
    speed = max((object_speed(o_poses[:num_times], times[:num_times]) for o_poses in poses.values()), default=0.0)
    return {
        "motion_strength": strength,
        "motion_strength_per_object": {str(k): v for k, v in per_object.items()},
        "object_speed": speed,
    }


def object_speed(poses: Tensor, times: np.ndarray) -> float:
    """Mean speed (scene units per clip) of an object's points, from its poses [T, 4, 4].

    Averages the displacement of the object's centre and of points one unit along each local
    axis, so rotation in place counts as motion too.
    """
    if len(times) < 2 or times[-1] == times[0]:
        return 0.0
    probes = torch.tensor([[0, 0, 0, 1], [1, 0, 0, 1], [0, 1, 0, 1], [0, 0, 1, 1.0]], dtype=torch.float64)
    points = (poses @ probes.T)[:, :3].transpose(1, 2)  # [T, 4, 3]
    path = (points[1:] - points[:-1]).norm(dim=-1).sum(dim=0).mean()
    return float(path / (times[-1] - times[0]))


def clip_meta(
    config: SynthConfig,
    seed: int,
    scene: Scene,
    times: np.ndarray,
    speed: float,
    trajectory: str | None,
    magnitude: float | None,
) -> dict:
    """JSON-serialisable description of how the clip was made and what moved."""
    meta = {
        "kind": config.kind,
        "source": "scene4d.synth",
        "seed": seed,
        "config": asdict(config),
        "trajectory": trajectory,
        "trajectory_magnitude": magnitude,
        "speed": speed if config.kind != "spatial" else 0.0,
        "world_up": list(WORLD_UP),
        "objects": [
            {
                "instance_id": o.instance_id,
                "shape": o.shape,
                "half_size": list(o.half_size),
                "motion": asdict(o.motion),
                "obj2world": [o.obj2world(float(t)).tolist() for t in times],
            }
            for o in scene.objects
            if o.instance_id > 0
        ],
    }
    if config.kind == "multiview-video":
        meta.update(num_views=config.num_views, num_times=config.num_frames)
    return meta
