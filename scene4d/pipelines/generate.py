"""Image(s) -> a camera- (and time-) controlled Clip with the GenXD-style model (GenXD sec. 4.1).

The first input image is the first frame and fixes the world frame (its ``w2c`` is the
identity); further images are extra condition views placed along the trajectory. Every
condition frame keeps its clean latent during sampling (masked latent conditioning) and is
returned as given, not re-encoded.
"""

from collections.abc import Callable
from pathlib import Path

import numpy as np
import torch
from torch import nn

from scene4d.diffusion import sample
from scene4d.directors.lora import restoring_director, use_director
from scene4d.directors.schedule import DirectorSchedule, schedule_hook, single, switch_once
from scene4d.errors import Scene4DError
from scene4d.geometry import Cameras, keyframed_w2c, named_trajectory_w2c, plucker_rays
from scene4d.geometry.trajectories import check_num_frames
from scene4d.io import Clip, load_keyframes
from scene4d.io.clip import resize_images, square_box
from scene4d.models.bundle import ModelBundle, ModelInfo
from scene4d.models.vae import encode_frames, from_model_images

STATIC = "static"  # a trajectory name for a fixed camera (object motion only)
TEMPORAL = "temporal"  # the name of the T-Director shipped with a model
SEGMENT_FRAMES = 16  # the longest video the bundled model was trained on; longer 3D paths are chained
CHAIN_OVERLAP = 2  # frames each chained segment takes from the previous one as conditions


def square_crop(image: np.ndarray) -> np.ndarray:
    """The centred square of an image [H, W, 3] at its own resolution."""
    left, top, side = square_box(image.shape[1], image.shape[0])
    return image[top : top + side, left : left + side]


def square_image(image: np.ndarray, size: int) -> tuple[np.ndarray, str | None]:
    """Centre-crop to a square and resize to ``size``; returns the image and a note when changed."""
    height, width = image.shape[:2]
    if (height, width) == (size, size):
        return image, None
    square = resize_images(square_crop(image)[None], size)[0]
    cropped = " centre-cropped and" if height != width else ""
    return square, f"input {width}x{height}{cropped} resized to {size}x{size} (the model's frame size)"


def trajectory_w2c(trajectory: str, num_frames: int, magnitude: float | None, info: ModelInfo) -> torch.Tensor:
    """World-to-camera [T, 4, 4] from a trajectory name, ``static``, or a keyframe ``.json`` file."""
    check_num_frames(num_frames)
    if trajectory == STATIC:
        return torch.eye(4).expand(num_frames, 4, 4).clone()
    if trajectory.endswith(".json"):
        return keyframed_w2c(load_keyframes(Path(trajectory)), num_frames, 1.0 if magnitude is None else magnitude)
    return named_trajectory_w2c(trajectory, num_frames, magnitude, orbit_distance=info.orbit_distance)


def spread_positions(num_images: int, num_frames: int) -> list[int]:
    """Frames of ``num_images`` condition views spread evenly from the first to the last frame."""
    if num_images >= num_frames:
        raise Scene4DError(f"{num_images} condition images leave no frame to generate in {num_frames} frames")
    if num_images == 1:
        return [0]
    return [round(index * (num_frames - 1) / (num_images - 1)) for index in range(num_images)]


def snap_to_trajectory(trajectory: Cameras, views: Cameras) -> tuple[Cameras, list[int]]:
    """Put condition cameras (the first is the world frame) into the trajectory frames nearest to them.

    Returns the trajectory with those frames replaced by the given cameras (poses and
    intrinsics), and their positions.
    """
    views = views.relative_to(0)
    distances = torch.cdist(views.centers.float(), trajectory.centers.float())
    positions = [0]
    for row in distances[1:]:
        order = [int(index) for index in row.argsort() if int(index) not in positions]
        positions.append(order[0])
    return place_views(trajectory, views, positions), positions


def place_views(trajectory: Cameras, views: Cameras, positions: list[int]) -> Cameras:
    """The trajectory with frames ``positions`` replaced by ``views`` (poses relative to the first view)."""
    w2c, K = trajectory.w2c.clone(), trajectory.K.clone()  # noqa: N806 -- K is the standard name
    w2c[positions] = views.relative_to(0).w2c.to(w2c)
    K[positions] = views.K.to(K)
    return Cameras(K, w2c, trajectory.width, trajectory.height)


def check_motion(motion: float) -> None:
    if not 0.0 <= motion <= 1.0:
        raise Scene4DError(f"--motion must lie in [0, 1], got {motion}")


@torch.no_grad()
def generate_clip(
    bundle: ModelBundle,
    images: np.ndarray,  # [n, r, r, 3] condition images in [0, 1], already at the model's size
    cameras: Cameras,  # [T] cameras of every frame, world = the first condition view
    positions: list[int],  # frame index of each condition image (the first is 0)
    motion: float,  # motion strength in [0, 1]; 0 generates a static (3D) scene
    steps: int,
    seed: int,
    guidance: float = 1.0,
    on_step: Callable[[int, int], None] | None = None,
    schedule: DirectorSchedule | None = None,
) -> Clip:
    """Sample the frames at ``cameras`` (times 0..1 when ``motion > 0``, else all 0).

    ``schedule`` names the director active at each step (loaded beforehand with
    ``directors.lora.use_director``); None runs the base model throughout.
    """
    check_motion(motion)
    if steps < 1:
        raise Scene4DError(f"--steps must be >= 1, got {steps}")
    num_frames = len(cameras)
    vae, denoiser = bundle.vae, bundle.denoiser
    condition_latents = encode_frames(vae, images)
    clean = torch.zeros(1, num_frames, *condition_latents.shape[1:])
    clean[0, positions] = condition_latents
    cond_mask = torch.zeros(1, num_frames)
    cond_mask[0, positions] = 1.0
    times = torch.linspace(0, 1, num_frames) if motion > 0 else torch.zeros(num_frames)
    with restoring_director(denoiser):
        latents = sample(
            denoiser,
            clean,
            cond_mask,
            steps,
            torch.Generator().manual_seed(seed),
            guidance,
            on_step,
            hooks=[schedule_hook(denoiser, schedule or single(None))],
            plucker=plucker_rays(cameras, *clean.shape[-2:]).permute(0, 3, 1, 2)[None],
            times=times[None],
            motion=torch.tensor([motion]),
            is_4d=torch.tensor([motion > 0]),
        )
    frames = from_model_images(vae.decode(latents[0]))
    frames[positions] = images
    meta = {"kind": "generated", "motion": motion, "steps": steps, "seed": seed, "guidance": guidance}
    meta |= {"directors": [list(phase) for phase in (schedule or single(None)).phases]}
    meta |= {"condition_frames": positions, "model": bundle.info.preset}
    return Clip(frames, cameras, times.numpy(), meta=meta)


def plan_generation(
    bundle: ModelBundle,
    images: list[np.ndarray],  # [H, W, 3] in [0, 1], any size
    trajectory: str,
    num_frames: int,
    magnitude: float | None,
    motion: float,
    views: Cameras | None,  # cameras of the input images, or None to spread them along the path
    notify: Callable[[str], None] = print,
) -> tuple[np.ndarray, Cameras, list[int]]:
    """Check a request and prepare it: images at the model's size, every frame's camera, condition positions."""
    check_motion(motion)
    resolution = bundle.info.resolution
    views = views_at_size(views, len(images), resolution)
    w2c = trajectory_w2c(trajectory, num_frames, magnitude, bundle.info)
    path = Cameras.from_fov(bundle.info.fov_x_deg, resolution, resolution, w2c)
    positions = spread_positions(len(images), num_frames)
    if views is not None:
        path, positions = snap_to_trajectory(path, views)
    return squared_images(images, resolution, notify), path, positions


def views_at_size(views: Cameras | None, num_images: int, resolution: int) -> Cameras | None:
    """The cameras of the input images, checked against their count, centre-cropped and resized like them."""
    if views is None:
        return None
    if len(views) != num_images:
        raise Scene4DError(f"--cameras holds {len(views)} cameras for {num_images} images")
    left, top, side = square_box(views.width, views.height)
    return views.cropped(left, top, side, side).resized(resolution, resolution)


def squared_images(images: list[np.ndarray], resolution: int, notify: Callable[[str], None]) -> np.ndarray:
    """[n, r, r, 3]: every image centre-cropped and resized to the model's size, each change reported."""
    squared = []
    for index, image in enumerate(images):
        fitted, note = square_image(image, resolution)
        if note is not None:
            notify(f"image {index}: {note}")
        squared.append(fitted)
    return np.stack(squared)


def pick_director(backbone: nn.Module, shipped: dict[str, Path], request: str, default: str | None) -> str | None:
    """The adapter name of a director request: ``auto`` (``default`` when ``shipped`` has it, else the
    base model), ``none`` (the base model), a shipped director's name, or a ``.safetensors`` file."""
    if request == "none" or (request == "auto" and default not in shipped):
        return None
    return use_director(backbone, default if request == "auto" else request, shipped)[0]


def plan_directors(
    backbone: nn.Module, shipped: dict[str, Path], spatial: str, temporal: str, trajectory: str, motion: float,
    switch_step: int,
) -> DirectorSchedule:  # fmt: skip
    """The step schedule of a video along ``trajectory``: its S-Director; with object motion, Switch-Once
    to the T-Director after ``switch_step`` steps (a fixed camera: the T-Director alone)."""
    spatial_name = pick_director(backbone, shipped, spatial, trajectory)
    if motion <= 0:
        return single(spatial_name)
    temporal_name = pick_director(backbone, shipped, temporal, TEMPORAL)
    if trajectory == STATIC:
        return single(temporal_name)
    return switch_once(spatial_name, temporal_name, switch_step)


def segment_starts(num_frames: int, segment: int = SEGMENT_FRAMES, overlap: int = CHAIN_OVERLAP) -> list[int]:
    """First frames of chained segments of ``segment`` frames, each overlapping the previous by ``overlap``."""
    starts = [0]
    while starts[-1] + segment < num_frames:
        starts.append(starts[-1] + segment - overlap)
    return starts


@torch.no_grad()
def generate_chained(
    bundle: ModelBundle,
    images: np.ndarray,  # [n, r, r, 3] condition images at the model's size
    cameras: Cameras,  # [T] cameras of every frame, any T
    positions: list[int],  # frame index of each condition image (the first is 0)
    steps: int,
    seed: int,
    guidance: float = 1.0,
    on_step: Callable[[int, int], None] | None = None,
    schedule: DirectorSchedule | None = None,
) -> Clip:
    """A static (3D) video of any length: segments of ``SEGMENT_FRAMES`` frames, each conditioned on the
    last ``CHAIN_OVERLAP`` frames already made (and the given images inside it), cameras relative
    to its first frame."""
    num_frames = len(cameras)
    starts = segment_starts(num_frames)
    frames = np.zeros((num_frames, *images.shape[1:]), dtype=np.float32)
    frames[positions] = images
    known = set(positions)
    for index, start in enumerate(starts):
        end = min(start + SEGMENT_FRAMES, num_frames)
        inside = sorted(position - start for position in known if start <= position < end)

        def report(step: int, total: int, done: int = index) -> None:
            if on_step is not None:
                on_step(done * total + step, len(starts) * total)

        segment = generate_clip(
            bundle, frames[[start + p for p in inside]], cameras[list(range(start, end))].relative_to(0), inside,
            0.0, steps, seed + index, guidance, report, schedule,
        )  # fmt: skip
        frames[start:end] = segment.frames
        known |= set(range(start, end))
    meta = segment.meta | {"condition_frames": positions, "segments": starts, "seed": seed}
    return Clip(frames, cameras, np.zeros(num_frames), meta=meta)
