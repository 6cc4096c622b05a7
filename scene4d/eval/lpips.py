"""LPIPS (Zhang et al. 2018, "The Unreasonable Effectiveness of Deep Features as a Perceptual
Metric"), AlexNet variant v0.1, from local weights.

Written here because the ``lpips`` package imports torchvision for its backbone, and torchvision
would pull a CUDA build of torch into a CPU install. The network is the same: the first five
ReLU outputs of torchvision's AlexNet ``features``, each unit-normalised over channels, their
squared difference weighted per channel by LPIPS's linear layers and averaged over space, summed
over the five layers.

Weights are never downloaded. ``load_lpips(folder)`` reads two files that other tools already
put on disk: torchvision's ImageNet AlexNet (``alexnet-owt-7be5be79.pth``, kept by torch hub in
``~/.cache/torch/hub/checkpoints``) and the linear layers the ``lpips`` package ships
(``lpips/weights/v0.1/alex.pth``).
"""

from pathlib import Path

import torch
import torch.nn.functional as F  # noqa: N812
from torch import Tensor, nn

from scene4d.errors import Scene4DError

BACKBONE_FILE = "alexnet-owt-7be5be79.pth"
LINEAR_FILE = "alex.pth"
CHANNELS = (64, 192, 384, 256, 256)
INPUT_SHIFT = (-0.030, -0.088, -0.188)  # LPIPS's ScalingLayer, on images in [-1, 1]
INPUT_SCALE = (0.458, 0.448, 0.450)
NORM_EPS = 1e-10
MIN_SIDE = 31  # pixels: AlexNet's two max-pools need 3 x 3 inputs


class LPIPS(nn.Module):
    """Perceptual distance between images [B, H, W, 3] in [0, 1]; lower is more alike."""

    def __init__(self) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(3, 64, kernel_size=11, stride=4, padding=2)
        self.conv2 = nn.Conv2d(64, 192, kernel_size=5, padding=2)
        self.conv3 = nn.Conv2d(192, 384, kernel_size=3, padding=1)
        self.conv4 = nn.Conv2d(384, 256, kernel_size=3, padding=1)
        self.conv5 = nn.Conv2d(256, 256, kernel_size=3, padding=1)
        self.linear = nn.ParameterList([nn.Parameter(torch.zeros(1, channels, 1, 1)) for channels in CHANNELS])
        self.register_buffer("shift", torch.tensor(INPUT_SHIFT).view(1, 3, 1, 1), persistent=False)
        self.register_buffer("scale", torch.tensor(INPUT_SCALE).view(1, 3, 1, 1), persistent=False)
        self.requires_grad_(False)

    def features(self, images: Tensor) -> list[Tensor]:  # images [B, H, W, 3] in [0, 1]
        """The five ReLU outputs [B, C_l, h_l, w_l] of AlexNet."""
        if min(images.shape[1:3]) < MIN_SIDE:
            raise Scene4DError(f"LPIPS needs images of at least {MIN_SIDE} x {MIN_SIDE} pixels, got "
                               f"{images.shape[2]} x {images.shape[1]}")  # fmt: skip
        x = ((images.permute(0, 3, 1, 2) * 2 - 1) - self.shift) / self.scale
        relu1 = F.relu(self.conv1(x))
        relu2 = F.relu(self.conv2(F.max_pool2d(relu1, kernel_size=3, stride=2)))
        relu3 = F.relu(self.conv3(F.max_pool2d(relu2, kernel_size=3, stride=2)))
        relu4 = F.relu(self.conv4(relu3))
        relu5 = F.relu(self.conv5(relu4))
        return [relu1, relu2, relu3, relu4, relu5]

    def layer_maps(self, image: Tensor, target: Tensor) -> list[Tensor]:  # both [B, H, W, 3] in [0, 1]
        """Per layer, ``sum_c w_c (f_c / |f| - g_c / |g|)^2`` [B, h_l, w_l]."""
        maps = []
        for weights, ours, theirs in zip(self.linear, self.features(image), self.features(target), strict=True):
            maps.append(((unit_channels(ours) - unit_channels(theirs)).square() * weights).sum(dim=1))
        return maps

    def forward(self, image: Tensor, target: Tensor) -> Tensor:  # both [B, H, W, 3] in [0, 1]
        """LPIPS [B]: the layer maps averaged over space, summed over layers."""
        return sum(layer.flatten(1).mean(dim=1) for layer in self.layer_maps(image, target))

    def spatial(self, image: Tensor, target: Tensor) -> Tensor:  # both [B, H, W, 3] in [0, 1]
        """Per-pixel LPIPS [B, H, W]: each layer map bilinearly upsampled to the image, summed (the
        ``lpips`` package's ``spatial=True``), so that a loss can weight it per pixel."""
        size = image.shape[1:3]
        upsampled = [
            F.interpolate(layer[:, None], size=size, mode="bilinear", align_corners=False)[:, 0]
            for layer in self.layer_maps(image, target)
        ]
        return sum(upsampled)


def unit_channels(features: Tensor) -> Tensor:
    """``f / (|f| + eps)`` over channels (dim 1), LPIPS's ``normalize_tensor``. Where a feature is
    all zero its gradient is 0/0, but the ReLU before it passes none back there."""
    return features / (features.square().sum(dim=1, keepdim=True).sqrt() + NORM_EPS)


def lpips_files(folder: Path) -> tuple[Path, Path]:
    """The backbone and linear-layer weight files in ``folder``; raises naming any that is missing."""
    for path in (folder / BACKBONE_FILE, folder / LINEAR_FILE):
        if not path.is_file():
            raise Scene4DError(
                f"LPIPS weights missing: {path}. Copy torchvision's {BACKBONE_FILE} (torch hub cache) and the "
                f"lpips package's weights/v0.1/{LINEAR_FILE} into {folder}"
            )
    return folder / BACKBONE_FILE, folder / LINEAR_FILE


def load_lpips(folder: Path) -> LPIPS:
    """LPIPS with torchvision's AlexNet (``folder/alexnet-owt-7be5be79.pth``) and the ``lpips``
    package's v0.1 linear layers (``folder/alex.pth``)."""
    backbone, linear = (read_weights(path) for path in lpips_files(folder))
    names = {f"conv{layer + 1}.{kind}": f"features.{index}.{kind}" for layer, index in enumerate((0, 3, 6, 8, 10))
             for kind in ("weight", "bias")}  # fmt: skip
    names |= {f"linear.{layer}": f"lin{layer}.model.1.weight" for layer in range(len(CHANNELS))}
    model = LPIPS()
    try:
        state = {
            ours: (backbone if theirs.startswith("features") else linear)[theirs] for ours, theirs in names.items()
        }
        model.load_state_dict(state)
    except (KeyError, RuntimeError) as error:
        reason = str(error).splitlines()[0]
        raise Scene4DError(f"LPIPS weights in {folder} are not AlexNet / lpips v0.1 ones: {reason}") from None
    return model


def read_weights(path: Path) -> dict[str, Tensor]:
    """A PyTorch state dict, loaded without running pickled code."""
    try:
        return torch.load(path, map_location="cpu", weights_only=True)
    except Exception as error:  # noqa: BLE001 -- any unpickling failure means the same: not a state dict
        reason = str(error).splitlines()[0] if str(error) else ""
        raise Scene4DError(f"LPIPS weights unreadable: {path} ({type(error).__name__}: {reason})") from None
