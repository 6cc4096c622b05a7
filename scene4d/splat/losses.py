"""Photometric losses for fitting Gaussians: L1, D-SSIM and DimensionX's confidence weighting."""

import torch
from torch import Tensor

from scene4d.eval.metrics import ssim_map


def photometric_loss(
    image: Tensor,  # [B, H, W, 3] rendered
    target: Tensor,  # [B, H, W, 3]
    ssim_weight: float = 0.2,
    confidence: Tensor | None = None,  # [B, H, W] per-pixel confidence C of eq. 3
    mask: Tensor | None = None,  # [B, H, W] 1 = supervise, 0 = ignore
) -> Tensor:
    """Eq. 3 of DimensionX without its LPIPS term: ``mean(C * ((1 - w) L1 + w (1 - SSIM)))``.

    With ``confidence`` and ``mask`` absent this is the 3DGS loss ``(1 - w) L1 + w D-SSIM``; a
    mask restricts the mean to supervised pixels.
    """
    per_pixel = (1 - ssim_weight) * (image - target).abs().mean(dim=-1)
    per_pixel = per_pixel + ssim_weight * (1 - ssim_map(image, target))
    weights = torch.ones_like(per_pixel) if confidence is None else confidence
    if mask is not None:
        weights = weights * mask
        return (weights * per_pixel).sum() / mask.sum().clamp(min=1)
    return (weights * per_pixel).mean()
