"""A generation model on disk: the VAE, the denoiser and the facts generation needs.

Layout of a model folder (every module: ``config.json`` + ``model.safetensors``)::

    model.json              resolution, field of view, motion scale, orbit distance, preset
    vae/                    TinyVAE (or ``"vae": "<diffusers AutoencoderKL path>"`` in model.json)
    denoiser/               GenXDDenoiser (EMA weights, stored as float16)
    directors/NAME.safetensors   optional LoRA directors (``directors.lora``), found by name
"""

import json
from dataclasses import asdict, dataclass, field
from importlib.resources import files
from pathlib import Path
from typing import Any

import torch
from torch import nn

from scene4d.directors.lora import director_files
from scene4d.errors import Scene4DError
from scene4d.io.atomic import atomic_directory, write_json
from scene4d.models.denoiser import DenoiserConfig, GenXDDenoiser
from scene4d.models.vae import TinyVAE, VAEConfig, load_diffusers_vae


@dataclass(frozen=True)
class ModelInfo:
    resolution: int  # square frames the model was trained at
    fov_x_deg: float  # horizontal field of view assumed for an input photo
    motion_scale: float  # motion strength (GenXD eq. 4) that ``--motion 1`` stands for
    orbit_distance: float  # distance to the subject for orbits, in training-scene units
    preset: str
    vae: str | None = None  # a diffusers AutoencoderKL path instead of vae/


@dataclass
class ModelBundle:
    info: ModelInfo
    vae: nn.Module
    denoiser: GenXDDenoiser
    directors: dict[str, Path] = field(default_factory=dict)  # director files shipped with the model, by name


def default_model_path() -> Path:
    """The bundled default model shipped inside the package."""
    return Path(str(files("scene4d") / "assets" / "default_model"))


def save_module(folder: Path, module: nn.Module, config: dict, dtype: torch.dtype = torch.float32) -> None:
    from safetensors.torch import save_file

    folder.mkdir(parents=True, exist_ok=True)
    state = {name: tensor.detach().to(dtype).contiguous().cpu() for name, tensor in module.state_dict().items()}
    save_file(state, folder / "model.safetensors")
    write_json(folder / "config.json", config)


def load_module_weights(folder: Path, module: nn.Module) -> None:
    """Load ``folder/model.safetensors`` into ``module`` as float32, naming what is wrong."""
    from safetensors import SafetensorError
    from safetensors.torch import load_file

    path = folder / "model.safetensors"
    if not path.is_file():
        raise Scene4DError(f"model weights missing: {path}; reinstall scene4d or pass --model with a trained model")
    try:
        state = load_file(path)
        module.load_state_dict({name: tensor.float() for name, tensor in state.items()})
    except (SafetensorError, RuntimeError, OSError) as error:
        first_line = str(error).splitlines()[0]
        raise Scene4DError(f"model weights {path} are corrupt or do not match config.json: {first_line}") from None


def read_config(folder: Path) -> dict:
    path = folder / "config.json"
    try:
        return json.loads(path.read_text())
    except FileNotFoundError:
        raise Scene4DError(f"model config missing: {path}") from None
    except (json.JSONDecodeError, OSError) as error:
        raise Scene4DError(f"model config {path} is corrupt: {error}") from None


def rebuild(config_class: type, data: dict, folder: Path) -> Any:
    """A module config from its JSON, naming the file when a field is missing or unknown."""
    try:
        return config_class.from_json(data)
    except (TypeError, KeyError) as error:
        raise Scene4DError(f"model config {folder / 'config.json'} does not match this scene4d: {error}") from None


def save_bundle(folder: Path, bundle: ModelBundle) -> None:
    """Write a model folder atomically; the denoiser is stored in float16 to halve its size."""
    with atomic_directory(folder) as staging:
        write_json(staging / "model.json", asdict(bundle.info))
        if bundle.info.vae is None:
            save_module(staging / "vae", bundle.vae, bundle.vae.config.to_json())
        save_module(staging / "denoiser", bundle.denoiser, bundle.denoiser.config.to_json(), torch.float16)


def load_vae(folder: Path) -> TinyVAE:
    vae = TinyVAE(rebuild(VAEConfig, read_config(folder), folder))
    load_module_weights(folder, vae)
    return vae.eval()


def load_bundle(folder: Path | None = None) -> ModelBundle:
    """A model folder (the bundled default when ``None``), in eval mode on the CPU."""
    folder = default_model_path() if folder is None else Path(folder)
    if not (folder / "model.json").is_file():
        raise Scene4DError(
            f"not a scene4d model folder (no model.json): {folder}; train one with `scene4d train model`"
        )
    try:
        info = ModelInfo(**json.loads((folder / "model.json").read_text()))
    except (json.JSONDecodeError, TypeError) as error:
        raise Scene4DError(f"model description {folder / 'model.json'} is corrupt: {error}") from None
    vae = load_diffusers_vae(info.vae) if info.vae is not None else load_vae(folder / "vae")
    denoiser = GenXDDenoiser(rebuild(DenoiserConfig, read_config(folder / "denoiser"), folder / "denoiser"))
    load_module_weights(folder / "denoiser", denoiser)
    return ModelBundle(info, vae, denoiser.eval(), director_files(folder / "directors"))
