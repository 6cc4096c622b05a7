"""3D Gaussian splats in the INRIA ``.ply`` layout, which SuperSplat, Spark and other viewers open;
and coloured point clouds (``x y z red green blue``, as nerfstudio's ``sparse_pc.ply``).

Per vertex: ``x y z nx ny nz f_dc_0..2 f_rest_0.. opacity scale_0..2 rot_0..3``, all
pre-activation (opacity logits, log-scales, quaternions w, x, y, z) and ``f_rest`` stored
channel-major (all red coefficients, then green, then blue) as the INRIA code writes them.

In memory the splats are a dict of tensors named as gsplat names them: ``means [N, 3]``,
``quats [N, 4]``, ``scales [N, 3]`` (log), ``opacities [N]`` (logits), ``sh0 [N, 1, 3]``,
``shN [N, K - 1, 3]``.
"""

from collections.abc import Mapping
from pathlib import Path

import numpy as np
import torch
from torch import Tensor

from scene4d.errors import Scene4DError
from scene4d.io.atomic import atomic_file
from scene4d.io.clip import check_points

MODE_COMMENT = "scene4d rasterize_mode "  # header comment: the rasterize mode the splats were fitted in
REQUIRED = ["x", "y", "z", "f_dc_0", "f_dc_1", "f_dc_2", "opacity", *(f"scale_{i}" for i in range(3)),
            *(f"rot_{i}" for i in range(4))]  # fmt: skip


REST_FIELDS = tuple(3 * ((degree + 1) ** 2 - 1) for degree in range(4))  # f_rest_* per SH degree: 0, 9, 24, 45


def save_ply(path: str | Path, splats: Mapping[str, Tensor], rasterize_mode: str | None = None) -> None:
    """Write splats (gsplat names, see module docstring) as a binary INRIA ``.ply``, atomically; with
    ``rasterize_mode``, a header comment records it (``ply_rasterize_mode``; viewers ignore comments)."""
    from plyfile import PlyData, PlyElement

    means = splats["means"].detach().cpu().float().numpy()
    rest = splats["shN"].detach().cpu().float()
    columns = {
        "x": means[:, 0], "y": means[:, 1], "z": means[:, 2],
        "nx": np.zeros(len(means), np.float32), "ny": np.zeros(len(means), np.float32),
        "nz": np.zeros(len(means), np.float32),
    }  # fmt: skip
    dc = splats["sh0"].detach().cpu().float().numpy()[:, 0]
    columns.update({f"f_dc_{i}": dc[:, i] for i in range(3)})
    channel_major = rest.transpose(1, 2).reshape(len(means), 3 * rest.shape[1]).numpy()
    columns.update({f"f_rest_{i}": channel_major[:, i] for i in range(channel_major.shape[1])})
    columns["opacity"] = splats["opacities"].detach().cpu().float().numpy()
    scales = splats["scales"].detach().cpu().float().numpy()
    columns.update({f"scale_{i}": scales[:, i] for i in range(3)})
    quats = splats["quats"].detach().cpu().float().numpy()
    columns.update({f"rot_{i}": quats[:, i] for i in range(4)})
    vertices = np.empty(len(means), dtype=[(name, "f4") for name in columns])
    for name, values in columns.items():
        vertices[name] = values
    comments = [] if rasterize_mode is None else [MODE_COMMENT + rasterize_mode]
    with atomic_file(path) as staging:
        PlyData([PlyElement.describe(vertices, "vertex")], comments=comments).write(str(staging))


def ply_rasterize_mode(path: str | Path) -> str:
    """The rasterize mode recorded by ``save_ply`` in the header of a splat file, else ``classic`` (3DGS:
    what the INRIA code and most tools fit in)."""
    with open(path, "rb") as file:
        for line in file:
            text = line.decode("ascii", "replace").strip()
            if text == "end_header":
                break
            if text.startswith("comment " + MODE_COMMENT):
                return text.removeprefix("comment " + MODE_COMMENT).strip()
    return "classic"


def load_ply(path: str | Path) -> dict[str, Tensor]:
    """Read an INRIA-layout ``.ply`` into splats (float32 tensors, gsplat names)."""
    path = Path(path)
    vertices = read_vertices(path, "splat file")
    names = vertices.dtype.names or ()
    missing = [name for name in REQUIRED if name not in names]
    if missing:
        raise Scene4DError(f"{path}: not a 3DGS .ply, missing fields {', '.join(missing)}")
    rest_names = sorted((n for n in names if n.startswith("f_rest_")), key=lambda n: int(n.split("_")[-1]))
    if len(rest_names) not in REST_FIELDS:
        raise Scene4DError(
            f"{path}: {len(rest_names)} f_rest fields; SH of degree 0-3 have {', '.join(map(str, REST_FIELDS))}"
        )

    def stack(fields: list[str]) -> Tensor:
        return torch.from_numpy(np.stack([np.asarray(vertices[f], np.float32) for f in fields], axis=-1))

    count = len(vertices)
    rest = stack(rest_names) if rest_names else torch.zeros(count, 0)
    splats = {
        "means": stack(["x", "y", "z"]),
        "quats": stack([f"rot_{i}" for i in range(4)]),
        "scales": stack([f"scale_{i}" for i in range(3)]),
        "opacities": stack(["opacity"])[:, 0],
        "sh0": stack([f"f_dc_{i}" for i in range(3)])[:, None, :],
        "shN": rest.reshape(count, 3, len(rest_names) // 3).transpose(1, 2).contiguous(),
    }
    if not all(bool(torch.isfinite(t).all()) for t in splats.values()):
        raise Scene4DError(f"{path}: contains NaN or infinite values")
    return splats


def save_point_cloud(path: str | Path, points: np.ndarray, colors: np.ndarray) -> None:
    """Points [P, 3] and colours [P, 3] in [0, 1] as a binary ``.ply`` (float xyz, uint8 rgb)."""
    from plyfile import PlyData, PlyElement

    fields = [(name, "f4") for name in ("x", "y", "z")] + [(name, "u1") for name in ("red", "green", "blue")]
    vertices = np.empty(len(points), dtype=fields)
    for index, name in enumerate(("x", "y", "z")):
        vertices[name] = points[:, index]
    for index, name in enumerate(("red", "green", "blue")):
        vertices[name] = np.round(np.clip(colors[:, index], 0, 1) * 255)
    with atomic_file(Path(path)) as staging:
        PlyData([PlyElement.describe(vertices, "vertex")]).write(str(staging))


def load_point_cloud(path: str | Path) -> tuple[np.ndarray, np.ndarray]:
    """Points [P, 3] and colours [P, 3] in [0, 1] of a ``.ply`` (ASCII or binary): 8-bit colours are
    divided by 255, float ones taken as they are; a cloud without colours is grey (they only seed
    the Gaussians' colours)."""
    path = Path(path)
    vertices = read_vertices(path, "point cloud")
    names = vertices.dtype.names or ()
    if not {"x", "y", "z"} <= set(names):
        raise Scene4DError(f"{path}: a point cloud needs x, y and z fields")
    points = np.stack([np.asarray(vertices[name], np.float32) for name in ("x", "y", "z")], axis=-1)
    if {"red", "green", "blue"} <= set(names):
        colors = np.stack([np.asarray(vertices[name], np.float32) for name in ("red", "green", "blue")], axis=-1)
        colors = colors / 255 if np.issubdtype(vertices["red"].dtype, np.integer) else colors
    else:
        colors = np.full_like(points, 0.5)
    try:
        check_points(points, colors)
    except Scene4DError as error:
        raise Scene4DError(f"{path}: {error} (colours as 0-255 integers or 0-1 floats)") from None
    return points, colors


def read_vertices(path: Path, what: str) -> np.ndarray:
    """The structured array of a ``.ply``'s vertex element; ``what`` names the file in errors."""
    from plyfile import PlyData, PlyParseError

    if not path.is_file():
        raise Scene4DError(f"{what} not found: {path}")
    try:
        return PlyData.read(str(path))["vertex"].data
    except (PlyParseError, KeyError, ValueError, OSError) as error:
        raise Scene4DError(f"cannot read {path} as a .ply with a vertex element: {error}") from None
