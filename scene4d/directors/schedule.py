"""Per-step director schedules; Switch-Once (DimensionX sec. 3.2.2) is one of them.

Observation 2 of DimensionX: the layout and the camera motion are settled in the first denoising
steps, object motion later. Switch-Once therefore runs the S-Director for the first ``k`` steps
(3 in the paper) and the T-Director for the rest, training-free; the adapters stay unfused and
are switched inside the loop. A schedule is a list of phases, so other compositions (T then S,
a base-model warm-up, three directors) need no new code.
"""

from dataclasses import dataclass

from torch import Tensor, nn

from scene4d.diffusion.flow import StepHook
from scene4d.directors.lora import activate
from scene4d.errors import Scene4DError

SWITCH_STEP = 3  # DimensionX's k: the S-Director's steps before the T-Director takes over


@dataclass(frozen=True)
class DirectorSchedule:
    """``phases``: (first step, director or ``None`` for the base model), the first starting at step 0."""

    phases: tuple[tuple[int, str | None], ...]

    def __post_init__(self) -> None:
        starts = [start for start, _ in self.phases]
        if not starts or starts[0] != 0 or starts != sorted(set(starts)):
            raise Scene4DError(f"a director schedule needs strictly increasing phase starts from 0, got {starts}")

    def director_at(self, step: int) -> str | None:
        """The director active at denoising step ``step`` (0-based)."""
        return [name for start, name in self.phases if start <= step][-1]

    def describe(self) -> str:
        """One line for people, e.g. ``orbit-left for steps 0-2, then temporal``."""
        parts = []
        for index, (start, name) in enumerate(self.phases):
            label = name or "the base model"
            if index + 1 < len(self.phases):
                last = self.phases[index + 1][0] - 1
                parts.append(f"{label} for step {start}" if last == start else f"{label} for steps {start}-{last}")
            else:
                parts.append(label if index == 0 else f"then {label}")
        return ", ".join(parts)


def single(name: str | None) -> DirectorSchedule:
    """One director (or the base model) for every step."""
    return DirectorSchedule(((0, name),))


def switch_once(spatial: str | None, temporal: str | None, switch_step: int = SWITCH_STEP) -> DirectorSchedule:
    """DimensionX's Switch-Once: ``spatial`` for steps ``0 .. switch_step - 1``, then ``temporal``
    (``None``: the base model in that phase)."""
    if switch_step < 0:
        raise Scene4DError(f"--switch-step must be >= 0, got {switch_step}")
    if switch_step == 0 or spatial == temporal:
        return single(temporal)
    return DirectorSchedule(((0, spatial), (switch_step, temporal)))


def schedule_hook(backbone: nn.Module, schedule: DirectorSchedule) -> StepHook:
    """A sampler step hook that activates the scheduled director before each step (latents unchanged)."""

    def activate_scheduled(step: int, sigma: Tensor, latents: Tensor) -> Tensor:
        activate(backbone, schedule.director_at(step))
        return latents

    return activate_scheduled
