"""Compiled CPU kernels (numba) for the projection of Gaussians and its backward, and for the tile
binning: the ``cpu`` backend's twins of ``scene4d.splat.projection.project_gaussians`` and
``scene4d.splat.rasterize.bin_gaussians`` (same formulas, same outputs, same tile lists).

Imported on first use, like ``cpu_kernels``. Per Gaussian ``g`` and camera (``R``, ``t``, ``K``):
``p = R m + t``; the Jacobian ``J`` of the perspective map at ``p`` (x/z and y/z clamped to 1.3x the
field of view); ``cov2d = (J R) Sigma (J R)^T + blur I`` with ``Sigma = (Rq S)(Rq S)^T``; the conic is
``cov2d^-1`` as (a, b, c). The backward pass recomputes these per camera and sums the gradients of
``m``, the quaternion and the log-scales over cameras; the parallel loop runs over Gaussians, so
no two threads write the same output.
"""

import math

import numpy as np
from numba import njit, prange

from scene4d.splat.projection import NEAR_PLANE


@njit(cache=True)
def unit_quaternion(quats, g):
    """(w, x, y, z) of ``quats[g]`` divided by its norm, and the norm."""
    norm = math.sqrt(quats[g, 0] ** 2 + quats[g, 1] ** 2 + quats[g, 2] ** 2 + quats[g, 3] ** 2)
    return quats[g, 0] / norm, quats[g, 1] / norm, quats[g, 2] / norm, quats[g, 3] / norm, norm


@njit(cache=True)
def world_covariance(quats, log_scales, g):
    """``L = Rq diag(exp(s))`` as a flat 9-tuple (row-major) and ``Sigma = L L^T`` as (xx, xy, xz, yy, yz, zz)."""
    w, x, y, z, _ = unit_quaternion(quats, g)
    sx, sy, sz = math.exp(log_scales[g, 0]), math.exp(log_scales[g, 1]), math.exp(log_scales[g, 2])
    lmat = (
        (1 - 2 * (y * y + z * z)) * sx, 2 * (x * y - w * z) * sy, 2 * (x * z + w * y) * sz,
        2 * (x * y + w * z) * sx, (1 - 2 * (x * x + z * z)) * sy, 2 * (y * z - w * x) * sz,
        2 * (x * z - w * y) * sx, 2 * (y * z + w * x) * sy, (1 - 2 * (x * x + y * y)) * sz,
    )  # fmt: skip
    sigma = (
        lmat[0] ** 2 + lmat[1] ** 2 + lmat[2] ** 2,
        lmat[0] * lmat[3] + lmat[1] * lmat[4] + lmat[2] * lmat[5],
        lmat[0] * lmat[6] + lmat[1] * lmat[7] + lmat[2] * lmat[8],
        lmat[3] ** 2 + lmat[4] ** 2 + lmat[5] ** 2,
        lmat[3] * lmat[6] + lmat[4] * lmat[7] + lmat[5] * lmat[8],
        lmat[6] ** 2 + lmat[7] ** 2 + lmat[8] ** 2,
    )
    return lmat, sigma


@njit(cache=True)
def camera_point(means, g, rotation, translation, camera):
    """``p = R m + t`` of Gaussian ``g`` in ``camera``."""
    r, t = rotation[camera], translation[camera]
    m0, m1, m2 = means[g, 0], means[g, 1], means[g, 2]
    return (
        r[0, 0] * m0 + r[0, 1] * m1 + r[0, 2] * m2 + t[0],
        r[1, 0] * m0 + r[1, 1] * m1 + r[1, 2] * m2 + t[1],
        r[2, 0] * m0 + r[2, 1] * m1 + r[2, 2] * m2 + t[2],
    )


@njit(cache=True)
def screen_jacobian(px, py, pz, intrinsics, width, height):
    """What the perspective Jacobian is made of: ``z'`` (z, or 1 behind the near plane), ``u`` and ``v``
    (x/z' and y/z' clamped to 1.3x the field of view) and whether each clamp let its value through."""
    fx, fy, cx, cy = intrinsics[0, 0], intrinsics[1, 1], intrinsics[0, 2], intrinsics[1, 2]
    depth = pz if pz > NEAR_PLANE else 1.0
    tan_x, tan_y = 0.5 * width / fx, 0.5 * height / fy
    low_x, high_x = -(cx / fx + 0.3 * tan_x), (width - cx) / fx + 0.3 * tan_x
    low_y, high_y = -(cy / fy + 0.3 * tan_y), (height - cy) / fy + 0.3 * tan_y
    raw_u, raw_v = px / depth, py / depth
    u, v = min(max(raw_u, low_x), high_x), min(max(raw_v, low_y), high_y)
    u_free, v_free = low_x <= raw_u <= high_x, low_y <= raw_v <= high_y
    return depth, u, v, u_free, v_free


@njit(cache=True)
def screen_rows(rotation, camera, fx, fy, depth, u, v):
    """``M = J R`` as two 3-tuples, with ``J = [[fx/z', 0, -fx u/z'], [0, fy/z', -fy v/z']]``."""
    r = rotation[camera]
    j00, j02, j11, j12 = fx / depth, -fx * u / depth, fy / depth, -fy * v / depth
    row0 = (j00 * r[0, 0] + j02 * r[2, 0], j00 * r[0, 1] + j02 * r[2, 1], j00 * r[0, 2] + j02 * r[2, 2])
    row1 = (j11 * r[1, 0] + j12 * r[2, 0], j11 * r[1, 1] + j12 * r[2, 1], j11 * r[1, 2] + j12 * r[2, 2])
    return row0, row1


@njit(cache=True)
def sandwich(row0, row1, sigma):
    """``row0 Sigma row1^T`` for a symmetric ``Sigma`` given as (xx, xy, xz, yy, yz, zz)."""
    s0 = sigma[0] * row1[0] + sigma[1] * row1[1] + sigma[2] * row1[2]
    s1 = sigma[1] * row1[0] + sigma[3] * row1[1] + sigma[4] * row1[2]
    s2 = sigma[2] * row1[0] + sigma[4] * row1[1] + sigma[5] * row1[2]
    return row0[0] * s0 + row0[1] * s1 + row0[2] * s2


@njit(cache=True)
def screen_covariance(means, g, sigma, rotation, translation, intrinsics, width, height, blur, camera):
    """Gaussian ``g`` (world covariance ``sigma``) in ``camera``: the point ``p``, what the Jacobian is
    made of (``screen_jacobian``), the rows of ``M = J R``, the 2D covariance (a, b, c) with the blur,
    and whether it is valid (in front of the near plane, positive determinant)."""
    k = intrinsics[camera]
    px, py, pz = camera_point(means, g, rotation, translation, camera)
    depth, u, v, u_free, v_free = screen_jacobian(px, py, pz, k, width, height)
    row0, row1 = screen_rows(rotation, camera, k[0, 0], k[1, 1], depth, u, v)
    a = sandwich(row0, row0, sigma) + blur
    b = sandwich(row0, row1, sigma)
    c = sandwich(row1, row1, sigma) + blur
    valid = pz > NEAR_PLANE and a * c - b * b > 0
    return (px, py, pz), (depth, u, v, u_free, v_free), (row0, row1), (a, b, c), valid


@njit(parallel=True, cache=True)
def project_forward(
    means, quats, log_scales, rotation, translation, intrinsics, width, height, blur,
    out_means2d, out_conics, out_depths, out_radii,
):  # fmt: skip
    """Means2d [C, N, 2], conics [C, N, 3], depths [C, N] and int radii [C, N, 2] (0 = culled)."""
    for g in prange(means.shape[0]):
        _, sigma = world_covariance(quats, log_scales, g)
        for camera in range(rotation.shape[0]):
            k = intrinsics[camera]
            fx, fy, cx, cy = k[0, 0], k[1, 1], k[0, 2], k[1, 2]
            (px, py, pz), (depth, _, _, _, _), _, (a, b, c), valid = screen_covariance(
                means, g, sigma, rotation, translation, intrinsics, width, height, blur, camera
            )
            safe = a * c - b * b if valid else 1.0
            out_conics[camera, g, 0], out_conics[camera, g, 1], out_conics[camera, g, 2] = c / safe, -b / safe, a / safe
            mx, my = fx * px / depth + cx, fy * py / depth + cy
            out_means2d[camera, g, 0], out_means2d[camera, g, 1] = mx, my
            out_depths[camera, g] = pz
            rx, ry = math.ceil(3 * math.sqrt(max(a, 0.0))), math.ceil(3 * math.sqrt(max(c, 0.0)))
            on_screen = mx + rx > 0 and mx - rx < width and my + ry > 0 and my - ry < height
            keep = valid and on_screen
            out_radii[camera, g, 0], out_radii[camera, g, 1] = (rx, ry) if keep else (0, 0)


@njit(cache=True)
def conic_gradient(a, b, c, valid, g0, g1, g2):
    """Gradient of (a, b, c) = cov2d entries from that of the conic (c, -b, a) / (a c - b^2)
    (with the determinant held at 1 where the Gaussian is invalid, as the projection does)."""
    if not valid:
        return g2, -g1, g0
    inverse_sq = 1.0 / (a * c - b * b) ** 2
    return (
        (-c * c * g0 + b * c * g1 - b * b * g2) * inverse_sq,
        (2 * b * c * g0 - (a * c + b * b) * g1 + 2 * a * b * g2) * inverse_sq,
        (-b * b * g0 + a * b * g1 - a * a * g2) * inverse_sq,
    )


@njit(cache=True)
def quaternion_gradient(quats, g, grad_rotation):
    """Gradient of the raw quaternion [4] from that of its rotation matrix (9-tuple, row-major),
    through the normalisation ``n = q / |q|``."""
    w, x, y, z, norm = unit_quaternion(quats, g)
    r = grad_rotation
    dw = 2 * (-z * r[1] + y * r[2] + z * r[3] - x * r[5] - y * r[6] + x * r[7])
    dx = 2 * (y * r[1] + z * r[2] + y * r[3] - 2 * x * r[4] - w * r[5] + z * r[6] + w * r[7] - 2 * x * r[8])
    dy = 2 * (-2 * y * r[0] + x * r[1] + w * r[2] + x * r[3] + z * r[5] - w * r[6] + z * r[7] - 2 * y * r[8])
    dz = 2 * (-2 * z * r[0] - w * r[1] + x * r[2] + w * r[3] - 2 * z * r[4] + y * r[5] + x * r[6] + y * r[7])
    along = w * dw + x * dx + y * dy + z * dz
    return (dw - w * along) / norm, (dx - x * along) / norm, (dy - y * along) / norm, (dz - z * along) / norm


@njit(parallel=True, cache=True)
def project_backward(
    means, quats, log_scales, rotation, translation, intrinsics, width, height, blur,
    grad_means2d, grad_conics, grad_depths, out_grad_means, out_grad_quats, out_grad_log_scales,
):  # fmt: skip
    """Gradients of means [N, 3], quaternions [N, 4] and log-scales [N, 3] from those of the outputs
    of ``project_forward`` (radii have none)."""
    for g in prange(means.shape[0]):
        lmat, sigma = world_covariance(quats, log_scales, g)
        gm0, gm1, gm2 = 0.0, 0.0, 0.0
        gs = np.zeros(6)  # the symmetric gradient S of Sigma, as (xx, xy, xz, yy, yz, zz)
        for camera in range(rotation.shape[0]):
            k, r = intrinsics[camera], rotation[camera]
            fx, fy = k[0, 0], k[1, 1]
            (px, py, pz), (depth, u, v, u_free, v_free), (row0, row1), (a, b, c), valid = screen_covariance(
                means, g, sigma, rotation, translation, intrinsics, width, height, blur, camera
            )
            da, db, dc = conic_gradient(
                a, b, c, valid, grad_conics[camera, g, 0], grad_conics[camera, g, 1], grad_conics[camera, g, 2]
            )
            half_db = 0.5 * db
            # Sigma: M^T G M with the symmetric G = [[da, db/2], [db/2, dc]].
            for index, (i, j) in enumerate(((0, 0), (0, 1), (0, 2), (1, 1), (1, 2), (2, 2))):
                gs[index] += (
                    da * row0[i] * row0[j] + half_db * (row0[i] * row1[j] + row1[i] * row0[j]) + dc * row1[i] * row1[j]
                )
            # M = J R: dM = 2 G M Sigma, then dJ = dM R^T (entries 00, 02, 11, 12 of J).
            ms0 = (sandwich(row0, (1.0, 0.0, 0.0), sigma), sandwich(row0, (0.0, 1.0, 0.0), sigma),
                   sandwich(row0, (0.0, 0.0, 1.0), sigma))  # fmt: skip
            ms1 = (sandwich(row1, (1.0, 0.0, 0.0), sigma), sandwich(row1, (0.0, 1.0, 0.0), sigma),
                   sandwich(row1, (0.0, 0.0, 1.0), sigma))  # fmt: skip
            dm0 = (2 * (da * ms0[0] + half_db * ms1[0]), 2 * (da * ms0[1] + half_db * ms1[1]),
                   2 * (da * ms0[2] + half_db * ms1[2]))  # fmt: skip
            dm1 = (2 * (half_db * ms0[0] + dc * ms1[0]), 2 * (half_db * ms0[1] + dc * ms1[1]),
                   2 * (half_db * ms0[2] + dc * ms1[2]))  # fmt: skip
            dj00 = dm0[0] * r[0, 0] + dm0[1] * r[0, 1] + dm0[2] * r[0, 2]
            dj02 = dm0[0] * r[2, 0] + dm0[1] * r[2, 1] + dm0[2] * r[2, 2]
            dj11 = dm1[0] * r[1, 0] + dm1[1] * r[1, 1] + dm1[2] * r[1, 2]
            dj12 = dm1[0] * r[2, 0] + dm1[1] * r[2, 1] + dm1[2] * r[2, 2]
            inv_depth = 1.0 / depth
            gx, gy = grad_means2d[camera, g, 0], grad_means2d[camera, g, 1]
            dpx, dpy = gx * fx * inv_depth, gy * fy * inv_depth
            d_depth = -(gx * fx * px + gy * fy * py) * inv_depth * inv_depth
            d_depth += (-fx * dj00 + fx * u * dj02 - fy * dj11 + fy * v * dj12) * inv_depth * inv_depth
            du, dv = -fx * dj02 * inv_depth, -fy * dj12 * inv_depth
            if u_free:
                dpx += du * inv_depth
                d_depth -= du * px * inv_depth * inv_depth
            if v_free:
                dpy += dv * inv_depth
                d_depth -= dv * py * inv_depth * inv_depth
            dpz = grad_depths[camera, g] + (d_depth if pz > NEAR_PLANE else 0.0)
            gm0 += r[0, 0] * dpx + r[1, 0] * dpy + r[2, 0] * dpz
            gm1 += r[0, 1] * dpx + r[1, 1] * dpy + r[2, 1] * dpz
            gm2 += r[0, 2] * dpx + r[1, 2] * dpy + r[2, 2] * dpz
        out_grad_means[g, 0], out_grad_means[g, 1], out_grad_means[g, 2] = gm0, gm1, gm2
        # Sigma = L L^T: dL = 2 S L.
        s = ((gs[0], gs[1], gs[2]), (gs[1], gs[3], gs[4]), (gs[2], gs[4], gs[5]))
        scales = (math.exp(log_scales[g, 0]), math.exp(log_scales[g, 1]), math.exp(log_scales[g, 2]))
        grad_rotation = np.empty(9)
        grad_log_scales = np.zeros(3)
        for i in range(3):
            for j in range(3):
                dl = 2 * (s[i][0] * lmat[j] + s[i][1] * lmat[3 + j] + s[i][2] * lmat[6 + j])
                grad_rotation[3 * i + j] = dl * scales[j]
                grad_log_scales[j] += dl * lmat[3 * i + j]
        for j in range(3):
            out_grad_log_scales[g, j] = grad_log_scales[j]
        grads = quaternion_gradient(quats, g, grad_rotation)
        for index in range(4):
            out_grad_quats[g, index] = grads[index]


@njit(cache=True)
def tile_box(means2d, radii, camera, g, tile_size, tiles_x, tiles_y):
    """(low x, high x, low y, high y) of the tiles that Gaussian ``g``'s 3-sigma box overlaps in ``camera``."""
    x, y, rx, ry = means2d[camera, g, 0], means2d[camera, g, 1], radii[camera, g, 0], radii[camera, g, 1]
    return (
        min(max(math.floor((x - rx) / tile_size), 0), tiles_x - 1),
        min(max(math.floor((x + rx) / tile_size), 0), tiles_x - 1),
        min(max(math.floor((y - ry) / tile_size), 0), tiles_y - 1),
        min(max(math.floor((y + ry) / tile_size), 0), tiles_y - 1),
    )


@njit(cache=True)
def depth_order(depth_bits, radii):
    """Indices of the visible Gaussians (both radii > 0) sorted by depth, ties in index order, from the
    depths' IEEE bits ``depth_bits`` [N] (uint32 or uint64): the bits become integers in the floats' order
    (the sign bit set on positive numbers, every bit flipped on negative ones), sorted by a
    least-significant-digit radix sort, 8 bits a pass, skipping passes whose digit never varies."""
    order = np.flatnonzero((radii[:, 0] > 0) & (radii[:, 1] > 0))
    key_bits = 8 * depth_bits.itemsize
    sign = np.uint64(1) << np.uint64(key_bits - 1)
    every_bit = sign | (sign - np.uint64(1))
    keys = np.empty(depth_bits.shape[0], np.uint64)
    for g in order:
        bits = np.uint64(depth_bits[g])
        keys[g] = bits ^ every_bit if bits & sign else bits | sign
    scratch = np.empty_like(order)
    for shift in range(0, key_bits, 8):
        starts = np.zeros(257, np.int64)
        for g in order:
            starts[((keys[g] >> np.uint64(shift)) & np.uint64(255)) + 1] += 1
        if starts.max() == order.shape[0]:
            continue
        starts = np.cumsum(starts)
        for g in order:
            digit = (keys[g] >> np.uint64(shift)) & np.uint64(255)
            scratch[starts[digit]] = g
            starts[digit] += 1
        order, scratch = scratch, order
    return order


@njit(cache=True)
def list_run(means2d, radii, camera, run, tile_size, tiles_x, tiles_y, cursor, ids):
    """Append each Gaussian of ``run`` (indices, in depth order) to the list of every tile its 3-sigma box
    overlaps: at ``ids[cursor[tile]]``, advancing that cursor. With ``ids`` empty it only counts."""
    for g in run:
        low_x, high_x, low_y, high_y = tile_box(means2d, radii, camera, g, tile_size, tiles_x, tiles_y)
        for tile_y in range(low_y, high_y + 1):
            for tile_x in range(low_x, high_x + 1):
                tile = tile_y * tiles_x + tile_x
                if ids.shape[0] > 0:
                    ids[cursor[tile]] = g
                cursor[tile] += 1


@njit(parallel=True, cache=True)
def bin_tiles(means2d, radii, depth_bits, width, height, tile_size, chunks):
    """(offsets [C * tiles + 1], ids [M]): for each camera and tile, the Gaussians whose 3-sigma box
    overlaps it, by depth (ties in index order), exactly as ``bin_gaussians`` lists them when
    ``radii`` [C, N, 2] come in the float type of ``means2d`` (so ``centre +- radius`` rounds alike).

    ``depth_bits`` [C, N] are the depths viewed as unsigned integers of their width. Each camera's
    visible Gaussians are sorted once by depth (``depth_order``) and cut into ``chunks`` runs; the
    runs are counted per tile in parallel, then listed in parallel, each run from its own place in
    every tile's list, so that every list comes out in depth order (a stable counting sort).
    """
    num_cameras, num = depth_bits.shape
    tiles_x, tiles_y = -(-width // tile_size), -(-height // tile_size)
    tiles = tiles_x * tiles_y
    orders = np.empty((num_cameras, num), np.int64)
    visible = np.zeros(num_cameras, np.int64)
    for camera in prange(num_cameras):
        order = depth_order(depth_bits[camera], radii[camera])
        visible[camera] = order.shape[0]
        orders[camera, : order.shape[0]] = order
    runs = np.empty((num_cameras, chunks + 1), np.int64)  # run k of a camera: orders[camera, runs[k] : runs[k + 1]]
    for camera in range(num_cameras):
        for chunk in range(chunks + 1):
            runs[camera, chunk] = visible[camera] * chunk // chunks
    counts = np.zeros((num_cameras, chunks, tiles), np.int64)
    no_ids = np.empty(0, np.int64)
    for job in prange(num_cameras * chunks):
        camera, chunk = job // chunks, job % chunks
        run = orders[camera, runs[camera, chunk] : runs[camera, chunk + 1]]
        list_run(means2d, radii, camera, run, tile_size, tiles_x, tiles_y, counts[camera, chunk], no_ids)
    offsets = np.empty(num_cameras * tiles + 1, np.int64)
    cursors = np.empty((num_cameras, chunks, tiles), np.int64)
    total = 0
    for camera in range(num_cameras):
        for tile in range(tiles):
            offsets[camera * tiles + tile] = total
            for chunk in range(chunks):
                cursors[camera, chunk, tile] = total
                total += counts[camera, chunk, tile]
    offsets[-1] = total
    ids = np.empty(total, np.int64)
    for job in prange(num_cameras * chunks):
        camera, chunk = job // chunks, job % chunks
        run = orders[camera, runs[camera, chunk] : runs[camera, chunk + 1]]
        list_run(means2d, radii, camera, run, tile_size, tiles_x, tiles_y, cursors[camera, chunk], ids)
    return offsets, ids
