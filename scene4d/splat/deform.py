"""Deformable 4D Gaussians: canonical Gaussians plus a time-conditioned deformation field.

Following 4DGS (Wu et al. 2024), which GenXD uses for its 4D scenes (appendix H), an MLP over
positionally encoded (x, t) predicts per-Gaussian offsets of position, rotation (added to the
quaternion, then normalised) and log-scale. Its last layer starts at zero, so training begins
from the static scene.
"""

from dataclasses import asdict, dataclass
from pathlib import Path

import torch
from torch import Tensor, nn

from scene4d.errors import Scene4DError


@dataclass(frozen=True)
class DeformationConfig:
    position_frequencies: int = 6
    time_frequencies: int = 4
    width: int = 64
    depth: int = 3
    centre: tuple[float, float, float] = (0.0, 0.0, 0.0)  # positions are encoded relative to this
    radius: float = 1.0  # ... and in units of this

    @staticmethod
    def from_json(values: dict) -> "DeformationConfig":
        """Rebuild from ``asdict`` output read back from JSON (where the centre became a list)."""
        return DeformationConfig(**{**values, "centre": tuple(values["centre"])})


def positional_encoding(values: Tensor, frequencies: int) -> Tensor:
    """``[v, sin(2^k pi v), cos(2^k pi v)]`` for k < ``frequencies``: [..., D] -> [..., D (1 + 2 F)]."""
    scales = (2.0 ** torch.arange(frequencies, dtype=values.dtype, device=values.device)) * torch.pi
    angles = values[..., None] * scales  # [..., D, F]
    encoded = torch.cat([torch.sin(angles), torch.cos(angles)], dim=-1).flatten(-2)
    return torch.cat([values, encoded], dim=-1)


class DeformationField(nn.Module):
    """(means [N, 3], time t) -> offsets of means [N, 3], quaternions [N, 4] and log-scales [N, 3]."""

    def __init__(self, config: DeformationConfig) -> None:
        super().__init__()
        self.config = config
        inputs = 3 * (1 + 2 * config.position_frequencies) + (1 + 2 * config.time_frequencies)
        layers: list[nn.Module] = []
        for index in range(config.depth):
            layers += [nn.Linear(inputs if index == 0 else config.width, config.width), nn.ReLU()]
        self.trunk = nn.Sequential(*layers)
        self.head = nn.Linear(config.width, 10)
        nn.init.zeros_(self.head.weight)
        nn.init.zeros_(self.head.bias)
        self.register_buffer("centre", torch.tensor(config.centre, dtype=torch.float32))

    def forward(self, means: Tensor, time: float) -> tuple[Tensor, Tensor, Tensor]:
        position = (means - self.centre) / self.config.radius
        moment = torch.full_like(means[:, :1], time)
        features = torch.cat(
            [positional_encoding(position, self.config.position_frequencies),
             positional_encoding(moment, self.config.time_frequencies)], dim=-1,
        )  # fmt: skip
        offsets = self.head(self.trunk(features))
        return offsets[:, :3] * self.config.radius, offsets[:, 3:7], offsets[:, 7:]


def deform_gaussians(
    field: DeformationField, means: Tensor, quats: Tensor, log_scales: Tensor, time: float
) -> tuple[Tensor, Tensor, Tensor]:
    """Canonical Gaussians moved to ``time``: means [N, 3], unit quaternions [N, 4], log-scales [N, 3]."""
    delta_means, delta_quats, delta_scales = field(means, time)
    moved_quats = quats / quats.norm(dim=-1, keepdim=True) + delta_quats
    return means + delta_means, moved_quats / moved_quats.norm(dim=-1, keepdim=True), log_scales + delta_scales


def save_deformation(folder: Path, field: DeformationField) -> None:
    """``folder/model.safetensors`` + ``folder/config.json`` that rebuilds the field, atomically."""
    from safetensors.torch import save_file

    from scene4d.io.atomic import atomic_directory, write_json

    with atomic_directory(folder) as staging:
        save_file({k: v.detach().contiguous() for k, v in field.state_dict().items()}, staging / "model.safetensors")
        write_json(staging / "config.json", asdict(field.config))


def load_deformation(folder: Path) -> DeformationField:
    import json

    from safetensors import SafetensorError
    from safetensors.torch import load_file

    if not (folder / "config.json").is_file() or not (folder / "model.safetensors").is_file():
        raise Scene4DError(f"no deformation field in {folder} (expected model.safetensors and config.json)")
    try:
        field = DeformationField(DeformationConfig.from_json(json.loads((folder / "config.json").read_text())))
        field.load_state_dict(load_file(folder / "model.safetensors"))
    except (SafetensorError, ValueError, TypeError, KeyError, RuntimeError) as error:  # JSONDecodeError: ValueError
        raise Scene4DError(f"{folder}: not a deformation field scene4d wrote ({type(error).__name__})") from error
    return field


def deformation_for_scene(means: Tensor) -> DeformationConfig:
    """A deformation config normalised to the bulk of the scene (median centre, 90th-percentile radius)."""
    centre = means.median(dim=0).values
    radius = float(torch.quantile((means - centre).norm(dim=-1), 0.9).clamp(min=1e-3))
    return DeformationConfig(centre=tuple(float(v) for v in centre), radius=radius)


def splats_at(splats: dict[str, Tensor], field: DeformationField, time: float) -> dict[str, Tensor]:
    """The canonical splats moved to ``time`` (a static snapshot that can be saved as a .ply)."""
    with torch.no_grad():
        means, quats, scales = deform_gaussians(field, splats["means"], splats["quats"], splats["scales"], time)
    return {**splats, "means": means, "quats": quats, "scales": scales}
