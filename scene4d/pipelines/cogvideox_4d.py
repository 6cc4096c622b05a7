"""One image -> synchronised multi-view videos of a moving scene on CogVideoX-5b-I2V (DimensionX sec. 3.4).

The stages of ``pipelines.four_d``, with diffusers' image-to-video pipeline in place of our sampler
(``pipelines.cogvideox.generate_cogvideox_frames``) and LoRA directors:

1. The T-Director makes a temporal video of N frames from the image (the camera stays).
2. The reference frame is the one whose moving region is largest (``four_d.reference_index``).
3. The S-Director makes the reference spatial video v_ref of K frames from it. Its frames' cameras,
   by SfM (else the S-Director's move), are the K views' cameras.
4. Every time's frame becomes a K-frame spatial video with the S-Director, all started from the
   same noisy latent ``z_ref`` of v_ref (eq. 4: the DDPM forward process at the level of the first
   step run) and blended with ``z_ref`` noised to the current level before each of the first steps
   (eq. 5, lambda).
5. Each view's N frames over time are refined by SDEdit with the T-Director (eq. 6) at each
   refinement strength, every view with the same noise.

CogVideoX conditions on a first frame only: time k's spatial video starts from time k's frame
(view 0 is the input camera), and a view's refinement from its frame at the first time. K and N
are CogVideoX frame counts (8k + 1). ``FourDConfig.motion`` and ``magnitude`` have no role here:
CogVideoX takes no motion strength, and the directors set the move.
"""

from collections.abc import Callable
from functools import partial

import numpy as np
import torch
from torch import Tensor

from scene4d.diffusion.flow import first_step
from scene4d.directors.schedule import single
from scene4d.geometry import Cameras
from scene4d.io import Clip
from scene4d.io.media import to_uint8
from scene4d.models.cogvideox import video_latents
from scene4d.pipelines.cogvideox import ASSUMED_FOV_X_DEG, cameras_of_frames, check_frame_count, noised_to_step
from scene4d.pipelines.cogvideox import generate_cogvideox_frames as generate_frames
from scene4d.pipelines.four_d import FourDConfig, FourDResult, Progress, blend_hook, reference_index


@torch.no_grad()
def generate_cogvideox_4d(
    pipeline,  # diffusers CogVideoXImageToVideoPipeline with the directors loaded
    image: np.ndarray,  # [H, W, 3] in [0, 1] at the pipeline's frame size
    config: FourDConfig,
    guidance: float,
    text: dict,  # the prompt keywords of ``generate_cogvideox_frames`` (``encoded_prompt``)
    camera_move: str | None,  # the S-Director's move: the views' cameras when SfM cannot register v_ref
    on_progress: Progress | None = None,
) -> FourDResult:
    """Multi-view videos (K views x N times) of a moving scene from one image — DimensionX's 4D pipeline."""
    check_frame_count(config.num_views)
    check_frame_count(config.num_times)
    report = on_progress or (lambda stage, step, total: None)
    run = partial(generate_frames, pipeline, steps=config.steps, guidance=guidance, **text)

    def stage(name: str) -> Callable[[int, int], None]:
        return lambda step, total: report(name, step, total)

    temporal = run(image, config.num_times, seed=config.seed, schedule=single(config.temporal_director),
                   on_step=stage("temporal video"))  # fmt: skip
    anchor = reference_index(temporal)
    reference = run(temporal[anchor], config.num_views, seed=config.seed + 1,
                    schedule=single(config.spatial_director), on_step=stage("reference video"))  # fmt: skip
    videos = spatial_videos(pipeline, run, temporal, reference, config, stage)
    sfm, source = cameras_of_frames(reference, ASSUMED_FOV_X_DEG, camera_move)
    times = np.linspace(0, 1, config.num_times)
    meta = {"backbone": "cogvideox", "seed": config.seed, "cameras_from": source}
    height, width = image.shape[:2]
    still = Cameras.from_fov(ASSUMED_FOV_X_DEG, width, height, torch.eye(4).expand(config.num_times, 4, 4))
    views = []
    for view in range(config.num_views):
        frames = videos[:, view].astype(np.float32) / 255
        if view > 0:
            for index, strength in enumerate(config.refine_strengths):
                seed = config.seed + 100 + index  # the same noise for every view (``four_d``)
                frames = refine_view(pipeline, run, frames, strength, config, seed, stage(f"refine view {view}"))
        view_meta = meta | {"kind": "generated-4d", "view": view, "reference_index": anchor}
        views.append(Clip(frames, sfm.cameras[[view] * config.num_times], times, meta=view_meta))
    return FourDResult(
        Clip(temporal, still, times, meta=meta | {"kind": "generated"}),
        Clip(reference, sfm.cameras, np.full(config.num_views, times[anchor]), meta=meta | {"kind": "generated"}),
        views,
        anchor,
    )


def spatial_videos(
    pipeline, run: Callable[..., np.ndarray], temporal: np.ndarray, reference: np.ndarray, config: FourDConfig,
    stage: Callable[[str], Callable[[int, int], None]],
) -> np.ndarray:  # fmt: skip
    """[N, K, H, W, 3] uint8 (a quarter of the memory of N K frames of float): K views of every time from
    the S-Director, sharing v_ref's noisy latent (eq. 4) and blended with it (eq. 5); view 0 is the time's
    own frame."""
    sharing = {}
    if config.share_reference:
        strength, seed = config.reference_strength, config.seed + 2
        clean, noise, first, start = noised_video(pipeline, reference, strength, config.steps, seed)
        sharing = {
            "start": start, "first_step": first,
            "hooks": [blend_hook(clean, noise, config.blend_lambda, config.blend_steps, pipeline.scheduler.add_noise)],
        }  # fmt: skip
    videos = []
    for time, frame in enumerate(temporal):
        video = run(frame, config.num_views, seed=config.seed + 2 + time, schedule=single(config.spatial_director),
                    on_step=stage(f"spatial video {time}"), **sharing)  # fmt: skip
        video[0] = frame
        videos.append(to_uint8(video))
    return np.stack(videos)


def refine_view(
    pipeline, run: Callable[..., np.ndarray], frames: np.ndarray, strength: float, config: FourDConfig, seed: int,
    on_step: Callable[[int, int], None],
) -> np.ndarray:  # fmt: skip
    """Eq. 6: SDEdit of one view's video [N, H, W, 3] with the T-Director, from its first frame."""
    _, _, first, start = noised_video(pipeline, frames, strength, config.steps, seed)
    return run(frames[0], len(frames), seed=seed, schedule=single(config.temporal_director), on_step=on_step,
               start=start, first_step=first)  # fmt: skip


def noised_video(
    pipeline, frames: np.ndarray, strength: float, steps: int, seed: int
) -> tuple[Tensor, Tensor, int, Tensor]:
    """A video [T, H, W, 3] as an SDEdit start (eq. 4 and 6): its latents z_0 [1, F, C, h, w], the noise
    eps (drawn after the encoder's sample, from one generator seeded ``seed``), the first step run at
    ``strength`` of a ``steps`` schedule, and z_0 noised to that step."""
    generator = torch.Generator().manual_seed(seed)
    clean = video_latents(pipeline, frames[None], generator)
    noise = torch.randn(clean.shape, generator=generator).to(clean)
    first = first_step(steps, strength)
    return clean, noise, first, noised_to_step(pipeline.scheduler, clean, noise, steps, first)
