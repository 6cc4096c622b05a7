"""The GenXD-style denoiser (GenXD sec. 4.1, Fig. 4) as a small video transformer over latents.

Every frame of a sample carries its latent, a mask channel (1 = clean condition frame, masked
latent conditioning) and its Plücker rays at latent resolution (eq. 6). Patches of all frames
become tokens; each block runs

1. spatial self-attention within each frame,
2. a **multi-view module** (self-attention over the tokens of all frames, so views can match
   content at different pixels) and a **temporal module** (self-attention across frames at each
   token position, told each frame's time), fused by alpha: ``x + (1 - a) * multiview + a * temporal``
   with ``a = sigmoid(learned)`` for 4D samples and ``a = 0`` for static 3D samples,
3. a feed-forward layer.

The diffusion timestep conditions every layer by adaptive layer norm; the motion strength gamma
is embedded and added to the timestep embedding of the temporal modules only, as GenXD adds it
to its temporal ResBlocks. GenXD builds these modules into an SVD U-Net; a transformer keeps the
model small enough to train and run on a CPU, with the same conditioning and fusion.

Each GenXD part can be switched off for ablation (``DenoiserConfig``).
"""

import math
from dataclasses import asdict, dataclass

import torch
from torch import Tensor, nn
from torch.nn import functional

from scene4d.errors import Scene4DError


@dataclass(frozen=True)
class DenoiserConfig:
    latent_channels: int = 4
    patch_size: int = 2
    width: int = 128
    depth: int = 6
    heads: int = 4
    mlp_ratio: float = 4.0
    camera_conditioning: bool = True  # Plücker rays as 6 input channels per frame (eq. 6)
    mask_conditioning: bool = True  # a mask channel marking the clean condition frames
    alpha_fusing: bool = True  # False: every sample passes both modules, summed (GenXD Tab. 5 ablation)
    motion_embedding: bool = True  # gamma added to the temporal modules' timestep embedding

    def to_json(self) -> dict:
        return asdict(self)

    @classmethod
    def from_json(cls, data: dict) -> "DenoiserConfig":
        return cls(**data)

    @property
    def input_channels(self) -> int:
        return self.latent_channels + int(self.mask_conditioning) + 6 * int(self.camera_conditioning)


def sinusoidal_embedding(values: Tensor, dim: int, max_period: float = 10_000.0) -> Tensor:
    """[...] -> [..., dim] sin/cos features of ``values * 1000`` (inputs live in [0, 1])."""
    half = dim // 2
    frequencies = torch.exp(-math.log(max_period) * torch.arange(half, device=values.device) / half)
    angles = 1000.0 * values.float()[..., None] * frequencies
    return torch.cat([torch.cos(angles), torch.sin(angles)], dim=-1)


def grid_position_embedding(rows: int, cols: int, dim: int, device: torch.device) -> Tensor:
    """2D sin/cos embedding [rows * cols, dim] of token positions, normalised to [0, 1)."""
    row = torch.arange(rows, device=device).float() / max(rows, 1)
    col = torch.arange(cols, device=device).float() / max(cols, 1)
    row_embedding = sinusoidal_embedding(row / 10.0, dim // 2)[:, None].expand(rows, cols, dim // 2)
    col_embedding = sinusoidal_embedding(col / 10.0, dim // 2)[None].expand(rows, cols, dim // 2)
    return torch.cat([row_embedding, col_embedding], dim=-1).reshape(rows * cols, dim)


class EmbeddingMLP(nn.Module):
    """Sinusoidal features of a scalar in [0, 1] -> a width-sized embedding."""

    def __init__(self, width: int) -> None:
        super().__init__()
        self.width = width
        self.linear1 = nn.Linear(width, width)
        self.linear2 = nn.Linear(width, width)

    def forward(self, values: Tensor) -> Tensor:  # [...] -> [..., width]
        return self.linear2(functional.silu(self.linear1(sinusoidal_embedding(values, self.width))))


class ModulatedAttention(nn.Module):
    """adaLN-Zero self-attention: returns the gated update (not yet added to the input)."""

    def __init__(self, width: int, heads: int) -> None:
        super().__init__()
        self.heads = heads
        self.norm = nn.LayerNorm(width, elementwise_affine=False)
        self.modulation = nn.Linear(width, 3 * width)
        self.qkv = nn.Linear(width, 3 * width)
        self.out = nn.Linear(width, width)
        nn.init.zeros_(self.modulation.weight)
        nn.init.zeros_(self.modulation.bias)

    def forward(self, tokens: Tensor, embedding: Tensor) -> Tensor:
        """tokens [S, L, D] attend over L; embedding [S, D] modulates them."""
        shift, scale, gate = self.modulation(functional.silu(embedding))[:, None].chunk(3, dim=-1)
        h = self.norm(tokens) * (1 + scale) + shift
        sequences, length, width = h.shape
        query, key, value = self.qkv(h).reshape(sequences, length, 3, self.heads, -1).permute(2, 0, 3, 1, 4)
        attended = functional.scaled_dot_product_attention(query, key, value)
        attended = attended.transpose(1, 2).reshape(sequences, length, width)
        return gate * self.out(attended)


class ModulatedFeedForward(nn.Module):
    def __init__(self, width: int, mlp_ratio: float) -> None:
        super().__init__()
        hidden = int(width * mlp_ratio)
        self.norm = nn.LayerNorm(width, elementwise_affine=False)
        self.modulation = nn.Linear(width, 3 * width)
        self.linear1 = nn.Linear(width, hidden)
        self.linear2 = nn.Linear(hidden, width)
        nn.init.zeros_(self.modulation.weight)
        nn.init.zeros_(self.modulation.bias)

    def forward(self, tokens: Tensor, embedding: Tensor) -> Tensor:  # [S, L, D], [S, D] -> update
        shift, scale, gate = self.modulation(functional.silu(embedding))[:, None].chunk(3, dim=-1)
        h = self.norm(tokens) * (1 + scale) + shift
        return gate * self.linear2(functional.gelu(self.linear1(h)))


class MultiViewTemporalBlock(nn.Module):
    """Spatial attention, alpha-fused multi-view and temporal modules, feed-forward."""

    def __init__(self, config: DenoiserConfig) -> None:
        super().__init__()
        self.config = config
        self.spatial = ModulatedAttention(config.width, config.heads)
        self.multiview = ModulatedAttention(config.width, config.heads)
        self.temporal = ModulatedAttention(config.width, config.heads)
        self.alpha_logit = nn.Parameter(torch.zeros(()))
        self.feed_forward = ModulatedFeedForward(config.width, config.mlp_ratio)

    def forward(
        self,
        tokens: Tensor,  # [B, F, P, D]
        embedding: Tensor,  # [B, D] timestep embedding
        temporal_embedding: Tensor,  # [B, D] timestep (+ motion strength) embedding
        frame_time_embedding: Tensor,  # [B, F, D]
        is_4d: Tensor,  # [B] bool
    ) -> Tensor:
        batch, frames, patches, width = tokens.shape
        per_frame = embedding.repeat_interleave(frames, dim=0)
        tokens = tokens + self.spatial(tokens.reshape(batch * frames, patches, width), per_frame).reshape(tokens.shape)
        multiview = self.multiview(tokens.reshape(batch, frames * patches, width), embedding).reshape(tokens.shape)
        timed = (tokens + frame_time_embedding[:, :, None]).transpose(1, 2).reshape(batch * patches, frames, width)
        temporal = self.temporal(timed, temporal_embedding.repeat_interleave(patches, dim=0))
        temporal = temporal.reshape(batch, patches, frames, width).transpose(1, 2)
        tokens = tokens + self.fuse(multiview, temporal, is_4d)
        flat = tokens.reshape(batch, frames * patches, width)
        return tokens + self.feed_forward(flat, embedding).reshape(tokens.shape)

    def alpha(self, is_4d: Tensor) -> Tensor:
        """GenXD's fusing weight per sample [B]: learned for 4D samples, 0 for 3D samples."""
        return torch.sigmoid(self.alpha_logit) * is_4d.float()

    def fuse(self, multiview: Tensor, temporal: Tensor, is_4d: Tensor) -> Tensor:
        if not self.config.alpha_fusing:
            return multiview + temporal
        alpha = self.alpha(is_4d)[:, None, None, None]
        return (1 - alpha) * multiview + alpha * temporal


class GenXDDenoiser(nn.Module):
    """Predicts the flow-matching velocity of every frame of a latent video (see ``diffusion.flow``)."""

    def __init__(self, config: DenoiserConfig) -> None:
        super().__init__()
        self.config = config
        width, patch = config.width, config.patch_size
        self.patch_embed = nn.Conv2d(config.input_channels, width, patch, stride=patch)
        self.timestep_embed = EmbeddingMLP(width)
        self.motion_embed = EmbeddingMLP(width)
        self.frame_time_embed = EmbeddingMLP(width)
        self.blocks = nn.ModuleList(MultiViewTemporalBlock(config) for _ in range(config.depth))
        self.out_norm = nn.LayerNorm(width, elementwise_affine=False)
        self.out_modulation = nn.Linear(width, 2 * width)
        self.out = nn.Linear(width, patch * patch * config.latent_channels)
        nn.init.zeros_(self.out.weight)
        nn.init.zeros_(self.out.bias)

    def forward(
        self,
        latents: Tensor,  # [B, F, C, h, w] noisy targets, clean condition frames
        sigma: Tensor,  # [B] noise level in [0, 1]
        cond_mask: Tensor,  # [B, F] 1 for condition frames
        plucker: Tensor,  # [B, F, 6, h, w] Plücker rays at latent resolution
        times: Tensor,  # [B, F] frame times in [0, 1]
        motion: Tensor,  # [B] motion strength gamma, normalised to [0, 1]
        is_4d: Tensor,  # [B] bool: alpha is learned for these, 0 for the others
    ) -> Tensor:
        """Velocity [B, F, C, h, w] for every frame (condition frames included; the loss ignores them)."""
        patch = self.config.patch_size
        if latents.shape[-1] % patch or latents.shape[-2] % patch:
            raise Scene4DError(f"latent size {list(latents.shape[-2:])} is not a multiple of the patch size {patch}")
        tokens, rows, cols = self.embed_frames(latents, cond_mask, plucker)
        embedding = self.timestep_embed(sigma)
        temporal_embedding = embedding + self.motion_embed(motion) if self.config.motion_embedding else embedding
        frame_time_embedding = self.frame_time_embed(times)
        for block in self.blocks:
            tokens = block(tokens, embedding, temporal_embedding, frame_time_embedding, is_4d)
        shift, scale = self.out_modulation(functional.silu(embedding))[:, None, None].chunk(2, dim=-1)
        patches = self.out(self.out_norm(tokens) * (1 + scale) + shift)
        return self.unpatchify(patches, rows, cols)

    def embed_frames(self, latents: Tensor, cond_mask: Tensor, plucker: Tensor) -> tuple[Tensor, int, int]:
        """Per-frame input channels -> tokens [B, F, P, D] with 2D position embeddings."""
        batch, frames, _, height, width = latents.shape
        channels = [latents]
        if self.config.mask_conditioning:
            channels.append(cond_mask[:, :, None, None, None].to(latents).expand(-1, -1, 1, height, width))
        if self.config.camera_conditioning:
            channels.append(plucker.to(latents))
        stacked = torch.cat(channels, dim=2).reshape(batch * frames, -1, height, width)
        grid = self.patch_embed(stacked)
        rows, cols = grid.shape[-2:]
        tokens = grid.flatten(2).transpose(1, 2) + grid_position_embedding(rows, cols, self.config.width, grid.device)
        return tokens.reshape(batch, frames, rows * cols, self.config.width), rows, cols

    def unpatchify(self, patches: Tensor, rows: int, cols: int) -> Tensor:
        """[B, F, P, p*p*C] -> [B, F, C, rows*p, cols*p]."""
        batch, frames = patches.shape[:2]
        patch, channels = self.config.patch_size, self.config.latent_channels
        grid = patches.reshape(batch, frames, rows, cols, patch, patch, channels)
        return grid.permute(0, 1, 6, 2, 4, 3, 5).reshape(batch, frames, channels, rows * patch, cols * patch)
