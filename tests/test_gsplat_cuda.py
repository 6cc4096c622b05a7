"""The gsplat backend on CUDA against the plain PyTorch reference on the CPU. Skipped without a GPU
(CI has none); on a GPU machine: ``pytest tests/test_gsplat_cuda.py``."""

from dataclasses import replace

import pytest
import torch
from test_fit4d import moving_object_error, render_dynamic
from test_rasterize import orbiting_cameras, random_gaussians, render_and_grads

from scene4d.eval.metrics import psnr
from scene4d.splat.fit import FitConfig, Trainer, fit_gaussians, initial_splats, render_splats, settled
from scene4d.splat.fit4d import fit_dynamic
from scene4d.splat.reconstruct import render_frames
from scene4d.synth import SynthConfig, make_clip

pytestmark = pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU")


def gaussians_under_the_alpha_cap(num, sh_coefficients=0, seed=0):
    """``random_gaussians`` with opacities below 0.98: gsplat caps a Gaussian's alpha at 0.999 where
    the reference caps it at 0.99, so higher opacities would differ by rule, not by error."""
    params = random_gaussians(num, sh_coefficients, seed=seed)
    with torch.no_grad():
        params[3].clamp_(max=3.9)
    return params


def relative_error(actual, expected):
    """Largest absolute difference over the largest magnitude of ``expected`` (float64, CPU)."""
    return float((actual.double().cpu() - expected).abs().max() / expected.abs().max())


@pytest.mark.parametrize(("sh_degree", "mode"), [(None, "classic"), (3, "classic"), (3, "antialiased")])
def test_gsplat_matches_torch_reference_forward_and_gradients(sh_degree, mode):
    params = gaussians_under_the_alpha_cap(400, sh_coefficients=16 if sh_degree else 0)
    cameras = orbiting_cameras(2)
    reference, reference_grads = render_and_grads(params, cameras, "torch", sh_degree, mode=mode)
    on_gpu = [t.detach().float().cuda().requires_grad_() for t in params]
    outputs, grads = render_and_grads(on_gpu, cameras.to("cuda", torch.float32), "gsplat", sh_degree, mode=mode)
    for name, expected, actual in zip(("rgb", "alpha", "depth"), reference, outputs, strict=True):
        assert relative_error(actual, expected) < 1e-4, name
    names = ("means", "quats", "log_scales", "opacity_logits", "colors", "background")
    for name, expected, actual in zip(names, reference_grads, grads, strict=True):
        assert relative_error(actual, expected) < 1e-3, name


@pytest.fixture(scope="module")
def small_clip():
    return make_clip(SynthConfig(kind="spatial", trajectory="orbit-left", resolution=32, num_frames=6), seed=3)


def test_a_training_step_on_cuda_matches_the_reference_step(small_clip):
    # After one step Adam's first moment is 0.1 x the gradient, and the strategy's grad2d statistic
    # sums the 2D-mean gradients (with AbsGS, the absolute per-pixel ones) that the render's info carries.
    config = settled(FitConfig(init_points=400, sh_degree=1, random_background=False), dynamic=False)
    splats = initial_splats(small_clip, config)
    generator = torch.Generator().manual_seed(5)
    splats["scales"] += 0.3 * torch.randn(splats["scales"].shape, generator=generator)  # anisotropic: rotations matter
    camera, target = small_clip.cameras[2], torch.from_numpy(small_clip.frames[2:3])
    trainers, losses = {}, {}
    for backend in ("torch", "gsplat"):
        trainer = Trainer(splats, replace(config, backend=backend), scene_scale=1.0)
        losses[backend] = trainer.train_step(camera.to(trainer.device), target.to(trainer.device), None, None)
        trainers[backend] = trainer
    reference, gpu = trainers["torch"], trainers["gsplat"]
    assert gpu.device.type == "cuda"
    assert abs(losses["gsplat"] - losses["torch"]) < 1e-5 * losses["torch"]
    for name in ("means", "quats", "scales", "opacities", "sh0"):  # shN: SH degree 0 at step 0, no gradient
        expected = reference.optimizers[name].state[reference.params[name]]["exp_avg"].double()
        assert relative_error(gpu.optimizers[name].state[gpu.params[name]]["exp_avg"], expected) < 2e-4, name
    expected = reference.strategy_state["grad2d"].double()
    assert relative_error(gpu.strategy_state["grad2d"], expected) < 2e-4


def test_a_fit_on_cuda_is_as_good_as_the_cpu_fit(small_clip):
    def training_psnr(splats):
        rgb, _, _ = render_splats(splats, small_clip.cameras, backend="cpu")
        return float(psnr(rgb, torch.from_numpy(small_clip.frames)).mean())

    config = FitConfig(iterations=300, init_points=2000, refine_start=50, refine_every=50, sh_degree=1, sh_interval=75)
    on_cpu = fit_gaussians(small_clip, replace(config, backend="cpu"))
    on_gpu = fit_gaussians(small_clip, replace(config, backend="gsplat"))
    assert on_gpu["means"].device.type == "cpu"
    rendered_on_gpu, _, _ = render_splats(on_gpu, small_clip.cameras, backend="gsplat")
    rendered_on_cpu, _, _ = render_splats(on_gpu, small_clip.cameras, backend="cpu")
    assert float((rendered_on_gpu - rendered_on_cpu).abs().max()) < 2e-3
    assert training_psnr(on_gpu) > training_psnr(on_cpu) - 1.0


def test_a_4d_fit_on_cuda_follows_the_moving_objects(moving_clip):
    # As test_fit4d's CPU test: the deformation field cuts the error on the moving objects' pixels.
    config = FitConfig(
        iterations=240, init_points=1500, refine_start=60, refine_every=60, sh_degree=0, backend="gsplat"
    )
    static = fit_gaussians(moving_clip, config)
    splats, field = fit_dynamic(moving_clip, config, warmup=60)
    assert next(field.parameters()).device.type == "cpu"
    static_rgb, _, _ = render_splats(static, moving_clip.cameras)
    dynamic_error, static_error = (
        moving_object_error(render_dynamic(splats, field, moving_clip), moving_clip),
        moving_object_error(static_rgb, moving_clip),
    )
    assert dynamic_error < 0.7 * static_error


def test_4d_frames_deform_and_render_on_cuda_as_on_the_cpu(moving_clip):
    """render_frames runs the deformation field on the GPU (a hook records where it ran), leaves the
    caller's field on the CPU, and gives the CPU path's frames."""
    config = FitConfig(iterations=120, init_points=1500, refine_start=60, refine_every=60, sh_degree=0, backend="cpu")
    splats, field = fit_dynamic(moving_clip, config, warmup=30)
    devices = []
    field.register_forward_hook(lambda module, inputs, output: devices.append(inputs[0].device.type))
    cameras, times = moving_clip.cameras, moving_clip.times
    on_cpu, on_gpu = (
        torch.stack(list(render_frames(splats, field, cameras, times, None, backend, "antialiased")))
        for backend in ("cpu", "gsplat")
    )
    assert devices == ["cpu"] * len(moving_clip) + ["cuda"] * len(moving_clip)
    assert next(field.parameters()).device.type == "cpu" and on_gpu.device.type == "cpu"
    assert float((on_gpu - on_cpu).abs().max()) < 2e-3
