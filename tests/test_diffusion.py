"""Flow matching with masked latent conditioning, checked against the exact flow of known data."""

import pytest
import torch

from scene4d.diffusion import masked_flow_loss, noisy_latents, sample
from scene4d.diffusion.flow import guided_velocity


def point_mass_denoiser(target: torch.Tensor):
    """The exact velocity when all data is ``target``: x = (1-s) x0 + s n  =>  v = n - x0 = (x - x0) / s."""

    def velocity(latents, sigma, cond_mask, **_):
        return (latents - target) / sigma.reshape(-1, 1, 1, 1, 1)

    return velocity


def test_noisy_latents_interpolate_linearly():
    clean, noise = torch.randn(2, 3, 4, 2, 2), torch.randn(2, 3, 4, 2, 2)
    sigma = torch.tensor([0.0, 0.25])
    mixed = noisy_latents(clean, noise, sigma)
    torch.testing.assert_close(mixed[0], clean[0])
    torch.testing.assert_close(mixed[1], 0.75 * clean[1] + 0.25 * noise[1])


@pytest.mark.parametrize("steps", [1, 4, 25])
def test_euler_sampling_of_the_exact_flow_lands_on_the_data(steps):
    target = torch.randn(1, 4, 4, 3, 3)
    clean = torch.randn(1, 4, 4, 3, 3)  # condition latents differ from the target on purpose
    cond_mask = torch.tensor([[1.0, 0.0, 1.0, 0.0]])
    out = sample(point_mass_denoiser(target), clean, cond_mask, steps, torch.Generator().manual_seed(0))
    torch.testing.assert_close(out[:, [1, 3]], target[:, [1, 3]], atol=1e-4, rtol=1e-4)
    torch.testing.assert_close(out[:, [0, 2]], clean[:, [0, 2]])


def test_sampler_shows_clean_conditions_at_every_step_and_reports_progress():
    clean = torch.randn(1, 3, 4, 2, 2)
    cond_mask = torch.tensor([[0.0, 1.0, 0.0]])
    seen, progress = [], []

    def spy(latents, sigma, mask, **conditioning):
        seen.append((latents.clone(), float(sigma[0]), conditioning["extra"]))
        return torch.zeros_like(latents)

    sample(spy, clean, cond_mask, 5, torch.Generator().manual_seed(0), on_step=lambda i, n: progress.append(i), extra=7)
    assert progress == [1, 2, 3, 4, 5] and [s[2] for s in seen] == [7] * 5
    assert all(torch.equal(latents[:, 1], clean[:, 1]) for latents, _, _ in seen)
    sigmas = [s[1] for s in seen]
    assert sigmas[0] == pytest.approx(1.0) and all(a > b for a, b in zip(sigmas, sigmas[1:], strict=False))


def test_same_generator_seed_gives_the_same_sample():
    denoiser = point_mass_denoiser(torch.zeros(1, 3, 4, 2, 2))
    clean, mask = torch.randn(1, 3, 4, 2, 2), torch.tensor([[1.0, 0.0, 0.0]])

    def spy_noise(seed):
        captured = []

        def recorder(latents, sigma, cond_mask, **_):
            captured.append(latents.clone())
            return denoiser(latents, sigma, cond_mask)

        sample(recorder, clean, mask, 2, torch.Generator().manual_seed(seed))
        return captured[0]

    assert torch.equal(spy_noise(3), spy_noise(3)) and not torch.equal(spy_noise(3), spy_noise(4))


def test_loss_covers_target_frames_only():
    zero = lambda latents, sigma, cond_mask, **_: torch.zeros_like(latents)  # noqa: E731
    clean = torch.randn(2, 4, 4, 3, 3)
    cond_mask = torch.tensor([[1.0, 0, 0, 0], [1.0, 1.0, 0, 0]])

    def loss_of(latents):
        return masked_flow_loss(zero, latents, cond_mask, torch.Generator().manual_seed(0))

    moved_condition, moved_target = clean.clone(), clean.clone()
    moved_condition[0, 0] += 5.0
    moved_condition[1, 1] += 5.0
    moved_target[0, 2] += 5.0
    assert loss_of(moved_condition) == loss_of(clean)
    assert loss_of(moved_target) > loss_of(clean)


def test_loss_is_the_mean_squared_velocity_error_over_targets():
    """With a zero prediction the loss is mean((noise - clean)^2) over target frames, noise drawn first."""
    zero = lambda latents, sigma, cond_mask, **_: torch.zeros_like(latents)  # noqa: E731
    clean = torch.randn(1, 3, 2, 2, 2)
    cond_mask = torch.tensor([[0.0, 1.0, 0.0]])
    loss = masked_flow_loss(zero, clean, cond_mask, torch.Generator().manual_seed(5))
    noise = torch.randn(clean.shape, generator=torch.Generator().manual_seed(5))
    expected = (noise - clean)[:, [0, 2]].square().mean()
    torch.testing.assert_close(loss, expected)


def test_denoiser_sees_clean_conditions_and_the_null_condition_when_dropped():
    inputs = []

    def spy(latents, sigma, cond_mask, **_):
        inputs.append((latents.clone(), cond_mask.clone()))
        return torch.zeros_like(latents)

    clean = torch.randn(64, 2, 1, 1, 1)
    cond_mask = torch.tensor([[1.0, 0.0]]).repeat(64, 1)
    masked_flow_loss(spy, clean, cond_mask, torch.Generator().manual_seed(1), condition_dropout=0.5)
    latents, shown = inputs[0]
    dropped = shown[:, 0] == 0
    assert 10 < int(dropped.sum()) < 54
    torch.testing.assert_close(latents[~dropped, 0], clean[~dropped, 0])
    assert bool((latents[dropped, 0] == 0).all())
    assert not torch.allclose(latents[:, 1], clean[:, 1])


def test_guidance_extrapolates_from_the_null_condition():
    def denoiser(latents, sigma, cond_mask, **_):
        return torch.ones_like(latents) * (1.0 + cond_mask.sum())

    latents, mask = torch.randn(1, 2, 1, 1, 1), torch.tensor([[1.0, 0.0]])
    torch.testing.assert_close(
        guided_velocity(denoiser, latents, torch.ones(1), mask, 1.0), torch.full_like(latents, 2.0)
    )
    torch.testing.assert_close(
        guided_velocity(denoiser, latents, torch.ones(1), mask, 3.0), torch.full_like(latents, 4.0)
    )
