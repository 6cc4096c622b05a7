"""Compiled CPU kernels (numba) for tile-based alpha blending of projected Gaussians, and its backward.

Imported only by ``scene4d.splat.rasterize.rasterize_pixels`` on first use; numba compiles
on the first call and caches the machine code on disk. The plain PyTorch twin is
``scene4d.splat.rasterize._rasterize_pixels``; both follow the same rules:

- pixel (row, col) has its centre at (col + 0.5, row + 0.5);
- ``alpha = min(0.99, opacity * exp(-sigma))`` with ``sigma = 0.5 (a dx^2 + c dy^2) + b dx dy``;
  Gaussians with ``alpha < 1/255`` (or ``sigma < 0``) are skipped;
- blending stops before the Gaussian that would bring the transmittance to 1e-4 or below.

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


@njit(cache=True)
def gather_tile(camera, ids, start, end, means2d, conics, colors, opacities, depths, sigma_cutoffs):
    """The tile's Gaussians as one contiguous [n, 12] block (x, y, a, b, c, opacity, cutoff, r, g, b,
    depth, unused): the pixel loops then read memory in order instead of jumping through ``ids``."""
    block = np.empty((end - start, 12), means2d.dtype)
    for k in range(start, end):
        g = ids[k]
        row = block[k - start]
        row[0], row[1] = means2d[camera, g, 0], means2d[camera, g, 1]
        row[2], row[3], row[4] = conics[camera, g, 0], conics[camera, g, 1], conics[camera, g, 2]
        row[5], row[6] = opacities[camera, g], sigma_cutoffs[camera, g]
        row[7], row[8], row[9] = colors[camera, g, 0], colors[camera, g, 1], colors[camera, g, 2]
        row[10] = depths[camera, g]
    return block


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
        start, end = offsets[job], offsets[job + 1]
        block = gather_tile(camera, ids, start, end, means2d, conics, colors, opacities, depths, sigma_cutoffs)
        for row in range(top, min(top + tile_size, height)):
            for col in range(left, min(left + tile_size, width)):
                transmittance, red, green, blue, depth = 1.0, 0.0, 0.0, 0.0, 0.0
                last = start
                for k in range(end - start):
                    gaussian = block[k]
                    dx = col + 0.5 - gaussian[0]
                    dy = row + 0.5 - gaussian[1]
                    sigma = 0.5 * (gaussian[2] * dx * dx + gaussian[4] * dy * dy) + gaussian[3] * dx * dy
                    if sigma < 0.0 or sigma > gaussian[6] + CUTOFF_MARGIN:
                        continue
                    alpha = min(ALPHA_MAX, gaussian[5] * math.exp(-sigma))
                    if alpha < ALPHA_MIN:
                        continue
                    next_transmittance = transmittance * (1.0 - alpha)
                    if next_transmittance <= TRANSMITTANCE_MIN:
                        break
                    weight = alpha * transmittance
                    red += weight * gaussian[7]
                    green += weight * gaussian[8]
                    blue += weight * gaussian[9]
                    depth += weight * gaussian[10]
                    transmittance = next_transmittance
                    last = start + k + 1
                out_rgb[camera, row, col, 0] = red + transmittance * background[camera, 0]
                out_rgb[camera, row, col, 1] = green + transmittance * background[camera, 1]
                out_rgb[camera, row, col, 2] = blue + transmittance * background[camera, 2]
                out_depth[camera, row, col] = depth
                out_transmittance[camera, row, col] = transmittance
                out_last[camera, row, col] = last


@njit(parallel=True, cache=True)
def blend_backward(
    means2d, conics, colors, opacities, depths, sigma_cutoffs, background, offsets, ids,
    width, height, tile_size, tiles_x, tiles_per_camera,
    transmittance_final, last, grad_rgb, grad_alpha, grad_depth,
    grad_means2d, grad_conics, grad_colors, grad_opacities, grad_depths,
):  # fmt: skip
    """Back-to-front pass of the blending gradients (3DGS). Each tile accumulates into a local
    [n, 10] block, added once per tile into the slice ``grad_*[chunk]`` of its parallel chunk
    (leading dimension = number of chunks), which the caller sums.

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
            grads = np.zeros((end - start, 10), means2d.dtype)  # dx, dy, da, db, dc, dopacity, dr, dg, db, ddepth
            for row in range(top, min(top + tile_size, height)):
                for col in range(left, min(left + tile_size, width)):
                    blend_pixel_backward(
                        block, grads, last[camera, row, col] - start, col + 0.5, row + 0.5,
                        transmittance_final[camera, row, col], background[camera], grad_rgb[camera, row, col],
                        grad_alpha[camera, row, col], grad_depth[camera, row, col],
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


@njit(cache=True)
def blend_pixel_backward(block, grads, count, x, y, final, background, dl_drgb, dl_dalpha_pixel, dl_ddepth):
    """Gradients of one pixel into the tile's ``grads`` block; ``count`` Gaussians of ``block`` were blended."""
    transmittance = final
    behind_r, behind_g, behind_b = final * background[0], final * background[1], final * background[2]
    behind_depth = 0.0
    dl_dr, dl_dg, dl_db = dl_drgb[0], dl_drgb[1], dl_drgb[2]
    for k in range(count - 1, -1, -1):
        gaussian = block[k]
        dx, dy = x - gaussian[0], y - gaussian[1]
        a, b, c = gaussian[2], gaussian[3], gaussian[4]
        sigma = 0.5 * (a * dx * dx + c * dy * dy) + b * dx * dy
        if sigma < 0.0 or sigma > gaussian[6] + CUTOFF_MARGIN:
            continue
        falloff = math.exp(-sigma)
        raw_alpha = gaussian[5] * falloff
        alpha = min(ALPHA_MAX, raw_alpha)
        if alpha < ALPHA_MIN:
            continue
        one_minus = 1.0 - alpha
        transmittance /= one_minus
        weight = alpha * transmittance
        red, green, blue, z = gaussian[7], gaussian[8], gaussian[9], gaussian[10]
        grads[k, 6] += weight * dl_dr
        grads[k, 7] += weight * dl_dg
        grads[k, 8] += weight * dl_db
        grads[k, 9] += weight * dl_ddepth
        dl_dalpha = transmittance * (red * dl_dr + green * dl_dg + blue * dl_db + z * dl_ddepth)
        dl_dalpha -= (behind_r * dl_dr + behind_g * dl_dg + behind_b * dl_db + behind_depth * dl_ddepth) / one_minus
        dl_dalpha += final / one_minus * dl_dalpha_pixel
        behind_r += weight * red
        behind_g += weight * green
        behind_b += weight * blue
        behind_depth += weight * z
        if raw_alpha > ALPHA_MAX:
            continue  # clamped: alpha does not depend on opacity or position
        grads[k, 5] += falloff * dl_dalpha
        dl_dsigma = -alpha * dl_dalpha
        grads[k, 2] += 0.5 * dx * dx * dl_dsigma
        grads[k, 3] += dx * dy * dl_dsigma
        grads[k, 4] += 0.5 * dy * dy * dl_dsigma
        grads[k, 0] -= (a * dx + b * dy) * dl_dsigma
        grads[k, 1] -= (b * dx + c * dy) * dl_dsigma
