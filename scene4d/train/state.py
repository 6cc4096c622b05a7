"""Training runs: their settings checked, and optimizer state as flat named tensors, so checkpoints
stay safetensors + JSON."""

import torch
from torch import Tensor

from scene4d.errors import Scene4DError


def check_run(steps: int, batch_size: int, learning_rate: float) -> None:
    """One line for a run that could not run: under one step or sample per step, a negative learning rate
    (0 is allowed: the weights stay as they start)."""
    if steps < 1 or batch_size < 1 or not learning_rate >= 0:
        raise Scene4DError(
            f"--steps and --batch-size must be >= 1 and --lr >= 0, got {steps}, {batch_size} and {learning_rate}"
        )


def check_resolution(resolution: int, multiple: int) -> None:
    """Training frames must tile into whole latent cells (and denoiser patches): a multiple of ``multiple``."""
    if resolution < multiple or resolution % multiple:
        raise Scene4DError(f"--res must be a multiple of {multiple} (the latent grid), got {resolution}")


def optimizer_tensors(optimizer: torch.optim.Optimizer) -> dict[str, Tensor]:
    """``optimizer.<param index>.<name>`` for every tensor in the optimizer state (step counts included)."""
    tensors = {}
    for index, state in optimizer.state_dict()["state"].items():
        for name, value in state.items():
            tensors[f"optimizer.{index}.{name}"] = torch.as_tensor(value)
    return tensors


def restore_optimizer(optimizer: torch.optim.Optimizer, tensors: dict[str, Tensor]) -> None:
    """Load what ``optimizer_tensors`` wrote into an optimizer over the same parameters."""
    state: dict[int, dict[str, Tensor]] = {}
    for key, value in tensors.items():
        if key.startswith("optimizer."):
            _, index, name = key.split(".", 2)
            state.setdefault(int(index), {})[name] = value
    saved = optimizer.state_dict()
    optimizer.load_state_dict({"state": state, "param_groups": saved["param_groups"]})
