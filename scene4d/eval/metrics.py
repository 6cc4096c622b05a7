"""Image metrics: PSNR and SSIM (Wang et al. 2004)."""

import torch
from torch import Tensor

SSIM_WINDOW, SSIM_SIGMA = 11, 1.5
SSIM_C1, SSIM_C2 = 0.01**2, 0.03**2


def psnr(image: Tensor, target: Tensor) -> Tensor:
    """Peak signal-to-noise ratio [B] in dB of images [B, H, W, 3] in [0, 1]."""
    mse = ((image - target) ** 2).flatten(1).mean(dim=1)
    return -10 * torch.log10(mse.clamp(min=1e-12))


def ssim(image: Tensor, target: Tensor) -> Tensor:
    """Mean SSIM [B] of images [B, H, W, 3] in [0, 1]."""
    return ssim_map(image, target).flatten(1).mean(dim=1)


def ssim_map(image: Tensor, target: Tensor) -> Tensor:
    """Per-pixel SSIM [B, H, W] of images [B, H, W, 3] in [0, 1], averaged over channels.

    An 11x11 Gaussian window (sigma 1.5) with reflect padding. Written here because
    pytorch-msssim returns only the image mean, while DimensionX's eq. 3 weights every pixel by
    its confidence.
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
