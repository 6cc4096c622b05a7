"""Rectified flow matching with GenXD's masked latent conditioning.

The forward process is ``x_sigma = (1 - sigma) * x_0 + sigma * noise`` for ``sigma`` in [0, 1] and
the denoiser predicts the velocity ``v = noise - x_0`` (flow matching, as in Stable Diffusion 3);
this replaces GenXD eq. 5's epsilon target, with the same masked objective: condition frames keep
their clean latents in place (any number, at any positions) and the loss covers target frames only.
Sampling integrates the flow with diffusers' ``FlowMatchEulerDiscreteScheduler`` (Euler steps).

A denoiser is any callable ``denoiser(latents [B, F, C, h, w], sigma [B], cond_mask [B, F],
**conditioning) -> velocity [B, F, C, h, w]``; cameras, times and motion strength ride in
``conditioning``, so new controls need no new sampler.
"""

from collections.abc import Callable, Sequence

import torch
from torch import Tensor

from scene4d.errors import Scene4DError

Denoiser = Callable[..., Tensor]
NUM_TRAIN_TIMESTEPS = 1000


def noisy_latents(clean: Tensor, noise: Tensor, sigma: Tensor) -> Tensor:
    """``(1 - sigma) * clean + sigma * noise`` with ``sigma`` [B] broadcast over [B, F, C, h, w]."""
    sigma = sigma.reshape(-1, *([1] * (clean.dim() - 1)))
    return (1 - sigma) * clean + sigma * noise


def keep_conditions(latents: Tensor, clean: Tensor, cond_mask: Tensor) -> Tensor:
    """Masked latent conditioning: condition frames hold their clean latents, the others ``latents``."""
    return torch.where(cond_mask.bool()[:, :, None, None, None], clean, latents)


def logit_normal_sigmas(batch: int, generator: torch.Generator, device: torch.device) -> Tensor:
    """Noise levels ``sigmoid(N(0, 1))`` [B], which favour the middle of the path (SD3)."""
    return torch.sigmoid(torch.randn(batch, generator=generator, device=device))


def masked_flow_loss(
    denoiser: Denoiser,
    clean: Tensor,  # [B, F, C, h, w] clean latents of every frame
    cond_mask: Tensor,  # [B, F] 1 for condition frames
    generator: torch.Generator,
    condition_dropout: float = 0.0,
    **conditioning: Tensor,
) -> Tensor:
    """GenXD eq. 5 with a velocity target, averaged over the target frames only.

    With probability ``condition_dropout`` a sample's condition frames are replaced by zero
    latents and unmarked (the null condition for classifier-free guidance); they still count as
    condition frames for the loss.
    """
    batch, device = clean.shape[0], clean.device
    noise = torch.randn(clean.shape, generator=generator, device=device)
    sigma = logit_normal_sigmas(batch, generator, device)
    dropped = torch.rand(batch, generator=generator, device=device) < condition_dropout
    shown_mask = cond_mask * (~dropped)[:, None].float()
    shown_clean = torch.where(dropped[:, None, None, None, None], torch.zeros_like(clean), clean)
    latents = keep_conditions(noisy_latents(clean, noise, sigma), shown_clean, cond_mask)
    velocity = denoiser(latents, sigma, shown_mask, **conditioning)
    targets = (1 - cond_mask)[:, :, None, None, None]
    squared = (velocity - (noise - clean)).square() * targets
    return squared.sum() / (targets.sum() * clean[0, 0].numel()).clamp(min=1)


def guided_velocity(
    denoiser: Denoiser, latents: Tensor, sigma: Tensor, cond_mask: Tensor, guidance: float, **conditioning: Tensor
) -> Tensor:
    """Classifier-free guidance on the image condition: ``v_null + w * (v_cond - v_null)``.

    The null branch sees zero latents, unmarked, where the condition frames were (as trained).
    """
    velocity = denoiser(latents, sigma, cond_mask, **conditioning)
    if guidance == 1.0:
        return velocity
    null_latents = keep_conditions(latents, torch.zeros_like(latents), cond_mask)
    null_velocity = denoiser(null_latents, sigma, torch.zeros_like(cond_mask), **conditioning)
    return null_velocity + guidance * (velocity - null_velocity)


StepHook = Callable[[int, Tensor, Tensor], Tensor]  # (step, noise level: sigma [B] or timestep, latents) -> latents


def first_step(steps: int, strength: float) -> int:
    """Index of the first step run when only the last ``strength`` of a ``steps`` schedule runs (SDEdit)."""
    if not 0.0 < strength <= 1.0:
        raise Scene4DError(f"strength must lie in (0, 1], got {strength}")
    return steps - max(1, round(strength * steps))


@torch.no_grad()
def sample(
    denoiser: Denoiser,
    clean: Tensor,  # [B, F, C, h, w]: condition frames hold their latents, other values are ignored
    cond_mask: Tensor,  # [B, F]
    steps: int,
    generator: torch.Generator,
    guidance: float = 1.0,
    on_step: Callable[[int, int], None] | None = None,
    *,
    start: Tensor | None = None,
    strength: float = 1.0,
    noise: Tensor | None = None,
    hooks: Sequence[StepHook] = (),
    **conditioning: Tensor,
) -> Tensor:
    """Generate the target frames by Euler integration of the flow, ``steps`` steps from pure noise.

    With ``start`` (latents [B, F, C, h, w]) and ``strength`` < 1 only the last ``strength`` of
    the schedule runs, from ``start`` noised to that level (SDEdit; DimensionX eq. 4 and 6).
    ``noise`` fixes the initial noise (drawn from ``generator`` when None). Before every step each
    of ``hooks`` maps ``(step, sigma, latents)`` to new latents (director switching, reference-latent
    blending); condition frames are then put back to their clean latents. ``on_step(i, n)`` reports
    progress over the ``n`` steps run. Returns latents [B, F, C, h, w].
    """
    from diffusers import FlowMatchEulerDiscreteScheduler

    if start is None and strength < 1.0:
        raise Scene4DError("strength < 1 needs start latents to noise")
    scheduler = FlowMatchEulerDiscreteScheduler(num_train_timesteps=NUM_TRAIN_TIMESTEPS, shift=1.0)
    scheduler.set_timesteps(steps, device=clean.device)
    begin = first_step(steps, strength)
    scheduler.set_begin_index(begin)
    if noise is None:
        noise = torch.randn(clean.shape, generator=generator, device=clean.device)
    batch = clean.shape[0]
    latents = noise if start is None else noisy_latents(start, noise, scheduler.sigmas[begin].expand(batch))
    timesteps = scheduler.timesteps[begin:]
    for index, timestep in enumerate(timesteps):
        sigma = (timestep / NUM_TRAIN_TIMESTEPS).expand(batch)
        for hook in hooks:
            latents = hook(index, sigma, latents)
        latents = keep_conditions(latents, clean, cond_mask)
        velocity = guided_velocity(denoiser, latents, sigma, cond_mask, guidance, **conditioning)
        latents = scheduler.step(velocity, timestep, latents).prev_sample
        if on_step is not None:
            on_step(index + 1, len(timesteps))
    return keep_conditions(latents, clean, cond_mask)
