"""Training the small VAE on synth frames and crops of real photographs.

Synth renders teach the textures the video model sees in training; random crops of the photos
shipped with scikit-image (at random scales) keep a user's real photograph intact through
encoding and decoding. The loss is L1 reconstruction plus a small KL term (latent diffusion's
KL-regularised autoencoder, without its adversarial and perceptual terms, which need weights).
"""

from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
import torch

from scene4d.errors import Scene4DError
from scene4d.io import load_clip
from scene4d.io.atomic import atomic_directory
from scene4d.io.checkpoints import load_checkpoint, save_checkpoint
from scene4d.models.bundle import save_module
from scene4d.models.vae import TinyVAE, VAEConfig, kl_divergence, scaling_factor_for, to_model_images
from scene4d.train.data import find_clip_folders
from scene4d.train.state import check_resolution, check_run, optimizer_tensors, restore_optimizer


@dataclass(frozen=True)
class VAETrainConfig:
    resolution: int = 64
    steps: int = 1500
    batch_size: int = 32
    learning_rate: float = 1e-3
    kl_weight: float = 1e-6
    photo_fraction: float = 0.5  # share of each batch cut from real photographs
    max_clips: int = 400  # clips whose frames are loaded
    checkpoint_every: int = 250
    seed: int = 0

    def __post_init__(self) -> None:
        check_run(self.steps, self.batch_size, self.learning_rate)


def load_frames(data: Path, resolution: int, max_clips: int, rng: np.random.Generator) -> np.ndarray:
    """Frames [N, r, r, 3] of up to ``max_clips`` randomly chosen clips under ``data``."""
    folders = find_clip_folders(data)
    chosen = rng.choice(len(folders), size=min(max_clips, len(folders)), replace=False)
    return np.concatenate([load_clip(folders[index]).squared(resolution).frames for index in sorted(chosen)])


def photo_crops(photos: list[np.ndarray], count: int, resolution: int, rng: np.random.Generator) -> np.ndarray:
    """``count`` random square crops (side 25-100% of the photo's short side) resized to ``resolution``."""
    import cv2

    crops = []
    for _ in range(count):
        photo = photos[int(rng.integers(len(photos)))]
        side = int(min(photo.shape[:2]) * rng.uniform(0.25, 1.0))
        top = int(rng.integers(photo.shape[0] - side + 1))
        left = int(rng.integers(photo.shape[1] - side + 1))
        crop = photo[top : top + side, left : left + side]
        crops.append(cv2.resize(crop, (resolution, resolution), interpolation=cv2.INTER_AREA))
    return np.stack(crops)


def shipped_photos() -> list[np.ndarray]:
    from scene4d.synth.textures import available_photos, photo_texture

    return [photo_texture(name).numpy() for name in available_photos()]


def vae_batch(
    frames: np.ndarray, photos: list[np.ndarray], config: VAETrainConfig, rng: np.random.Generator
) -> torch.Tensor:
    """Images [B, 3, r, r] in [-1, 1]: synth frames and photo crops, randomly flipped."""
    num_photos = int(round(config.batch_size * config.photo_fraction)) if photos else 0
    images = frames[rng.integers(len(frames), size=config.batch_size - num_photos)]
    if num_photos > 0:
        images = np.concatenate([images, photo_crops(photos, num_photos, config.resolution, rng)])
    flips = rng.random(len(images)) < 0.5
    images[flips] = images[flips, :, ::-1]
    return to_model_images(images)


def train_vae(
    config: VAETrainConfig,
    vae_config: VAEConfig,
    data: Path,
    out: Path,
    on_step: Callable[[int, float], None] | None = None,
) -> TinyVAE:
    """Train a TinyVAE; writes ``out/vae`` (config with the fitted scaling factor + weights).

    Resumable: ``out/checkpoint`` is refreshed every ``checkpoint_every`` steps.
    """
    check_resolution(config.resolution, vae_config.downsample)
    rng = np.random.default_rng(config.seed)
    torch.manual_seed(config.seed)
    frames = load_frames(data, config.resolution, config.max_clips, rng)
    photos = shipped_photos()
    vae = TinyVAE(vae_config)
    optimizer = torch.optim.AdamW(vae.parameters(), lr=config.learning_rate, weight_decay=0.0)
    step = resume(out / "checkpoint", config, vae, optimizer, rng)
    while step < config.steps:
        images = vae_batch(frames, photos, config, rng)
        for group in optimizer.param_groups:
            group["lr"] = config.learning_rate * 0.5 * (1 + np.cos(np.pi * step / config.steps))
        mean, logvar = vae.encode_distribution(images)
        latents = mean + torch.randn_like(mean) * (0.5 * logvar).exp()
        loss = (vae.decoder(latents) - images).abs().mean() + config.kl_weight * kl_divergence(mean, logvar)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
        step += 1
        if on_step is not None:
            on_step(step, float(loss.detach()))
        if step % config.checkpoint_every == 0 or step == config.steps:
            tensors = {**vae.state_dict(), **optimizer_tensors(optimizer), "torch_rng": torch.get_rng_state()}
            state = {"config": asdict(config), "step": step, "rng": rng.bit_generator.state}
            save_checkpoint(out / "checkpoint", tensors, state)
    return finish_vae(vae, frames, out)


def resume(
    folder: Path, config: VAETrainConfig, vae: TinyVAE, optimizer: torch.optim.Optimizer, rng: np.random.Generator
) -> int:
    """Restore a checkpoint made with the same config; returns its step (0 when none)."""
    if not (folder / "state.json").is_file():
        return 0
    tensors, saved = load_checkpoint(folder)
    if saved["config"] != asdict(config):
        raise Scene4DError(f"checkpoint {folder} was made with other settings; use another --out or the same options")
    vae.load_state_dict({name: tensors[name] for name in vae.state_dict()})
    restore_optimizer(optimizer, tensors)
    rng.bit_generator.state = saved["rng"]
    torch.set_rng_state(tensors["torch_rng"])
    return int(saved["step"])


@torch.no_grad()
def finish_vae(vae: TinyVAE, frames: np.ndarray, out: Path) -> TinyVAE:
    """Fit the latent scaling factor on training frames and write ``out/vae``."""
    vae.eval()
    images = to_model_images(frames[:: max(1, len(frames) // 512)])
    mean, _ = vae.encode_distribution(images)
    fitted = TinyVAE(VAEConfig(**{**asdict(vae.config), "scaling_factor": scaling_factor_for(mean)}))
    fitted.load_state_dict(vae.state_dict())
    with atomic_directory(out / "vae") as staging:
        save_module(staging, fitted, fitted.config.to_json())
    return fitted.eval()
