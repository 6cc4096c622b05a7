"""Training data for the video model: Clip folders encoded to latents, and random training samples.

A sample follows GenXD's recipe: a random subset of a clip's frames, a random number of clean
condition frames at random positions (masked latent conditioning), cameras re-expressed in the
frame of the first condition camera (DESIGN: a generated scene's world is its first condition
view), Plücker rays at latent resolution, frame times, the motion strength gamma, and whether
the sample is 4D (alpha learned) or static 3D (alpha = 0).
"""

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from torch import Tensor

from scene4d.errors import Scene4DError
from scene4d.geometry import Cameras, plucker_rays
from scene4d.io import Clip, load_clip
from scene4d.models.vae import encode_frames


@dataclass
class LatentClip:
    latents: Tensor  # [T, C, h, w] scaled VAE latents
    cameras: Cameras  # T cameras at image resolution
    times: Tensor  # [T] in [0, 1]
    motion: float  # gamma normalised by the model's motion scale, clipped to [0, 1]
    is_4d: bool  # hybrid / temporal clips (frames carry times)


def find_clip_folders(data: Path) -> list[Path]:
    """Every folder under ``data`` (itself included, symbolic links followed) holding a ``transforms.json``;
    hidden folders are passed over (a killed save leaves its half-written ``.NAME.tmp-*`` staging folder)."""
    import os

    if not data.is_dir():
        raise Scene4DError(f"training data folder not found: {data}")
    folders = []
    for root, subfolders, names in os.walk(data, followlinks=True):
        subfolders[:] = [name for name in subfolders if not name.startswith(".")]
        if "transforms.json" in names:
            folders.append(Path(root))
    folders.sort()
    if not folders:
        raise Scene4DError(f"no Clip folders (with transforms.json) under {data}; make some with `scene4d synth`")
    return folders


def clip_is_4d(clip: Clip) -> bool:
    """A clip is 4D when its frames span time (``temporal``, ``hybrid`` or curated dynamic video)."""
    return bool(clip.times.max() > clip.times.min())


def latent_clip(clip: Clip, vae: torch.nn.Module, resolution: int, motion_scale: float) -> LatentClip:
    """A clip squared to ``resolution``, encoded, with its normalised motion strength."""
    clip = clip.squared(resolution)
    motion = float(clip.meta.get("motion_strength", 0.0)) / motion_scale
    return LatentClip(
        encode_frames(vae, clip.frames), clip.cameras, torch.from_numpy(clip.times), min(motion, 1.0), clip_is_4d(clip)
    )


def motion_scale_of(folders: list[Path]) -> float:
    """The 95th percentile of the clips' motion strengths (gamma = 1 in the model's units)."""
    import json

    strengths = []
    for folder in folders:
        meta_path = folder / "meta.json"
        if meta_path.is_file():
            strengths.append(float(json.loads(meta_path.read_text()).get("motion_strength", 0.0)))
    moving = [value for value in strengths if value > 0]
    return float(np.percentile(moving, 95)) if moving else 1.0


def load_latent_clips(
    folders: list[Path], vae: torch.nn.Module, resolution: int, motion_scale: float, min_frames: int
) -> list[LatentClip]:
    """Load and encode every clip with at least ``min_frames`` frames."""
    clips = []
    for folder in folders:
        clip = load_clip(folder)
        if len(clip) >= min_frames:
            clips.append(latent_clip(clip, vae, resolution, motion_scale))
    if not clips:
        raise Scene4DError(f"no training clip has the {min_frames} frames a sample needs")
    return clips


def condition_positions(rng: np.random.Generator, num_frames: int, max_conditions: int) -> np.ndarray:
    """Sorted positions of 1..max_conditions condition frames; the first frame is one 70% of the time."""
    count = int(rng.integers(1, min(max_conditions, num_frames - 1) + 1))
    if rng.random() < 0.7:
        others = rng.choice(np.arange(1, num_frames), size=count - 1, replace=False)
        return np.sort(np.concatenate([[0], others]))
    return np.sort(rng.choice(num_frames, size=count, replace=False))


def training_sample(
    clip: LatentClip, num_frames: int, max_conditions: int, rng: np.random.Generator
) -> dict[str, Tensor]:
    """One sample of ``num_frames`` frames drawn (in order) from ``clip``."""
    indices = np.sort(rng.choice(clip.latents.shape[0], size=num_frames, replace=False))
    conditions = condition_positions(rng, num_frames, max_conditions)
    cond_mask = torch.zeros(num_frames)
    cond_mask[conditions] = 1.0
    cameras = clip.cameras[indices.tolist()].relative_to(int(conditions[0]))
    latents = clip.latents[indices]
    return {
        "clean": latents,
        "cond_mask": cond_mask,
        "plucker": plucker_rays(cameras, *latents.shape[-2:]).permute(0, 3, 1, 2),
        "times": clip.times[indices],
        "motion": torch.tensor(clip.motion),
        "is_4d": torch.tensor(clip.is_4d),
    }


def collate(samples: list[dict[str, Tensor]]) -> dict[str, Tensor]:
    return {key: torch.stack([sample[key] for sample in samples]) for key in samples[0]}
