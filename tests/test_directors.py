"""LoRA directors and step schedules, checked against LoRA updates merged by hand and against diffusers' loader."""

import copy

import pytest
import torch
from safetensors.torch import save_file

from scene4d.diffusion.flow import first_step, sample
from scene4d.directors.lora import (
    DirectorInfo,
    activate,
    active_director,
    inject_director,
    load_director,
    read_director,
    save_director,
    target_modules,
)
from scene4d.directors.schedule import DirectorSchedule, schedule_hook, switch_once
from scene4d.errors import Scene4DError
from scene4d.models.denoiser import DenoiserConfig, GenXDDenoiser


def tiny_denoiser(seed: int = 0) -> GenXDDenoiser:
    torch.manual_seed(seed)
    model = GenXDDenoiser(DenoiserConfig(width=32, depth=2, heads=2))
    for parameter in model.parameters():  # zero-initialised gates would hide every LoRA update
        parameter.data.normal_(0, 0.2)
    return model.eval()


def randomise_director(model: torch.nn.Module, name: str, seed: int) -> None:
    generator = torch.Generator().manual_seed(seed)
    for key, parameter in model.named_parameters():
        if f"lora_A.{name}." in key or f"lora_B.{name}." in key:
            parameter.data = torch.randn(parameter.shape, generator=generator) * 0.3


def merged_copy(model: torch.nn.Module, name: str, scale: float) -> torch.nn.Module:
    """A plain copy of the base model with ``W + scale * B @ A`` written into every adapted layer."""
    from peft.tuners.lora import Linear as LoraLinear

    plain = copy.deepcopy(model)
    for module_name, module in model.named_modules():
        if isinstance(module, LoraLinear):
            update = module.lora_B[name].weight @ module.lora_A[name].weight
            parent_name, _, child = module_name.rpartition(".")
            parent = plain.get_submodule(parent_name)
            base = copy.deepcopy(module.base_layer)
            base.weight.data = base.weight.data + scale * update
            setattr(parent, child, base)
    return plain


def denoiser_inputs(seed: int = 1, frames: int = 3) -> dict:
    generator = torch.Generator().manual_seed(seed)
    return {
        "latents": torch.randn(1, frames, 4, 4, 4, generator=generator),
        "sigma": torch.tensor([0.6]),
        "cond_mask": torch.tensor([[1.0] + [0.0] * (frames - 1)]),
        "plucker": torch.randn(1, frames, 6, 4, 4, generator=generator),
        "times": torch.linspace(0, 1, frames)[None],
        "motion": torch.tensor([0.5]),
        "is_4d": torch.tensor([True]),
    }


def test_director_adds_the_scaled_lora_update_and_none_restores_the_base():
    model = tiny_denoiser()
    base_output = model(**denoiser_inputs())
    inject_director(model, "orbit", rank=2, alpha=4.0, targets=target_modules(model))
    randomise_director(model, "orbit", seed=3)
    expected = merged_copy(model, "orbit", scale=4.0 / 2)(**denoiser_inputs())
    torch.testing.assert_close(model(**denoiser_inputs()), expected, rtol=1e-4, atol=1e-5)
    assert (expected - base_output).abs().max() > 1e-2  # the update is large enough to be seen
    activate(model, None)
    assert active_director(model) is None
    torch.testing.assert_close(model(**denoiser_inputs()), base_output)


def test_director_file_round_trip_keeps_weights_layout_and_metadata(tmp_path):
    model = tiny_denoiser()
    info = DirectorInfo("spatial", "orbit-left", rank=2, alpha=2.0, backbone="scene4d-tiny")
    inject_director(model, "trained", info.rank, info.alpha, target_modules(model))
    randomise_director(model, "trained", seed=4)
    save_director(tmp_path / "orbit-left.safetensors", model, "trained", info)
    state, read_info = read_director(tmp_path / "orbit-left.safetensors")
    assert read_info == info
    assert "blocks.0.spatial.qkv.lora_A.weight" in state and "blocks.1.feed_forward.linear2.lora_B.weight" in state
    fresh = tiny_denoiser()  # "temporal" is also a module name inside every block; the adapter must not mind
    assert load_director(fresh, tmp_path / "orbit-left.safetensors", "temporal") == info
    torch.testing.assert_close(fresh(**denoiser_inputs()), model(**denoiser_inputs()))


def tiny_cogvideox(**options) -> torch.nn.Module:
    from diffusers import CogVideoXTransformer3DModel

    torch.manual_seed(0)
    config = dict(
        num_attention_heads=2,
        attention_head_dim=16,  # the 3D RoPE splits a head into t, h, w parts of even size
        in_channels=8,
        out_channels=4,
        time_embed_dim=8,
        text_embed_dim=16,
        num_layers=2,
        sample_width=4,  # with RoPE there is no learned position table: inputs may be larger
        sample_height=4,
        sample_frames=9,
        max_text_seq_length=4,
        use_rotary_positional_embeddings=True,
    )
    return CogVideoXTransformer3DModel(**(config | options)).eval()


def dimensionx_lora_file(path, transformer, rank: int, seed: int = 5) -> dict:
    """A LoRA file in the key layout of DimensionX's published files: no header, alpha implicit."""
    generator = torch.Generator().manual_seed(seed)
    state = {}
    for name, module in transformer.named_modules():
        if name.endswith(("attn1.to_q", "attn1.to_k", "attn1.to_v", "attn1.to_out.0")):
            state[f"transformer.{name}.lora_A.weight"] = torch.randn(rank, module.in_features, generator=generator)
            state[f"transformer.{name}.lora_B.weight"] = torch.randn(module.out_features, rank, generator=generator)
    save_file(state, path)
    return state


def cogvideox_inputs() -> dict:
    generator = torch.Generator().manual_seed(2)
    return {
        "hidden_states": torch.randn(1, 3, 8, 8, 8, generator=generator),
        "encoder_hidden_states": torch.randn(1, 4, 16, generator=generator),
        "timestep": torch.tensor([500]),
        "image_rotary_emb": None,
        "return_dict": False,
    }


def test_dimensionx_lora_on_cogvideox_applies_one_over_rank(tmp_path):
    transformer = tiny_cogvideox()
    rank = 4
    state = dimensionx_lora_file(tmp_path / "orbit_left_lora_weights.safetensors", transformer, rank)
    info = load_director(transformer, tmp_path / "orbit_left_lora_weights.safetensors", "orbit-left")
    assert (info.rank, info.alpha) == (rank, 1.0)
    layer = transformer.transformer_blocks[0].attn1.to_q
    x = torch.randn(5, layer.in_features)
    down = state["transformer.transformer_blocks.0.attn1.to_q.lora_A.weight"]
    up = state["transformer.transformer_blocks.0.attn1.to_q.lora_B.weight"]
    by_hand = x @ (layer.base_layer.weight + (up @ down) / rank).T + layer.base_layer.bias
    torch.testing.assert_close(layer(x), by_hand, rtol=1e-4, atol=1e-4)
    ours = transformer(**cogvideox_inputs())[0]
    reference = tiny_cogvideox()  # diffusers' own loader, weighted 1/r as DimensionX fuses it
    reference.load_lora_adapter(str(tmp_path / "orbit_left_lora_weights.safetensors"), adapter_name="reference")
    reference.set_adapters(["reference"], weights=[1.0 / rank])
    torch.testing.assert_close(ours, reference(**cogvideox_inputs())[0], rtol=1e-4, atol=1e-5)


def test_director_for_another_backbone_is_refused(tmp_path):
    dimensionx_lora_file(tmp_path / "cog.safetensors", tiny_cogvideox(), rank=2)
    with pytest.raises(Scene4DError, match="does not fit this backbone"):
        load_director(tiny_denoiser(), tmp_path / "cog.safetensors", "cog")


def test_schedule_phases_and_switch_once():
    schedule = switch_once("orbit-left", "temporal", switch_step=3)
    assert [schedule.director_at(step) for step in range(6)] == ["orbit-left"] * 3 + ["temporal"] * 3
    assert switch_once("s", "t", 0).director_at(0) == "t"
    with pytest.raises(Scene4DError):
        DirectorSchedule(((1, "s"),))


def euler_by_hand(models: list[torch.nn.Module], clean, cond_mask, noise, sigmas, conditioning) -> torch.Tensor:
    """x <- x + (sigma_next - sigma) * v, condition frames reset before each step; ``models[i]`` runs step i."""
    keep = cond_mask.bool()[:, :, None, None, None]
    latents = noise
    for index, model in enumerate(models):
        latents = torch.where(keep, clean, latents)
        velocity = model(latents, sigmas[index].expand(1), cond_mask, **conditioning)
        latents = latents + (sigmas[index + 1] - sigmas[index]) * velocity
    return torch.where(keep, clean, latents)


def test_switch_once_runs_the_spatial_director_then_the_temporal_one():
    model = tiny_denoiser()
    targets = target_modules(model)
    for seed, name in enumerate(("orbit-left", "temporal")):
        inject_director(model, name, rank=2, alpha=2.0, targets=targets)
        randomise_director(model, name, seed=10 + seed)
    seen = []

    def recording(latents, sigma, cond_mask, **conditioning):
        seen.append(active_director(model))
        return model(latents, sigma, cond_mask, **conditioning)

    inputs = denoiser_inputs()
    clean, cond_mask = inputs.pop("latents"), inputs.pop("cond_mask")
    inputs.pop("sigma")
    noise = torch.randn(clean.shape, generator=torch.Generator().manual_seed(7))
    steps, schedule = 6, switch_once("orbit-left", "temporal", 3)
    result = sample(
        recording,
        clean,
        cond_mask,
        steps,
        torch.Generator(),
        noise=noise,
        hooks=[schedule_hook(model, schedule)],
        **inputs,
    )
    assert seen == ["orbit-left"] * 3 + ["temporal"] * 3
    spatial, temporal = merged_copy(model, "orbit-left", 1.0), merged_copy(model, "temporal", 1.0)
    sigmas = torch.cat([torch.linspace(1.0, 1.0 / 1000, steps), torch.zeros(1)])
    expected = euler_by_hand([spatial] * 3 + [temporal] * 3, clean, cond_mask, noise, sigmas, inputs)
    torch.testing.assert_close(result, expected, rtol=1e-4, atol=1e-4)


def test_partial_strength_starts_from_the_noised_start_latents():
    clean = torch.zeros(1, 2, 4, 4, 4)
    cond_mask = torch.tensor([[1.0, 0.0]])
    start = torch.randn(1, 2, 4, 4, 4)
    noise = torch.randn(1, 2, 4, 4, 4)
    calls = []

    def still(latents, sigma, cond_mask):  # zero velocity: the latents stay where they start
        calls.append(float(sigma[0]))
        return torch.zeros_like(latents)

    result = sample(still, clean, cond_mask, 10, torch.Generator(), start=start, strength=0.4, noise=noise)
    assert first_step(10, 0.4) == 6 and len(calls) == 4
    sigma = 1.0 - 6 * (1.0 - 1.0 / 1000) / 9  # the 7th of 10 levels spaced evenly from 1 to 1/1000
    assert calls[0] == pytest.approx(sigma, abs=1e-6)
    torch.testing.assert_close(result[:, 1], ((1 - sigma) * start + sigma * noise)[:, 1], rtol=1e-5, atol=1e-6)
    with pytest.raises(Scene4DError):
        sample(still, clean, cond_mask, 10, torch.Generator(), strength=0.5)
