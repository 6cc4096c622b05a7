"""A small convolutional VAE (image <-> latent) and an adapter for diffusers' ``AutoencoderKL``.

Both expose the same interface to the rest of scene4d: ``encode(images [B, 3, H, W] in [-1, 1])
-> latents [B, C, H/f, W/f]`` already multiplied by the scaling factor (unit variance for the
diffusion model), ``decode(latents) -> images`` in [-1, 1], and ``downsample`` / ``latent_channels``.
"""

from dataclasses import asdict, dataclass

import numpy as np
import torch
from torch import Tensor, nn


@dataclass(frozen=True)
class VAEConfig:
    channels: tuple[int, ...] = (32, 64)  # one stage per entry; each stage halves the resolution
    latent_channels: int = 4
    scaling_factor: float = 1.0  # latents are multiplied by this; set from training data

    @property
    def downsample(self) -> int:
        return 2 ** len(self.channels)

    def to_json(self) -> dict:
        return asdict(self)

    @classmethod
    def from_json(cls, data: dict) -> "VAEConfig":
        return cls(**{**data, "channels": tuple(data["channels"])})


class ResBlock(nn.Module):
    """GroupNorm-SiLU-conv twice, with a 1x1 skip when the width changes."""

    def __init__(self, in_channels: int, out_channels: int) -> None:
        super().__init__()
        self.norm1 = nn.GroupNorm(8, in_channels)
        self.conv1 = nn.Conv2d(in_channels, out_channels, 3, padding=1)
        self.norm2 = nn.GroupNorm(8, out_channels)
        self.conv2 = nn.Conv2d(out_channels, out_channels, 3, padding=1)
        self.skip = nn.Conv2d(in_channels, out_channels, 1) if in_channels != out_channels else nn.Identity()

    def forward(self, x: Tensor) -> Tensor:
        h = self.conv1(nn.functional.silu(self.norm1(x)))
        h = self.conv2(nn.functional.silu(self.norm2(h)))
        return self.skip(x) + h


class Encoder(nn.Module):
    def __init__(self, config: VAEConfig) -> None:
        super().__init__()
        widths = config.channels
        self.stem = nn.Conv2d(3, widths[0], 3, padding=1)
        stages = []
        for index, width in enumerate(widths):
            previous = widths[max(index - 1, 0)]
            stages += [ResBlock(previous, width), nn.Conv2d(width, width, 3, stride=2, padding=1)]
        self.stages = nn.Sequential(*stages)
        self.middle = ResBlock(widths[-1], widths[-1])
        self.norm = nn.GroupNorm(8, widths[-1])
        self.head = nn.Conv2d(widths[-1], 2 * config.latent_channels, 3, padding=1)

    def forward(self, images: Tensor) -> Tensor:  # [B, 3, H, W] -> [B, 2C, H/f, W/f]
        h = self.middle(self.stages(self.stem(images)))
        return self.head(nn.functional.silu(self.norm(h)))


class Decoder(nn.Module):
    def __init__(self, config: VAEConfig) -> None:
        super().__init__()
        widths = config.channels[::-1]
        self.stem = nn.Conv2d(config.latent_channels, widths[0], 3, padding=1)
        self.middle = ResBlock(widths[0], widths[0])
        stages = []
        for index, width in enumerate(widths):
            following = widths[min(index + 1, len(widths) - 1)]
            stages += [nn.Upsample(scale_factor=2.0, mode="nearest"), nn.Conv2d(width, width, 3, padding=1)]
            stages += [ResBlock(width, following)]
        self.stages = nn.Sequential(*stages)
        self.norm = nn.GroupNorm(8, widths[-1])
        self.head = nn.Conv2d(widths[-1], 3, 3, padding=1)

    def forward(self, latents: Tensor) -> Tensor:  # [B, C, h, w] -> [B, 3, h*f, w*f]
        h = self.stages(self.middle(self.stem(latents)))
        return self.head(nn.functional.silu(self.norm(h)))


class TinyVAE(nn.Module):
    """A KL-regularised autoencoder that downsamples by ``2 ** len(channels)``."""

    def __init__(self, config: VAEConfig) -> None:
        super().__init__()
        self.config = config
        self.encoder = Encoder(config)
        self.decoder = Decoder(config)

    @property
    def downsample(self) -> int:
        return self.config.downsample

    @property
    def latent_channels(self) -> int:
        return self.config.latent_channels

    def encode_distribution(self, images: Tensor) -> tuple[Tensor, Tensor]:
        """Unscaled posterior mean and log-variance, each [B, C, H/f, W/f]."""
        mean, logvar = self.encoder(images).chunk(2, dim=1)
        return mean, logvar.clamp(-30.0, 20.0)

    def encode(self, images: Tensor) -> Tensor:
        """Images [B, 3, H, W] in [-1, 1] -> scaled latents (the posterior mean)."""
        return self.encode_distribution(images)[0] * self.config.scaling_factor

    def decode(self, latents: Tensor) -> Tensor:
        """Scaled latents -> images [B, 3, H, W], roughly in [-1, 1]."""
        return self.decoder(latents / self.config.scaling_factor)


class DiffusersVAE(nn.Module):
    """Adapter: a diffusers ``AutoencoderKL`` behind the ``TinyVAE`` interface.

    Uses the model's own ``config.scaling_factor`` (and ``shift_factor`` when it has one).
    """

    def __init__(self, autoencoder: nn.Module) -> None:
        super().__init__()
        self.autoencoder = autoencoder
        self.scaling_factor = float(autoencoder.config.scaling_factor)
        self.shift_factor = float(getattr(autoencoder.config, "shift_factor", None) or 0.0)

    @property
    def downsample(self) -> int:
        return 2 ** (len(self.autoencoder.config.block_out_channels) - 1)

    @property
    def latent_channels(self) -> int:
        return int(self.autoencoder.config.latent_channels)

    def encode(self, images: Tensor) -> Tensor:
        mean = self.autoencoder.encode(images).latent_dist.mean
        return (mean - self.shift_factor) * self.scaling_factor

    def decode(self, latents: Tensor) -> Tensor:
        return self.autoencoder.decode(latents / self.scaling_factor + self.shift_factor).sample


def load_diffusers_vae(path: str) -> DiffusersVAE:
    """An ``AutoencoderKL`` from a local folder or a model id already in the local cache."""
    from diffusers import AutoencoderKL

    from scene4d.errors import Scene4DError

    try:
        autoencoder = AutoencoderKL.from_pretrained(path, local_files_only=True)
    except (OSError, ValueError) as error:
        raise Scene4DError(
            f"no AutoencoderKL weights at {path!r} (a local folder or a model id in the local Hugging Face cache); "
            f"download them on a machine with internet first ({error.__class__.__name__})"
        ) from None
    return DiffusersVAE(autoencoder.eval())


@torch.no_grad()
def encode_frames(vae: torch.nn.Module, frames: np.ndarray, batch_size: int = 64) -> Tensor:
    """Frames [T, H, W, 3] in [0, 1] -> scaled latents [T, C, H/f, W/f]."""
    images = to_model_images(frames)
    return torch.cat([vae.encode(chunk) for chunk in images.split(batch_size)])


def to_model_images(frames: np.ndarray) -> Tensor:
    """Frames [T, H, W, 3] in [0, 1] (numpy) -> model images [T, 3, H, W] in [-1, 1]."""
    return torch.from_numpy(np.ascontiguousarray(frames, dtype=np.float32)).permute(0, 3, 1, 2) * 2 - 1


def from_model_images(images: Tensor) -> np.ndarray:
    """Model images [T, 3, H, W] in [-1, 1] -> frames [T, H, W, 3] in [0, 1] (numpy, clipped)."""
    return ((images.permute(0, 2, 3, 1) + 1) / 2).clamp(0, 1).numpy()


def kl_divergence(mean: Tensor, logvar: Tensor) -> Tensor:
    """KL(N(mean, exp(logvar)) || N(0, 1)), averaged over every element."""
    return 0.5 * (mean.square() + logvar.exp() - 1.0 - logvar).mean()


def scaling_factor_for(latents: Tensor) -> float:
    """1 / std of unscaled latents, as Stable Diffusion sets its ``scaling_factor``."""
    return float(1.0 / latents.float().std())
