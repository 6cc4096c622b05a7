"""CogVideoX-5b-I2V (DimensionX's base model) through diffusers' ``CogVideoXImageToVideoPipeline``.

A thin loader: weights come from a local folder or a model id already in the local Hugging Face
cache (nothing is downloaded), in bfloat16 on CUDA (float32 on a CPU), with diffusers' model CPU
offload and VAE tiling as options for smaller GPUs. Directors load into ``pipeline.transformer``
with ``directors.lora``.

Videos longer (or shorter) than the 49 frames CogVideoX was trained on: its 3D RoPE extrapolates
in time by itself (DimensionX extends it to 145 frames), and ``positions_for`` stretches the learned
position table that CogVideoX-5b-I2V adds on top, which diffusers would otherwise replace with a
sin-cos table the model never saw.
"""

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from torch import Tensor

from scene4d.errors import Scene4DError

COGVIDEOX_ID = "THUDM/CogVideoX-5b-I2V"


@dataclass(frozen=True)
class CogVideoXOptions:
    source: str = COGVIDEOX_ID  # a local folder or a cached diffusers model id
    cpu_offload: bool = False  # move each sub-model to the GPU only while it runs (about 10 GB less memory)
    vae_tiling: bool = False  # decode the video in tiles (less memory, slower)


def weights_present(source: str) -> bool:
    """Whether ``source`` is a pipeline folder, or a model id whose pipeline index is in the local cache."""
    from huggingface_hub import try_to_load_from_cache
    from huggingface_hub.errors import HFValidationError

    if Path(source).is_dir():
        return (Path(source) / "model_index.json").is_file()
    try:
        return isinstance(try_to_load_from_cache(source, "model_index.json"), str)
    except HFValidationError:  # a path that is not there, not a model id
        return False


def load_cogvideox(options: CogVideoXOptions):
    """The image-to-video pipeline, on CUDA when available; a one-line error names missing weights."""
    from diffusers import CogVideoXImageToVideoPipeline

    cuda = torch.cuda.is_available()
    try:
        pipeline = CogVideoXImageToVideoPipeline.from_pretrained(
            options.source, dtype=torch.bfloat16 if cuda else torch.float32, local_files_only=True
        )
    except (OSError, ValueError, ImportError) as error:
        if not weights_present(options.source):
            raise Scene4DError(
                f"no CogVideoX image-to-video weights at {options.source!r} (a local folder or a model id in the "
                f"local Hugging Face cache); download {COGVIDEOX_ID} on a machine with internet first "
                f"({error.__class__.__name__})"
            ) from None
        raise Scene4DError(f"the CogVideoX weights at {options.source!r} did not load: {error}") from None
    if options.cpu_offload:
        if not cuda:
            raise Scene4DError("--cpu-offload needs a CUDA GPU")
        pipeline.enable_model_cpu_offload()
    elif cuda:
        pipeline.to("cuda")
    if options.vae_tiling:
        pipeline.vae.enable_tiling()
    return pipeline


@torch.no_grad()
def encoded_prompt(pipeline, prompt: str, guidance: float) -> dict[str, Tensor | None]:
    """The pipeline's prompt keywords with the T5 embeddings [1, L, D] computed once (and the empty
    negative prompt's when ``guidance`` > 1), for many videos of one prompt."""
    embeds, negative = pipeline.encode_prompt(prompt, do_classifier_free_guidance=guidance > 1.0)
    return {"prompt_embeds": embeds, "negative_prompt_embeds": negative}


def video_latents(pipeline, videos: np.ndarray, generator: torch.Generator, condition: bool = False) -> Tensor:
    """Scaled latents [B, F, C, h, w] (the layout of the pipeline's denoising loop) of ``videos``
    [B, T, H, W, 3] in [0, 1], sampled from the encoder's distribution, on the device the pipeline
    runs on (with model CPU offload the VAE itself waits on the CPU between calls). A ``condition``
    image is scaled as the pipeline scales its image latents: by 1 / s where the VAE says
    ``invert_scale_latents`` (CogVideoX 1.5), else by s like every video latent."""
    vae = pipeline.vae
    pixels = torch.from_numpy(videos).permute(0, 4, 1, 2, 3) * 2 - 1  # [B, 3, T, H, W]
    pixels = pixels.to(pipeline._execution_device, vae.dtype)
    scale = vae.config.scaling_factor
    if condition and vae.config.invert_scale_latents:
        scale = 1 / scale
    return (vae.encode(pixels).latent_dist.sample(generator) * scale).permute(0, 2, 1, 3, 4)


@contextmanager
def positions_for(transformer, num_frames: int) -> Iterator[None]:
    """Within the block, ``transformer`` (diffusers ``CogVideoXTransformer3DModel``) takes videos of
    ``num_frames`` frames with its learned position table stretched over them (``stretched_positions``);
    a model without a learned table (RoPE or sin-cos positions only) is left as it is."""
    embed = transformer.patch_embed
    if not embed.use_learned_positional_embeddings or num_frames == embed.sample_frames:
        yield
        return
    saved = embed.sample_frames, embed.pos_embedding
    latent_frames = [(count - 1) // embed.temporal_compression_ratio + 1 for count in (embed.sample_frames, num_frames)]
    embed.pos_embedding = stretched_positions(embed.pos_embedding, embed.max_text_seq_length, *latent_frames)
    embed.sample_frames = num_frames  # diffusers then takes the table as it is
    try:
        yield
    finally:
        embed.sample_frames, embed.pos_embedding = saved


def stretched_positions(table: Tensor, text_length: int, frames: int, new_frames: int) -> Tensor:
    """A learned position table [1, L + T P, D] (L text positions, then T = ``frames`` latent frames of
    P patches each) resampled to ``new_frames`` latent frames by linear interpolation in time, the first
    and last frame kept: [1, L + new_frames P, D]. The text positions are unchanged."""
    text, video = table[:, :text_length], table[0, text_length:]
    video = video.reshape(frames, -1, video.shape[-1])  # [T, P, D]
    position = torch.linspace(0, frames - 1, new_frames, dtype=torch.float64, device=video.device)
    below = position.floor().long().clamp(max=max(frames - 2, 0))
    weight = (position - below).to(video.dtype)[:, None, None]
    above = (below + 1).clamp(max=frames - 1)
    stretched = (1 - weight) * video[below] + weight * video[above]  # [new_frames, P, D]
    return torch.cat([text, stretched.reshape(1, -1, video.shape[-1])], dim=1)
