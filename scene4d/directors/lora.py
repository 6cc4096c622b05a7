"""LoRA directors (DimensionX sec. 3.2.1): adapters on a video backbone, loaded side by side, switched by name.

A director file is one ``.safetensors`` in diffusers' LoRA key layout — ``transformer.<module
path>.lora_A.weight`` [r, in] and ``.lora_B.weight`` [out, r] — the layout of the LoRA files
DimensionX published for CogVideoX-5b-I2V, so those load as they are. Our files also carry header
metadata (backbone, kind, trajectory, rank, alpha); a file without it (DimensionX's) gets
``alpha = 1``, i.e. the scale ``alpha / r = 1 / r`` (1/256) with which DimensionX's inference
fuses them.

Adapters stay unfused: several sit in one backbone and ``activate`` picks the one that runs, so a
schedule can switch directors inside the denoising loop (Switch-Once). Both backbones are plain
``nn.Module``s to peft's functional API (which diffusers' adapter methods call): the same code
loads a director into our denoiser and into diffusers' ``CogVideoXTransformer3DModel``.
"""

import warnings
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import asdict, dataclass
from pathlib import Path

from torch import Tensor, nn

from scene4d.errors import Scene4DError
from scene4d.io.atomic import atomic_file

KEY_PREFIX = "transformer."
DIMENSIONX_SUFFIX = "_lora_weights"  # DimensionX's files: orbit_left_lora_weights.safetensors
KINDS = ("spatial", "temporal")
# Our denoiser: the attention projections of the spatial, multi-view and temporal modules and the
# feed-forward layers of every block (not the embeddings, the modulations or the output layer).
SCENE4D_TARGETS = r"blocks\.\d+\.(spatial|multiview|temporal)\.(qkv|out)|blocks\.\d+\.feed_forward\.linear[12]"
# CogVideoX: the attention projections, as DimensionX and diffusers' CogVideoX LoRA recipe train them.
COGVIDEOX_TARGETS = ["to_q", "to_k", "to_v", "to_out.0"]


@dataclass(frozen=True)
class DirectorInfo:
    kind: str  # "spatial" (S-Director) or "temporal" (T-Director)
    trajectory: str | None  # the camera move of an S-Director
    rank: int
    alpha: float  # the update is (alpha / rank) * B @ A
    backbone: str  # "scene4d-tiny" (or another preset), "cogvideox"; "unknown" for foreign files

    def __post_init__(self) -> None:
        if self.kind not in KINDS:
            raise Scene4DError(f"director kind must be one of {', '.join(KINDS)}, got {self.kind!r}")
        if self.rank < 1:
            raise Scene4DError(f"LoRA rank must be >= 1, got {self.rank}")

    def metadata(self) -> dict[str, str]:
        return {key: "" if value is None else str(value) for key, value in asdict(self).items()}

    @staticmethod
    def from_metadata(metadata: dict[str, str], rank: int) -> "DirectorInfo":
        """Read our header, or the defaults of a DimensionX file (no header: scale 1 / rank)."""
        kind = metadata.get("kind", "spatial")
        trajectory = metadata.get("trajectory") or None
        alpha = float(metadata.get("alpha", 1.0))
        return DirectorInfo(kind, trajectory, rank, alpha, metadata.get("backbone", "unknown"))


def target_modules(backbone: nn.Module) -> str | list[str]:
    """The layers a new director adapts on ``backbone``."""
    from scene4d.models.denoiser import GenXDDenoiser

    return SCENE4D_TARGETS if isinstance(backbone, GenXDDenoiser) else COGVIDEOX_TARGETS


def inject_director(
    backbone: nn.Module, name: str, rank: int, alpha: float, targets: str | list[str], state: dict | None = None
) -> None:
    """Add LoRA layers called ``name`` (B = 0 unless ``state`` holds weights) and make them active."""
    from peft import LoraConfig
    from peft.functional import inject_adapter_in_model, set_adapter, set_peft_model_state_dict

    if name in loaded_directors(backbone):
        raise Scene4DError(f"a director called {name!r} is already loaded")
    config = LoraConfig(r=rank, lora_alpha=alpha, target_modules=targets)
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message="Already found a `peft_config`")
        inject_adapter_in_model(config, backbone, adapter_name=name)
    if state is not None:
        result = set_peft_model_state_dict(backbone, state, adapter_name=name)
        missing = [key for key in result.missing_keys if f"lora_A.{name}." in key or f"lora_B.{name}." in key]
        if missing:
            raise Scene4DError(f"director {name!r} lacks weights for {len(missing)} LoRA tensors, e.g. {missing[0]}")
    set_adapter(backbone, name)


def loaded_directors(backbone: nn.Module) -> list[str]:
    """Names of the directors loaded into ``backbone``."""
    return sorted(getattr(backbone, "peft_config", {}))


def activate(backbone: nn.Module, name: str | None) -> None:
    """Run ``backbone`` with director ``name`` (unfused, frozen), or with none (the base model) for ``None``."""
    from peft.functional import set_adapter

    if name is not None and name not in loaded_directors(backbone):
        raise Scene4DError(f"no director called {name!r} is loaded; loaded: {', '.join(loaded_directors(backbone))}")
    set_adapter(backbone, [] if name is None else name, inference_mode=True)


@contextmanager
def restoring_director(backbone: nn.Module) -> Iterator[None]:
    """Put back the director that was active on entry (a schedule switches them inside)."""
    before = active_director(backbone)
    try:
        yield
    finally:
        activate(backbone, before)


def active_director(backbone: nn.Module) -> str | None:
    """The director that runs now (``None``: the base model)."""
    from peft.tuners.tuners_utils import BaseTunerLayer

    for module in backbone.modules():
        if isinstance(module, BaseTunerLayer):
            active = module.active_adapters
            return active[0] if active else None
    return None


def director_state(backbone: nn.Module, name: str) -> dict[str, Tensor]:
    """The LoRA weights of director ``name`` in diffusers' key layout (``transformer.`` prefix)."""
    from peft.functional import get_peft_model_state_dict

    state = get_peft_model_state_dict(backbone, adapter_name=name)
    return {KEY_PREFIX + key: tensor.detach().contiguous().cpu() for key, tensor in state.items()}


def save_director(path: Path, backbone: nn.Module, name: str, info: DirectorInfo, dtype=None) -> None:
    """Write director ``name`` to one ``.safetensors`` file (atomically), metadata in its header."""
    from safetensors.torch import save_file

    state = director_state(backbone, name)
    if dtype is not None:
        state = {key: tensor.to(dtype) for key, tensor in state.items()}
    with atomic_file(path) as staging:
        save_file(state, staging, metadata=info.metadata())


def read_director(path: Path) -> tuple[dict[str, Tensor], DirectorInfo]:
    """LoRA weights (float32, prefix removed) and description of a director file, ours or DimensionX's."""
    from safetensors import SafetensorError, safe_open

    path = Path(path)
    if not path.is_file():
        raise Scene4DError(f"director file not found: {path}")
    try:
        with safe_open(str(path), framework="pt") as handle:
            metadata = handle.metadata() or {}
            state = {key.removeprefix(KEY_PREFIX): handle.get_tensor(key).float() for key in handle.keys()}
    except (SafetensorError, OSError) as error:
        raise Scene4DError(f"director file {path} is corrupt: {error}") from None
    down = [tensor for key, tensor in state.items() if key.endswith("lora_A.weight")]
    if not down or len(down) * 2 != len(state):
        raise Scene4DError(f"{path} is not a LoRA file in diffusers' layout (*.lora_A.weight / *.lora_B.weight)")
    return state, DirectorInfo.from_metadata(metadata, int(down[0].shape[0]))


def load_director(backbone: nn.Module, path: Path, name: str) -> DirectorInfo:
    """Load a director file into ``backbone`` as adapter ``name`` (unfused, active afterwards)."""
    state, info = read_director(path)
    modules = sorted({key.rsplit(".lora_", 1)[0] for key in state})
    known = {module_name for module_name, _ in backbone.named_modules()}
    foreign = [module for module in modules if module not in known]
    if foreign:
        raise Scene4DError(
            f"director {path} does not fit this backbone: it adapts {foreign[0]!r}, which this model lacks "
            f"(the file was made for {info.backbone})"
        )
    inject_director(backbone, name, info.rank, info.alpha, modules, state)
    return info


def use_director(backbone: nn.Module, request: str, shipped: dict[str, Path]) -> tuple[str, DirectorInfo]:
    """Load a director named by one shipped with the model or by a file path (once); its adapter name and info.

    The adapter is named after the file; the active director stays as it was.
    """
    if request in shipped:
        name, path = request, shipped[request]
    elif request.endswith(".safetensors"):
        name, path = director_name(Path(request)), Path(request)
    else:
        names = ", ".join(shipped) or "none"
        raise Scene4DError(f"no director {request!r}: give a .safetensors file or one the model ships ({names})")
    files = backbone.__dict__.setdefault("director_files", {})
    if name in files:
        if files[name] != path.resolve():
            raise Scene4DError(f"director {path} and the loaded {files[name]} share the name {name!r}; rename one")
        return name, read_director(path)[1]
    with restoring_director(backbone):
        info = load_director(backbone, path, name)
    files[name] = path.resolve()
    return name, info


def director_info(backbone: nn.Module, name: str) -> DirectorInfo:
    """The description of a director loaded with ``use_director``."""
    return read_director(backbone.__dict__["director_files"][name])[1]


def director_name(path: Path) -> str:
    """A director file's name: its stem, DimensionX's ``orbit_left_lora_weights`` read as ``orbit-left``."""
    if path.stem.endswith(DIMENSIONX_SUFFIX):
        return path.stem.removesuffix(DIMENSIONX_SUFFIX).replace("_", "-")
    return path.stem


def director_files(folder: Path) -> dict[str, Path]:
    """The director files in ``folder`` by name (``director_name``); none when the folder is absent."""
    files: dict[str, Path] = {}
    for path in sorted(folder.glob("*.safetensors")):
        name = director_name(path)
        if name in files:
            raise Scene4DError(f"{files[name].name} and {path.name} in {folder} both name the director {name!r}")
        files[name] = path
    return files
