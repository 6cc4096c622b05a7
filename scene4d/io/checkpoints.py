"""Training checkpoints: a folder with ``tensors.safetensors`` and ``state.json``, written atomically.

A crash or Ctrl-C while saving leaves the previous checkpoint whole.
"""

import json
from pathlib import Path
from typing import Any

from torch import Tensor

from scene4d.errors import Scene4DError
from scene4d.io.atomic import atomic_directory, write_json


def save_checkpoint(folder: str | Path, tensors: dict[str, Tensor], state: dict[str, Any]) -> None:
    """Write named tensors and a JSON-serialisable state dict to ``folder``, replacing it atomically."""
    from safetensors.torch import save_file

    with atomic_directory(folder) as staging:
        save_file({name: t.detach().contiguous().cpu() for name, t in tensors.items()}, staging / "tensors.safetensors")
        write_json(staging / "state.json", state)


def load_checkpoint(folder: str | Path) -> tuple[dict[str, Tensor], dict[str, Any]]:
    """Read what ``save_checkpoint`` wrote; a clear error names a missing or corrupt file."""
    from safetensors import SafetensorError
    from safetensors.torch import load_file

    folder = Path(folder)
    for name in ("tensors.safetensors", "state.json"):
        if not (folder / name).is_file():
            raise Scene4DError(f"checkpoint incomplete: {folder / name} is missing")
    try:
        tensors = load_file(folder / "tensors.safetensors")
        state = json.loads((folder / "state.json").read_text())
    except (SafetensorError, json.JSONDecodeError, OSError) as error:
        raise Scene4DError(f"checkpoint {folder} is corrupt: {error}") from None
    return tensors, state
