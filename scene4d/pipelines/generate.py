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

from scene4d.diffusion import sample
from scene4d.errors import Scene4DError
from scene4d.geometry import Cameras, keyframed_w2c, named_trajectory_w2c, plucker_rays
from scene4d.geometry.trajectories import check_num_frames
from scene4d.io import Clip, load_keyframes
from scene4d.io.clip import resize_images, square_box
from scene4d.models.bundle import ModelBundle, ModelInfo
from scene4d.models.vae import from_model_images, to_model_images

STATIC = "static"  # a trajectory name for a fixed camera (object motion only)


def square_image(image: np.ndarray, size: int) -> tuple[np.ndarray, str | None]:
    """Centre-crop to a square and resize to ``size``; returns the image and a note when changed."""
    height, width = image.shape[:2]
    if (height, width) == (size, size):
        return image, None
    left, top, side = square_box(width, height)
    square = resize_images(image[None, top : top + side, left : left + side], size)[0]
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
    w2c, K = trajectory.w2c.clone(), trajectory.K.clone()  # noqa: N806 -- K is the standard name
    w2c[positions] = views.w2c.to(w2c)
    K[positions] = views.K.to(K)
    return Cameras(K, w2c, trajectory.width, trajectory.height), positions


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
) -> Clip:
    """Sample the frames at ``cameras`` (times 0..1 when ``motion > 0``, else all 0)."""
    check_motion(motion)
    if steps < 1:
        raise Scene4DError(f"--steps must be >= 1, got {steps}")
    num_frames = len(cameras)
    vae, denoiser = bundle.vae, bundle.denoiser
    condition_latents = vae.encode(to_model_images(images))
    clean = torch.zeros(1, num_frames, *condition_latents.shape[1:])
    clean[0, positions] = condition_latents
    cond_mask = torch.zeros(1, num_frames)
    cond_mask[0, positions] = 1.0
    times = torch.linspace(0, 1, num_frames) if motion > 0 else torch.zeros(num_frames)
    latents = sample(
        denoiser,
        clean,
        cond_mask,
        steps,
        torch.Generator().manual_seed(seed),
        guidance,
        on_step,
        plucker=plucker_rays(cameras, *clean.shape[-2:]).permute(0, 3, 1, 2)[None],
        times=times[None],
        motion=torch.tensor([motion]),
        is_4d=torch.tensor([motion > 0]),
    )
    frames = from_model_images(vae.decode(latents[0]))
    frames[positions] = images
    meta = {"kind": "generated", "motion": motion, "steps": steps, "seed": seed, "guidance": guidance}
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
    if views is not None and len(views) != len(images):
        raise Scene4DError(f"--cameras holds {len(views)} cameras for {len(images)} images")
    resolution = bundle.info.resolution
    w2c = trajectory_w2c(trajectory, num_frames, magnitude, bundle.info)
    path = Cameras.from_fov(bundle.info.fov_x_deg, resolution, resolution, w2c)
    positions = spread_positions(len(images), num_frames)
    if views is not None:
        left, top, side = square_box(views.width, views.height)
        path, positions = snap_to_trajectory(path, views.cropped(left, top, side, side).resized(resolution, resolution))
    squared = []
    for index, image in enumerate(images):
        fitted, note = square_image(image, resolution)
        if note is not None:
            notify(f"image {index}: {note}")
        squared.append(fitted)
    return np.stack(squared), path, positions
