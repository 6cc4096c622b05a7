"""Losses for fitting Gaussians: L1, D-SSIM, LPIPS and DimensionX's confidence weighting; depth supervision."""

import torch
from torch import Tensor

from scene4d.errors import Scene4DError
from scene4d.eval.lpips import LPIPS
from scene4d.eval.metrics import ssim_map


def photometric_loss(
    image: Tensor,  # [B, H, W, 3] rendered
    target: Tensor,  # [B, H, W, 3]
    ssim_weight: float = 0.2,
    confidence: Tensor | None = None,  # [B, H, W] per-pixel confidence C of eq. 3
    mask: Tensor | None = None,  # [B, H, W] 1 = supervise, 0 = ignore
    lpips_weight: float = 0.0,
    lpips: LPIPS | None = None,  # needed when lpips_weight > 0
) -> Tensor:
    """Eq. 3 of DimensionX: ``mean(C * ((1 - w) L1 + w (1 - SSIM) + w_lpips LPIPS))``, per pixel.

    With ``confidence`` and ``mask`` absent and no LPIPS this is the 3DGS loss
    ``(1 - w) L1 + w D-SSIM``; LPIPS enters as its per-pixel map (``LPIPS.spatial``); a mask
    restricts the mean to supervised pixels.
    """
    per_pixel = (1 - ssim_weight) * (image - target).abs().mean(dim=-1)
    per_pixel = per_pixel + ssim_weight * (1 - ssim_map(image, target))
    if lpips_weight > 0:
        if lpips is None:
            raise Scene4DError("an LPIPS weight needs the LPIPS network (eval.lpips.load_lpips)")
        per_pixel = per_pixel + lpips_weight * lpips.spatial(image, target)
    weights = torch.ones_like(per_pixel) if confidence is None else confidence
    if mask is not None:
        weights = weights * mask
        return (weights * per_pixel).sum() / mask.sum().clamp(min=1)
    return (weights * per_pixel).mean()


def depth_loss(
    depth: Tensor,  # [B, H, W] rendered expected depth
    alpha: Tensor,  # [B, H, W] rendered accumulated opacity
    target_depth: Tensor,  # [B, H, W] known depth, 0 = unknown
    mask: Tensor | None = None,  # [B, H, W] 1 = supervise, 0 = ignore (as in photometric_loss)
) -> Tensor:
    """Mean relative depth error ``|D - D*| / D*`` over the pixels whose depth is known, that the
    Gaussians cover (alpha > 0.5) and that ``mask`` supervises.

    Relative, so its weight does not depend on the units of the scene. Barely covered pixels are
    left to the photometric loss: their expected depth is a ratio of two small numbers.
    """
    used = (target_depth > 0) & (alpha.detach() > 0.5)
    if mask is not None:
        used = used & (mask > 0)
    if not bool(used.any()):
        return depth.sum() * 0.0
    return ((depth - target_depth).abs()[used] / target_depth[used]).mean()
