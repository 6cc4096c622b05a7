"""Reconstruction quality and time on synth scenes with ground truth, each case in a fresh process
(so peak memory is its own):

- ``3d``: a static scene orbited by 48 cameras (128x128), every 6th held out (40 train, 8 test),
  no depth given (the Gaussians start at SIFT matches triangulated at the true cameras, topped up
  from two-view stereo depth; with ``--no-triangulate`` from stereo alone; with ``--sfm-points``
  at the points of COLMAP's own reconstruction, topped up from stereo); held-out PSNR / SSIM after
  ``--iters`` steps, and the fit time (stereo and SfM included).
- ``4d``: a ``multiview-video`` clip of 5 cameras x 16 times (128x128); cameras 0, 1, 3, 4 train
  (their depth maps initialise the Gaussians; with ``--no-depth`` two-view stereo between them
  does), camera 2 is held out at all 16 times.
- ``32view``: a 32-view orbit at 160x120 (a 160x160 render cropped), no depth and no points,
  with the default settings of ``scene4d reconstruct``: the wall time.

Fit times are wall seconds and CPU seconds (all threads of the fitting process).

``--depth-weight`` adds depth supervision where the training frames carry depth (only ``4d``);
``--pseudo-view-weight`` adds the warp loss of virtual cameras between training views (``splat.pseudo_view``);
``--sh-degree`` sets the colours' SH degree (fewer bands overfit sparse views less);
``--rasterize-mode`` fits and renders in gsplat's ``antialiased`` (the default) or ``classic`` mode;
``--backend`` picks the rasterizer (``auto``: gsplat on a CUDA machine, else ``cpu``).

    python benchmarks/splat_quality.py --case 3d --seeds 0 1 --iters 2000
    python benchmarks/splat_quality.py --case 4d --iters 2500 [--no-depth]
    python benchmarks/splat_quality.py --case 32view
"""

import argparse
import json
import resource
import subprocess
import sys
import time

import numpy as np
import torch

from scene4d.eval.camera import similarity_transform
from scene4d.eval.metrics import psnr, ssim
from scene4d.geometry import Cameras
from scene4d.io import Clip
from scene4d.splat.fit import FitConfig, fit_gaussians, render_splats, settled
from scene4d.splat.fit4d import fit_dynamic
from scene4d.splat.rasterize import BACKENDS, RASTERIZE_MODES, backend_device
from scene4d.splat.reconstruct import render_frames
from scene4d.synth import SynthConfig, make_clip


def subset(clip: Clip, keep: np.ndarray, with_depth: bool = False) -> Clip:
    index = torch.from_numpy(np.flatnonzero(keep))
    return Clip(clip.frames[keep], clip.cameras[index], clip.times[keep], clip.depth[keep] if with_depth else None)


def clock() -> tuple[float, float]:
    """Wall and CPU (all threads of this process) seconds now."""
    return time.perf_counter(), time.process_time()


def elapsed(start: tuple[float, float]) -> dict:
    """Wall and CPU seconds since ``start`` (a ``clock()``)."""
    wall, cpu = clock()
    return {"seconds": wall - start[0], "cpu_seconds": cpu - start[1]}


def scores(rgb: torch.Tensor, clip: Clip) -> dict:
    target = torch.from_numpy(clip.frames)
    return {"psnr": float(psnr(rgb, target).mean()), "ssim": float(ssim(rgb, target).mean())}


def with_sfm_points(clip: Clip) -> Clip:
    """``clip`` with COLMAP's points of its frames (true intrinsics), moved into the clip's world by the
    similarity that maps the SfM camera centres onto the true ones."""
    from scene4d.curate.sfm import masked_sfm

    sfm = masked_sfm(clip.frames, None, clip.cameras.K[0])
    true_centres = clip.cameras.centers[torch.as_tensor(sfm.registered)].double().numpy()
    scale, rotation, shift = similarity_transform(sfm.cameras.centers.double().numpy(), true_centres)
    points = (scale * sfm.points @ rotation.T + shift).astype(np.float32)
    print(f"SfM: {len(sfm.registered)} of {len(clip)} frames registered, {len(points)} points", file=sys.stderr)
    return Clip(clip.frames, clip.cameras, clip.times, points=points, point_colors=sfm.colors)


def case_3d(config: FitConfig, sfm_points: bool = False) -> dict:
    clip = make_clip(
        SynthConfig(kind="spatial", trajectory="orbit-left", num_frames=48, resolution=128), seed=config.seed
    )
    held_out = np.arange(48) % 6 == 3
    start = clock()
    train = with_sfm_points(subset(clip, ~held_out)) if sfm_points else subset(clip, ~held_out)
    splats = fit_gaussians(train, config)
    times = elapsed(start)
    test = subset(clip, held_out)
    rgb, _, _ = render_splats(splats, test.cameras, mode=config.rasterize_mode, backend=config.backend)
    return {**scores(rgb, test), **times, "gaussians": int(splats["means"].shape[0])}


def case_4d(config: FitConfig, with_depth: bool = True) -> dict:
    clip = make_clip(SynthConfig(kind="multiview-video", num_views=5, num_frames=16, resolution=128), seed=config.seed)
    view = np.arange(len(clip)) // 16
    start = clock()
    train = subset(clip, view != 2, with_depth=with_depth)
    splats, field = fit_dynamic(train, config, warmup=500)
    times = elapsed(start)
    test = subset(clip, view == 2)
    frames = render_frames(splats, field, test.cameras, test.times, None, config.backend, config.rasterize_mode)
    return {**scores(torch.stack(list(frames)), test), **times, "gaussians": int(splats["means"].shape[0])}


def case_32view(config: FitConfig) -> dict:
    clip = make_clip(
        SynthConfig(kind="spatial", trajectory="orbit-left", num_frames=32, resolution=160), seed=config.seed
    )
    K = clip.cameras.K.clone()
    K[:, 1, 2] -= 20  # crop 20 rows off the top and the bottom: 160x120
    cropped = Clip(clip.frames[:, 20:140], Cameras(K, clip.cameras.w2c, 160, 120), clip.times)
    start = clock()
    splats = fit_gaussians(cropped, config)
    times = elapsed(start)
    rgb, _, _ = render_splats(splats, cropped.cameras, mode=config.rasterize_mode, backend=config.backend)
    return {**scores(rgb, cropped), **times, "gaussians": int(splats["means"].shape[0])}


def peak_memory(row: dict) -> str:
    """The process's peak RSS in MB, and on CUDA the GPU's peak allocation."""
    gpu = f" / GPU {row['gpu_peak_mb']:.0f}" if "gpu_peak_mb" in row else ""
    return f"{row['peak_mb']:.0f}{gpu}"


def densification(args: argparse.Namespace) -> str:
    """The densification the case will use (``settled``)."""
    config = settled(FitConfig(absgrad=args.absgrad, grow_grad2d=args.grow_grad2d), args.case == "4d")
    return f"{'AbsGS' if config.absgrad else 'gradient'} at {config.grow_grad2d}"


def pseudo_view_weight(args: argparse.Namespace) -> float:
    """The pseudo-view weight the case will use (``settled``)."""
    return settled(FitConfig(pseudo_view_weight=args.pseudo_view_weight), args.case == "4d").pseudo_view_weight


CASES = {"3d": case_3d, "4d": case_4d, "32view": case_32view}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--case", choices=sorted(CASES), required=True)
    parser.add_argument("--seeds", type=int, nargs="+", default=[0])
    parser.add_argument("--iters", type=int, default=FitConfig.iterations)
    parser.add_argument("--depth-weight", type=float, default=FitConfig.depth_weight, help="(4d: supervises depth)")
    parser.add_argument("--pseudo-view-weight", type=float,
                        help="weight of the warp loss of virtual cameras between the training views "
                             "(default: 0.5 for 4d, else 0)")  # fmt: skip
    parser.add_argument("--max-gaussians", type=int, default=FitConfig.max_gaussians, help="budget of Gaussians")
    parser.add_argument("--sh-degree", type=int, default=FitConfig.sh_degree, help="SH degree of the colours (0-3)")
    parser.add_argument("--no-depth", action="store_true", help="(4d: start from stereo, not the depth maps)")
    parser.add_argument("--sfm-points", action="store_true", help="(3d: start from COLMAP's points, topped up)")
    parser.add_argument("--no-triangulate", action="store_true", help="no triangulated points: stereo alone")
    parser.add_argument("--rasterize-mode", choices=RASTERIZE_MODES, default=FitConfig.rasterize_mode)
    parser.add_argument("--backend", choices=BACKENDS, default=FitConfig.backend, help="rasterizer")
    parser.add_argument("--absgrad", action=argparse.BooleanOptionalAction,
                        help="densify by absolute per-pixel gradients (AbsGS; default: static cases only)")  # fmt: skip
    parser.add_argument(
        "--grow-grad2d", type=float, help="densification threshold (default: 8e-4 with absgrad, else 2e-4)"
    )
    parser.add_argument("--one", type=int, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.one is not None:
        config = FitConfig(
            iterations=args.iters,
            sh_degree=args.sh_degree,
            depth_weight=args.depth_weight,
            pseudo_view_weight=args.pseudo_view_weight,
            seed=args.one,
            max_gaussians=args.max_gaussians,
            triangulate=not args.no_triangulate,
            rasterize_mode=args.rasterize_mode,
            absgrad=args.absgrad,
            grow_grad2d=args.grow_grad2d,
            backend=args.backend,
        )
        options = {"4d": {"with_depth": not args.no_depth}, "3d": {"sfm_points": args.sfm_points}}.get(args.case, {})
        result = CASES[args.case](config, **options)
        result["peak_mb"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
        if backend_device(args.backend).type == "cuda":
            result["gpu_peak_mb"] = torch.cuda.max_memory_allocated() / 2**20
        print(json.dumps(result))
        return
    print(f"case {args.case}, {args.iters} iterations, depth weight {args.depth_weight}, "
          f"pseudo-view weight {pseudo_view_weight(args)}, SH degree {args.sh_degree}, "
          f"budget {args.max_gaussians}, {args.rasterize_mode}, densification {densification(args)}, "
          f"backend {args.backend} on {backend_device(args.backend)}, "
          f"torch {torch.__version__}, {torch.get_num_threads()} threads")  # fmt: skip
    print(
        "| seed | PSNR dB | SSIM | fit seconds | fit CPU seconds | Gaussians | peak MB (RSS, and the GPU's on CUDA) |"
    )
    print("|---|---|---|---|---|---|---|")
    for seed in args.seeds:
        command = [sys.executable, __file__, "--case", args.case, "--iters", str(args.iters), "--one", str(seed),
                   "--depth-weight", str(args.depth_weight), "--sh-degree", str(args.sh_degree),
                   "--max-gaussians", str(args.max_gaussians)]  # fmt: skip
        command += ["--no-depth"] * args.no_depth + ["--sfm-points"] * args.sfm_points
        command += ["--no-triangulate"] * args.no_triangulate + ["--rasterize-mode", args.rasterize_mode]
        command += ["--backend", args.backend]
        command += [] if args.absgrad is None else ["--absgrad" if args.absgrad else "--no-absgrad"]
        command += [] if args.grow_grad2d is None else ["--grow-grad2d", str(args.grow_grad2d)]
        command += [] if args.pseudo_view_weight is None else ["--pseudo-view-weight", str(args.pseudo_view_weight)]
        output = subprocess.run(command, check=True, capture_output=True, text=True).stdout
        row = json.loads(output.strip().splitlines()[-1])
        print(f"| {seed} | {row['psnr']:.2f} | {row['ssim']:.3f} | {row['seconds']:.0f} | {row['cpu_seconds']:.0f} "
              f"| {row['gaussians']} | {peak_memory(row)} |", flush=True)  # fmt: skip


if __name__ == "__main__":
    main()
