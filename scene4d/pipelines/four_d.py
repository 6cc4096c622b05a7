"""One image -> synchronised multi-view videos of a moving scene (DimensionX sec. 3.4, identity-preserving denoising).

1. The T-Director makes a temporal video (fixed camera, things move) of N times.
2. A reference frame is picked: the one whose moving region is largest (flow magnitude summed
   over the pixels that move).
3. The S-Director makes the reference spatial video v_ref of K views from it.
4. Every time's frame becomes a K-view spatial video, all N denoised together from the same
   noisy reference latent ``z_ref`` (eq. 4) and, after each of the first steps, blended with the
   reference's latent at the current noise level (eq. 5, lambda).
5. The frames of each view j over time form video v_j, refined by SDEdit with the T-Director
   (eq. 6) at ``t0`` and again at a middle noise level. Every view is noised with the same
   epsilon (the paper does not say): with its own per view, the refinement moved the views apart
   (6% fewer matched pixels between neighbouring views), with one it keeps or raises their
   agreement (BENCHMARKS.md).

With flow matching, eq. 4's ``sqrt(alpha_t) z_0 + sqrt(1 - alpha_t) eps`` is
``(1 - sigma) z_0 + sigma eps``: ``reference_strength`` is the sigma the shared start sits at.
Each stage's director is optional; without one the base model runs that stage.
"""

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import torch
from torch import Tensor

from scene4d.curate.flow import dense_flow
from scene4d.diffusion.flow import StepHook, first_step, noisy_latents, sample
from scene4d.directors.lora import restoring_director
from scene4d.directors.schedule import schedule_hook, single
from scene4d.errors import Scene4DError
from scene4d.geometry import Cameras, plucker_rays
from scene4d.io import Clip
from scene4d.models.bundle import ModelBundle
from scene4d.models.vae import encode_frames, from_model_images
from scene4d.pipelines.generate import STATIC, generate_clip, trajectory_w2c

Progress = Callable[[str, int, int], None]  # (stage, step, steps of the stage)


@dataclass(frozen=True)
class FourDConfig:
    trajectory: str = "orbit-left"  # the camera path of the K views (a named move or a keyframe .json)
    magnitude: float | None = None
    num_views: int = 8  # K
    num_times: int = 8  # N
    motion: float = 1.0  # motion strength of the temporal video
    steps: int = 25
    share_reference: bool = True  # eq. 4-5; False: every time's views start from their own noise
    reference_strength: float = 0.8  # eq. 4: the share of the steps the shared start runs (here: from sigma 0.8)
    blend_lambda: float = 0.5  # eq. 5; 1 = no blending
    blend_steps: int = 3  # eq. 5 blends the latents of the first denoising steps
    refine_strengths: tuple[float, ...] = (0.5, 0.3)  # eq. 6 at t0, then repeated at a middle level; () = off
    seed: int = 0
    spatial_director: str | None = None  # adapter names already loaded into the denoiser
    temporal_director: str | None = None

    def __post_init__(self) -> None:
        if self.num_views < 2 or self.num_times < 2:
            raise Scene4DError(f"4D needs at least 2 views and 2 times, got {self.num_views} and {self.num_times}")
        if not 0.0 < self.reference_strength <= 1.0:
            raise Scene4DError(f"the reference strength must lie in (0, 1], got {self.reference_strength}")
        if not 0.0 <= self.blend_lambda <= 1.0:
            raise Scene4DError(f"the blend lambda must lie in [0, 1], got {self.blend_lambda}")
        for strength in self.refine_strengths:
            first_step(self.steps, strength)  # validates


@dataclass
class FourDResult:
    temporal: Clip  # the T-Director video (input camera, N times)
    reference: Clip  # v_ref (K views at the reference time)
    views: list[Clip]  # K clips of N frames, one camera each, the same times
    reference_index: int = 0


def reference_index(frames: np.ndarray, threshold_px: float = 0.5) -> int:
    """The frame whose moving region is largest: flow magnitude summed over pixels moving > ``threshold_px``.

    A frame's motion is the larger of the flows to and from its neighbours (fixed camera, so the
    background's flow is near zero). DimensionX picks the reference by dynamic mask and flow size.
    """
    magnitudes = [np.linalg.norm(dense_flow(a, b), axis=-1) for a, b in zip(frames[:-1], frames[1:], strict=True)]
    scores = []
    for index in range(len(frames)):
        around = [magnitudes[k] for k in (index - 1, index) if 0 <= k < len(magnitudes)]
        moving = np.maximum.reduce(around)
        scores.append(float(moving[moving > threshold_px].sum()))
    return int(np.argmax(scores))


def blend_hook(
    reference: Tensor, noise: Tensor, weight: float, steps: int,
    forward_noise: Callable[[Tensor, Tensor, Tensor], Tensor] = noisy_latents,
) -> StepHook:  # fmt: skip
    """Eq. 5: ``z = lambda z + (1 - lambda) z_ref,t`` on the latents the first ``steps`` steps denoised.

    A hook runs before a step, so step ``i`` blends what step ``i - 1`` made (at step 0 the
    latents are still the shared start). ``z_ref,t = forward_noise(z_ref, eps, t)`` is the reference
    latent forward-noised with the shared noise to the current level: ``(1 - sigma) z_ref + sigma eps``
    under flow matching (the default), a scheduler's ``add_noise`` under DDPM (CogVideoX).
    """

    def blend(step: int, level: Tensor, latents: Tensor) -> Tensor:
        if not 1 <= step <= steps:
            return latents
        return weight * latents + (1 - weight) * forward_noise(reference, noise, level)

    return blend


@torch.no_grad()
def spatial_videos(
    bundle: ModelBundle,
    frames: np.ndarray,  # [N, r, r, 3] the temporal video
    cameras: Cameras,  # [K] the views, world = the input view
    reference: Tensor,  # [K, C, h, w] latents of v_ref
    config: FourDConfig,
    on_step: Callable[[int, int], None] | None,
) -> np.ndarray:
    """[N, K, r, r, 3]: K views of every time, sharing the reference start (eq. 4) and blended (eq. 5)."""
    num_times, num_views = len(frames), len(cameras)
    condition = encode_frames(bundle.vae, frames)
    clean = torch.zeros(num_times, num_views, *condition.shape[1:])
    clean[:, 0] = condition
    cond_mask = torch.zeros(num_times, num_views)
    cond_mask[:, 0] = 1.0
    generator = torch.Generator().manual_seed(config.seed + 2)
    plucker = plucker_rays(cameras, *clean.shape[-2:]).permute(0, 3, 1, 2)
    hooks = [schedule_hook(bundle.denoiser, single(config.spatial_director))]
    sharing = {}
    if config.share_reference:
        shared = reference.expand(num_times, *reference.shape)
        noise = torch.randn(reference.shape, generator=generator).expand(num_times, *reference.shape)
        sharing = {"start": shared, "strength": config.reference_strength, "noise": noise}
        hooks.append(blend_hook(shared, noise, config.blend_lambda, config.blend_steps))
    with restoring_director(bundle.denoiser):
        latents = sample(
            bundle.denoiser, clean, cond_mask, config.steps, generator, on_step=on_step, hooks=hooks, **sharing,
            plucker=plucker.expand(num_times, *plucker.shape), times=torch.zeros(num_times, num_views),
            motion=torch.zeros(num_times), is_4d=torch.zeros(num_times, dtype=torch.bool),
        )  # fmt: skip
    decoded = from_model_images(bundle.vae.decode(latents.flatten(0, 1)))
    videos = decoded.reshape(num_times, num_views, *decoded.shape[1:])
    videos[:, 0] = frames
    return videos


@torch.no_grad()
def refine_view(
    bundle: ModelBundle,
    frames: np.ndarray,  # [N, r, r, 3] one view over time
    anchor: int,  # the frame kept clean (the reference time)
    strength: float,
    config: FourDConfig,
    seed: int,
    on_step: Callable[[int, int], None] | None,
) -> np.ndarray:
    """Eq. 6: SDEdit of one view's video with the T-Director (fixed camera, frames over time)."""
    num_times = len(frames)
    start = encode_frames(bundle.vae, frames)[None]
    cond_mask = torch.zeros(1, num_times)
    cond_mask[0, anchor] = 1.0
    fixed = Cameras.from_fov(bundle.info.fov_x_deg, frames.shape[2], frames.shape[1], torch.eye(4).expand(1, 4, 4))
    plucker = plucker_rays(fixed, *start.shape[-2:]).permute(0, 3, 1, 2)
    with restoring_director(bundle.denoiser):
        latents = sample(
            bundle.denoiser, start, cond_mask, config.steps, torch.Generator().manual_seed(seed), on_step=on_step,
            start=start, strength=strength, hooks=[schedule_hook(bundle.denoiser, single(config.temporal_director))],
            plucker=plucker.expand(num_times, *plucker.shape[1:])[None], times=torch.linspace(0, 1, num_times)[None],
            motion=torch.tensor([config.motion]), is_4d=torch.tensor([True]),
        )  # fmt: skip
    refined = from_model_images(bundle.vae.decode(latents[0]))
    refined[anchor] = frames[anchor]
    return refined


@torch.no_grad()
def generate_4d(
    bundle: ModelBundle, image: np.ndarray, config: FourDConfig, on_progress: Progress | None = None
) -> FourDResult:
    """Multi-view videos of a moving scene from one image (at the model's size) — DimensionX's 4D pipeline."""
    report = on_progress or (lambda stage, step, total: None)
    resolution, info = bundle.info.resolution, bundle.info

    def stage(name: str) -> Callable[[int, int], None]:
        return lambda step, total: report(name, step, total)

    still = Cameras.from_fov(
        info.fov_x_deg, resolution, resolution, trajectory_w2c(STATIC, config.num_times, None, info)
    )
    temporal = generate_clip(
        bundle, image[None], still, [0], config.motion, config.steps, config.seed, on_step=stage("temporal video"),
        schedule=single(config.temporal_director),
    )  # fmt: skip
    anchor = reference_index(temporal.frames)
    views_w2c = trajectory_w2c(config.trajectory, config.num_views, config.magnitude, info)
    cameras = Cameras.from_fov(info.fov_x_deg, resolution, resolution, views_w2c)
    reference = generate_clip(
        bundle, temporal.frames[[anchor]], cameras, [0], 0.0, config.steps, config.seed + 1,
        on_step=stage("reference video"), schedule=single(config.spatial_director),
    )  # fmt: skip
    videos = spatial_videos(
        bundle, temporal.frames, cameras, encode_frames(bundle.vae, reference.frames), config, stage("spatial videos")
    )
    views = []
    for view in range(config.num_views):
        frames = videos[:, view]
        if view > 0:
            for index, strength in enumerate(config.refine_strengths):
                seed = config.seed + 100 + index  # the same noise for every view (see the module docstring)
                frames = refine_view(bundle, frames, anchor, strength, config, seed, stage(f"refine view {view}"))
        view_cameras = cameras[[view] * config.num_times]
        meta = {"kind": "generated-4d", "view": view, "reference_index": anchor, "seed": config.seed}
        views.append(Clip(frames, view_cameras, temporal.times, meta=meta))
    return FourDResult(temporal, reference, views, anchor)


def multiview_clip(views: list[Clip]) -> Clip:
    """All views in one Clip, view-major (frame ``v * T + k`` is view v at time k), for 4D Gaussians."""
    frames = np.concatenate([view.frames for view in views])
    cameras = Cameras.cat([view.cameras for view in views])
    times = np.concatenate([view.times for view in views])
    meta = {"kind": "multiview-video", "num_views": len(views), "num_times": len(views[0])}
    return Clip(frames, cameras, times, meta=meta)
