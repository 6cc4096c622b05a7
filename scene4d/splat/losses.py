"""Photometric losses for fitting Gaussians: L1, D-SSIM and DimensionX's confidence weighting."""

import torch
from torch import Tensor

SSIM_WINDOW, SSIM_SIGMA = 11, 1.5
SSIM_C1, SSIM_C2 = 0.01**2, 0.03**2


def ssim_map(image: Tensor, target: Tensor) -> Tensor:
    """Per-pixel SSIM [B, H, W] of images [B, H, W, 3] in [0, 1], averaged over channels.

    Wang et al. 2004 with an 11x11 Gaussian window (sigma 1.5) and reflect padding. Written here
    because pytorch-msssim returns only the image mean, while DimensionX's eq. 3 weights every
    pixel by its confidence.
    """
    coords = torch.arange(SSIM_WINDOW, dtype=image.dtype, device=image.device) - SSIM_WINDOW // 2
    kernel_1d = torch.exp(-(coords**2) / (2 * SSIM_SIGMA**2))
    kernel_1d = kernel_1d / kernel_1d.sum()
    kernel = (kernel_1d[:, None] * kernel_1d[None, :]).expand(3, 1, SSIM_WINDOW, SSIM_WINDOW)

    def blur(x: Tensor) -> Tensor:
        padded = torch.nn.functional.pad(x, [SSIM_WINDOW // 2] * 4, mode="reflect")
        return torch.nn.functional.conv2d(padded, kernel, groups=3)

    x, y = image.permute(0, 3, 1, 2), target.permute(0, 3, 1, 2)
    mean_x, mean_y = blur(x), blur(y)
    var_x = blur(x * x) - mean_x**2
    var_y = blur(y * y) - mean_y**2
    cov = blur(x * y) - mean_x * mean_y
    numerator = (2 * mean_x * mean_y + SSIM_C1) * (2 * cov + SSIM_C2)
    denominator = (mean_x**2 + mean_y**2 + SSIM_C1) * (var_x + var_y + SSIM_C2)
    return (numerator / denominator).mean(dim=1)


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
