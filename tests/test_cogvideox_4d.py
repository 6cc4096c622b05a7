"""DimensionX's SDEdit, latent blending and 4D pipeline on a tiny random CogVideoX image-to-video pipeline."""

from functools import partial

import numpy as np
import pytest
import torch
from test_cogvideox import record_image_conditions, tiny_pipeline
from test_directors import dimensionx_lora_file

from scene4d.directors.lora import active_director, load_director
from scene4d.directors.schedule import single
from scene4d.errors import Scene4DError
from scene4d.models.cogvideox import encoded_prompt, video_latents
from scene4d.pipelines.cogvideox import generate_cogvideox_frames, noised_to_step
from scene4d.pipelines.cogvideox_4d import generate_cogvideox_4d, refine_view
from scene4d.pipelines.four_d import FourDConfig, blend_hook

LATENT = (1, 3, 4, 4, 4)  # 9 frames of 32 x 32: 3 latent frames of 4 x 4, 4 channels


def record_denoiser_calls(pipeline) -> list[tuple[int, torch.Tensor, str | None]]:
    """(timestep, noisy latents [1, F, C, h, w], active director) of every transformer call."""
    seen = []

    def record(module, args, kwargs):
        latents = kwargs["hidden_states"][:, :, : module.config.in_channels // 2].clone()
        seen.append((int(kwargs["timestep"][0]), latents, active_director(module)))

    pipeline.transformer.register_forward_pre_hook(record, with_kwargs=True)
    return seen


def forward_noised(clean: torch.Tensor, noise: torch.Tensor, timestep: int) -> torch.Tensor:
    """DDPM forward process by hand from a fresh scheduler's alphas: sqrt(a_t) z + sqrt(1 - a_t) eps."""
    from diffusers import CogVideoXDDIMScheduler

    alpha = CogVideoXDDIMScheduler().alphas_cumprod[timestep]
    return alpha.sqrt() * clean + (1 - alpha).sqrt() * noise


def full_schedule(steps: int) -> list[int]:
    from diffusers import CogVideoXDDIMScheduler

    scheduler = CogVideoXDDIMScheduler()
    scheduler.set_timesteps(steps)
    return scheduler.timesteps.tolist()


def tiny_inputs():
    generator = torch.Generator().manual_seed(3)
    image = np.random.default_rng(0).random((32, 32, 3)).astype(np.float32)
    return image, torch.randn(1, 4, 16, generator=generator), torch.randn(LATENT, generator=generator)


def test_sdedit_runs_the_last_steps_of_the_schedule_from_the_noised_start():
    pipeline = tiny_pipeline()
    seen = record_denoiser_calls(pipeline)
    image, embeds, clean = tiny_inputs()
    noise = torch.randn(LATENT, generator=torch.Generator().manual_seed(4))
    start = noised_to_step(pipeline.scheduler, clean, noise, 5, 2)
    timesteps = full_schedule(5)
    torch.testing.assert_close(start, forward_noised(clean, noise, timesteps[2]))
    generate_cogvideox_frames(
        pipeline, image, 9, 5, 1.0, 0, single(None), prompt_embeds=embeds, start=start, first_step=2
    )
    assert [timestep for timestep, _, _ in seen] == timesteps[2:]
    torch.testing.assert_close(seen[0][1], start)
    pipeline.scheduler.set_timesteps(5)  # the cut ends with the call
    assert pipeline.scheduler.timesteps.tolist() == timesteps
    with pytest.raises(Scene4DError, match="start latents"):
        generate_cogvideox_frames(pipeline, image, 9, 5, 1.0, 0, single(None), prompt_embeds=embeds, first_step=2)


def test_eq5_blends_the_noised_reference_into_the_first_steps_latents():
    pipeline = tiny_pipeline()
    seen = record_denoiser_calls(pipeline)
    stepped = []
    step = pipeline.scheduler.step

    def record_step(*args, **kwargs):
        output = step(*args, **kwargs)
        stepped.append(output[0].clone())
        return output

    pipeline.scheduler.step = record_step
    image, embeds, reference = tiny_inputs()
    noise = torch.randn(LATENT, generator=torch.Generator().manual_seed(4))
    weight, blended_steps = 0.3, 2
    hook = blend_hook(reference, noise, weight, blended_steps, pipeline.scheduler.add_noise)
    start = torch.randn(LATENT, generator=torch.Generator().manual_seed(5))
    generate_cogvideox_frames(
        pipeline, image, 9, 5, 1.0, 0, single(None), prompt_embeds=embeds, start=start, hooks=[hook]
    )
    torch.testing.assert_close(seen[0][1], start)
    for index in range(4):  # what step i made, as step i + 1 sees it
        timestep, latents, _ = seen[index + 1]
        expected = stepped[index]
        if index + 1 <= blended_steps:
            expected = weight * expected + (1 - weight) * forward_noised(reference, noise, timestep)
        torch.testing.assert_close(latents, expected)


def test_4d_on_cogvideox_shares_the_reference_start_and_runs_each_stage_director(tmp_path):
    pipeline = tiny_pipeline()
    for seed, name in enumerate(("orbit-left", "temporal")):
        dimensionx_lora_file(tmp_path / f"{name}.safetensors", pipeline.transformer, rank=4, seed=seed)
        load_director(pipeline.transformer, tmp_path / f"{name}.safetensors", name)
    seen = record_denoiser_calls(pipeline)
    image, embeds, _ = tiny_inputs()
    views, times = 9, 9
    config = FourDConfig(
        num_views=views, num_times=times, steps=4, reference_strength=0.75, blend_steps=1, refine_strengths=(0.5,),
        spatial_director="orbit-left", temporal_director="temporal",
    )  # fmt: skip
    result = generate_cogvideox_4d(pipeline, image, config, 1.0, {"prompt_embeds": embeds}, "orbit-left")
    # temporal video 4 steps, reference 4, every time's spatial video the last 3, views 1.. refined over the last 2
    directors = [director for _, _, director in seen]
    assert directors == ["temporal"] * 4 + ["orbit-left"] * (4 + times * 3) + ["temporal"] * (views - 1) * 2
    timesteps = full_schedule(4)
    spatial_starts = [seen[8 + 3 * time] for time in range(times)]
    assert {timestep for timestep, _, _ in spatial_starts} == {timesteps[1]}
    # eq. 4: every time starts from v_ref's latent noised to the first step run (seed + 2 draws both)
    generator = torch.Generator().manual_seed(2)
    reference = video_latents(pipeline, result.reference.frames[None], generator)
    noise = torch.randn(reference.shape, generator=generator)
    for _, latents, _ in spatial_starts:
        torch.testing.assert_close(latents, forward_noised(reference, noise, timesteps[1]))
    refined = 8 + 3 * times
    assert [seen[refined + 2 * view][0] for view in range(views - 1)] == [timesteps[2]] * (views - 1)
    assert len(result.views) == views and all(len(view) == times for view in result.views)
    np.testing.assert_allclose(result.views[0].frames, result.temporal.frames, atol=0.5 / 255 + 1e-6)  # as uint8
    for view, clip in enumerate(result.views):
        np.testing.assert_array_equal(clip.times, np.linspace(0, 1, times, dtype=np.float32))
        torch.testing.assert_close(clip.cameras.w2c, result.reference.cameras.w2c[[view] * times])  # v_ref's
    anchor = result.reference_index
    assert len(result.reference) == views and result.reference.times.tolist() == [anchor / (times - 1)] * views


@pytest.mark.parametrize("invert_scale", [False, True])  # CogVideoX 1.5's VAE scales image latents by 1 / s
def test_video_latents_encode_as_the_pipeline_encodes_its_condition_image(invert_scale):
    pipeline = tiny_pipeline()
    pipeline.vae.register_to_config(invert_scale_latents=invert_scale)
    image, _, _ = tiny_inputs()
    pixels = torch.from_numpy(image).permute(2, 0, 1)[None] * 2 - 1  # [1, 3, H, W] in [-1, 1]
    _, condition = pipeline.prepare_latents(
        pixels, 1, 4, 9, 32, 32, torch.float32, torch.device("cpu"), torch.Generator().manual_seed(6)
    )
    ours = video_latents(pipeline, image[None, None], torch.Generator().manual_seed(6), condition=True)
    torch.testing.assert_close(ours, condition[:, :1])


def test_eq6_refines_each_view_from_its_first_frame_and_the_same_noise():
    pipeline = tiny_pipeline()
    seen = record_denoiser_calls(pipeline)
    conditions = record_image_conditions(pipeline)
    _, embeds, _ = tiny_inputs()
    config = FourDConfig(num_views=9, num_times=9, steps=4)
    run = partial(generate_cogvideox_frames, pipeline, steps=4, guidance=1.0, prompt_embeds=embeds)
    rng = np.random.default_rng(1)
    views = [rng.random((9, 32, 32, 3)).astype(np.float32) for _ in range(2)]
    for frames in views:
        refine_view(pipeline, run, frames, 0.5, config, 7, None)
    assert [timestep for timestep, _, _ in seen] == full_schedule(4)[2:] * 2
    for index, frames in enumerate(views):
        generator = torch.Generator().manual_seed(7)  # the view's encoding, then the noise: the same for every view
        clean = video_latents(pipeline, frames[None], generator)
        noise = torch.randn(clean.shape, generator=generator)
        torch.testing.assert_close(seen[2 * index][1], forward_noised(clean, noise, full_schedule(4)[2]))
        first_frame = np.round(frames[None, :1] * 255) / 255  # handed to the pipeline as an 8-bit image
        first_frame = video_latents(pipeline, first_frame.astype(np.float32), torch.Generator().manual_seed(7))
        torch.testing.assert_close(conditions[2 * index][:, :1], first_frame)  # conditioned on the view's first time


def test_4d_on_cogvideox_without_sharing_starts_every_time_from_its_own_noise():
    pipeline = tiny_pipeline()
    seen = record_denoiser_calls(pipeline)
    image, embeds, _ = tiny_inputs()
    config = FourDConfig(num_views=9, num_times=9, steps=2, share_reference=False, refine_strengths=())
    generate_cogvideox_4d(pipeline, image, config, 1.0, {"prompt_embeds": embeds}, "orbit-left")
    assert len(seen) == 2 + 2 + 9 * 2
    starts = [seen[4 + 2 * time][1] for time in range(9)]
    assert not any(torch.allclose(starts[0], other) for other in starts[1:])


def test_4d_on_cogvideox_takes_cogvideox_frame_counts():
    with pytest.raises(Scene4DError, match="8k \\+ 1"):
        generate_cogvideox_4d(tiny_pipeline(), np.zeros((32, 32, 3)), FourDConfig(num_views=5), 1.0, {}, None)


def tiny_text_encoder():
    """A word-level tokenizer and a one-layer T5 encoder of width 16 (the tiny transformer's text width)."""
    from tokenizers import Tokenizer, models, pre_tokenizers
    from transformers import PreTrainedTokenizerFast, T5Config, T5EncoderModel

    words = Tokenizer(models.WordLevel({"<pad>": 0, "</s>": 1, "<unk>": 2, "a": 3, "cat": 4}, unk_token="<unk>"))
    words.pre_tokenizer = pre_tokenizers.Whitespace()
    tokenizer = PreTrainedTokenizerFast(tokenizer_object=words, pad_token="<pad>", eos_token="</s>", unk_token="<unk>")
    torch.manual_seed(0)
    config = T5Config(vocab_size=5, d_model=16, d_kv=8, d_ff=32, num_layers=1, num_heads=2)
    return tokenizer, T5EncoderModel(config).eval()


def test_a_prompt_encoded_once_guides_as_the_pipeline_guides_with_its_text():
    pipeline = tiny_pipeline()
    pipeline.tokenizer, pipeline.text_encoder = tiny_text_encoder()
    image, _, _ = tiny_inputs()
    by_pipeline = generate_cogvideox_frames(pipeline, image, 9, 2, 6.0, 0, single(None), prompt="a cat")
    text = encoded_prompt(pipeline, "a cat", 6.0)
    assert not any(value.requires_grad for value in text.values())  # no T5 graph kept for the whole run
    pipeline.text_encoder = None  # the videos need no text encoder any more, negative prompt included
    np.testing.assert_array_equal(
        generate_cogvideox_frames(pipeline, image, 9, 2, 6.0, 0, single(None), **text), by_pipeline
    )


def stand_in_for_weights(monkeypatch, pipeline) -> list:
    """``pipeline`` in place of CogVideoX's weights, and a fixed prompt embedding; the loads are listed."""
    loads = []
    embeds = tiny_inputs()[1]
    monkeypatch.setattr("scene4d.models.cogvideox.load_cogvideox", lambda options: loads.append(options) or pipeline)
    monkeypatch.setattr("scene4d.models.cogvideox.encoded_prompt", lambda *args: {"prompt_embeds": embeds})
    return loads


def run_generate(tmp_path, monkeypatch, *options: str, photo: str = "photo.png"):
    """``scene4d generate`` on the tiny pipeline (in place of the weights) with DimensionX-format directors;
    also the number of times the weights were loaded."""
    from typer.testing import CliRunner

    from scene4d.cli import app
    from scene4d.io import write_image

    pipeline = tiny_pipeline()
    loads = stand_in_for_weights(monkeypatch, pipeline)
    for seed, name in enumerate(("orbit-left", "temporal")):
        dimensionx_lora_file(tmp_path / f"{name}.safetensors", pipeline.transformer, rank=4, seed=seed)
    write_image(tmp_path / "photo.png", tiny_inputs()[0])
    args = ["generate", str(tmp_path / photo), "--out", str(tmp_path / "out"), "--backbone", "cogvideox"]
    directors = ["--director", str(tmp_path / "orbit-left.safetensors")]
    directors += ["--temporal-director", str(tmp_path / "temporal.safetensors")]
    return CliRunner().invoke(app, [*args, *directors, "--frames", "9", "--steps", "2", *options]), len(loads)


def test_interp_on_cogvideox_runs_the_director_of_the_move_between_the_two_images(tmp_path, monkeypatch):
    from typer.testing import CliRunner

    from scene4d.cli import app
    from scene4d.io import load_clip, write_image
    from scene4d.pipelines.cogvideox import fit_image
    from scene4d.synth import SynthConfig, make_clip

    pipeline = tiny_pipeline(sample_width=16, sample_height=12)  # 128 x 96 frames: enough for SIFT
    stand_in_for_weights(monkeypatch, pipeline)
    folder = tmp_path / "directors"
    folder.mkdir()
    for seed, move in enumerate(("pan-left", "pan-right")):  # DimensionX's file names
        dimensionx_lora_file(
            folder / f"{move.replace('-', '_')}_lora_weights.safetensors", pipeline.transformer, 4, seed
        )
    seen = record_denoiser_calls(pipeline)
    conditions = record_image_conditions(pipeline)
    clip = make_clip(SynthConfig(kind="spatial", resolution=128, num_frames=9, trajectory="pan-right"), 3)
    for name, frame in (("a.png", clip.frames[0]), ("b.png", clip.frames[-1])):
        write_image(tmp_path / name, frame)
    args = ["generate", str(tmp_path / "a.png"), str(tmp_path / "b.png"), "--mode", "interp", "--backbone", "cogvideox"]
    args += ["--director-dir", str(folder), "--out", str(tmp_path / "out"), "--frames", "9", "--steps", "2"]
    args += ["--cogvideox", "an-interpolation-model"]
    result = CliRunner().invoke(app, args)
    assert result.exit_code == 0, result.output
    assert "the views differ by pan-right" in result.output
    assert [director for _, _, director in seen] == ["pan-right"] * 2
    assert conditions[0][:, 1:-1].abs().max() == 0 < conditions[0][:, -1].abs().min()  # the last image conditions
    out = load_clip(tmp_path / "out")
    assert out.meta["matched_move"] == "pan-right" and out.meta["condition_frames"] == [0, 8]
    for index, frame in ((0, clip.frames[0]), (-1, clip.frames[-1])):  # the given views, as 8-bit files
        np.testing.assert_allclose(out.frames[index], fit_image(frame, 128, 96), atol=1 / 255 + 1e-6)


def test_generate_4d_on_cogvideox_writes_synchronised_views(tmp_path, monkeypatch):
    from scene4d.io import load_clip

    result, _ = run_generate(tmp_path, monkeypatch, "--mode", "4d", "--views", "9")
    assert result.exit_code == 0, result.output
    assert "spatial orbit-left, temporal temporal" in result.output
    temporal = load_clip(tmp_path / "out" / "temporal")
    views = sorted((tmp_path / "out" / "views").iterdir())
    assert [view.name for view in views] == [f"{index:02d}" for index in range(9)]
    for view in views:
        clip = load_clip(view)
        assert clip.frames.shape == (9, 32, 32, 3)  # the tiny transformer's frame size, not CogVideoX's 720 x 480
        np.testing.assert_array_equal(clip.times, temporal.times)


def test_generate_3d_on_cogvideox_switches_once_at_the_pipeline_frame_size(tmp_path, monkeypatch):
    from scene4d.io import load_clip

    result, _ = run_generate(tmp_path, monkeypatch, "--mode", "3d", "--motion", "0.5", "--switch-step", "1")
    assert result.exit_code == 0, result.output
    assert "orbit-left for step 0, then temporal" in result.output
    clip = load_clip(tmp_path / "out")
    assert clip.frames.shape == (9, 32, 32, 3)
    np.testing.assert_allclose(clip.times, np.linspace(0, 1, 9), atol=1e-6)  # objects move


@pytest.mark.parametrize(
    ("options", "message"),
    [
        (["--mode", "4d", "--views", "8"], "8k \\+ 1 frames .* got 8"),
        (["--mode", "4d", "--views", "9", "--motion", "0.5"], "no --motion"),
        (["--mode", "4d", "--views", "9", "--switch-step", "2"], "--switch-step is for Switch-Once"),
        (["--switch-step", "2"], "--switch-step is for Switch-Once"),  # 3d, but nothing moves
        (["--motion", "0.5", "--switch-step", "-1"], "--switch-step must be >= 0"),
        (["--mode", "4d", "--views", "0"], "8k \\+ 1 frames .* got 0"),
        (["--mode", "interp"], "needs a first-and-last-frame model"),
        (["--mode", "interp", "--cogvideox", "interp-model"], "takes 2 image\\(s\\), got 1"),
        (["--frames", "13"], "8k \\+ 1 frames .* got 13"),
        (["--director", "orbit-up"], "no director 'orbit-up' in --director-dir"),
        (["--steps", "0"], "--steps must be >= 1"),
        (["--magnitude", "20"], "no --cameras or --magnitude"),
        (["--cameras", "transforms.json"], "no --cameras or --magnitude"),
        (["--director", "missing.safetensors"], "no director file missing.safetensors"),
    ],
)
def test_generate_on_cogvideox_refuses_what_it_cannot_make_at_once(tmp_path, monkeypatch, options, message):
    import re

    result, loads = run_generate(tmp_path, monkeypatch, *options)
    assert result.exit_code == 2 and re.search(message, result.output), result.output
    assert loads == 0 and not (tmp_path / "out").exists()  # before minutes of loading weights


@pytest.mark.parametrize("mode", ["3d", "4d"])
def test_generate_never_replaces_a_folder_of_other_files(tmp_path, monkeypatch, mode):
    (tmp_path / "out").mkdir()
    (tmp_path / "out" / "notes.txt").write_text("mine")
    result, loads = run_generate(tmp_path, monkeypatch, "--mode", mode, "--views", "9")
    assert result.exit_code == 2 and "holds other files" in result.output and loads == 0
    assert [path.name for path in (tmp_path / "out").iterdir()] == ["notes.txt"]


def test_generate_on_cogvideox_reads_the_image_before_loading_weights(tmp_path, monkeypatch):
    result, loads = run_generate(tmp_path, monkeypatch, photo="missing.png")
    assert result.exit_code == 2 and "missing.png" in result.output and loads == 0


def test_interp_on_cogvideox_fails_before_loading_when_auto_cannot_read_the_move(tmp_path, monkeypatch):
    from typer.testing import CliRunner

    from scene4d.cli import app
    from scene4d.io import write_image

    loads = stand_in_for_weights(monkeypatch, tiny_pipeline())
    for name in ("a.png", "b.png"):
        write_image(tmp_path / name, np.full((32, 32, 3), 0.5, dtype=np.float32))  # nothing to match
    args = ["generate", str(tmp_path / "a.png"), str(tmp_path / "b.png"), "--mode", "interp", "--backbone"]
    args += ["cogvideox", "--cogvideox", "interp-model", "--out", str(tmp_path / "out"), "--frames", "9"]
    result = CliRunner().invoke(app, args)
    assert result.exit_code == 2 and "name the S-Director with --director" in result.output and loads == []


def test_director_dir_is_for_cogvideox(tmp_path):
    from typer.testing import CliRunner

    from scene4d.cli import app

    args = ["generate", str(tmp_path / "a.png"), "--out", str(tmp_path / "out"), "--director-dir", str(tmp_path)]
    result = CliRunner().invoke(app, args)
    assert result.exit_code == 2 and "--director-dir is for --backbone cogvideox" in result.output
