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

from numba import njit, prange

ALPHA_MIN = 1.0 / 255.0
ALPHA_MAX = 0.99
TRANSMITTANCE_MIN = 1e-4
CUTOFF_MARGIN = 1e-4


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
        for row in range(top, min(top + tile_size, height)):
            for col in range(left, min(left + tile_size, width)):
                transmittance, red, green, blue, depth = 1.0, 0.0, 0.0, 0.0, 0.0
                last = start
                for k in range(start, end):
                    g = ids[k]
                    dx = col + 0.5 - means2d[camera, g, 0]
                    dy = row + 0.5 - means2d[camera, g, 1]
                    sigma = 0.5 * (conics[camera, g, 0] * dx * dx + conics[camera, g, 2] * dy * dy)
                    sigma += conics[camera, g, 1] * dx * dy
                    if sigma < 0.0 or sigma > sigma_cutoffs[camera, g] + CUTOFF_MARGIN:
                        continue
                    alpha = min(ALPHA_MAX, opacities[camera, g] * math.exp(-sigma))
                    if alpha < ALPHA_MIN:
                        continue
                    next_transmittance = transmittance * (1.0 - alpha)
                    if next_transmittance <= TRANSMITTANCE_MIN:
                        break
                    weight = alpha * transmittance
                    red += weight * colors[camera, g, 0]
                    green += weight * colors[camera, g, 1]
                    blue += weight * colors[camera, g, 2]
                    depth += weight * depths[camera, g]
                    transmittance = next_transmittance
                    last = k + 1
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
    """Back-to-front pass of the blending gradients (3DGS): each parallel chunk accumulates into
    its own slice ``grad_*[chunk]`` (leading dimension = number of chunks), summed by the caller.

    Per pixel, with ``S`` the colour of everything behind Gaussian i plus the background:
    ``dC/dalpha_i = T_i c_i - S / (1 - alpha_i)`` and ``d(alpha)/d(alpha_i) = T_final / (1 - alpha_i)``.
    """
    chunks = grad_means2d.shape[0]
    jobs = offsets.shape[0] - 1
    for chunk in prange(chunks):
        for job in range(chunk, jobs, chunks):
            camera, tile = job // tiles_per_camera, job % tiles_per_camera
            top, left = (tile // tiles_x) * tile_size, (tile % tiles_x) * tile_size
            start = offsets[job]
            for row in range(top, min(top + tile_size, height)):
                for col in range(left, min(left + tile_size, width)):
                    final = transmittance_final[camera, row, col]
                    transmittance = final
                    behind_r = final * background[camera, 0]
                    behind_g = final * background[camera, 1]
                    behind_b = final * background[camera, 2]
                    behind_depth = 0.0
                    dl_dr, dl_dg, dl_db = (
                        grad_rgb[camera, row, col, 0],
                        grad_rgb[camera, row, col, 1],
                        grad_rgb[camera, row, col, 2],
                    )
                    dl_ddepth = grad_depth[camera, row, col]
                    dl_dalpha_pixel = grad_alpha[camera, row, col]
                    for k in range(last[camera, row, col] - 1, start - 1, -1):
                        g = ids[k]
                        dx = col + 0.5 - means2d[camera, g, 0]
                        dy = row + 0.5 - means2d[camera, g, 1]
                        a, b, c = conics[camera, g, 0], conics[camera, g, 1], conics[camera, g, 2]
                        sigma = 0.5 * (a * dx * dx + c * dy * dy) + b * dx * dy
                        if sigma < 0.0 or sigma > sigma_cutoffs[camera, g] + CUTOFF_MARGIN:
                            continue
                        gaussian = math.exp(-sigma)
                        raw_alpha = opacities[camera, g] * gaussian
                        alpha = min(ALPHA_MAX, raw_alpha)
                        if alpha < ALPHA_MIN:
                            continue
                        one_minus = 1.0 - alpha
                        transmittance /= one_minus
                        weight = alpha * transmittance
                        r, gr, bl, z = (
                            colors[camera, g, 0],
                            colors[camera, g, 1],
                            colors[camera, g, 2],
                            depths[camera, g],
                        )
                        grad_colors[chunk, camera, g, 0] += weight * dl_dr
                        grad_colors[chunk, camera, g, 1] += weight * dl_dg
                        grad_colors[chunk, camera, g, 2] += weight * dl_db
                        grad_depths[chunk, camera, g] += weight * dl_ddepth
                        dl_dalpha = transmittance * (r * dl_dr + gr * dl_dg + bl * dl_db + z * dl_ddepth)
                        dl_dalpha -= (behind_r * dl_dr + behind_g * dl_dg + behind_b * dl_db) / one_minus
                        dl_dalpha -= behind_depth * dl_ddepth / one_minus
                        dl_dalpha += final / one_minus * dl_dalpha_pixel
                        behind_r += weight * r
                        behind_g += weight * gr
                        behind_b += weight * bl
                        behind_depth += weight * z
                        if raw_alpha > ALPHA_MAX:
                            continue  # clamped: alpha does not depend on opacity or position
                        grad_opacities[chunk, camera, g] += gaussian * dl_dalpha
                        dl_dsigma = -alpha * dl_dalpha
                        grad_conics[chunk, camera, g, 0] += 0.5 * dx * dx * dl_dsigma
                        grad_conics[chunk, camera, g, 1] += dx * dy * dl_dsigma
                        grad_conics[chunk, camera, g, 2] += 0.5 * dy * dy * dl_dsigma
                        grad_means2d[chunk, camera, g, 0] -= (a * dx + b * dy) * dl_dsigma
                        grad_means2d[chunk, camera, g, 1] -= (b * dx + c * dy) * dl_dsigma
