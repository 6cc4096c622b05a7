"""Textures for synthetic scenes: procedural patterns and real photographs.

The photographs are the sample images that ship inside scikit-image (``skimage/data``), read
from disk: nothing is downloaded. Procedural textures (fractal noise, checkers, stripes) add
high-frequency detail for feature matching and optical flow.
"""

from functools import cache
from importlib.util import find_spec
from pathlib import Path

import numpy as np
import torch
from torch import Tensor

from scene4d.errors import Scene4DError

PHOTO_FILES = (
    "brick.png",
    "grass.png",
    "gravel.png",
    "coffee.png",
    "astronaut.png",
    "chelsea.png",
    "rocket.jpg",
    "motorcycle_left.png",
    "hubble_deep_field.jpg",
    "retina.jpg",
    "camera.png",
    "moon.png",
    "text.png",
    "page.png",
)
GROUND_PHOTOS = ("grass.png", "gravel.png", "brick.png")
PHOTO_SIZE = 256


def skimage_data_dir() -> Path:
    """The folder of sample images inside the installed scikit-image."""
    spec = find_spec("skimage")
    if spec is None or spec.origin is None:
        raise Scene4DError("synth: scikit-image is not installed; its sample photos texture the scenes")
    return Path(spec.origin).parent / "data"


@cache
def available_photos() -> tuple[str, ...]:
    """Names of the shipped photos that are present on this machine."""
    folder = skimage_data_dir()
    return tuple(name for name in PHOTO_FILES if (folder / name).is_file())


@cache
def photo_texture(name: str) -> Tensor:
    """A shipped photo as a texture [H, W, 3] float32 in [0, 1], longest side ``PHOTO_SIZE``."""
    from PIL import Image

    path = skimage_data_dir() / name
    with Image.open(path) as image:
        image = image.convert("RGB")
        scale = PHOTO_SIZE / max(image.size)
        image = image.resize((max(1, round(image.width * scale)), max(1, round(image.height * scale))), Image.BILINEAR)
        return torch.from_numpy(np.asarray(image, dtype=np.float32) / 255.0)


def random_colors(rng: np.random.Generator, count: int) -> Tensor:
    """``count`` saturated random colours [count, 3]."""
    hue = rng.uniform(0, 1, count)
    saturation = rng.uniform(0.4, 0.9, count)
    value = rng.uniform(0.35, 0.95, count)
    channel = np.stack([(hue + offset) % 1.0 for offset in (0.0, 2 / 3, 1 / 3)], axis=-1)
    ramp = np.clip(np.abs(channel * 6 - 3) - 1, 0, 1)
    return torch.from_numpy(
        (value[:, None] * (1 - saturation[:, None] + saturation[:, None] * ramp)).astype(np.float32)
    )


def fractal_noise(rng: np.random.Generator, size: int, octaves: int = 5) -> Tensor:
    """Tileable fractal value noise [size, size] in [0, 1].

    Each octave is a random lattice of ``4 * 2^k`` cells, smoothly interpolated with wrap-around
    indices, so the texture repeats seamlessly when UVs wrap.
    """
    total = torch.zeros(size, size)
    amplitude = 1.0
    for octave in range(octaves):
        cells = 4 * 2**octave
        lattice = torch.from_numpy(rng.uniform(0, 1, (cells, cells)).astype(np.float32))
        position = torch.arange(size, dtype=torch.float32) * cells / size
        low = position.floor().long()
        high = (low + 1) % cells
        blend = position - low
        blend = blend * blend * (3 - 2 * blend)  # smoothstep
        rows = lattice[low] * (1 - blend[:, None]) + lattice[high] * blend[:, None]
        total += amplitude * (rows[:, low] * (1 - blend) + rows[:, high] * blend)
        amplitude *= 0.55
    return (total - total.min()) / (total.max() - total.min() + 1e-6)


def noise_texture(rng: np.random.Generator, size: int = 128) -> Tensor:
    """Fractal noise blended between two random colours [size, size, 3]."""
    low, high = random_colors(rng, 2)
    noise = fractal_noise(rng, size)[..., None]
    return low * (1 - noise) + high * noise


def checker_texture(rng: np.random.Generator, size: int = 128) -> Tensor:
    """A checkerboard of two random colours with faint noise [size, size, 3]."""
    cells = int(rng.choice([4, 8]))
    index = torch.arange(size) * cells // size
    board = ((index[:, None] + index[None, :]) % 2).float()[..., None]
    first, second = random_colors(rng, 2)
    grain = 0.15 * (fractal_noise(rng, size)[..., None] - 0.5)
    return (first * board + second * (1 - board) + grain).clamp(0, 1)


def stripes_texture(rng: np.random.Generator, size: int = 128) -> Tensor:
    """Smooth stripes of three random colours with faint noise [size, size, 3]."""
    colors = random_colors(rng, 3)
    count = int(rng.choice([3, 4, 6]))
    phase = (torch.arange(size).float() / size * count * 3) % 3
    band = torch.stack(
        [torch.clamp(1 - (phase - k).abs(), 0, 1) + torch.clamp(1 - (phase - k - 3).abs(), 0, 1) for k in range(3)], -1
    )
    stripes = band @ colors
    grain = 0.15 * (fractal_noise(rng, size)[..., None] - 0.5)
    return (stripes[None, :, :] + grain).clamp(0, 1)


def sky_texture(rng: np.random.Generator, size: int = 128) -> Tensor:
    """An equirectangular sky [size, 2 size, 3]: a vertical gradient with noise clouds."""
    row = torch.linspace(0, 1, size)[:, None, None]
    zenith = torch.tensor([0.25, 0.45, 0.85]) * rng.uniform(0.8, 1.1)
    horizon = torch.tensor([0.75, 0.85, 0.95])
    gradient = zenith * (1 - row) + horizon * row
    clouds = fractal_noise(rng, 2 * size)[:size, :, None].clamp(0.45, 1.0)
    clouds = (clouds - 0.45) / 0.55
    return (gradient * (1 - clouds) + clouds).expand(size, 2 * size, 3).clone()


def random_texture(rng: np.random.Generator, photo_probability: float = 0.5) -> Tensor:
    """A photo (with the given probability, when any ship) or one of the procedural textures."""
    photos = available_photos()
    if photos and rng.uniform() < photo_probability:
        return photo_texture(str(rng.choice(photos)))
    maker = [noise_texture, checker_texture, stripes_texture][int(rng.integers(3))]
    return maker(rng)


def ground_texture(rng: np.random.Generator) -> Tensor:
    """A ground texture: a ground-like photo when one ships, else fractal noise."""
    photos = [name for name in GROUND_PHOTOS if name in available_photos()]
    if photos and rng.uniform() < 0.75:
        return photo_texture(str(rng.choice(photos)))
    return noise_texture(rng)
