"""Training the GenXD-style video model (GenXD sec. 4.1 and 5.1, scaled down to a CPU).

Each step draws a batch of one frame count: 3D samples (``spatial`` clips and real photos under
exact rotations, alpha = 0) and 4D samples (``hybrid`` / ``temporal`` clips, alpha learned, with
their motion strength), random condition frames at random positions, and the masked flow
matching loss of ``diffusion.flow``. The EMA of the weights is what gets shipped. Runs on one
device or many through accelerate (``accelerate launch -m scene4d train model ...``).
"""

import copy
import json
from collections import deque
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch

from scene4d.diffusion import masked_flow_loss
from scene4d.errors import Scene4DError
from scene4d.io.checkpoints import load_checkpoint, save_checkpoint
from scene4d.models.bundle import ModelBundle, ModelInfo, load_bundle, save_bundle
from scene4d.models.denoiser import DenoiserConfig, GenXDDenoiser
from scene4d.train.data import (
    LatentClip,
    collate,
    find_clip_folders,
    latent_clip,
    load_latent_clips,
    motion_scale_of,
    training_sample,
)
from scene4d.train.photo_motion import ROTATION_MOVES, photo_rotation_clip
from scene4d.train.state import check_resolution, check_run, optimizer_tensors, restore_optimizer
from scene4d.train.vae import shipped_photos

PRESETS: dict[str, DenoiserConfig] = {
    "tiny": DenoiserConfig(width=128, depth=6, heads=4),
    "small": DenoiserConfig(width=256, depth=8, heads=8),
}


@dataclass(frozen=True)
class TrainConfig:
    preset: str = "tiny"
    resolution: int = 64
    steps: int = 3000
    batch_size: int = 4
    frame_counts: tuple[int, ...] = (8, 12, 16)  # one drawn per batch
    learning_rate: float = 5e-4
    warmup_steps: int = 100
    ema_decay: float = 0.998
    fraction_4d: float = 0.35  # share of samples from clips with times
    fraction_photo: float = 0.15  # share of samples from real photos under exact rotations
    fraction_still: float = 0.0  # share of still 3D samples: one frame of a 3D clip repeated at its camera
    max_conditions: int = 3
    condition_dropout: float = 0.1  # null-condition samples for classifier-free guidance
    fov_x_deg: float = 55.0  # field of view of the photo samples and of generation
    orbit_distance: float = 6.0  # subject distance of orbits at generation, synth scene units
    checkpoint_every: int = 200
    seed: int = 0
    init_model: str | None = None  # a model folder whose denoiser starts training (a fine-tune)
    denoiser: DenoiserConfig = field(default_factory=DenoiserConfig)

    def __post_init__(self) -> None:
        check_run(self.steps, self.batch_size, self.learning_rate)
        shares = {"fraction_4d": self.fraction_4d, "fraction_photo": self.fraction_photo,
                  "fraction_still": self.fraction_still}  # fmt: skip
        for name, share in shares.items():
            if not 0.0 <= share <= 1.0:
                raise Scene4DError(f"{name} must lie in [0, 1], got {share}")
        if sum(shares.values()) > 1.0 + 1e-9:
            raise Scene4DError(f"the sample shares add up to {sum(shares.values())}, more than 1")

    @staticmethod
    def for_preset(preset: str, **overrides: object) -> "TrainConfig":
        if preset not in PRESETS:
            raise Scene4DError(f"unknown preset {preset!r}; valid presets: {', '.join(PRESETS)}")
        return TrainConfig(preset=preset, denoiser=PRESETS[preset], **overrides)  # type: ignore[arg-type]


class SampleSource:
    """Draws training samples: synth / curated clips split into 3D and 4D, and photo rotations."""

    def __init__(self, clips: list[LatentClip], vae: torch.nn.Module, config: TrainConfig) -> None:
        self.static = [clip for clip in clips if not clip.is_4d]
        self.dynamic = [clip for clip in clips if clip.is_4d]
        self.photos = shipped_photos() if config.fraction_photo > 0 else []
        self.vae = vae
        self.config = config

    def batch(self, rng: np.random.Generator) -> dict[str, torch.Tensor]:
        num_frames = int(rng.choice(self.config.frame_counts))
        samples = [self.sample(num_frames, rng) for _ in range(self.config.batch_size)]
        return collate(samples)

    def sample(self, num_frames: int, rng: np.random.Generator) -> dict[str, torch.Tensor]:
        draw = rng.random()
        photo_share = self.config.fraction_photo if self.photos else 0.0
        if draw < photo_share:
            clip = self.photo_clip(num_frames, rng)
        elif self.dynamic and (draw < photo_share + self.config.fraction_4d or not self.static):
            clip = self.dynamic[int(rng.integers(len(self.dynamic)))]
        elif 0 <= draw - photo_share - self.config.fraction_4d < self.config.fraction_still:
            clip = still_clip(self.static[int(rng.integers(len(self.static)))], num_frames, rng)
        else:
            clip = self.static[int(rng.integers(len(self.static)))]
        return training_sample(clip, num_frames, self.config.max_conditions, rng)

    def photo_clip(self, num_frames: int, rng: np.random.Generator) -> LatentClip:
        move = str(rng.choice(ROTATION_MOVES))
        limit = 30.0 if move.startswith("roll") else 20.0
        photo = self.photos[int(rng.integers(len(self.photos)))]
        clip = photo_rotation_clip(
            photo, move, num_frames, float(rng.uniform(5.0, limit)), self.config.resolution, self.config.fov_x_deg
        )
        return latent_clip(clip, self.vae, self.config.resolution, 1.0)


def still_clip(clip: LatentClip, num_frames: int, rng: np.random.Generator) -> LatentClip:
    """``num_frames`` copies of one random frame of a 3D ``clip`` at its camera: a still camera on a
    still scene, which ``--motion 0`` with a still camera asks for and moving-camera clips never show."""
    index = int(rng.integers(clip.latents.shape[0]))
    return LatentClip(
        clip.latents[index].expand(num_frames, *clip.latents.shape[1:]),
        clip.cameras[[index] * num_frames],
        torch.zeros(num_frames),
        0.0,
        False,
    )


def update_ema(ema: torch.nn.Module, model: torch.nn.Module, decay: float) -> None:
    with torch.no_grad():
        for ema_param, param in zip(ema.parameters(), model.parameters(), strict=True):
            ema_param.lerp_(param.detach(), 1 - decay)


def train_model(
    config: TrainConfig,
    data: Path,
    vae: torch.nn.Module,
    out: Path,
    device: str = "cpu",
    on_step: Callable[[int, float], None] | None = None,
) -> ModelBundle:
    """Train the denoiser on the clips under ``data``; writes ``out/model`` and keeps ``out/checkpoint``.

    Resumable: rerunning with the same config continues from the last checkpoint.
    """
    from accelerate import Accelerator

    check_resolution(config.resolution, vae.downsample * config.denoiser.patch_size)
    if device not in ("cpu", "cuda"):
        raise Scene4DError(f"--device must be cpu or cuda, got {device!r}")
    if device == "cuda" and not torch.cuda.is_available():
        raise Scene4DError("--device cuda: no CUDA GPU is visible to PyTorch")
    accelerator = Accelerator(cpu=device == "cpu")
    rng = np.random.default_rng([config.seed, accelerator.process_index])
    generator = torch.Generator(accelerator.device).manual_seed(config.seed + accelerator.process_index)
    torch.manual_seed(config.seed)
    folders = find_clip_folders(data)
    model, info = initial_denoiser(config, folders)
    source = SampleSource(
        load_latent_clips(folders, vae, config.resolution, info.motion_scale, max(config.frame_counts)), vae, config
    )
    ema = copy.deepcopy(model).requires_grad_(False)
    optimizer = torch.optim.AdamW(model.parameters(), lr=config.learning_rate, weight_decay=0.0)
    step = resume(out / "checkpoint", config, model, ema, optimizer, rng, generator)
    if accelerator.process_index > 0 and step > 0:
        # only the main process's random state is saved; the others restart their own streams
        rng.bit_generator.state = np.random.default_rng(
            [config.seed, accelerator.process_index, step]
        ).bit_generator.state
        generator.manual_seed(config.seed + 1000 * accelerator.process_index + step)
    model, optimizer = accelerator.prepare(model, optimizer)
    recent_losses: deque[float] = deque(maxlen=100)
    ema.to(accelerator.device)
    while step < config.steps:
        batch = {key: value.to(accelerator.device) for key, value in source.batch(rng).items()}
        clean, cond_mask = batch.pop("clean"), batch.pop("cond_mask")
        for group in optimizer.param_groups:
            group["lr"] = config.learning_rate * min(1.0, (step + 1) / config.warmup_steps)
        loss = masked_flow_loss(model, clean, cond_mask, generator, config.condition_dropout, **batch)
        optimizer.zero_grad(set_to_none=True)
        accelerator.backward(loss)
        accelerator.clip_grad_norm_(model.parameters(), 1.0)
        optimizer.step()
        update_ema(ema, accelerator.unwrap_model(model), config.ema_decay)
        step += 1
        recent_losses.append(float(loss.detach()))
        if on_step is not None:
            on_step(step, recent_losses[-1])
        if accelerator.is_main_process and (step % config.checkpoint_every == 0 or step == config.steps):
            save_training_state(
                out / "checkpoint",
                config,
                accelerator.unwrap_model(model),
                ema,
                optimizer,
                step,
                rng,
                generator,
                float(np.mean(recent_losses)),
            )
    bundle = ModelBundle(info, vae, ema.cpu().eval())
    if accelerator.is_main_process:
        save_bundle(out / "model", bundle)
    return bundle


def initial_denoiser(config: TrainConfig, folders: list[Path]) -> tuple[GenXDDenoiser, ModelInfo]:
    """A fresh denoiser and the description of a model trained on ``folders`` (the motion scale of
    their clips), or, to fine-tune, the denoiser of ``config.init_model`` and its description: its
    motion scale (so that gamma keeps its meaning), field of view, orbit distance and VAE."""
    if config.init_model is None:
        info = ModelInfo(
            config.resolution, config.fov_x_deg, motion_scale_of(folders), config.orbit_distance, config.preset
        )
        return GenXDDenoiser(config.denoiser), info
    start = load_bundle(Path(config.init_model))
    if start.denoiser.config != config.denoiser:
        raise Scene4DError(
            f"--init {config.init_model} holds a {start.info.preset} denoiser, not the {config.preset} preset"
        )
    if start.info.resolution != config.resolution:
        raise Scene4DError(
            f"--init {config.init_model} was trained at {start.info.resolution} px, not --res {config.resolution}"
        )
    return start.denoiser.train(), start.info


def config_state(config: TrainConfig) -> dict:
    """The config as it reads back from JSON (tuples become lists)."""
    return json.loads(json.dumps(asdict(config)))


def same_recipe(saved: dict, config: TrainConfig) -> bool:
    """Whether a checkpoint may continue under ``config``: only the step count may grow."""
    ignored = ("steps", "checkpoint_every")
    current = config_state(config)
    return all(saved.get(key) == value for key, value in current.items() if key not in ignored)


def save_training_state(
    folder: Path,
    config: TrainConfig,
    model: torch.nn.Module,
    ema: torch.nn.Module,
    optimizer: torch.optim.Optimizer,
    step: int,
    rng: np.random.Generator,
    generator: torch.Generator,
    mean_loss: float,
) -> None:
    """Weights, EMA, Adam moments and random state; ``state.json`` also records the mean recent loss."""
    tensors = {f"model.{name}": value for name, value in model.state_dict().items()}
    tensors |= {f"ema.{name}": value for name, value in ema.state_dict().items()}
    tensors |= optimizer_tensors(optimizer) | {"generator": generator.get_state()}
    state = {"config": config_state(config), "step": step, "loss": mean_loss, "rng": rng.bit_generator.state}
    save_checkpoint(folder, tensors, state)


def resume(
    folder: Path,
    config: TrainConfig,
    model: torch.nn.Module,
    ema: torch.nn.Module,
    optimizer: torch.optim.Optimizer,
    rng: np.random.Generator,
    generator: torch.Generator,
) -> int:
    """Restore weights, EMA, optimizer and random state of a checkpoint made with ``config``."""
    checkpoint = matching_checkpoint(folder, config)
    if checkpoint is None:
        return 0
    tensors, saved = checkpoint
    model.load_state_dict({name[6:]: value for name, value in tensors.items() if name.startswith("model.")})
    ema.load_state_dict({name[4:]: value for name, value in tensors.items() if name.startswith("ema.")})
    return restore_progress(tensors, saved, optimizer, rng, generator)


def matching_checkpoint(folder: Path, config: Any) -> tuple[dict[str, torch.Tensor], dict] | None:
    """The tensors and state of the checkpoint in ``folder`` (None when there is none yet), refusing
    one made with other settings or beyond ``config.steps``."""
    if not (folder / "state.json").is_file():
        return None
    tensors, saved = load_checkpoint(folder)
    if not same_recipe(saved["config"], config):
        raise Scene4DError(f"checkpoint {folder} was made with other settings; use another --out or the same options")
    if int(saved["step"]) > config.steps:
        raise Scene4DError(f"checkpoint {folder} is at step {saved['step']}, beyond --steps {config.steps}")
    return tensors, saved


def restore_progress(
    tensors: dict[str, torch.Tensor],
    saved: dict,
    optimizer: torch.optim.Optimizer,
    rng: np.random.Generator,
    generator: torch.Generator,
) -> int:
    """Adam moments and both random streams of a checkpoint; returns its step."""
    restore_optimizer(optimizer, tensors)
    rng.bit_generator.state = saved["rng"]
    generator.set_state(tensors["generator"])
    return int(saved["step"])
