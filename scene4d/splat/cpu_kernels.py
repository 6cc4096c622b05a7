"""Compiled CPU kernels (numba) for tile-based alpha blending of projected Gaussians, and its backward.

Imported only by ``scene4d.splat.rasterize.rasterize_pixels`` on first use; numba compiles
on the first call and caches the machine code on disk. The plain PyTorch twin is
``scene4d.splat.rasterize._rasterize_pixels``; both follow the same rules:

- pixel (row, col) has its centre at (col + 0.5, row + 0.5);
- ``alpha = min(0.99, opacity * exp(-sigma))`` with ``sigma = 0.5 (a dx^2 + c dy^2) + b dx dy``;
  Gaussians with ``alpha < 1/255`` (or ``sigma < 0``) are skipped;
- blending stops before the Gaussian that would bring the transmittance to 1e-4 or below.

Within a tile the loops run Gaussian by Gaussian (front to back, and back to front for the
gradients) over only the pixels of the box that holds the Gaussian's ``sigma <= cutoff``
ellipse, keeping each pixel's running state in small per-tile arrays: a splat of a few pixels
then costs a few pixels, not the whole tile. Each pixel still sees its Gaussians in depth order,
so the arithmetic per pixel is that of a per-pixel loop.

Arrays are per camera: ``means2d [C, N, 2]``, ``conics [C, N, 3]``, ``colors [C, N, 3]``,
``opacities [C, N]``, ``depths [C, N]``, ``sigma_cutoffs [C, N]`` = ``ln(255 opacity)`` (a
Gaussian with ``sigma`` beyond it has ``alpha < 1/255``; testing it first skips the ``exp`` for
most pixels of a tile, the exact test still decides near the boundary); ``offsets [C * tiles + 1]``
and ``ids [M]`` are the depth-sorted per-tile lists of ``bin_gaussians``.
"""

import math

import numpy as np
from numba import njit, prange

from scene4d.splat.rasterize import ALPHA_MAX, ALPHA_MIN, TRANSMITTANCE_MIN

CUTOFF_MARGIN = 1e-4
BOX_SLACK = 1e-4  # relative and absolute (pixels) widening of the ellipse box: it may hold extra pixels, never miss one


@njit(cache=True)
def gather_tile(camera, ids, start, end, means2d, conics, colors, opacities, depths, sigma_cutoffs):
    """The tile's Gaussians as one contiguous [n, 13] block (x, y, a, b, c, opacity, cutoff, r, g, b,
    depth, x extent, y extent): the pixel loops then read memory in order instead of jumping through
    ``ids``. The extents bound ``|dx|`` and ``|dy|`` over the ellipse ``sigma <= cutoff + margin``:
    ``sqrt(2 s Sigma_xx)`` with ``Sigma = conic^-1``; -1 when no pixel can pass (``s <= 0``) and
    infinite when the conic is not positive definite (every pixel is tested)."""
    block = np.empty((end - start, 13), means2d.dtype)
    for k in range(start, end):
        g = ids[k]
        row = block[k - start]
        row[0], row[1] = means2d[camera, g, 0], means2d[camera, g, 1]
        a, b, c = conics[camera, g, 0], conics[camera, g, 1], conics[camera, g, 2]
        row[2], row[3], row[4] = a, b, c
        row[5], row[6] = opacities[camera, g], sigma_cutoffs[camera, g]
        row[7], row[8], row[9] = colors[camera, g, 0], colors[camera, g, 1], colors[camera, g, 2]
        row[10] = depths[camera, g]
        # In float64 like the pixel test: in float32, a c - b^2 cancels for long thin splats.
        a, b, c = float(a), float(b), float(c)
        level = float(sigma_cutoffs[camera, g]) + CUTOFF_MARGIN
        determinant = a * c - b * b
        if level <= 0.0:
            row[11], row[12] = -1.0, -1.0
        elif determinant <= 0.0 or a <= 0.0:
            row[11], row[12] = np.inf, np.inf
        else:
            row[11] = math.sqrt(2.0 * level * c / determinant) * (1.0 + BOX_SLACK) + BOX_SLACK
            row[12] = math.sqrt(2.0 * level * a / determinant) * (1.0 + BOX_SLACK) + BOX_SLACK
    return block


@njit(cache=True)
def pixel_range(centre, extent, first, count):
    """Indices ``i`` in ``[first, first + count)`` whose pixel centre ``i + 0.5`` lies within ``extent`` of
    ``centre``, as a half-open (low, high); empty when ``extent < 0``."""
    if extent < 0.0:
        return first, first
    low = max(float(first), centre - extent - 0.5)
    high = min(float(first + count - 1), centre + extent - 0.5)
    return int(math.ceil(low)), int(math.floor(high)) + 1


@njit(cache=True, inline="always")
def splat_alpha(dx, dy, a, b, c, opacity, level):
    """(falloff ``exp(-sigma)``, ``opacity * falloff``, alpha) at pixel offset (dx, dy) from a Gaussian
    with conic (a, b, c) and ``level`` = its sigma cutoff + margin; all three 0 where the rules skip
    it (``sigma < 0``, ``alpha < 1/255``). Scalars, so callers keep them in registers across pixels."""
    sigma = 0.5 * (a * dx * dx + c * dy * dy) + b * dx * dy
    if sigma < 0.0 or sigma > level:
        return 0.0, 0.0, 0.0
    falloff = math.exp(-sigma)
    raw_alpha = opacity * falloff
    alpha = min(ALPHA_MAX, raw_alpha)
    if alpha < ALPHA_MIN:
        return 0.0, 0.0, 0.0
    return falloff, raw_alpha, alpha


@njit(parallel=True, cache=True)
def blend_forward(
    means2d, conics, colors, opacities, depths, sigma_cutoffs, background, offsets, ids,
    width, height, tile_size, tiles_x, tiles_per_camera,
    out_rgb, out_depth, out_transmittance, out_last,
):  # fmt: skip
    """Front-to-back blending; writes colour, accumulated depth, final transmittance and, per
    pixel, one past the index (in ``ids``) of the last contributing Gaussian."""
    for job in prange(offsets.shape[0] - 1):
        camera, tile = job // tiles_per_camera, job % tiles_per_camera
        top, left = (tile // tiles_x) * tile_size, (tile % tiles_x) * tile_size
        rows, cols = min(tile_size, height - top), min(tile_size, width - left)
        start, end = offsets[job], offsets[job + 1]
        block = gather_tile(camera, ids, start, end, means2d, conics, colors, opacities, depths, sigma_cutoffs)
        transmittance = np.ones(rows * cols, means2d.dtype)
        blended = np.zeros((rows * cols, 4), means2d.dtype)  # red, green, blue, depth
        last = np.full(rows * cols, start, np.int64)
        done = np.zeros(rows * cols, np.bool_)
        remaining = rows * cols
        for k in range(end - start):
            gaussian = block[k]
            x, y, a, b, c = gaussian[0], gaussian[1], gaussian[2], gaussian[3], gaussian[4]
            opacity, level = gaussian[5], gaussian[6] + CUTOFF_MARGIN
            row_low, row_high = pixel_range(y, gaussian[12], top, rows)
            col_low, col_high = pixel_range(x, gaussian[11], left, cols)
            for row in range(row_low, row_high):
                for col in range(col_low, col_high):
                    pixel = (row - top) * cols + col - left
                    if done[pixel]:
                        continue
                    _, _, alpha = splat_alpha(col + 0.5 - x, row + 0.5 - y, a, b, c, opacity, level)
                    if alpha == 0.0:
                        continue
                    next_transmittance = transmittance[pixel] * (1.0 - alpha)
                    if next_transmittance <= TRANSMITTANCE_MIN:
                        done[pixel] = True
                        remaining -= 1
                        continue
                    weight = alpha * transmittance[pixel]
                    blended[pixel, 0] += weight * gaussian[7]
                    blended[pixel, 1] += weight * gaussian[8]
                    blended[pixel, 2] += weight * gaussian[9]
                    blended[pixel, 3] += weight * gaussian[10]
                    transmittance[pixel] = next_transmittance
                    last[pixel] = start + k + 1
            if remaining == 0:
                break
        for row in range(top, top + rows):
            for col in range(left, left + cols):
                pixel = (row - top) * cols + col - left
                for channel in range(3):
                    out_rgb[camera, row, col, channel] = (
                        blended[pixel, channel] + transmittance[pixel] * background[camera, channel]
                    )
                out_depth[camera, row, col] = blended[pixel, 3]
                out_transmittance[camera, row, col] = transmittance[pixel]
                out_last[camera, row, col] = last[pixel]


@njit(parallel=True, cache=True)
def blend_backward(
    means2d, conics, colors, opacities, depths, sigma_cutoffs, background, offsets, ids,
    width, height, tile_size, tiles_x, tiles_per_camera,
    transmittance_final, last, grad_rgb, grad_alpha, grad_depth,
    grad_means2d, grad_conics, grad_colors, grad_opacities, grad_depths, absgrad_means2d,
):  # fmt: skip
    """Back-to-front pass of the blending gradients (3DGS). Each tile accumulates into a local
    [n, 12] block, added once per tile into the slice ``grad_*[chunk]`` of its parallel chunk
    (leading dimension = number of chunks), which the caller sums. ``absgrad_means2d`` sums the
    absolute value of each pixel's gradient of ``means2d`` (AbsGS), per component.

    Per pixel, with ``S`` the colour of everything behind Gaussian i plus the background:
    ``dC/dalpha_i = T_i c_i - S / (1 - alpha_i)`` and ``d(alpha)/d(alpha_i) = T_final / (1 - alpha_i)``.
    """
    chunks = grad_means2d.shape[0]
    jobs = offsets.shape[0] - 1
    for chunk in prange(chunks):
        for job in range(chunk, jobs, chunks):
            camera, tile = job // tiles_per_camera, job % tiles_per_camera
            top, left = (tile // tiles_x) * tile_size, (tile % tiles_x) * tile_size
            start, end = offsets[job], offsets[job + 1]
            block = gather_tile(camera, ids, start, end, means2d, conics, colors, opacities, depths, sigma_cutoffs)
            grads = blend_tile_backward(
                block, camera, top, left, min(tile_size, height - top), min(tile_size, width - left), start,
                transmittance_final, last, background[camera], grad_rgb, grad_alpha, grad_depth,
            )  # fmt: skip
            for k in range(end - start):
                g = ids[start + k]
                grad_means2d[chunk, camera, g, 0] += grads[k, 0]
                grad_means2d[chunk, camera, g, 1] += grads[k, 1]
                grad_conics[chunk, camera, g, 0] += grads[k, 2]
                grad_conics[chunk, camera, g, 1] += grads[k, 3]
                grad_conics[chunk, camera, g, 2] += grads[k, 4]
                grad_opacities[chunk, camera, g] += grads[k, 5]
                grad_colors[chunk, camera, g, 0] += grads[k, 6]
                grad_colors[chunk, camera, g, 1] += grads[k, 7]
                grad_colors[chunk, camera, g, 2] += grads[k, 8]
                grad_depths[chunk, camera, g] += grads[k, 9]
                absgrad_means2d[chunk, camera, g, 0] += grads[k, 10]
                absgrad_means2d[chunk, camera, g, 1] += grads[k, 11]


@njit(cache=True)
def blend_tile_backward(
    block, camera, top, left, rows, cols, start, transmittance_final, last, background, grad_rgb, grad_alpha,
    grad_depth,
):  # fmt: skip
    """Gradients [n, 12] (dx, dy, da, db, dc, dopacity, dr, dg, db, ddepth, |dx|, |dy|) of the tile's
    Gaussians, the last two summing each pixel's absolute value: back to front, each over the pixels
    of its box that it was blended into."""
    grads = np.zeros((block.shape[0], 12), block.dtype)
    pixels = rows * cols
    count = np.empty(pixels, np.int64)
    transmittance = np.empty(pixels, block.dtype)
    behind = np.zeros((pixels, 4), block.dtype)  # colour and depth of everything behind, with the background
    upstream = np.empty((pixels, 5), block.dtype)  # dL/d(r, g, b, depth), T_final dL/dalpha
    for row in range(top, top + rows):
        for col in range(left, left + cols):
            pixel = (row - top) * cols + col - left
            count[pixel] = last[camera, row, col] - start
            final = transmittance_final[camera, row, col]
            transmittance[pixel] = final
            for channel in range(3):
                behind[pixel, channel] = final * background[channel]
                upstream[pixel, channel] = grad_rgb[camera, row, col, channel]
            upstream[pixel, 3] = grad_depth[camera, row, col]
            upstream[pixel, 4] = final * grad_alpha[camera, row, col]
    for k in range(count.max() - 1, -1, -1):
        gaussian = block[k]
        x, y, a, b, c = gaussian[0], gaussian[1], gaussian[2], gaussian[3], gaussian[4]
        opacity, level = gaussian[5], gaussian[6] + CUTOFF_MARGIN
        red, green, blue, z = gaussian[7], gaussian[8], gaussian[9], gaussian[10]
        row_low, row_high = pixel_range(y, gaussian[12], top, rows)
        col_low, col_high = pixel_range(x, gaussian[11], left, cols)
        d_x = d_y = d_a = d_b = d_c = d_opacity = d_red = d_green = d_blue = d_depth = abs_x = abs_y = 0.0
        for row in range(row_low, row_high):
            for col in range(col_low, col_high):
                pixel = (row - top) * cols + col - left
                if k >= count[pixel]:
                    continue
                dx, dy = col + 0.5 - x, row + 0.5 - y
                falloff, raw_alpha, alpha = splat_alpha(dx, dy, a, b, c, opacity, level)
                if alpha == 0.0:
                    continue
                dl_dr, dl_dg, dl_db = upstream[pixel, 0], upstream[pixel, 1], upstream[pixel, 2]
                dl_ddepth = upstream[pixel, 3]
                inverse = 1.0 / (1.0 - alpha)
                transmittance[pixel] *= inverse
                weight = alpha * transmittance[pixel]
                d_red += weight * dl_dr
                d_green += weight * dl_dg
                d_blue += weight * dl_db
                d_depth += weight * dl_ddepth
                dl_dalpha = transmittance[pixel] * (red * dl_dr + green * dl_dg + blue * dl_db + z * dl_ddepth)
                dl_dalpha -= (
                    behind[pixel, 0] * dl_dr + behind[pixel, 1] * dl_dg + behind[pixel, 2] * dl_db
                    + behind[pixel, 3] * dl_ddepth
                ) * inverse  # fmt: skip
                dl_dalpha += upstream[pixel, 4] * inverse
                behind[pixel, 0] += weight * red
                behind[pixel, 1] += weight * green
                behind[pixel, 2] += weight * blue
                behind[pixel, 3] += weight * z
                if raw_alpha > ALPHA_MAX:
                    continue  # clamped: alpha does not depend on opacity or position
                d_opacity += falloff * dl_dalpha
                dl_dsigma = -alpha * dl_dalpha
                d_a += 0.5 * dx * dx * dl_dsigma
                d_b += dx * dy * dl_dsigma
                d_c += 0.5 * dy * dy * dl_dsigma
                pixel_grad_x, pixel_grad_y = -(a * dx + b * dy) * dl_dsigma, -(b * dx + c * dy) * dl_dsigma
                d_x += pixel_grad_x
                d_y += pixel_grad_y
                abs_x += abs(pixel_grad_x)
                abs_y += abs(pixel_grad_y)
        grads[k, 0], grads[k, 1], grads[k, 2], grads[k, 3], grads[k, 4] = d_x, d_y, d_a, d_b, d_c
        grads[k, 5], grads[k, 6], grads[k, 7], grads[k, 8], grads[k, 9] = d_opacity, d_red, d_green, d_blue, d_depth
        grads[k, 10], grads[k, 11] = abs_x, abs_y
    return grads
