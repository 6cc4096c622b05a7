"""CogVideoX-5b-I2V (DimensionX's base model) through diffusers' ``CogVideoXImageToVideoPipeline``.

A thin loader: weights come from a local folder or a model id already in the local Hugging Face
cache (nothing is downloaded), in bfloat16 on CUDA (float32 on a CPU), with diffusers' model CPU
offload and VAE tiling as options for smaller GPUs. Directors load into ``pipeline.transformer``
with ``directors.lora``.
"""

from dataclasses import dataclass

import torch

from scene4d.errors import Scene4DError

COGVIDEOX_ID = "THUDM/CogVideoX-5b-I2V"


@dataclass(frozen=True)
class CogVideoXOptions:
    source: str = COGVIDEOX_ID  # a local folder or a cached diffusers model id
    cpu_offload: bool = False  # move each sub-model to the GPU only while it runs (about 10 GB less memory)
    vae_tiling: bool = False  # decode the video in tiles (less memory, slower)


def load_cogvideox(options: CogVideoXOptions):
    """The image-to-video pipeline, on CUDA when available; a one-line error names missing weights."""
    from diffusers import CogVideoXImageToVideoPipeline

    cuda = torch.cuda.is_available()
    try:
        pipeline = CogVideoXImageToVideoPipeline.from_pretrained(
            options.source, dtype=torch.bfloat16 if cuda else torch.float32, local_files_only=True
        )
    except (OSError, ValueError) as error:
        raise Scene4DError(
            f"no CogVideoX image-to-video weights at {options.source!r} (a local folder or a model id in the local "
            f"Hugging Face cache); download {COGVIDEOX_ID} on a machine with internet first "
            f"({error.__class__.__name__})"
        ) from None
    if options.cpu_offload:
        if not cuda:
            raise Scene4DError("--cpu-offload needs a CUDA GPU")
        pipeline.enable_model_cpu_offload()
    elif cuda:
        pipeline.to("cuda")
    if options.vae_tiling:
        pipeline.vae.enable_tiling()
    return pipeline


def prompt_embedding(pipeline, prompt: str) -> torch.Tensor:
    """[1, L, D] T5 embedding of ``prompt`` with the pipeline's own text encoder."""
    embeds, _ = pipeline.encode_prompt(prompt, do_classifier_free_guidance=False)
    return embeds
