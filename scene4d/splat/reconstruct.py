"""Reconstruction recipes: a Clip in, a Gaussian scene with metrics and a preview video out."""

import copy
import resource
import time
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path

import numpy as np
import torch

from scene4d.eval.metrics import psnr, ssim
from scene4d.geometry import Cameras
from scene4d.geometry.bounds import optical_axes_centre
from scene4d.geometry.trajectories import swing_w2c
from scene4d.io import Clip, save_cameras, save_ply, write_video
from scene4d.io.atomic import write_json
from scene4d.splat.deform import DeformationField, save_deformation, splats_at
from scene4d.splat.fit import FitConfig, Splats, fit_gaussians, render_splats
from scene4d.splat.fit4d import fit_dynamic
from scene4d.splat.rasterize import backend_device

PREVIEW_FRAMES, PREVIEW_SWING_DEG = 48, 25.0


def reconstruct_static(
    clip: Clip, out: Path, config: FitConfig, on_step: Callable[[int, float], None] | None = None,
    confidence: np.ndarray | None = None, mask: np.ndarray | None = None,
) -> dict:  # fmt: skip
    """Fit 3DGS to ``clip`` and write ``out/scene.ply``, ``out/cameras.json`` (the training cameras),
    ``out/metrics.json`` and ``out/orbit.mp4``. ``confidence`` [T, H, W] weights every pixel's loss
    (DimensionX eq. 3); only the pixels where ``mask`` [T, H, W] is 1 count.

    Training resumes from ``out/checkpoint`` when a previous run was interrupted.
    """
    start = time.perf_counter()
    splats = fit_gaussians(
        clip, config, checkpoint=out / "checkpoint", confidence=confidence, mask=mask, on_step=on_step
    )
    return write_scene(out, clip, splats, None, config, start)


def reconstruct_dynamic(
    clip: Clip, out: Path, config: FitConfig, warmup: int, bake_times: int = 0,
    on_step: Callable[[int, float], None] | None = None,
) -> dict:  # fmt: skip
    """Fit deformable 4D Gaussians to ``clip`` and write what ``reconstruct_static`` writes (with the
    canonical ``scene.ply``), plus ``out/deformation/`` (safetensors + config.json) and
    ``bake_times`` snapshots ``out/times/T.TTT.ply`` evenly spread over [0, 1]."""
    start = time.perf_counter()
    splats, field = fit_dynamic(clip, config, warmup, checkpoint=out / "checkpoint", on_step=on_step)
    save_deformation(out / "deformation", field)
    for moment in torch.linspace(0, 1, bake_times).tolist() if bake_times > 0 else []:
        save_ply(out / "times" / f"{moment:.3f}.ply", splats_at(splats, field, moment), config.rasterize_mode)
    return write_scene(out, clip, splats, field, config, start, warmup=warmup)


def write_scene(
    out: Path, clip: Clip, splats: Splats, field: DeformationField | None, config: FitConfig, start: float,
    **facts: int,
) -> dict:  # fmt: skip
    """``scene.ply``, ``cameras.json``, ``metrics.json`` and ``orbit.mp4`` (for 4D, time runs from
    0 to 1 while the camera swings); returns the metrics."""
    mode = config.rasterize_mode
    save_ply(out / "scene.ply", splats, mode)
    save_cameras(out / "cameras.json", clip.cameras, clip.times)
    background = torch.tensor(config.background)
    metrics = training_view_metrics(splats, clip, background, config.backend, mode, field)
    metrics.update(
        iterations=config.iterations, gaussians=int(splats["means"].shape[0]), **facts,
        seconds=round(time.perf_counter() - start, 1),
        peak_memory_mb=round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1),
    )  # fmt: skip
    write_json(out / "metrics.json", metrics)
    cameras = preview_cameras(clip.cameras, splats, config.backend, mode)
    times = torch.linspace(0, 1, len(cameras)).tolist() if field is not None else [0.0] * len(cameras)
    frames = render_frames(splats, field, cameras, times, background, config.backend, mode)
    write_video(out / "orbit.mp4", torch.stack(list(frames)).numpy(), fps=24)
    return metrics


def render_frames(
    splats: Splats, field: DeformationField | None, cameras: Cameras, times: Sequence[float],
    background: torch.Tensor | None, backend: str, mode: str,
) -> Iterator[torch.Tensor]:  # fmt: skip
    """RGB [H, W, 3] per camera (on the CPU) of static splats, or of 4D splats moved to that camera's
    time, in rasterize ``mode``. Splats and field go to the backend's device once (``backend_device``),
    so the deformation runs there too; the caller's copies stay where they are."""
    device = backend_device(backend)
    splats = {name: value.to(device) for name, value in splats.items()}
    field = None if field is None else copy.deepcopy(field).to(device)
    for index, moment in enumerate(times):
        moved = splats if field is None else splats_at(splats, field, float(moment))
        yield render_splats(moved, cameras[index], background, backend, mode)[0][0]


def training_view_metrics(
    splats: Splats, clip: Clip, background: torch.Tensor, backend: str, mode: str,
    field: DeformationField | None = None,
) -> dict:  # fmt: skip
    """Mean PSNR and SSIM of the splats rendered at the clip's own cameras (and times, for 4D)."""
    rgb = torch.stack(list(render_frames(splats, field, clip.cameras, clip.times, background, backend, mode)))
    target = torch.from_numpy(clip.frames)
    return {
        "train_psnr": round(float(psnr(rgb, target).mean()), 3),
        "train_ssim": round(float(ssim(rgb, target).mean()), 4),
    }


def preview_cameras(cameras: Cameras, splats: Splats, backend: str, mode: str) -> Cameras:
    """A swing orbit about the point the cameras look at (else the first view's median depth)."""
    first = cameras[0]
    focus = optical_axes_centre(cameras.c2w)
    if focus is not None:
        distance = float((focus - first.centers[0]).norm())
    else:
        _, alpha, depth = render_splats(splats, first, backend=backend, mode=mode)
        distance = float(depth[alpha > 0.5].median()) if bool((alpha > 0.5).any()) else 1.0
    w2c = swing_w2c(PREVIEW_FRAMES, PREVIEW_SWING_DEG, distance) @ first.w2c
    return Cameras(first.K.expand(PREVIEW_FRAMES, 3, 3), w2c, first.width, first.height)
