"""The VAE, its diffusers adapter and the GenXD-style denoiser at tiny sizes."""

import pytest
import torch

from scene4d.models.denoiser import DenoiserConfig, GenXDDenoiser
from scene4d.models.vae import DiffusersVAE, TinyVAE, VAEConfig

TINY = DenoiserConfig(width=32, depth=2, heads=2)


def randomised(model: torch.nn.Module) -> torch.nn.Module:
    """Fill every parameter (zero-initialised gates included) with small random values."""
    with torch.no_grad():
        for parameter in model.parameters():
            parameter.copy_(torch.randn_like(parameter) * 0.2)
    return model.eval()


def denoiser_inputs(batch: int = 2, frames: int = 5, size: int = 8, is_4d: bool = True) -> dict[str, torch.Tensor]:
    cond_mask = torch.zeros(batch, frames)
    cond_mask[:, 0] = 1
    return {
        "latents": torch.randn(batch, frames, 4, size, size),
        "sigma": torch.rand(batch),
        "cond_mask": cond_mask,
        "plucker": torch.randn(batch, frames, 6, size, size),
        "times": torch.rand(batch, frames),
        "motion": torch.rand(batch),
        "is_4d": torch.full((batch,), is_4d),
    }


def test_vae_downsamples_by_its_stages_and_scales_latents():
    vae = TinyVAE(VAEConfig(channels=(8, 16), latent_channels=4, scaling_factor=2.0)).eval()
    images = torch.rand(2, 3, 32, 32) * 2 - 1
    mean, _ = vae.encode_distribution(images)
    assert vae.downsample == 4 and mean.shape == (2, 4, 8, 8)
    torch.testing.assert_close(vae.encode(images), 2.0 * mean)
    torch.testing.assert_close(vae.decode(vae.encode(images)), vae.decoder(mean))


def test_diffusers_adapter_matches_autoencoderkl_calls():
    from diffusers import AutoencoderKL

    autoencoder = AutoencoderKL(
        block_out_channels=(8, 16),
        down_block_types=("DownEncoderBlock2D",) * 2,
        up_block_types=("UpDecoderBlock2D",) * 2,
        latent_channels=4,
        norm_num_groups=4,
        layers_per_block=1,
        scaling_factor=0.3,
    ).eval()
    adapter = DiffusersVAE(autoencoder)
    images = torch.rand(1, 3, 16, 16) * 2 - 1
    with torch.no_grad():
        expected = autoencoder.encode(images).latent_dist.mean * 0.3
        latents = adapter.encode(images)
        torch.testing.assert_close(latents, expected)
        torch.testing.assert_close(adapter.decode(latents), autoencoder.decode(expected / 0.3).sample)
    assert adapter.downsample == 2 and adapter.latent_channels == 4


def test_denoiser_returns_one_velocity_per_latent():
    model = randomised(GenXDDenoiser(TINY))
    inputs = denoiser_inputs()
    assert model(**inputs).shape == inputs["latents"].shape


def test_frames_are_a_set_so_conditions_can_sit_anywhere():
    """Permuting frames (with their masks, cameras and times) permutes the output: no slot is special."""
    model = randomised(GenXDDenoiser(TINY))
    inputs = denoiser_inputs()
    order = torch.tensor([3, 0, 4, 1, 2])
    permuted = {k: v[:, order] if v.dim() >= 2 else v for k, v in inputs.items()}
    with torch.no_grad():
        torch.testing.assert_close(model(**permuted), model(**inputs)[:, order], atol=1e-5, rtol=1e-4)


def test_alpha_is_zero_for_3d_samples_so_time_and_motion_do_nothing():
    """GenXD alpha-fusing: a static sample bypasses the temporal module (and with it times and gamma)."""
    model = randomised(GenXDDenoiser(TINY))
    static, dynamic = denoiser_inputs(is_4d=False), denoiser_inputs(is_4d=True)
    dynamic = {**static, "is_4d": dynamic["is_4d"]}
    changed = {"times": torch.rand(2, 5), "motion": torch.rand(2)}
    with torch.no_grad():
        torch.testing.assert_close(model(**static), model(**{**static, **changed}))
        assert not torch.allclose(model(**dynamic), model(**{**dynamic, **changed}), atol=1e-4)
    alpha = model.blocks[0].alpha(torch.tensor([False, True]))
    assert alpha[0] == 0 and 0 < alpha[1] < 1


def test_motion_strength_only_reaches_the_temporal_module():
    model = randomised(GenXDDenoiser(TINY))
    inputs = denoiser_inputs()
    with torch.no_grad():
        for block in model.blocks:
            block.alpha_logit.fill_(-30.0)  # alpha ~ 0: temporal module off
        torch.testing.assert_close(model(**inputs), model(**{**inputs, "motion": torch.rand(2)}))
        ablated = randomised(GenXDDenoiser(DenoiserConfig(**{**TINY.to_json(), "motion_embedding": False})))
        torch.testing.assert_close(ablated(**inputs), ablated(**{**inputs, "motion": torch.rand(2)}))


@pytest.mark.parametrize("switch", ["camera_conditioning", "mask_conditioning"])
def test_switched_off_inputs_are_ignored(switch):
    model = randomised(GenXDDenoiser(DenoiserConfig(**{**TINY.to_json(), switch: False})))
    inputs = denoiser_inputs()
    name = {"camera_conditioning": "plucker", "mask_conditioning": "cond_mask"}[switch]
    with torch.no_grad():
        torch.testing.assert_close(model(**inputs), model(**{**inputs, name: torch.rand_like(inputs[name])}))
    on = randomised(GenXDDenoiser(TINY))
    with torch.no_grad():
        assert not torch.allclose(on(**inputs), on(**{**inputs, name: torch.rand_like(inputs[name])}), atol=1e-4)


def test_without_alpha_fusing_3d_samples_see_time():
    model = randomised(GenXDDenoiser(DenoiserConfig(**{**TINY.to_json(), "alpha_fusing": False})))
    inputs = denoiser_inputs(is_4d=False)
    with torch.no_grad():
        assert not torch.allclose(model(**inputs), model(**{**inputs, "times": torch.rand(2, 5)}), atol=1e-4)
