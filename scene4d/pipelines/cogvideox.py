"""DimensionX on CogVideoX: an image -> a video steered by LoRA directors, with a per-step schedule.

diffusers runs the denoising loop; its ``callback_on_step_end`` switches the active director
after every step, so Switch-Once (S-Director first, then T-Director) needs no loop of our own.
CogVideoX takes no cameras: a 3D clip's cameras come from SfM on the generated frames
(``curate.sfm``), and fall back to the S-Director's own move when SfM cannot register them.
Frame counts other than CogVideoX's 49 rely on its 3D RoPE extrapolating (DimensionX reaches 145), with
the learned position table stretched (``models.cogvideox.positions_for``).
"""

from collections.abc import Callable

import numpy as np
import torch

from scene4d.curate.sfm import SfMResult, estimate_cameras
from scene4d.directors.lora import activate, restoring_director
from scene4d.directors.schedule import DirectorSchedule
from scene4d.errors import Scene4DError
from scene4d.geometry import Cameras, named_trajectory_w2c
from scene4d.io import Clip
from scene4d.io.media import to_uint8
from scene4d.models.cogvideox import positions_for

COGVIDEOX_WIDTH, COGVIDEOX_HEIGHT = 720, 480  # the frame size CogVideoX-5b-I2V was trained at
ASSUMED_FOV_X_DEG = 55.0  # CogVideoX's frames carry no intrinsics; SfM fixes this field of view


def fit_image(image: np.ndarray, width: int = COGVIDEOX_WIDTH, height: int = COGVIDEOX_HEIGHT) -> np.ndarray:
    """The centred crop of ``image`` [H, W, 3] with the aspect ``width : height``, resized to that size."""
    import cv2

    rows, cols = image.shape[:2]
    scale = min(cols / width, rows / height)
    crop_w, crop_h = round(width * scale), round(height * scale)
    left, top = (cols - crop_w) // 2, (rows - crop_h) // 2
    cropped = np.ascontiguousarray(image[top : top + crop_h, left : left + crop_w])
    interpolation = cv2.INTER_AREA if crop_w > width else cv2.INTER_LINEAR
    return cv2.resize(cropped, (width, height), interpolation=interpolation)


def check_frame_count(num_frames: int) -> None:
    """A CogVideoX video has 8k + 1 frames: its VAE compresses time by 4 after the first frame, and
    diffusers' decoder gives 4k + 1 frames back only for an odd number of latent frames (4k for an
    even one)."""
    if num_frames < 9 or (num_frames - 1) % 8:
        raise Scene4DError(f"CogVideoX makes 8k + 1 frames (9, 17, ..., 49 by default), got {num_frames}")


@torch.no_grad()
def generate_cogvideox_frames(
    pipeline,
    image: np.ndarray,  # [H, W, 3] in [0, 1], H and W multiples of 16
    num_frames: int,
    steps: int,
    guidance: float,
    seed: int,
    schedule: DirectorSchedule,
    prompt: str | None = None,
    prompt_embeds: torch.Tensor | None = None,  # [1, L, D] instead of a prompt (no text encoder needed)
    on_step: Callable[[int, int], None] | None = None,
) -> np.ndarray:
    """Frames [T, H, W, 3] in [0, 1]; ``schedule`` names the director of every denoising step."""
    from PIL import Image

    check_frame_count(num_frames)
    height, width = image.shape[:2]

    def switch(pipe, step: int, timestep, tensors: dict) -> dict:
        activate(pipe.transformer, schedule.director_at(step + 1))
        if on_step is not None:
            on_step(step + 1, steps)
        return tensors

    with restoring_director(pipeline.transformer), positions_for(pipeline.transformer, num_frames):
        activate(pipeline.transformer, schedule.director_at(0))
        output = pipeline(
            image=Image.fromarray(to_uint8(image)),
            prompt=prompt,
            prompt_embeds=prompt_embeds,
            height=height,
            width=width,
            num_frames=num_frames,
            num_inference_steps=steps,
            guidance_scale=guidance,
            use_dynamic_cfg=guidance > 1.0,
            generator=torch.Generator().manual_seed(seed),
            output_type="np",
            callback_on_step_end=switch,
        )
    return np.asarray(output.frames[0], dtype=np.float32)


def cameras_of_frames(frames: np.ndarray, fov_x_deg: float, trajectory: str | None) -> tuple[SfMResult, str]:
    """Cameras (and sparse points) of generated frames by SfM (``curate.sfm``), in the first frame's
    camera frame; else the S-Director's move, with no points. Also says which."""
    num_frames, height, width = frames.shape[:3]
    try:
        result = estimate_cameras(frames, None, Cameras.from_fov(fov_x_deg, width, height).K[0])
        if len(result.cameras) == num_frames:
            return result.relative_to_first(), "sfm"
        reason = f"SfM registered {len(result.cameras)} of {num_frames} frames"
    except Scene4DError as error:
        reason = str(error)
    if trajectory is None:
        raise Scene4DError(f"{reason}, and no S-Director names the frames' camera move")
    cameras = Cameras.from_fov(fov_x_deg, width, height, named_trajectory_w2c(trajectory, num_frames))
    return SfMResult.cameras_only(cameras), f"trajectory {trajectory} ({reason})"


def cogvideox_clip(frames: np.ndarray, fov_x_deg: float, trajectory: str | None, meta: dict, moving: bool) -> Clip:
    """A Clip of CogVideoX frames with cameras (and SfM points) from SfM, or the S-Director's move; times
    span [0, 1] when objects move, else 0."""
    sfm, source = cameras_of_frames(frames, fov_x_deg, trajectory)
    times = np.linspace(0, 1, len(frames)) if moving else np.zeros(len(frames))
    return Clip(frames, sfm.cameras, times, meta=meta | {"cameras_from": source}, points=sfm.points,
                point_colors=sfm.colors)  # fmt: skip
