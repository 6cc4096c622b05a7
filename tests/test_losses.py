import numpy as np
import pytest
import torch
from skimage.metrics import structural_similarity

from scene4d.errors import Scene4DError
from scene4d.eval.lpips import load_lpips
from scene4d.eval.metrics import psnr, ssim, ssim_map
from scene4d.splat.losses import photometric_loss


def test_ssim_map_matches_scikit_image_away_from_the_border():
    generator = torch.Generator().manual_seed(0)
    target = torch.rand(1, 40, 48, 3, generator=generator, dtype=torch.float64)
    image = (target + 0.2 * torch.randn(target.shape, generator=generator, dtype=torch.float64)).clamp(0, 1)
    ours = ssim_map(image, target)[0, 5:-5, 5:-5].mean()
    expected = structural_similarity(
        image[0].numpy(), target[0].numpy(), channel_axis=-1, data_range=1.0,
        gaussian_weights=True, sigma=1.5, use_sample_covariance=False,
    )  # fmt: skip
    assert abs(float(ours) - expected) < 1e-6
    assert torch.allclose(ssim_map(target, target), torch.ones(1, 40, 48, dtype=torch.float64))


def test_confidence_and_mask_weight_pixels():
    target = torch.zeros(1, 16, 16, 3)
    image = torch.zeros(1, 16, 16, 3)
    image[:, :, :8] = 1.0  # the left half is wrong
    left = torch.zeros(1, 16, 16)
    left[:, :, :8] = 1
    assert float(photometric_loss(image, target, ssim_weight=0.0, mask=1 - left)) == 0.0
    assert np.isclose(float(photometric_loss(image, target, ssim_weight=0.0, mask=left)), 1.0)
    halved = photometric_loss(image, target, ssim_weight=0.0, confidence=0.5 * torch.ones(1, 16, 16))
    assert np.isclose(float(halved), 0.25)


def test_lpips_term_of_eq3_is_weighted_by_the_confidence_per_pixel(lpips_weights):
    generator = torch.Generator().manual_seed(2)
    target = torch.rand(1, 32, 32, 3, generator=generator)
    image = torch.rand(1, 32, 32, 3, generator=generator)
    confidence = torch.rand(1, 32, 32, generator=generator)
    lpips = load_lpips(lpips_weights)
    without = photometric_loss(image, target, 0.2, confidence)
    with_lpips = photometric_loss(image, target, 0.2, confidence, lpips_weight=0.5, lpips=lpips)
    expected = without + 0.5 * (confidence * lpips.spatial(image, target)).mean()
    torch.testing.assert_close(with_lpips, expected)
    assert float(with_lpips - without) > 1e-3
    with pytest.raises(Scene4DError, match="LPIPS network"):
        photometric_loss(image, target, lpips_weight=0.5)


def test_psnr_and_ssim_against_scikit_image():
    from skimage.metrics import peak_signal_noise_ratio

    generator = torch.Generator().manual_seed(1)
    target = torch.rand(2, 24, 24, 3, generator=generator, dtype=torch.float64)
    image = (target + 0.1 * torch.randn(target.shape, generator=generator, dtype=torch.float64)).clamp(0, 1)
    expected = [
        peak_signal_noise_ratio(t.numpy(), i.numpy(), data_range=1.0) for t, i in zip(target, image, strict=True)
    ]
    torch.testing.assert_close(psnr(image, target), torch.tensor(expected, dtype=torch.float64))
    assert bool((ssim(image, target) < 1).all()) and torch.allclose(
        ssim(target, target), torch.ones(2, dtype=torch.float64)
    )


def test_depth_loss_is_the_relative_error_on_known_covered_pixels():
    from scene4d.splat.losses import depth_loss

    target = torch.tensor([[[2.0, 4.0, 0.0, 5.0]]])  # the third pixel has no known depth
    depth = torch.tensor([[[3.0, 3.0, 9.0, 1.0]]], requires_grad=True)
    alpha = torch.tensor([[[0.9, 0.6, 0.9, 0.2]]])  # the last pixel is barely covered
    loss = depth_loss(depth, alpha, target)
    assert np.isclose(float(loss.detach()), (1 / 2 + 1 / 4) / 2)
    loss.backward()
    torch.testing.assert_close(depth.grad, torch.tensor([[[1 / 4, -1 / 8, 0.0, 0.0]]]))
    masked = depth_loss(depth.detach(), alpha, target, mask=torch.tensor([[[0.0, 1.0, 1.0, 1.0]]]))
    assert np.isclose(float(masked), 1 / 4)
