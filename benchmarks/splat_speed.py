"""Rasterizer speed: the compiled ``cpu`` path against the plain ``torch`` reference, same inputs,
same run; and a full 3DGS training step. Each configuration runs in a fresh process so that its
peak memory (max RSS) is its own.

    python benchmarks/splat_speed.py
    python benchmarks/splat_speed.py --backends gsplat cpu   # on a CUDA machine

With ``gsplat`` the inputs live on the GPU, the timings wait for it (``torch.cuda.synchronize``) and
the peak memory is the GPU's (``torch.cuda.max_memory_allocated``); the other backends report the
process's max RSS.

Scenes: N Gaussians uniform in a cube of side 2 seen from 3 units away (60 degree field of view),
log-scales uniform in [log 0.005, log 0.03] (splats of a few pixels, like a fitted scene),
opacities sigmoid(N(1, 1)), RGB colours. Forward + backward = render RGB, alpha and depth, then
backpropagate a random cotangent (drawn once, outside the timing) to every input.
"""

import argparse
import json
import math
import resource
import subprocess
import sys
import time

import torch

from scene4d.geometry import Cameras, look_at_w2c
from scene4d.splat.rasterize import BACKENDS, RASTERIZE_MODES, backend_device, rasterize

CASES = [(10_000, 128), (50_000, 128), (100_000, 256)]
REPEATS = {"cpu": 10, "torch": 2, "gsplat": 50}


def scene(num: int, size: int, device: torch.device, seed: int = 0):
    generator = torch.Generator().manual_seed(seed)
    means = (torch.rand(num, 3, generator=generator) - 0.5) * 2
    quats = torch.randn(num, 4, generator=generator)
    low, high = math.log(0.005), math.log(0.03)
    log_scales = torch.rand(num, 3, generator=generator) * (high - low) + low
    opacity_logits = torch.randn(num, generator=generator) + 1
    colors = torch.rand(num, 3, generator=generator)
    eye = torch.tensor([0.0, 0.0, -3.0])
    w2c = look_at_w2c(eye, torch.zeros(3), torch.tensor([0.0, -1.0, 0.0]))
    camera = Cameras.from_fov(60.0, size, size, w2c[None]).to(device)
    params = [t.to(device).requires_grad_() for t in (means, quats, log_scales, opacity_logits, colors)]
    return params, camera


def wait(device: torch.device) -> None:
    """Let the GPU finish its queued work, so that a timer read next counts it."""
    if device.type == "cuda":
        torch.cuda.synchronize()


def forward_backward_ms(backend: str, num: int, size: int, repeats: int, mode: str) -> float:
    device = backend_device(backend)
    params, camera = scene(num, size, device)
    generator = torch.Generator().manual_seed(1)
    cotangents = [
        torch.randn(shape, generator=generator).to(device)
        for shape in ((1, size, size, 3), (1, size, size), (1, size, size))
    ]

    def forward_backward() -> None:
        result = rasterize(*params, camera, backend=backend, mode=mode)
        outputs = (result.rgb, result.alpha, result.depth)
        torch.autograd.grad(outputs, params, cotangents)

    return timed_ms(forward_backward, repeats, device)


def timed_ms(work, repeats: int, device: torch.device) -> float:
    """Mean milliseconds of ``work()`` over ``repeats`` calls, after one warm-up call (numba compiles
    or loads its cache; CUDA loads its kernels)."""
    work()
    wait(device)
    start = time.perf_counter()
    for _ in range(repeats):
        work()
    wait(device)
    return (time.perf_counter() - start) / repeats * 1000


def training_step_ms(backend: str, num: int, size: int, repeats: int, mode: str) -> float:
    """render (in rasterize ``mode``) + L1/D-SSIM loss + backward + Adam on all parameters (no densification)."""
    from scene4d.splat.losses import photometric_loss

    device = backend_device(backend)
    params, camera = scene(num, size, device)
    target = torch.rand(1, size, size, 3, generator=torch.Generator().manual_seed(1)).to(device)
    optimizer = torch.optim.Adam(params, lr=1e-3)

    def step() -> None:
        result = rasterize(*params, camera, backend=backend, mode=mode)
        photometric_loss(result.rgb, target).backward()
        optimizer.step()
        optimizer.zero_grad(set_to_none=True)

    return timed_ms(step, repeats, device)


def run_one(kind: str, backend: str, mode: str, num: int, size: int, repeats: int) -> None:
    """``kind`` "render" times forward + backward of ``backend``, "step" its training step (rasterize ``mode``)."""
    milliseconds = (
        training_step_ms(backend, num, size, repeats, mode)
        if kind == "step"
        else forward_backward_ms(backend, num, size, repeats, mode)
    )
    if backend_device(backend).type == "cuda":
        peak_mb = torch.cuda.max_memory_allocated() / 2**20
    else:
        peak_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(json.dumps({"ms": milliseconds, "peak_mb": peak_mb}))


def measure(*args: object) -> dict:
    command = [sys.executable, __file__, "--one", *map(str, args)]
    return json.loads(
        subprocess.run(command, check=True, capture_output=True, text=True).stdout.strip().splitlines()[-1]
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument(
        "--backends", nargs=2, choices=[b for b in BACKENDS if b != "auto"], default=["cpu", "torch"],
        help="the fast backend and the one it is compared with",
    )  # fmt: skip
    parser.add_argument(
        "--one", nargs=6, metavar=("KIND", "BACKEND", "MODE", "N", "SIZE", "REPEATS"), help=argparse.SUPPRESS
    )
    args = parser.parse_args()
    if args.one:
        kind, backend, mode, num, size, repeats = args.one
        run_one(kind, backend, mode, int(num), int(size), int(repeats))
        return
    fast, slow = args.backends
    print(f"torch {torch.__version__}, {torch.get_num_threads()} threads")
    peaks = " | ".join(f"{name} peak MB ({'GPU' if name == 'gsplat' else 'RSS'})" for name in (fast, slow))
    print(f"| Gaussians | image | {fast} fwd+bwd ms | {slow} fwd+bwd ms | speed-up | {peaks} |")
    print("|---|---|---|---|---|---|---|")
    for num, size in CASES:
        ours = measure("render", fast, "classic", num, size, REPEATS[fast])
        reference = measure("render", slow, "classic", num, size, REPEATS[slow])
        ratio = reference["ms"] / ours["ms"]
        print(f"| {num} | {size}x{size} | {ours['ms']:.1f} | {reference['ms']:.0f} | {ratio:.1f}x "
              f"| {ours['peak_mb']:.0f} | {reference['peak_mb']:.0f} |")  # fmt: skip
    print()
    for mode in RASTERIZE_MODES:
        step = measure("step", fast, mode, 20_000, 128, 20)
        print(f"full training step (render + loss + backward + Adam), {fast}, 20000 Gaussians, 128x128, {mode}: "
              f"{step['ms']:.1f} ms, peak {step['peak_mb']:.0f} MB")  # fmt: skip


if __name__ == "__main__":
    main()
