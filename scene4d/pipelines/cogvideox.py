"""DimensionX on CogVideoX: an image -> a video steered by LoRA directors, with a per-step schedule.

diffusers runs the denoising loop; its ``callback_on_step_end`` switches the active director
after every step, so Switch-Once (S-Director first, then T-Director) needs no loop of our own. The
same callback applies latent hooks (DimensionX eq. 5's blending), and a schedule cut to its last
steps with a start noised to that level gives SDEdit (eq. 4 and 6), which the image-to-video
pipeline has no ``strength`` for.
CogVideoX takes no cameras: a 3D clip's cameras come from SfM on the generated frames
(``curate.sfm``), and fall back to the S-Director's own move when SfM cannot register them.
Frame counts other than CogVideoX's 49 rely on its 3D RoPE extrapolating (DimensionX reaches 145), with
the learned position table stretched (``models.cogvideox.positions_for``).
"""

from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager

import numpy as np
import torch
from torch import Tensor

from scene4d.curate.sfm import SfMResult, estimate_cameras
from scene4d.diffusion.flow import StepHook
from scene4d.directors.lora import activate, restoring_director
from scene4d.directors.schedule import DirectorSchedule
from scene4d.errors import Scene4DError
from scene4d.geometry import Cameras, named_trajectory_w2c
from scene4d.io import Clip
from scene4d.io.media import to_uint8
from scene4d.models.cogvideox import positions_for, video_latents

ASSUMED_FOV_X_DEG = 55.0  # CogVideoX's frames carry no intrinsics; SfM fixes this field of view


def frame_size(pipeline) -> tuple[int, int]:
    """(width, height) of the frames the pipeline's transformer was trained on (720 x 480 for CogVideoX-5b-I2V)."""
    config, scale = pipeline.transformer.config, pipeline.vae_scale_factor_spatial
    return config.sample_width * scale, config.sample_height * scale


def fit_image(image: np.ndarray, width: int, height: int) -> np.ndarray:
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


@contextmanager
def skipping_steps(scheduler, first_step: int) -> Iterator[None]:
    """Within the block, ``scheduler.set_timesteps`` keeps only the timesteps from ``first_step`` on, so a
    diffusers pipeline denoises the last steps of its schedule (SDEdit) with the step sizes of the whole."""
    if first_step == 0:
        yield
        return
    set_all = scheduler.set_timesteps

    def set_last(*args, **kwargs) -> None:
        set_all(*args, **kwargs)
        scheduler.timesteps = scheduler.timesteps[first_step:]

    scheduler.set_timesteps = set_last
    try:
        yield
    finally:
        del scheduler.set_timesteps  # the class's method again


def noised_to_step(scheduler, clean: Tensor, noise: Tensor, steps: int, first_step: int) -> Tensor:
    """DimensionX eq. 4: ``sqrt(a_t) z_0 + sqrt(1 - a_t) eps`` [B, F, C, h, w] at the timestep t that step
    ``first_step`` of a ``steps`` schedule starts from (the scheduler's DDPM forward process)."""
    scheduler.set_timesteps(steps)
    return scheduler.add_noise(clean, noise.to(clean), scheduler.timesteps[first_step])


@contextmanager
def last_frame_condition(pipeline, latent: Tensor | None) -> Iterator[None]:
    """Within the block, the pipeline's image condition also holds ``latent`` [1, 1, C, h, w] (the last
    image, encoded alone) as its last latent frame: the first-and-last-frame conditioning of video
    interpolation models fine-tuned from CogVideoX-5b-I2V (DimensionX sec. 3.3, ``z_2 = E(I^2)``)."""
    if latent is None:
        yield
        return
    prepare = pipeline.prepare_latents

    def prepare_both_ends(*args, **kwargs) -> tuple[Tensor, Tensor]:
        latents, condition = prepare(*args, **kwargs)  # [B, F, C, h, w]: the first image's latent, then zeros
        condition = condition.clone()
        condition[:, -1:] = latent.to(condition)
        return latents, condition

    pipeline.prepare_latents = prepare_both_ends
    try:
        yield
    finally:
        del pipeline.prepare_latents  # the class's method again


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
    prompt_embeds: Tensor | None = None,  # [1, L, D] instead of a prompt (no text encoder needed)
    negative_prompt_embeds: Tensor | None = None,
    on_step: Callable[[int, int], None] | None = None,
    *,
    start: Tensor | None = None,  # [1, F, C, h, w] latents already noised to the level of ``first_step``
    first_step: int = 0,
    hooks: Sequence[StepHook] = (),
    last_image: np.ndarray | None = None,  # [H, W, 3]: the last frame too (an interpolation model)
) -> np.ndarray:
    """Frames [T, H, W, 3] in [0, 1]; ``schedule`` names the director of every denoising step.

    ``start`` replaces the initial noise; with ``first_step`` > 0 only the steps from there on run, from
    ``start`` (SDEdit). Before every step but the first, each of ``hooks`` maps ``(step, timestep,
    latents)`` to new latents. Step indices of the schedule, the hooks and ``on_step(i, n)`` count the
    ``n`` steps run. ``last_image`` conditions the last frame as well (``last_frame_condition``),
    encoded as the pipeline encodes the first: 8-bit.
    """
    from PIL import Image

    check_frame_count(num_frames)
    if not 0 <= first_step < steps:
        raise Scene4DError(f"the first step run must lie in [0, {steps}), got {first_step}")
    if start is None and first_step > 0:
        raise Scene4DError("a schedule cut to its last steps needs start latents noised to that level")
    height, width = image.shape[:2]
    runs = steps - first_step
    last = None
    if last_image is not None:
        eight_bit = to_uint8(last_image)[None, None].astype(np.float32) / 255
        last = video_latents(pipeline, eight_bit, torch.Generator().manual_seed(seed), condition=True)

    def between_steps(pipe, index: int, timestep, tensors: dict) -> dict:
        step = index + 1
        activate(pipe.transformer, schedule.director_at(step))
        if on_step is not None:
            on_step(step, runs)
        if step < runs:
            for hook in hooks:
                tensors["latents"] = hook(step, pipe.scheduler.timesteps[step], tensors["latents"])
        return tensors

    transformer = pipeline.transformer
    with (
        restoring_director(transformer),
        positions_for(transformer, num_frames),
        skipping_steps(pipeline.scheduler, first_step),
        last_frame_condition(pipeline, last),
    ):
        activate(transformer, schedule.director_at(0))
        output = pipeline(
            image=Image.fromarray(to_uint8(image)),
            prompt=prompt,
            prompt_embeds=prompt_embeds,
            negative_prompt_embeds=negative_prompt_embeds,
            height=height,
            width=width,
            num_frames=num_frames,
            num_inference_steps=steps,
            guidance_scale=guidance,
            use_dynamic_cfg=guidance > 1.0,
            generator=torch.Generator().manual_seed(seed),
            latents=start,
            output_type="np",
            callback_on_step_end=between_steps,
        )
    return np.asarray(output.frames[0], dtype=np.float32)


def cameras_of_frames(
    frames: np.ndarray, fov_x_deg: float, trajectory: str | None, magnitude: float | None = None
) -> tuple[SfMResult, str]:
    """Cameras (and sparse points) of generated frames by SfM (``curate.sfm``), in the first frame's
    camera frame; else the named move (the S-Director's, at ``magnitude`` or its default), with no
    points. Also says which."""
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
    cameras = Cameras.from_fov(fov_x_deg, width, height, named_trajectory_w2c(trajectory, num_frames, magnitude))
    return SfMResult.cameras_only(cameras), f"trajectory {trajectory} ({reason})"


def cogvideox_clip(
    frames: np.ndarray, fov_x_deg: float, trajectory: str | None, meta: dict, moving: bool,
    magnitude: float | None = None,
) -> Clip:  # fmt: skip
    """A Clip of CogVideoX frames with cameras (and SfM points) from SfM, or the named move; times span
    [0, 1] when objects move, else 0."""
    sfm, source = cameras_of_frames(frames, fov_x_deg, trajectory, magnitude)
    times = np.linspace(0, 1, len(frames)) if moving else np.zeros(len(frames))
    return Clip(frames, sfm.cameras, times, meta=meta | {"cameras_from": source}, points=sfm.points,
                point_colors=sfm.colors)  # fmt: skip
