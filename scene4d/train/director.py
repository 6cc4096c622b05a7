"""Training a LoRA director on a frozen base model (DimensionX sec. 3.2.1, scaled down to a CPU).

An S-Director learns from ``spatial`` clips of one camera move (the scene frozen, S(t) = S_0), a
T-Director from ``temporal`` clips (the camera fixed, C(t) = C_0). The loss and the samples are
the base model's (masked flow matching, random condition frames, cameras relative to the first
condition view); only the LoRA weights train. DimensionX trains rank 256 at lr 1e-3 for 3000
steps on CogVideoX (width 3072); the defaults here keep the lr and scale rank and steps to the
tiny model (width 128).
"""

import json
from collections import deque
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
import torch

from scene4d.diffusion import masked_flow_loss
from scene4d.directors.lora import (
    KEY_PREFIX,
    DirectorInfo,
    director_state,
    inject_director,
    save_director,
    target_modules,
)
from scene4d.errors import Scene4DError
from scene4d.geometry import TRAJECTORY_NAMES
from scene4d.geometry.trajectories import nearest_move, pose_change
from scene4d.io import load_clip
from scene4d.io.checkpoints import save_checkpoint
from scene4d.models.bundle import ModelBundle
from scene4d.models.cogvideox import positions_for, video_latents
from scene4d.train.data import find_clip_folders, load_latent_clips
from scene4d.train.model import SampleSource, TrainConfig, matching_checkpoint, restore_progress
from scene4d.train.state import check_run, optimizer_tensors

TRAINED = "trained"  # adapter name while training
# A curated clip without a recorded move is classified by its SfM cameras, whose scale is arbitrary;
# with no model to give the subject distance (CogVideoX), orbits are read at this distance.
SFM_ORBIT_DISTANCE = 4.0


@dataclass(frozen=True)
class DirectorTrainConfig:
    kind: str  # "spatial" (S-Director) or "temporal" (T-Director)
    trajectory: str | None = None  # the camera move an S-Director learns
    rank: int = 16
    alpha: float = 16.0
    steps: int = 300
    learning_rate: float = 1e-3
    batch_size: int = 4
    frame_counts: tuple[int, ...] = (8, 12, 16)
    max_conditions: int = 2
    condition_dropout: float = 0.1
    checkpoint_every: int = 100
    seed: int = 0

    def __post_init__(self) -> None:
        DirectorInfo(self.kind, self.trajectory, self.rank, self.alpha, "")  # validates kind and rank
        if self.kind == "spatial" and self.trajectory not in TRAJECTORY_NAMES:
            raise Scene4DError(
                f"an S-Director needs --trajectory, one of {', '.join(TRAJECTORY_NAMES)}; got {self.trajectory!r}"
            )
        if self.kind == "temporal" and self.trajectory is not None:
            raise Scene4DError("a T-Director learns a fixed camera: leave out --trajectory")
        check_run(self.steps, self.batch_size, self.learning_rate)


def clip_trajectory(folder: Path, meta: dict, orbit_distance: float) -> str:
    """The camera move of a spatial clip: synth records it; a curated clip's is read off its cameras."""
    if meta.get("trajectory"):
        return str(meta["trajectory"])
    return nearest_move(*pose_change(load_clip(folder).cameras), orbit_distance)[0]


def director_clip_folders(data: Path, config: DirectorTrainConfig, orbit_distance: float) -> list[Path]:
    """The Clip folders under ``data`` of the director's kind (and, for an S-Director, its move)."""
    chosen = []
    for folder in find_clip_folders(data):
        meta_path = folder / "meta.json"
        meta = json.loads(meta_path.read_text()) if meta_path.is_file() else {}
        if meta.get("kind") != config.kind:
            continue
        if config.kind == "spatial" and clip_trajectory(folder, meta, orbit_distance) != config.trajectory:
            continue
        chosen.append(folder)
    if not chosen:
        what = f"spatial clips moving {config.trajectory}" if config.kind == "spatial" else "temporal clips"
        raise Scene4DError(f"no {what} under {data}; make some with `scene4d synth` or `scene4d curate`")
    return chosen


def sample_source(clips: list, base: ModelBundle, config: DirectorTrainConfig) -> SampleSource:
    """The base model's sampler restricted to the director's clips (no photo samples)."""
    recipe = TrainConfig(
        resolution=base.info.resolution,
        batch_size=config.batch_size,
        frame_counts=config.frame_counts,
        max_conditions=config.max_conditions,
        fraction_photo=0.0,
    )
    return SampleSource(clips, base.vae, recipe)


def train_director(
    config: DirectorTrainConfig, base: ModelBundle, data: Path, out: Path, on_step: Callable[[int, float], None] | None
) -> DirectorInfo:
    """Train a director on ``base`` (frozen) and write it to ``out`` (``.safetensors``, float16).

    Resumable: the checkpoint lives in ``<out without suffix>.checkpoint/``; rerunning with the
    same settings continues from it.
    """
    torch.manual_seed(config.seed)
    folders = director_clip_folders(data, config, base.info.orbit_distance)
    clips = load_latent_clips(folders, base.vae, base.info.resolution, base.info.motion_scale, max(config.frame_counts))
    source = sample_source(clips, base, config)

    def step_loss(rng: np.random.Generator, generator: torch.Generator) -> torch.Tensor:
        batch = source.batch(rng)
        clean, cond_mask = batch.pop("clean"), batch.pop("cond_mask")
        return masked_flow_loss(base.denoiser, clean, cond_mask, generator, config.condition_dropout, **batch)

    info = DirectorInfo(config.kind, config.trajectory, config.rank, config.alpha, f"scene4d-{base.info.preset}")
    run_director_training(config, base.denoiser, step_loss, out, info, on_step)
    return info


def train_cogvideox_director(
    config: DirectorTrainConfig,
    pipeline,  # diffusers CogVideoXImageToVideoPipeline (frozen; only the LoRA trains)
    prompt_embeds: torch.Tensor,  # [1, L, D] the prompt every sample is trained with
    data: Path,
    out: Path,
    num_frames: int,
    on_step: Callable[[int, float], None] | None,
    last_frame: bool = False,
) -> DirectorInfo:
    """Train a director on CogVideoX-5b-I2V, as DimensionX does: v-prediction on video latents with the
    first frame's latent as the image condition (the loss of diffusers' CogVideoX image-to-video
    LoRA recipe). ``config.frame_counts`` is unused: every sample has ``num_frames`` (8k + 1) frames.
    With ``last_frame`` the last frame's latent conditions too: an S-Director for a first-and-last-frame
    interpolation model (DimensionX sec. 3.3 trains its sparse-view directors on one).
    """
    from scene4d.pipelines.cogvideox import check_frame_count

    check_frame_count(num_frames)
    torch.manual_seed(config.seed)
    folders = director_clip_folders(data, config, orbit_distance=SFM_ORBIT_DISTANCE)

    def step_loss(rng: np.random.Generator, generator: torch.Generator) -> torch.Tensor:
        picks = rng.choice(len(folders), size=config.batch_size)
        videos = np.stack([cogvideox_sample(folders[int(pick)], num_frames, pipeline, rng) for pick in picks])
        return cogvideox_loss(pipeline, videos, prompt_embeds, generator, last_frame)

    info = DirectorInfo(config.kind, config.trajectory, config.rank, config.alpha, "cogvideox")
    transformer = pipeline.transformer
    transformer.enable_gradient_checkpointing()  # 49 frames of 90 x 60 latents through a 5B transformer
    try:
        with positions_for(transformer, num_frames):
            run_director_training(config, transformer, step_loss, out, info, on_step)
    finally:
        transformer.disable_gradient_checkpointing()
    return info


def cogvideox_sample(folder: Path, num_frames: int, pipeline, rng: np.random.Generator) -> np.ndarray:
    """``num_frames`` consecutive frames [T, H, W, 3] of a clip (from a random start), fitted to the
    pipeline's frame size."""
    from scene4d.pipelines.cogvideox import fit_image, frame_size

    frames = load_clip(folder).frames
    if len(frames) < num_frames:
        raise Scene4DError(f"clip {folder} has {len(frames)} frames, fewer than --frames {num_frames}")
    start = int(rng.integers(len(frames) - num_frames + 1))
    width, height = frame_size(pipeline)
    return np.stack([fit_image(frame, width, height) for frame in frames[start : start + num_frames]])


def cogvideox_loss(
    pipeline, videos: np.ndarray, prompt_embeds: torch.Tensor, generator: torch.Generator, last_frame: bool = False
) -> torch.Tensor:
    """Weighted x0 error of CogVideoX's v-prediction at random DDPM timesteps; ``videos`` [B, T, H, W, 3].
    The image condition holds the first frame's latent (and with ``last_frame`` the last one's, as
    ``pipelines.cogvideox.last_frame_condition``), zeros elsewhere."""
    transformer, scheduler = pipeline.transformer, pipeline.scheduler
    device, dtype = transformer.device, transformer.dtype
    with torch.no_grad():
        latents = video_latents(pipeline, videos, generator)  # [B, F, C, h, w]
        first = video_latents(pipeline, videos[:, :1], generator, condition=True)
        image_latents = torch.cat([first, torch.zeros_like(latents[:, 1:])], dim=1)
        if last_frame:
            image_latents[:, -1:] = video_latents(pipeline, videos[:, -1:], generator, condition=True)
    batch, frames = latents.shape[:2]
    timesteps = torch.randint(0, scheduler.config.num_train_timesteps, (batch,), generator=generator).to(device)
    noise = torch.randn(latents.shape, generator=generator).to(device, dtype)
    noisy = scheduler.add_noise(latents, noise, timesteps)
    rotary = None
    if transformer.config.use_rotary_positional_embeddings:
        rotary = pipeline._prepare_rotary_positional_embeddings(videos.shape[2], videos.shape[3], frames, device)
    velocity = transformer(
        hidden_states=torch.cat([noisy, image_latents], dim=2),
        encoder_hidden_states=prompt_embeds.expand(batch, -1, -1).to(device, dtype),
        timestep=timesteps,
        image_rotary_emb=rotary,
        return_dict=False,
    )[0]
    predicted = scheduler.get_velocity(velocity, noisy, timesteps)  # x0 = sqrt(a) x_t - sqrt(1 - a) v
    alphas = scheduler.alphas_cumprod.to(device)[timesteps]
    weights = (1 / (1 - alphas)).reshape(batch, 1, 1, 1, 1)
    return (weights * (predicted.float() - latents.float()).square()).mean()


def run_director_training(
    config: DirectorTrainConfig,
    backbone: torch.nn.Module,
    step_loss: Callable[[np.random.Generator, torch.Generator], torch.Tensor],
    out: Path,
    info: DirectorInfo,
    on_step: Callable[[int, float], None] | None,
) -> None:
    """The LoRA training loop of any backbone: AdamW on the adapter only, checkpoints, the file at the end."""
    rng = np.random.default_rng(config.seed)
    generator = torch.Generator().manual_seed(config.seed)
    inject_director(backbone, TRAINED, config.rank, config.alpha, target_modules(backbone))
    parameters = [parameter for parameter in backbone.parameters() if parameter.requires_grad]
    optimizer = torch.optim.AdamW(parameters, lr=config.learning_rate, weight_decay=0.0)
    checkpoint = out.with_suffix(".checkpoint")
    step = resume_director(checkpoint, config, backbone, optimizer, rng, generator)
    recent: deque[float] = deque(maxlen=50)
    backbone.train()
    while step < config.steps:
        loss = step_loss(rng, generator)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(parameters, 1.0)
        optimizer.step()
        step += 1
        recent.append(float(loss.detach()))
        if on_step is not None:
            on_step(step, recent[-1])
        if step % config.checkpoint_every == 0 or step == config.steps:
            state = {"config": json.loads(json.dumps(asdict(config))), "step": step, "loss": float(np.mean(recent))}
            tensors = director_state(backbone, TRAINED) | optimizer_tensors(optimizer)
            save_checkpoint(
                checkpoint, tensors | {"generator": generator.get_state()}, state | {"rng": rng.bit_generator.state}
            )
    backbone.eval()
    save_director(out, backbone, TRAINED, info, torch.float16)


def resume_director(
    folder: Path,
    config: DirectorTrainConfig,
    backbone: torch.nn.Module,
    optimizer: torch.optim.Optimizer,
    rng: np.random.Generator,
    generator: torch.Generator,
) -> int:
    """Restore LoRA weights, Adam moments and random state from a checkpoint made with ``config``."""
    from peft.functional import set_peft_model_state_dict

    checkpoint = matching_checkpoint(folder, config)
    if checkpoint is None:
        return 0
    tensors, saved = checkpoint
    lora = {key.removeprefix(KEY_PREFIX): value for key, value in tensors.items() if ".lora_" in key}
    set_peft_model_state_dict(backbone, lora, adapter_name=TRAINED)
    return restore_progress(tensors, saved, optimizer, rng, generator)
