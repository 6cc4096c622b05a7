"""Training loss and sampling loop as plain functions over a denoiser callable."""

from scene4d.diffusion.flow import masked_flow_loss, noisy_latents, sample

__all__ = ["masked_flow_loss", "noisy_latents", "sample"]
