"""Batched pinhole cameras in the OpenCV convention.

Camera frame: +x right, +y down, +z forward. Extrinsics are world-to-camera ``w2c`` [N, 4, 4]
with ``x_cam = R @ x_world + t``. Intrinsics ``K`` [N, 3, 3] are in pixels and pixel centres sit
at integer + 0.5, so the centre of the top-left pixel is (0.5, 0.5) and a centred camera has
``cx = W / 2``. One image size is shared by the whole batch.
"""

import operator
from dataclasses import dataclass

import torch
from torch import Tensor

from scene4d.errors import Scene4DError
from scene4d.geometry.rotations import look_at_c2w_rotation

RIGID_TOLERANCE = 1e-4


@dataclass(frozen=True)
class Cameras:
    K: Tensor  # [N, 3, 3] intrinsics in pixels
    w2c: Tensor  # [N, 4, 4] world-to-camera, OpenCV axes
    width: int
    height: int

    def __post_init__(self) -> None:
        check_intrinsics(self.K)
        check_rigid(self.w2c, "cameras: w2c")
        if self.K.shape[0] != self.w2c.shape[0]:
            raise Scene4DError(f"cameras: K has {self.K.shape[0]} cameras but w2c has {self.w2c.shape[0]}")
        if int(self.width) <= 0 or int(self.height) <= 0:
            raise Scene4DError(f"cameras: image size must be positive, got {self.width}x{self.height}")

    @staticmethod
    def from_fov(fov_x_deg: float, width: int, height: int, w2c: Tensor | None = None) -> "Cameras":
        """Centred square-pixel cameras with horizontal field of view ``fov_x_deg``.

        ``w2c`` [N, 4, 4] defaults to one camera at the world origin (identity).
        """
        if not 0.0 < fov_x_deg < 180.0:
            raise Scene4DError(f"cameras: field of view must be in (0, 180) degrees, got {fov_x_deg}")
        w2c = torch.eye(4)[None] if w2c is None else w2c
        focal = (width / 2) / torch.tan(torch.deg2rad(torch.tensor(fov_x_deg / 2, dtype=torch.float64)))
        K = torch.tensor(
            [[float(focal), 0.0, width / 2], [0.0, float(focal), height / 2], [0.0, 0.0, 1.0]],
            dtype=w2c.dtype,
            device=w2c.device,
        )
        return Cameras(K.expand(w2c.shape[0], 3, 3).clone(), w2c, width, height)

    @staticmethod
    def cat(cameras: "list[Cameras]") -> "Cameras":
        """Concatenate batches of cameras that share one image size."""
        sizes = {(c.width, c.height) for c in cameras}
        if len(sizes) != 1:
            raise Scene4DError(f"cameras: cannot concatenate different image sizes {sorted(sizes)}")
        width, height = sizes.pop()
        return Cameras(torch.cat([c.K for c in cameras]), torch.cat([c.w2c for c in cameras]), width, height)

    def __len__(self) -> int:
        return self.K.shape[0]

    def __getitem__(self, index: int | slice | Tensor | list[int]) -> "Cameras":
        """Select cameras; an integer (Python, numpy or 0-d tensor) keeps the batch dimension."""
        if not isinstance(index, slice | list) and not (isinstance(index, Tensor) and index.dim() > 0):
            position = self.position(index)
            index = slice(position, position + 1)
        return Cameras(self.K[index], self.w2c[index], self.width, self.height)

    def position(self, index: int) -> int:
        """A non-negative position for an integer index (negative counts from the end)."""
        position = operator.index(index)
        if not -len(self) <= position < len(self):
            raise Scene4DError(f"cameras: index {position} is out of range for {len(self)} cameras")
        return position % len(self)

    def to(self, device: torch.device | str | None = None, dtype: torch.dtype | None = None) -> "Cameras":
        return Cameras(self.K.to(device, dtype), self.w2c.to(device, dtype), self.width, self.height)

    @property
    def R(self) -> Tensor:  # noqa: N802 -- the standard name of the world-to-camera rotation
        """World-to-camera rotation [N, 3, 3]."""
        return self.w2c[:, :3, :3]

    @property
    def t(self) -> Tensor:
        """World-to-camera translation [N, 3]."""
        return self.w2c[:, :3, 3]

    @property
    def c2w(self) -> Tensor:
        """Camera-to-world [N, 4, 4], the rigid inverse of ``w2c``."""
        return rigid_inverse(self.w2c)

    @property
    def centers(self) -> Tensor:
        """Camera centres in world coordinates [N, 3]: ``-R^T t``."""
        return -(self.R.transpose(1, 2) @ self.t[..., None])[..., 0]

    def project(self, points_world: Tensor) -> tuple[Tensor, Tensor]:
        """World points [N, P, 3] (or [P, 3], shared) -> pixels [N, P, 2] and camera z-depth [N, P]."""
        if points_world.dim() == 2:
            points_world = points_world.expand(len(self), *points_world.shape)
        points_cam = points_world @ self.R.transpose(1, 2) + self.t[:, None]
        depth = points_cam[..., 2]
        pixels_h = points_cam @ self.K.transpose(1, 2)
        return pixels_h[..., :2] / pixels_h[..., 2:], depth

    def unproject(self, pixels: Tensor, depth: Tensor) -> Tensor:
        """Pixels [N, P, 2] with camera z-depth [N, P] -> world points [N, P, 3]."""
        pixels_h = torch.cat([pixels, torch.ones_like(pixels[..., :1])], dim=-1)
        points_cam = (pixels_h @ torch.linalg.inv(self.K).transpose(1, 2)) * depth[..., None]
        return (points_cam - self.t[:, None]) @ self.R

    def pixel_centers(self) -> Tensor:
        """Pixel-centre coordinates [H, W, 2] as (u, v): the top-left pixel is (0.5, 0.5)."""
        v, u = torch.meshgrid(
            torch.arange(self.height, dtype=self.K.dtype, device=self.K.device) + 0.5,
            torch.arange(self.width, dtype=self.K.dtype, device=self.K.device) + 0.5,
            indexing="ij",
        )
        return torch.stack([u, v], dim=-1)

    def directions_through(self, pixels: Tensor) -> Tensor:
        """Unit world-space directions [N, P, 3] from each centre through its pixels [N, P, 2]."""
        points = self.unproject(pixels, torch.ones(pixels.shape[:2], dtype=pixels.dtype, device=pixels.device))
        directions = points - self.centers[:, None]
        return directions / directions.norm(dim=-1, keepdim=True)

    def ray_directions(self) -> Tensor:
        """Unit world-space directions [N, H, W, 3] from each centre through each pixel centre."""
        pixels = self.pixel_centers().reshape(1, -1, 2).expand(len(self), -1, -1)
        return self.directions_through(pixels).reshape(len(self), self.height, self.width, 3)

    def resized(self, height: int, width: int) -> "Cameras":
        """The same cameras at another image size (intrinsics scaled with the image).

        Pixel (i, j) of the new grid covers the same part of the field of view as the
        corresponding block of the old grid, e.g. a latent grid 8x coarser than the image.
        """
        scale = torch.tensor(
            [[width / self.width], [height / self.height], [1.0]], dtype=self.K.dtype, device=self.K.device
        )
        return Cameras(self.K * scale, self.w2c, width, height)

    def cropped(self, left: int, top: int, width: int, height: int) -> "Cameras":
        """The cameras of the image crop whose top-left pixel corner is (left, top)."""
        K = self.K.clone()  # noqa: N806 -- K is the standard name
        K[:, 0, 2] -= left
        K[:, 1, 2] -= top
        return Cameras(K, self.w2c, width, height)

    def relative_to(self, index: int = 0) -> "Cameras":
        """Re-express all cameras in the frame of camera ``index`` (its ``w2c`` becomes identity)."""
        position = self.position(index)
        anchor_c2w = rigid_inverse(self.w2c[position : position + 1])
        return Cameras(self.K, self.w2c @ anchor_c2w, self.width, self.height)


def rigid_inverse(w2c: Tensor) -> Tensor:
    """Inverse [N, 4, 4] of rigid transforms [N, 4, 4]: (R, t) -> (R^T, -R^T t)."""
    rot_t = w2c[:, :3, :3].transpose(1, 2)
    inverse = torch.zeros_like(w2c)
    inverse[:, :3, :3] = rot_t
    inverse[:, :3, 3] = -(rot_t @ w2c[:, :3, 3:])[..., 0]
    inverse[:, 3, 3] = 1.0
    return inverse


def look_at_w2c(eye: Tensor, target: Tensor, up: Tensor) -> Tensor:
    """World-to-camera [4, 4] of an OpenCV camera at ``eye`` [3] looking at ``target`` [3], with
    the world direction ``up`` [3] pointing up in the image."""
    rotation_c2w = look_at_c2w_rotation(eye, target, up)
    w2c = torch.eye(4, dtype=eye.dtype, device=eye.device)
    w2c[:3, :3] = rotation_c2w.T
    w2c[:3, 3] = -rotation_c2w.T @ eye
    return w2c


def check_rigid(matrices: Tensor, what: str) -> None:
    """Raise unless ``matrices`` [N, 4, 4] are finite rigid transforms (rotation + translation).

    ``what`` names the matrices in the message; the index of the first bad one is appended
    when there are several.
    """
    if matrices.dim() != 3 or matrices.shape[1:] != (4, 4):
        raise Scene4DError(f"{what} must have shape [N, 4, 4], got {list(matrices.shape)}")
    if not bool(torch.isfinite(matrices).all()):
        raise Scene4DError(f"{what} contains NaN or infinite values")
    rot = matrices[:, :3, :3].double()
    eye = torch.eye(3, dtype=torch.float64, device=rot.device)
    orthogonality = (rot @ rot.transpose(1, 2) - eye).abs().amax(dim=(1, 2))
    determinant = torch.linalg.det(rot)
    bottom = matrices[:, 3].double() - torch.tensor([0, 0, 0, 1.0], dtype=torch.float64, device=rot.device)
    bad = (orthogonality > RIGID_TOLERANCE) | ((determinant - 1).abs() > RIGID_TOLERANCE)
    bad |= bottom.abs().amax(dim=1) > RIGID_TOLERANCE
    if bool(bad.any()):
        first = int(bad.nonzero()[0, 0])
        name = what if matrices.shape[0] == 1 else f"{what}[{first}]"
        raise Scene4DError(
            f"{name} is not rigid (|R R^T - I| = {float(orthogonality[first]):.2e}, "
            f"det R = {float(determinant[first]):.4f}, bottom row {matrices[first, 3].tolist()})"
        )


def check_intrinsics(K: Tensor) -> None:  # noqa: N803 -- K is the standard name
    """Raise unless ``K`` [N, 3, 3] holds finite pinhole intrinsics with positive focal lengths."""
    if K.dim() != 3 or K.shape[1:] != (3, 3):
        raise Scene4DError(f"cameras: K must have shape [N, 3, 3], got {list(K.shape)}")
    if not bool(torch.isfinite(K).all()):
        raise Scene4DError("cameras: K contains NaN or infinite values")
    if bool((K[:, 0, 0] <= 0).any() or (K[:, 1, 1] <= 0).any()):
        raise Scene4DError(f"cameras: focal lengths must be positive, got fx={K[:, 0, 0].tolist()}")
