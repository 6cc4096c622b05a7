"""Fitting deformable 4D Gaussians to Clips whose frames carry times (GenXD appendix H).

A static warm-up fits canonical Gaussians (``warmup`` steps, on the frames of the first time when
several cameras saw it, else on all frames), then the deformation field and the Gaussians are
trained together on every frame at its own time.
"""

from collections.abc import Callable
from dataclasses import asdict
from pathlib import Path

import numpy as np
import torch
from torch import Tensor

from scene4d.errors import Scene4DError
from scene4d.io import Clip
from scene4d.splat.deform import (
    DeformationConfig,
    DeformationField,
    deform_gaussians,
    deformation_for_scene,
)
from scene4d.splat.fit import (
    FitConfig,
    Splats,
    Trainer,
    check_finite,
    initial_splats,
    read_checkpoint,
    run_training,
    scene_geometry,
    settled,
)

DEFORMATION_LR = 1e-3


class DynamicTrainer(Trainer):
    """A ``Trainer`` whose Gaussians move with time once ``warmup`` steps are done."""

    def __init__(
        self, splats: Splats, config: FitConfig, scene_scale: float, deformation: DeformationConfig,
        warmup: int, step: int = 0,
    ) -> None:  # fmt: skip
        super().__init__(splats, config, scene_scale, step)
        self.warmup = warmup
        self.deformation = deformation
        self.field = DeformationField(deformation).to(self.device)
        self.field_optimizer = torch.optim.Adam(self.field.parameters(), lr=DEFORMATION_LR)

    def gaussians_at(self, time: float) -> tuple[Tensor, Tensor, Tensor]:
        if self.step < self.warmup:
            return super().gaussians_at(time)
        return deform_gaussians(self.field, self.params["means"], self.params["quats"], self.params["scales"], time)

    def splats(self) -> Splats:
        """The canonical splats (``Trainer.splats``); an error where the deformation field diverged too."""
        check_finite(self.extra_tensors(), self.step)
        return super().splats()

    def step_extra_optimizers(self) -> None:
        if self.step >= self.warmup:
            self.field_optimizer.step()
        self.field_optimizer.zero_grad(set_to_none=True)

    def extra_state(self) -> dict:
        return {"deformation": asdict(self.deformation), "warmup": self.warmup}

    def extra_tensors(self) -> dict[str, Tensor]:
        tensors = {f"field/{name}": value for name, value in self.field.state_dict().items()}
        for index, moments in self.field_optimizer.state_dict()["state"].items():
            for key, value in moments.items():
                tensors[f"field_adam/{index}/{key}"] = value.reshape(-1) if key == "step" else value
        return tensors

    def restore(self, tensors: dict[str, Tensor], state: dict) -> None:
        super().restore(tensors, state)
        self.field.load_state_dict({k.removeprefix("field/"): v for k, v in tensors.items() if k.startswith("field/")})
        moments: dict[int, dict[str, Tensor]] = {}
        for name, value in tensors.items():
            if name.startswith("field_adam/"):
                _, index, key = name.split("/")
                moments.setdefault(int(index), {})[key] = value[0] if key == "step" else value
        optimizer_state = self.field_optimizer.state_dict()
        optimizer_state["state"] = moments
        self.field_optimizer.load_state_dict(optimizer_state)


def warmup_frames(clip: Clip) -> np.ndarray:
    """Frames of the first time when at least two cameras saw it, else every frame."""
    first = np.flatnonzero(clip.times == clip.times.min())
    return first if len(first) >= 2 else np.arange(len(clip))


def fit_dynamic(
    clip: Clip,
    config: FitConfig,
    warmup: int = 500,
    checkpoint: Path | None = None,
    on_step: Callable[[int, float], None] | None = None,
) -> tuple[Splats, DeformationField]:
    """Canonical Gaussians and the deformation field fitted to ``clip`` (frames at their times), on the CPU."""
    torch.manual_seed(config.seed)
    config = settled(config, dynamic=True)
    if checkpoint is not None and (checkpoint / "state.json").exists():
        splats, tensors, state = read_checkpoint(checkpoint, config, clip)
        if state.get("warmup") != warmup:
            raise Scene4DError(f"checkpoint {checkpoint} used {state.get('warmup')} warm-up steps, not {warmup}")
        deformation = DeformationConfig.from_json(state["deformation"])
        trainer = DynamicTrainer(splats, config, state["scene_scale"], deformation, warmup, step=state["step"])
        trainer.restore(tensors, state)
    else:
        splats = initial_splats(clip, config)
        deformation = deformation_for_scene(splats["means"])
        trainer = DynamicTrainer(splats, config, scene_geometry(clip.cameras)[0], deformation, warmup)
    run_training(
        trainer, clip, warmup_frames(clip), checkpoint, None, None, on_step, until=min(warmup, config.iterations)
    )
    run_training(trainer, clip, np.arange(len(clip)), checkpoint, None, None, on_step)
    return trainer.splats(), trainer.field.cpu()
