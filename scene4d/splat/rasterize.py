"""Differentiable Gaussian rasterization with three backends.

- ``torch``: plain PyTorch, the reference for tests (``_rasterize_pixels``);
- ``cpu``: compiled numba kernels with their own backward for the projection, the tile binning
  and the blending (``project_gaussians_compiled``, ``bin_gaussians_compiled``, ``rasterize_pixels``);
- ``gsplat``: gsplat's CUDA ``rasterization()`` when the inputs live on a CUDA device.

``cpu`` and ``torch`` share the SH colours. ``RenderResult.info`` carries what gsplat's
``DefaultStrategy`` reads (``means2d`` with its gradient, and with ``absgrad`` its ``absgrad``
attribute after the backward pass; ``radii [C, N, 2]``, ``width``, ``height``, ``n_cameras``,
``gaussian_ids``), so its densification runs with any backend.
"""

import weakref
from dataclasses import dataclass
from functools import cache, partial
from typing import Any, Literal, get_args

import numpy as np
import torch
from torch import Tensor

from scene4d.errors import Scene4DError
from scene4d.geometry import Cameras
from scene4d.splat.projection import (
    BLUR_2D,
    antialiasing_compensation,
    project_gaussians,
    project_gaussians_compiled,
    spherical_harmonics,
    to_numpy,
)

Backend = Literal["auto", "cpu", "gsplat", "torch"]
BACKENDS: tuple[str, ...] = get_args(Backend)
RasterizeMode = Literal["classic", "antialiased"]
RASTERIZE_MODES: tuple[str, ...] = get_args(RasterizeMode)
TILE_SIZE = 16
# The blending rules, shared by the compiled kernels (cpu_kernels) and the plain twin below.
ALPHA_MIN, ALPHA_MAX, TRANSMITTANCE_MIN = 1.0 / 255.0, 0.99, 1e-4


@dataclass
class RenderResult:
    rgb: Tensor  # [C, H, W, 3]
    alpha: Tensor  # [C, H, W] accumulated opacity
    depth: Tensor  # [C, H, W] expected camera z-depth (blended depth / alpha)
    info: dict[str, Any]


@dataclass
class TileBins:
    """Depth-sorted lists of the Gaussians overlapping each 16x16 tile of each camera.

    The list of camera ``c``, tile ``t`` is ``gaussian_ids[offsets[c * tiles + t] : offsets[c * tiles + t + 1]]``.
    """

    offsets: Tensor  # [C * tiles + 1] int64
    gaussian_ids: Tensor  # [M] int64, indices into the camera's N Gaussians
    tiles_x: int
    tiles_y: int


def rasterize(
    means: Tensor,  # [N, 3] world
    quats: Tensor,  # [N, 4] (w, x, y, z), any norm
    log_scales: Tensor,  # [N, 3]
    opacity_logits: Tensor,  # [N]
    colors: Tensor,  # [N, 3] RGB, or [N, K, 3] SH coefficients with ``sh_degree``
    cameras: Cameras,
    background: Tensor | None = None,  # [3] or [C, 3]; black when None
    sh_degree: int | None = None,
    backend: Backend = "auto",
    mode: RasterizeMode = "classic",
    absgrad: bool = False,
) -> RenderResult:
    """Render Gaussians into every camera: RGB, alpha and expected depth.

    ``auto`` picks ``gsplat`` for CUDA tensors and ``cpu`` otherwise. ``mode`` is gsplat's
    ``rasterize_mode``: ``classic`` widens every 2D covariance by 0.3 px^2 (3DGS); ``antialiased`` by
    Mip-Splatting's 0.1 px^2 2D filter, scaling opacities by ``antialiasing_compensation`` so that a
    splat smaller than a pixel fades instead of growing. With ``absgrad`` the backward pass also
    leaves ``info["means2d"].absgrad`` [C, N, 2]: the sum over pixels of the absolute value of each
    pixel's gradient of the 2D means (AbsGS; gsplat's ``absgrad``), which densification can use
    instead of the gradient, whose per-pixel terms cancel on a textured surface.
    """
    backend = resolve_backend(backend, means)
    check_rasterize_mode(mode)
    num_cameras = len(cameras)
    background = torch.zeros(3, dtype=means.dtype, device=means.device) if background is None else background
    background = background.to(means).expand(num_cameras, 3)  # the Gaussians' dtype and device
    if backend == "gsplat":
        return rasterize_gsplat(
            means, quats, log_scales, opacity_logits, colors, cameras, background, sh_degree, mode, absgrad
        )
    compiled = backend == "cpu"
    project = project_gaussians_compiled if compiled else project_gaussians
    projected = project(means, quats, log_scales, cameras, BLUR_2D[mode])
    view_colors = colors_per_camera(means, colors, cameras, sh_degree)
    opacities = torch.sigmoid(opacity_logits)[None].expand(num_cameras, -1)
    if mode == "antialiased":
        opacities = opacities * antialiasing_compensation(projected.conics, BLUR_2D[mode])
    binning = bin_gaussians_compiled if compiled else bin_gaussians
    bins = binning(projected.means2d, projected.radii, projected.depths, cameras.width, cameras.height)
    blend = rasterize_pixels if compiled else _rasterize_pixels
    rgb, alpha, depth = blend(
        projected.means2d, projected.conics, view_colors, opacities, projected.depths, background,
        bins, cameras.width, cameras.height, absgrad,
    )  # fmt: skip
    info = {
        "means2d": projected.means2d,
        "radii": projected.radii,
        "width": cameras.width,
        "height": cameras.height,
        "n_cameras": num_cameras,
        "gaussian_ids": None,  # gsplat's key for packed mode; this layout is dense [C, N]
    }
    return RenderResult(rgb, alpha, depth / alpha.clamp(min=1e-10), info)


def check_backend(backend: str) -> None:
    """Raise a one-line error unless ``backend`` is one of ``BACKENDS``."""
    if backend not in BACKENDS:
        raise Scene4DError(f"unknown rasterizer backend {backend!r}; valid: {', '.join(BACKENDS)}")


def resolve_backend(backend: str, means: Tensor) -> str:
    check_backend(backend)
    if backend == "auto":
        return "gsplat" if means.is_cuda else "cpu"
    if backend == "gsplat" and not means.is_cuda:
        raise Scene4DError(
            "the gsplat backend rasterizes on CUDA only; move the Gaussians to a GPU or use backend='cpu'"
        )
    if backend != "gsplat" and means.is_cuda:
        raise Scene4DError(f"the {backend} backend runs on the CPU; use backend='gsplat' for CUDA tensors")
    return backend


def backend_device(backend: str) -> torch.device:
    """The device ``backend`` renders on: CUDA for ``gsplat``, and for ``auto`` where gsplat can
    rasterize (``gsplat_available``); else the CPU. Fits and renders move their tensors there."""
    check_backend(backend)
    if backend == "gsplat" and not torch.cuda.is_available():
        raise Scene4DError("the gsplat backend needs a CUDA GPU and PyTorch sees none; use backend 'cpu'")
    cuda = backend == "gsplat" or (backend == "auto" and gsplat_available())
    return torch.device("cuda" if cuda else "cpu")


def gsplat_available() -> bool:
    """Whether PyTorch sees a CUDA GPU and gsplat's CUDA extension loads; ``auto`` stays on the CPU otherwise."""
    return torch.cuda.is_available() and gsplat_extension_loads()


@cache
def gsplat_extension_loads() -> bool:
    """Whether gsplat imports with its CUDA extension, which gsplat builds on first use (that needs
    the CUDA toolkit's nvcc) unless its wheel brought one."""
    try:
        from gsplat.cuda._backend import _C
    except ImportError:
        return False
    return _C is not None


def check_rasterize_mode(mode: str) -> None:
    """Raise a one-line error unless ``mode`` is one of ``RASTERIZE_MODES``."""
    if mode not in RASTERIZE_MODES:
        raise Scene4DError(f"unknown rasterize mode {mode!r}; valid: {', '.join(RASTERIZE_MODES)}")


def colors_per_camera(means: Tensor, colors: Tensor, cameras: Cameras, sh_degree: int | None) -> Tensor:
    """Colours [C, N, 3]: RGB as given, or SH evaluated along each camera's viewing directions."""
    if sh_degree is None:
        return colors[None].expand(len(cameras), -1, -1)
    directions = means[None] - cameras.centers.to(means.dtype)[:, None]
    directions = directions / directions.norm(dim=-1, keepdim=True).clamp(min=1e-12)
    return spherical_harmonics(colors[None], directions, sh_degree)


def tile_grid(width: int, height: int) -> tuple[int, int]:
    """Tiles across and down an image, the last ones partial."""
    return -(-width // TILE_SIZE), -(-height // TILE_SIZE)


def bin_gaussians(means2d: Tensor, radii: Tensor, depths: Tensor, width: int, height: int) -> TileBins:
    """Assign each visible Gaussian to the tiles its 3-sigma box overlaps, sorted by depth per tile.

    ``means2d`` [C, N, 2], ``radii`` [C, N, 2] (0 = culled), ``depths`` [C, N]. Vectorised: every
    (Gaussian, tile) pair becomes an entry, entries are sorted by depth and then (stably) by
    camera and tile.
    """
    num_cameras, num = depths.shape
    tiles_x, tiles_y = tile_grid(width, height)
    centre, extent = means2d.detach(), radii.to(means2d.dtype)
    low = torch.floor((centre - extent) / TILE_SIZE).long()
    high = torch.floor((centre + extent) / TILE_SIZE).long()
    low[..., 0].clamp_(0, tiles_x - 1), low[..., 1].clamp_(0, tiles_y - 1)
    high[..., 0].clamp_(0, tiles_x - 1), high[..., 1].clamp_(0, tiles_y - 1)
    span = (high - low + 1).clamp(min=0)
    count = torch.where((radii > 0).all(dim=-1), span[..., 0] * span[..., 1], 0).reshape(-1)
    owner = torch.repeat_interleave(torch.arange(num_cameras * num, device=depths.device), count)
    first_entry = torch.cumsum(count, 0) - count
    local = torch.arange(owner.shape[0], device=depths.device) - first_entry[owner]
    flat_low, flat_span = low.reshape(-1, 2)[owner], span.reshape(-1, 2)[owner]
    tile_x = flat_low[:, 0] + local % flat_span[:, 0]
    tile_y = flat_low[:, 1] + local // flat_span[:, 0]
    cell = (owner // num) * (tiles_x * tiles_y) + tile_y * tiles_x + tile_x
    by_depth = torch.argsort(depths.detach().reshape(-1)[owner], stable=True)
    order = by_depth[torch.argsort(cell[by_depth], stable=True)]
    per_cell = torch.bincount(cell, minlength=num_cameras * tiles_x * tiles_y)
    offsets = torch.cat([per_cell.new_zeros(1), torch.cumsum(per_cell, 0)])
    return TileBins(offsets, (owner % num)[order], tiles_x, tiles_y)


def bin_gaussians_compiled(means2d: Tensor, radii: Tensor, depths: Tensor, width: int, height: int) -> TileBins:
    """``bin_gaussians`` by a compiled kernel: the same tile lists in the same order."""
    from numba import get_num_threads

    from scene4d.splat import cpu_projection

    depths = to_numpy(depths)
    depth_bits = depths.view(np.uint32 if depths.dtype == np.float32 else np.uint64)
    offsets, ids = cpu_projection.bin_tiles(  # radii in the means' float type, as bin_gaussians rounds
        to_numpy(means2d), to_numpy(radii.to(means2d.dtype)), depth_bits, width, height, TILE_SIZE, get_num_threads()
    )
    return TileBins(torch.from_numpy(offsets), torch.from_numpy(ids), *tile_grid(width, height))


def rasterize_pixels(
    means2d: Tensor,  # [C, N, 2]
    conics: Tensor,  # [C, N, 3]
    colors: Tensor,  # [C, N, 3]
    opacities: Tensor,  # [C, N] in (0, 1)
    depths: Tensor,  # [C, N]
    background: Tensor,  # [C, 3]
    bins: TileBins,
    width: int,
    height: int,
    absgrad: bool = False,
) -> tuple[Tensor, Tensor, Tensor]:
    """Blend projected Gaussians with the compiled CPU kernels: RGB [C, H, W, 3], alpha [C, H, W],
    blended depth [C, H, W]. Same rules and outputs as ``_rasterize_pixels``, and with ``absgrad``
    the same ``means2d.absgrad`` after the backward pass."""
    return _CompiledBlend.apply(means2d, conics, colors, opacities, depths, background, bins, width, height, absgrad)


class _CompiledBlend(torch.autograd.Function):
    @staticmethod
    def forward(ctx, means2d, conics, colors, opacities, depths, background, bins, width, height, absgrad):  # noqa: ANN001
        from scene4d.splat import cpu_kernels

        cutoffs = torch.log(opacities.detach() / ALPHA_MIN)
        inputs = [to_numpy(t) for t in (means2d, conics, colors, opacities, depths, cutoffs, background)]
        num_cameras, dtype = means2d.shape[0], inputs[0].dtype
        rgb = np.empty((num_cameras, height, width, 3), dtype)
        depth = np.empty((num_cameras, height, width), dtype)
        transmittance = np.empty((num_cameras, height, width), dtype)
        last = np.empty((num_cameras, height, width), np.int64)
        layout = (to_numpy(bins.offsets), to_numpy(bins.gaussian_ids), width, height, TILE_SIZE, bins.tiles_x,
                  bins.tiles_x * bins.tiles_y)  # fmt: skip
        cpu_kernels.blend_forward(*inputs, *layout, rgb, depth, transmittance, last)
        ctx.save_for_backward(means2d, conics, colors, opacities, depths, background)
        ctx.extras = (inputs, layout, transmittance, last)
        ctx.absgrad = absgrad
        return torch.from_numpy(rgb), torch.from_numpy(1.0 - transmittance), torch.from_numpy(depth)

    @staticmethod
    def backward(ctx, grad_rgb, grad_alpha, grad_depth):  # noqa: ANN001
        from numba import get_num_threads

        from scene4d.splat import cpu_kernels

        inputs, layout, transmittance, last = ctx.extras
        chunks = get_num_threads()
        grads = [np.zeros((chunks, *array.shape), array.dtype) for array in (*inputs[:5], inputs[0])]
        upstream = [to_numpy(g) for g in (grad_rgb, grad_alpha, grad_depth)]
        cpu_kernels.blend_backward(*inputs, *layout, transmittance, last, *upstream, *grads)
        if ctx.absgrad:
            ctx.saved_tensors[0].absgrad = torch.from_numpy(grads[5].sum(axis=0))  # means2d, as gsplat does
        # rgb = sum_i c_i alpha_i T_i + T_final background: the background's gradient is grad_rgb * T_final.
        grad_background = torch.einsum("chwk,chw->ck", grad_rgb, torch.from_numpy(transmittance).to(grad_rgb))
        return (*(torch.from_numpy(g.sum(axis=0)) for g in grads[:5]), grad_background, None, None, None, None)


def _rasterize_pixels(
    means2d: Tensor,  # [C, N, 2]
    conics: Tensor,  # [C, N, 3]
    colors: Tensor,  # [C, N, 3]
    opacities: Tensor,  # [C, N] in (0, 1)
    depths: Tensor,  # [C, N]
    background: Tensor,  # [C, 3]
    bins: TileBins,
    width: int,
    height: int,
    absgrad: bool = False,
) -> tuple[Tensor, Tensor, Tensor]:
    """Plain PyTorch twin of ``rasterize_pixels``: one tile at a time, all its pixels against
    its depth-sorted Gaussians, transmittance by ``cumprod``. With ``absgrad`` a hook on each tile's
    pixel-to-mean offsets [P, n, 2] sums their absolute gradients into a buffer, which a hook on
    ``means2d`` (run once all of them have) hands over as ``means2d.absgrad`` at each backward pass."""
    absgrads = torch.zeros_like(means2d) if absgrad and means2d.requires_grad else None
    if absgrads is not None:
        means2d.register_hook(partial(publish_absgrad, weakref.ref(means2d), absgrads))
    images = []
    for camera in range(means2d.shape[0]):
        rows = []
        for tile_y in range(bins.tiles_y):
            row = []
            for tile_x in range(bins.tiles_x):
                cell = camera * bins.tiles_x * bins.tiles_y + tile_y * bins.tiles_x + tile_x
                ids = bins.gaussian_ids[bins.offsets[cell] : bins.offsets[cell + 1]]
                top, left = tile_y * TILE_SIZE, tile_x * TILE_SIZE
                rows_here, cols_here = min(TILE_SIZE, height - top), min(TILE_SIZE, width - left)
                pixels = tile_pixel_centres(top, left, rows_here, cols_here, means2d.dtype)
                offset = pixels[:, None, :] - means2d[camera, ids][None]
                if absgrads is not None:
                    offset.register_hook(partial(add_absgrad, absgrads[camera], ids))
                blended = _blend_tile(
                    offset, conics[camera, ids], colors[camera, ids], opacities[camera, ids], depths[camera, ids],
                    background[camera],
                )  # fmt: skip
                row.append(blended.reshape(rows_here, cols_here, 5))
            rows.append(torch.cat(row, dim=1))
        images.append(torch.cat(rows, dim=0))
    image = torch.stack(images)
    return image[..., :3], image[..., 3], image[..., 4]


def tile_pixel_centres(top: int, left: int, rows: int, cols: int, dtype: torch.dtype) -> Tensor:
    """Pixel centres [rows * cols, 2] (x, y) of a tile, row-major."""
    y, x = torch.meshgrid(
        torch.arange(top, top + rows, dtype=dtype) + 0.5,
        torch.arange(left, left + cols, dtype=dtype) + 0.5,
        indexing="ij",
    )
    return torch.stack([x, y], dim=-1).reshape(-1, 2)


def publish_absgrad(means2d: weakref.ref, absgrads: Tensor, grad: Tensor) -> None:
    """Set the summed absolute gradients [C, N, 2] of this backward pass as ``means2d.absgrad`` (a weak
    reference: the hook must not keep its own tensor alive) and clear the buffer for the next one."""
    means2d().absgrad = absgrads.clone()
    absgrads.zero_()


def add_absgrad(absgrad: Tensor, ids: Tensor, grad_offset: Tensor) -> None:
    """Add the absolute gradients [P, n, 2] of a tile's offsets, summed over its pixels, to the
    ``absgrad`` [N, 2] of its Gaussians ``ids`` (the offset is pixel minus mean: the same magnitude)."""
    absgrad.index_add_(0, ids, grad_offset.abs().sum(dim=0))


def _blend_tile(
    offset: Tensor,  # [P, n, 2] pixel centre minus 2D mean, Gaussians depth-sorted
    conics: Tensor,  # [n, 3]
    colors: Tensor,  # [n, 3]
    opacities: Tensor,  # [n]
    depths: Tensor,  # [n]
    background: Tensor,  # [3]
) -> Tensor:
    """Front-to-back alpha blending of one tile -> [P, 5] (RGB, alpha, blended depth)."""
    dx, dy = offset[..., 0], offset[..., 1]
    sigma = 0.5 * (conics[:, 0] * dx * dx + conics[:, 2] * dy * dy) + conics[:, 1] * dx * dy
    alpha = torch.clamp(opacities * torch.exp(-sigma), max=ALPHA_MAX)
    alpha = torch.where((sigma >= 0) & (alpha >= ALPHA_MIN), alpha, torch.zeros_like(alpha))
    before = torch.cumprod(torch.cat([torch.ones_like(alpha[:, :1]), 1 - alpha[:, :-1]], dim=1), dim=1)
    # Transmittance only falls, so "stop before reaching 1e-4" keeps a prefix of the list.
    alpha = torch.where(before * (1 - alpha) > TRANSMITTANCE_MIN, alpha, torch.zeros_like(alpha))
    weights = alpha * before
    final = torch.prod(1 - alpha, dim=1)
    rgb = weights @ colors + final[:, None] * background
    return torch.cat([rgb, (1 - final)[:, None], (weights @ depths)[:, None]], dim=1)


def rasterize_gsplat(
    means: Tensor, quats: Tensor, log_scales: Tensor, opacity_logits: Tensor, colors: Tensor,
    cameras: Cameras, background: Tensor, sh_degree: int | None, mode: RasterizeMode, absgrad: bool,
) -> RenderResult:  # fmt: skip
    """gsplat's CUDA rasterizer (imported here: it is optional and needs a GPU). Its blending differs
    from ``cpu`` and ``torch`` in one rule: a Gaussian's alpha is capped at 0.999, not 0.99."""
    if not gsplat_extension_loads():
        raise Scene4DError(
            "the gsplat backend needs the gsplat package (pip install gsplat) and its CUDA extension, which gsplat "
            "builds on first use with the CUDA toolkit (nvcc); install them or use backend 'cpu'"
        )
    from gsplat import rasterization

    render, alpha, info = rasterization(
        means, quats, torch.exp(log_scales), torch.sigmoid(opacity_logits), colors,
        cameras.w2c.to(means), cameras.K.to(means), cameras.width, cameras.height,
        sh_degree=sh_degree, backgrounds=background, render_mode="RGB+ED",  # gsplat appends the depth's zero
        eps2d=BLUR_2D[mode], rasterize_mode=mode, absgrad=absgrad, packed=False,  # info [C, N, ...] as the others'
    )  # fmt: skip
    return RenderResult(render[..., :3], alpha[..., 0], render[..., 3], info)
