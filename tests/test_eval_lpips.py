"""LPIPS from local weights, against the LPIPS equation evaluated layer by layer with the saved tensors."""

import pytest
import torch
import torch.nn.functional as F  # noqa: N812
from conftest import ALEXNET_CONVS

from scene4d.errors import Scene4DError
from scene4d.eval.lpips import load_lpips

# torchvision's AlexNet ``features``, index by index; LPIPS taps the ReLUs at 1, 4, 7, 9 and 11
ALEXNET = ["conv", "relu", "pool", "conv", "relu", "pool", "conv", "relu", "conv", "relu", "conv", "relu"]
CONV_OPTIONS = {0: {"stride": 4, "padding": 2}, 3: {"padding": 2}, 6: {"padding": 1}, 8: {"padding": 1},
                10: {"padding": 1}}  # fmt: skip


def reference_lpips(folder, image, target):
    """Zhang et al. 2018, eq. 1: sum_l mean_hw |w_l * (y_l - y0_l)|^2 with unit-normalised features."""
    backbone = torch.load(folder / "alexnet-owt-7be5be79.pth")
    linear = torch.load(folder / "alex.pth")
    shift = torch.tensor([-0.030, -0.088, -0.188]).view(1, 3, 1, 1)
    scale = torch.tensor([0.458, 0.448, 0.450]).view(1, 3, 1, 1)

    def taps(images):
        x = ((2 * images - 1).permute(0, 3, 1, 2) - shift) / scale
        found = []
        for index, kind in enumerate(ALEXNET):
            if kind == "conv":
                weight, bias = backbone[f"features.{index}.weight"], backbone[f"features.{index}.bias"]
                x = F.conv2d(x, weight, bias, **CONV_OPTIONS[index])
            elif kind == "pool":
                x = F.max_pool2d(x, 3, 2)
            else:
                x = torch.clamp(x, min=0)
                found.append(x)
        return found

    total = 0.0
    for layer, (ours, theirs) in enumerate(zip(taps(image), taps(target), strict=True)):
        ours = ours / (ours.norm(dim=1, keepdim=True) + 1e-10)
        theirs = theirs / (theirs.norm(dim=1, keepdim=True) + 1e-10)
        weights = linear[f"lin{layer}.model.1.weight"].view(1, -1, 1, 1)
        total = total + (weights * (ours - theirs) ** 2).sum(dim=1).mean(dim=(1, 2))
    return total


def test_lpips_matches_the_equation_with_the_saved_weights_and_its_gradient(lpips_weights):
    assert len(ALEXNET_CONVS) == 5
    generator = torch.Generator().manual_seed(0)
    target = torch.rand(2, 64, 48, 3, generator=generator)
    image = (target + 0.2 * torch.randn(target.shape, generator=generator)).clamp(0, 1).requires_grad_()
    model = load_lpips(lpips_weights)
    ours, expected = model(image, target), reference_lpips(lpips_weights, image, target)
    torch.testing.assert_close(ours, expected, rtol=1e-5, atol=1e-7)
    assert bool((ours > 0).all())
    torch.testing.assert_close(model(target, target), torch.zeros(2))
    cotangent = torch.rand(2, generator=generator)
    (grad_ours,) = torch.autograd.grad((ours * cotangent).sum(), image)
    (grad_expected,) = torch.autograd.grad((expected * cotangent).sum(), image)
    torch.testing.assert_close(grad_ours, grad_expected, rtol=1e-4, atol=1e-8)


def test_spatial_lpips_puts_the_difference_where_it_is(lpips_weights):
    generator = torch.Generator().manual_seed(1)
    target = torch.rand(1, 64, 80, 3, generator=generator)
    image = target.clone()
    image[:, :24, :24] = torch.rand(1, 24, 24, 3, generator=generator)  # only the top-left corner differs
    model = load_lpips(lpips_weights)
    spatial = model.spatial(image, target)
    assert spatial.shape == (1, 64, 80)
    assert float(spatial[0, :24, :24].mean()) > 10 * float(spatial[0, 40:, 56:].mean())
    # the lpips package's spatial=True: every layer map upsampled to H x W (bilinear, corners not aligned)
    expected = sum(
        F.interpolate(layer[:, None], size=(64, 80), mode="bilinear", align_corners=False)[:, 0]
        for layer in model.layer_maps(image, target)
    )
    torch.testing.assert_close(spatial, expected)


def test_lpips_gradient_is_finite_where_a_layer_sees_nothing(lpips_weights):
    model = load_lpips(lpips_weights)
    model.conv5.bias.fill_(-1e3)  # every relu5 feature is 0: the unit normalisation divides 0 by 0
    generator = torch.Generator().manual_seed(3)
    target = torch.rand(1, 40, 40, 3, generator=generator)
    image = torch.rand(1, 40, 40, 3, generator=generator).requires_grad_()
    spatial = model.spatial(image, target)
    (gradient,) = torch.autograd.grad(spatial.sum(), image)
    assert bool(torch.isfinite(spatial).all()) and bool(torch.isfinite(gradient).all())
    assert float(gradient.abs().sum()) > 0


def test_lpips_refuses_images_too_small_for_alexnet(lpips_weights):
    with pytest.raises(Scene4DError, match="at least 31 x 31 pixels, got 40 x 30"):
        load_lpips(lpips_weights)(torch.rand(1, 30, 40, 3), torch.rand(1, 30, 40, 3))


def test_missing_or_broken_lpips_weights_name_the_file(lpips_weights):
    backbone = torch.load(lpips_weights / "alexnet-owt-7be5be79.pth")
    torch.save({**backbone, "features.3.weight": backbone["features.3.weight"][:, :8]}, lpips_weights / "wrong.pth")
    (lpips_weights / "wrong.pth").replace(lpips_weights / "alexnet-owt-7be5be79.pth")
    with pytest.raises(Scene4DError, match="not AlexNet / lpips v0.1 ones"):
        load_lpips(lpips_weights)
    (lpips_weights / "alex.pth").unlink()
    with pytest.raises(Scene4DError, match="alex.pth"):
        load_lpips(lpips_weights)
    (lpips_weights / "alex.pth").write_bytes(b"not a checkpoint")
    with pytest.raises(Scene4DError, match="unreadable"):
        load_lpips(lpips_weights)
