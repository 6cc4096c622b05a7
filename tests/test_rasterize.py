import math

import numpy as np
import pytest
import torch

from scene4d.errors import Scene4DError
from scene4d.geometry import Cameras, look_at_w2c
from scene4d.splat.projection import BLUR_2D, antialiasing_compensation, project_gaussians, spherical_harmonics
from scene4d.splat.rasterize import rasterize


def random_gaussians(num, sh_coefficients=0, dtype=torch.float64, seed=0):
    generator = torch.Generator().manual_seed(seed)
    means = (torch.rand(num, 3, generator=generator, dtype=dtype) - 0.5) * 2
    quats = torch.randn(num, 4, generator=generator, dtype=dtype)
    log_scales = torch.log(torch.rand(num, 3, generator=generator, dtype=dtype) * 0.08 + 0.01)
    opacity_logits = torch.randn(num, generator=generator, dtype=dtype) + 1
    shape = (num, sh_coefficients, 3) if sh_coefficients else (num, 3)
    colors = torch.rand(*shape, generator=generator, dtype=dtype) * (0.5 if sh_coefficients else 1.0)
    return [t.requires_grad_() for t in (means, quats, log_scales, opacity_logits, colors)]


def orbiting_cameras(num, width=40, height=33, dtype=torch.float64):
    up = torch.tensor([0, -1.0, 0], dtype=dtype)
    eyes = [torch.tensor([0.8 * i - 0.4, -0.3, -3.0], dtype=dtype) for i in range(num)]
    w2c = torch.stack([look_at_w2c(eye, torch.zeros(3, dtype=dtype), up) for eye in eyes])
    return Cameras.from_fov(60.0, width, height, w2c)


def render_and_grads(params, cameras, backend, sh_degree=None, seed=1, mode="classic"):
    """Outputs, and the gradients of every input (the Gaussians' and the background) through a random cotangent."""
    background = torch.tensor([0.2, 0.3, 0.4], dtype=params[0].dtype).requires_grad_()
    result = rasterize(*params, cameras, background, sh_degree=sh_degree, backend=backend, mode=mode)
    generator = torch.Generator().manual_seed(seed)
    outputs = (result.rgb, result.alpha, result.depth)
    cotangents = [torch.randn(o.shape, generator=generator, dtype=torch.float64).to(o) for o in outputs]
    loss = sum((o * v).sum() for o, v in zip(outputs, cotangents, strict=True))
    return [o.detach() for o in outputs], torch.autograd.grad(loss, [*params, background])


@pytest.mark.parametrize(("sh_degree", "mode"), [(None, "classic"), (3, "classic"), (3, "antialiased")])
def test_cpu_matches_torch_reference_forward_and_gradients(sh_degree, mode):
    # float64: the two backends then agree to round-off; in float32 a Gaussian sitting exactly on
    # the alpha >= 1/255 or transmittance thresholds can flip between them.
    params = random_gaussians(400, sh_coefficients=16 if sh_degree else 0)
    cameras = orbiting_cameras(2)
    reference, reference_grads = render_and_grads(params, cameras, "torch", sh_degree, mode=mode)
    fast, fast_grads = render_and_grads(params, cameras, "cpu", sh_degree, mode=mode)
    for name, expected, actual in zip(("rgb", "alpha", "depth"), reference, fast, strict=True):
        torch.testing.assert_close(actual, expected, atol=1e-10, rtol=1e-9, msg=name)
    names = ("means", "quats", "log_scales", "opacity_logits", "colors", "background")
    for name, expected, actual in zip(names, reference_grads, fast_grads, strict=True):
        assert float(expected.abs().max()) > 0, name  # every input receives a gradient
        torch.testing.assert_close(actual, expected, atol=1e-9, rtol=1e-7, msg=name)


def test_cpu_matches_torch_reference_in_float32():
    params = random_gaussians(300, dtype=torch.float32, seed=3)
    cameras = orbiting_cameras(1, 37, 50, torch.float32)
    reference, reference_grads = render_and_grads(params, cameras, "torch")
    fast, fast_grads = render_and_grads(params, cameras, "cpu")
    for expected, actual in zip(reference, fast, strict=True):
        torch.testing.assert_close(actual, expected, atol=1e-4, rtol=1e-4)
    for expected, actual in zip(reference_grads, fast_grads, strict=True):
        # Gradients sum many float32 terms in different orders (per pixel vs per tile matrix).
        torch.testing.assert_close(actual, expected, atol=1e-3, rtol=1e-3)


@pytest.mark.parametrize(("mode", "std"), [("classic", 0.2), ("antialiased", 0.2), ("antialiased", 0.02)])
def test_single_gaussian_matches_the_hand_evaluated_splat(mode, std):
    # An isotropic Gaussian of std s at depth z on the optical axis projects to a circular 2D
    # Gaussian of variance v = (f s / z)^2 + blur centred on the principal point. The antialiased
    # mode scales its opacity by sqrt(det / det with blur) = (f s / z)^2 / v.
    size, focal, depth, opacity = 33, 40.0, 4.0, 0.8
    cameras = Cameras(torch.tensor([[[focal, 0, size / 2], [0, focal, size / 2], [0, 0, 1]]], dtype=torch.float64),
                      torch.eye(4, dtype=torch.float64)[None], size, size)  # fmt: skip
    means = torch.tensor([[0.0, 0.0, depth]], dtype=torch.float64)
    quats = torch.tensor([[1.0, 0, 0, 0]], dtype=torch.float64)
    log_scales = torch.full((1, 3), math.log(std), dtype=torch.float64)
    logits = torch.tensor([math.log(opacity / (1 - opacity))], dtype=torch.float64)
    colors = torch.tensor([[1.0, 0.5, 0.25]], dtype=torch.float64)
    variance = (focal * std / depth) ** 2 + BLUR_2D[mode]
    peak = opacity * ((focal * std / depth) ** 2 / variance if mode == "antialiased" else 1.0)
    for backend in ("cpu", "torch"):
        result = rasterize(means, quats, log_scales, logits, colors, cameras, backend=backend, mode=mode)
        for row, col in ((16, 16), (16, 17), (15, 16)):
            offset_sq = (col + 0.5 - size / 2) ** 2 + (row + 0.5 - size / 2) ** 2
            alpha = peak * math.exp(-0.5 * offset_sq / variance)
            assert alpha > 1 / 255
            assert math.isclose(float(result.alpha[0, row, col]), alpha, rel_tol=1e-9)
            assert math.isclose(float(result.rgb[0, row, col, 1]), 0.5 * alpha, rel_tol=1e-9)
            assert math.isclose(float(result.depth[0, row, col]), depth, rel_tol=1e-9)


@pytest.mark.parametrize("mode", ["classic", "antialiased"])
def test_absgrad_matches_between_backends_and_bounds_the_gradient(mode):
    params = random_gaussians(400)
    cameras = orbiting_cameras(2)
    gradients, absgrads = [], []
    for backend in ("torch", "cpu"):
        result = rasterize(*params, cameras, torch.tensor([0.2, 0.3, 0.4], dtype=torch.float64), backend=backend,
                           mode=mode, absgrad=True)  # fmt: skip
        cotangent = torch.randn(result.rgb.shape, generator=torch.Generator().manual_seed(2), dtype=torch.float64)
        means2d, loss = result.info["means2d"], (result.rgb * cotangent).sum()
        gradients.append(torch.autograd.grad(loss, means2d, retain_graph=True)[0])
        absgrads.append(means2d.absgrad)
        torch.autograd.grad(loss, means2d)  # a second backward pass replaces absgrad, as gsplat's does
        torch.testing.assert_close(means2d.absgrad, absgrads[-1], msg=backend)
    torch.testing.assert_close(absgrads[1], absgrads[0], atol=1e-10, rtol=1e-9)
    torch.testing.assert_close(gradients[1], gradients[0], atol=1e-10, rtol=1e-9)
    assert (absgrads[1] >= gradients[1].abs() - 1e-12).all()  # |sum| <= sum of ||
    assert float((absgrads[1] - gradients[1].abs()).max()) > 1e-3 * float(absgrads[1].max())  # terms cancel


def test_absgrad_of_a_centred_splat_is_the_hand_evaluated_sum_while_its_gradient_cancels():
    # One isotropic splat of 2D variance v centred on a pixel corner inside one tile, black
    # background, loss = the sum of its RGB: alpha_p = o exp(-|d_p|^2 / 2v) and dL/dx = -sum_c c
    # sum_p alpha_p dx_p / v, which cancels by symmetry, while absgrad_x = sum_c c sum_p alpha_p |dx_p| / v
    # over the pixels where alpha_p >= 1/255.
    size, focal, depth, std, opacity = 24, 40.0, 4.0, 0.1, 0.8  # a 1-pixel std at the image centre (12, 12)
    cameras = Cameras(torch.tensor([[[focal, 0, size / 2], [0, focal, size / 2], [0, 0, 1]]], dtype=torch.float64),
                      torch.eye(4, dtype=torch.float64)[None], size, size)  # fmt: skip
    means = torch.tensor([[0.0, 0.0, depth]], dtype=torch.float64, requires_grad=True)
    quats = torch.tensor([[1.0, 0, 0, 0]], dtype=torch.float64)
    log_scales = torch.full((1, 3), math.log(std), dtype=torch.float64)
    logits = torch.tensor([math.log(opacity / (1 - opacity))], dtype=torch.float64)
    colors = torch.tensor([[1.0, 0.5, 0.25]], dtype=torch.float64)
    variance = (focal * std / depth) ** 2 + BLUR_2D["classic"]
    centres = torch.arange(size, dtype=torch.float64) + 0.5 - size / 2
    dy, dx = torch.meshgrid(centres, centres, indexing="ij")
    alpha = opacity * torch.exp(-0.5 * (dx**2 + dy**2) / variance)
    expected = 1.75 * float((alpha * dx.abs() * (alpha >= 1 / 255)).sum()) / variance
    for backend in ("cpu", "torch"):
        result = rasterize(means, quats, log_scales, logits, colors, cameras, backend=backend, absgrad=True)
        gradient = torch.autograd.grad(result.rgb.sum(), result.info["means2d"])[0]
        absgrad = result.info["means2d"].absgrad
        assert float(gradient.abs().max()) < 1e-9 * expected, backend
        assert math.isclose(float(absgrad[0, 0, 0]), expected, rel_tol=1e-9), backend
        assert math.isclose(float(absgrad[0, 0, 1]), expected, rel_tol=1e-9), backend


def test_front_gaussian_hides_the_one_behind():
    cameras = orbiting_cameras(1)
    centre = cameras.c2w[0, :3, 3] + 2 * cameras.c2w[0, :3, 2]  # 2 units ahead on the optical axis
    forward = cameras.c2w[0, :3, 2]
    means = torch.stack([centre + forward, centre])  # the red one is further away
    quats = torch.tensor([[1.0, 0, 0, 0]] * 2, dtype=torch.float64)
    log_scales = torch.full((2, 3), math.log(0.3), dtype=torch.float64)
    logits = torch.full((2,), 10.0, dtype=torch.float64)
    colors = torch.tensor([[1.0, 0, 0], [0, 0, 1.0]], dtype=torch.float64)
    result = rasterize(means, quats, log_scales, logits, colors, cameras, backend="cpu")
    row, col = cameras.height // 2, cameras.width // 2
    assert result.rgb[0, row, col, 2] > 0.98 and result.rgb[0, row, col, 0] < 0.02
    assert abs(float(result.depth[0, row, col]) - 2.0) < 0.05


def test_projection_culls_behind_the_camera_and_off_screen():
    cameras = Cameras.from_fov(60.0, 32, 32)
    means = torch.tensor([[0.0, 0, 3], [0, 0, -3], [100.0, 0, 3]])
    projected = project_gaussians(means, torch.tensor([[1.0, 0, 0, 0]] * 3), torch.full((3, 3), -3.0), cameras)
    assert projected.radii[0, 0].min() > 0
    assert projected.radii[0, 1:].max() == 0


def test_compiled_projection_matches_torch_with_culled_and_clamped_gaussians():
    from scene4d.splat.projection import project_gaussians_compiled

    generator = torch.Generator().manual_seed(4)
    means, quats, log_scales, _, _ = random_gaussians(600, seed=5)
    with torch.no_grad():  # spread past the field of view (clamped Jacobian) and behind the cameras
        means.mul_(torch.rand(600, 1, generator=generator, dtype=torch.float64) * 4)
    cameras = orbiting_cameras(3)
    outputs = {}
    for name, project in (("torch", project_gaussians), ("cpu", project_gaussians_compiled)):
        projected = project(means, quats, log_scales, cameras)
        values = (projected.means2d, projected.conics, projected.depths)
        cotangent = torch.Generator().manual_seed(6)
        loss = sum((v * torch.randn(v.shape, generator=cotangent, dtype=v.dtype)).sum() for v in values)
        outputs[name] = (
            [v.detach() for v in values],
            projected.radii,
            torch.autograd.grad(loss, (means, quats, log_scales)),
        )
    (reference, reference_radii, reference_grads), (fast, fast_radii, fast_grads) = outputs["torch"], outputs["cpu"]
    assert 0 < int((fast_radii[..., 0] == 0).sum()) < fast_radii[..., 0].numel() / 2  # some culled, most kept
    assert torch.equal(fast_radii, reference_radii)
    for expected, actual in zip(reference, fast, strict=True):
        torch.testing.assert_close(actual, expected, atol=1e-9, rtol=1e-9)
    for expected, actual in zip(reference_grads, fast_grads, strict=True):
        torch.testing.assert_close(actual, expected, atol=1e-8, rtol=1e-7)


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_compiled_binning_lists_the_same_tiles_in_the_same_order(dtype):
    import numba

    from scene4d.splat.rasterize import bin_gaussians, bin_gaussians_compiled

    means, quats, log_scales, _, _ = (t.detach() for t in random_gaussians(800, dtype=dtype, seed=7))
    cameras = orbiting_cameras(2, width=53, height=37, dtype=dtype)
    projected = project_gaussians(means, quats, log_scales, cameras)
    depths = projected.depths.clone()
    depths[:, :100] = depths[:, 100:200]  # equal depths: ties keep the index order
    depths[:, 200:300] *= -1.0  # the sort handles any float: negative depths come first, farthest first
    depths[:, 300:310] = 0.0
    expected = bin_gaussians(projected.means2d, projected.radii, depths, cameras.width, cameras.height)
    assert (projected.radii[:, 200:300] > 0).all(dim=-1).sum() > 50
    threads = numba.get_num_threads()
    try:
        for chunks in sorted({1, threads}):  # each thread fills its own run of the depth order
            numba.set_num_threads(chunks)
            actual = bin_gaussians_compiled(projected.means2d, projected.radii, depths, cameras.width, cameras.height)
            assert (actual.tiles_x, actual.tiles_y) == (expected.tiles_x, expected.tiles_y) == (4, 3)
            assert torch.equal(actual.offsets, expected.offsets)
            assert torch.equal(actual.gaussian_ids, expected.gaussian_ids)
    finally:
        numba.set_num_threads(threads)


def test_cpu_matches_torch_on_needle_gaussians_in_float32():
    # Long thin rotated splats across many tiles: the kernel's per-Gaussian pixel box must hold every
    # pixel the per-pixel test accepts.
    angles = torch.tensor([0.3, 1.1, 2.0])
    quats = torch.stack([torch.cos(angles / 2), 0 * angles, 0 * angles, torch.sin(angles / 2)], dim=-1)
    means = torch.tensor([[0.0, 0.0, 0.0], [0.1, -0.2, 0.3], [-0.2, 0.1, -0.3]])
    log_scales = torch.log(torch.tensor([[3.0, 0.004, 0.004], [8.0, 0.003, 0.003], [1.5, 0.005, 0.005]]))
    params = [means, quats, log_scales, torch.full((3,), 3.0), torch.eye(3)]
    cameras = orbiting_cameras(1, 64, 64, torch.float32)
    reference = rasterize(*params, cameras, backend="torch")
    fast = rasterize(*params, cameras, backend="cpu")
    assert float(reference.alpha.max()) > 0.5
    torch.testing.assert_close(fast.rgb, reference.rgb, atol=1e-5, rtol=1e-4)
    torch.testing.assert_close(fast.alpha, reference.alpha, atol=1e-5, rtol=1e-4)


def test_compiled_binning_rounds_like_the_twin_in_float32():
    from scene4d.splat.rasterize import bin_gaussians, bin_gaussians_compiled

    # centre + radius is 32 - 2^-20 in float64 (tile 1) but rounds to 32 (tile 2) in float32.
    means2d = torch.tensor([[[float(np.nextafter(np.float32(16), np.float32(0))), 8.0], [20.0, 20.0]]])
    radii = torch.tensor([[[16, 3], [2, 2]]], dtype=torch.int32)
    depths = torch.tensor([[1.0, 2.0]])
    expected = bin_gaussians(means2d, radii, depths, 64, 32)
    actual = bin_gaussians_compiled(means2d, radii, depths, 64, 32)
    assert torch.equal(actual.offsets, expected.offsets) and torch.equal(actual.gaussian_ids, expected.gaussian_ids)


def test_sh_degree_zero_is_the_dc_term_and_higher_bands_depend_on_direction():
    coefficients = torch.rand(5, 16, 3)
    directions = torch.nn.functional.normalize(torch.randn(5, 3), dim=-1)
    torch.testing.assert_close(spherical_harmonics(coefficients, directions, 0),
                               (0.28209479177387814 * coefficients[:, 0] + 0.5).clamp(min=0))  # fmt: skip
    assert not torch.allclose(spherical_harmonics(coefficients, directions, 3),
                              spherical_harmonics(coefficients, -directions, 3))  # fmt: skip


def test_unknown_or_unavailable_backend_raises():
    params = random_gaussians(3)
    with pytest.raises(Scene4DError, match="valid: auto, cpu, gsplat, torch"):
        rasterize(*params, orbiting_cameras(1), backend="opengl")
    with pytest.raises(Scene4DError, match="CUDA only"):
        rasterize(*params, orbiting_cameras(1), backend="gsplat")


def test_backends_render_on_their_device(monkeypatch):
    from scene4d.splat.rasterize import backend_device

    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    assert backend_device("auto").type == "cpu"
    with pytest.raises(Scene4DError, match="needs a CUDA GPU"):
        backend_device("gsplat")
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    monkeypatch.setattr("scene4d.splat.rasterize.gsplat_available", lambda: True)
    assert [backend_device(name).type for name in ("auto", "gsplat", "cpu", "torch")] == ["cuda", "cuda", "cpu", "cpu"]
    with pytest.raises(Scene4DError, match="valid: auto, cpu, gsplat, torch"):
        backend_device("opengl")


@pytest.mark.parametrize("absgrad", [False, True])
def test_info_feeds_gsplat_default_strategy(absgrad):
    from gsplat.strategy import DefaultStrategy

    params = torch.nn.ParameterDict(
        {name: torch.nn.Parameter(t.detach().float()) for name, t in
         zip(("means", "quats", "scales", "opacities", "colors"), random_gaussians(200), strict=True)}
    )  # fmt: skip
    optimizers = {name: torch.optim.Adam([p], lr=1e-3) for name, p in params.items()}
    strategy = DefaultStrategy(refine_start_iter=0, refine_every=1, grow_grad2d=0.0, absgrad=absgrad, verbose=False)
    state = strategy.initialize_state()
    cameras = orbiting_cameras(1, dtype=torch.float32)
    result = rasterize(
        params["means"], params["quats"], params["scales"], params["opacities"], params["colors"], cameras,
        absgrad=absgrad,
    )  # fmt: skip
    strategy.step_pre_backward(params, optimizers, state, 1, result.info)
    result.rgb.sum().backward()
    strategy.step_post_backward(params, optimizers, state, 1, result.info)
    assert params["means"].shape[0] > 200  # every visible Gaussian was cloned or split


@pytest.mark.parametrize("mode", ["classic", "antialiased"])
def test_projection_matches_gsplats_pytorch_reference(mode):
    from gsplat.cuda._torch_impl import _fully_fused_projection

    from scene4d.splat.projection import covariance_3d

    means, quats, log_scales, _, _ = (t.detach() for t in random_gaussians(500))
    log_scales[::3] -= 3.0  # splats well under a pixel, where the compensation matters
    cameras = orbiting_cameras(2)
    ours = project_gaussians(means, quats, log_scales, cameras, BLUR_2D[mode])
    covars = covariance_3d(quats, log_scales)
    _, means2d, depths, conics, compensations = _fully_fused_projection(
        means, covars, cameras.w2c, cameras.K, cameras.width, cameras.height, eps2d=BLUR_2D[mode],
        calc_compensations=True,
    )  # fmt: skip
    visible = (ours.radii > 0).all(dim=-1)
    assert int(visible.sum()) > 500
    torch.testing.assert_close(ours.means2d[visible], means2d[visible])
    torch.testing.assert_close(ours.depths[visible], depths[visible])
    torch.testing.assert_close(ours.conics[visible], conics[visible])
    ours_compensation = antialiasing_compensation(ours.conics, BLUR_2D[mode])[visible]
    assert float(ours_compensation.min()) < 0.5
    torch.testing.assert_close(ours_compensation, compensations[visible], atol=1e-6, rtol=1e-6)


def test_spherical_harmonics_match_gsplats_pytorch_reference():
    from gsplat.cuda._torch_impl import _spherical_harmonics

    coefficients = torch.randn(50, 16, 3, dtype=torch.float64)
    directions = torch.nn.functional.normalize(torch.randn(50, 3, dtype=torch.float64), dim=-1)
    for degree in range(4):
        expected = (_spherical_harmonics(degree, directions, coefficients) + 0.5).clamp(min=0)
        torch.testing.assert_close(spherical_harmonics(coefficients, directions, degree), expected)
