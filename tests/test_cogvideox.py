"""The CogVideoX backbone: a tiny random CogVideoX image-to-video pipeline with DimensionX-format directors."""

import numpy as np
import pytest
import torch
from test_directors import dimensionx_lora_file, tiny_cogvideox

from scene4d.directors.lora import active_director, load_director
from scene4d.directors.schedule import single, switch_once
from scene4d.errors import Scene4DError
from scene4d.geometry.rotations import rotation_error_deg
from scene4d.models.cogvideox import CogVideoXOptions, load_cogvideox, positions_for, stretched_positions
from scene4d.pipelines.cogvideox import cameras_of_frames, check_frame_count, generate_cogvideox_frames
from scene4d.synth import SynthConfig, make_clip


def tiny_pipeline(**options):
    from diffusers import AutoencoderKLCogVideoX, CogVideoXDDIMScheduler, CogVideoXImageToVideoPipeline

    transformer = tiny_cogvideox(**options)
    vae = AutoencoderKLCogVideoX(
        block_out_channels=(8, 8, 8, 8), latent_channels=4, layers_per_block=1, norm_num_groups=2
    )
    return CogVideoXImageToVideoPipeline(
        tokenizer=None, text_encoder=None, vae=vae, transformer=transformer, scheduler=CogVideoXDDIMScheduler()
    )


def record_image_conditions(pipeline) -> list[torch.Tensor]:
    """The image-condition latents [1, F, C, h, w] (the second half of the channels) of every transformer call."""
    conditions = []
    pipeline.transformer.register_forward_pre_hook(
        lambda module, args, kwargs: conditions.append(kwargs["hidden_states"][:, :, 4:].clone()), with_kwargs=True
    )
    return conditions


def test_switch_once_switches_directors_inside_diffusers_loop(tmp_path):
    pipeline = tiny_pipeline()
    for seed, name in enumerate(("orbit-left", "temporal")):
        dimensionx_lora_file(tmp_path / f"{name}.safetensors", pipeline.transformer, rank=4, seed=seed)
        load_director(pipeline.transformer, tmp_path / f"{name}.safetensors", name)
    seen = []
    pipeline.transformer.register_forward_pre_hook(lambda module, args: seen.append(active_director(module)))
    image = np.random.default_rng(0).random((32, 32, 3)).astype(np.float32)
    frames = generate_cogvideox_frames(
        pipeline, image, 9, steps=5, guidance=1.0, seed=0, schedule=switch_once("orbit-left", "temporal", 2),
        prompt_embeds=torch.randn(1, 4, 16, generator=torch.Generator().manual_seed(1)),
    )  # fmt: skip
    assert seen == ["orbit-left"] * 2 + ["temporal"] * 3
    assert frames.shape == (9, 32, 32, 3) and 0.0 <= frames.min() and frames.max() <= 1.0


def test_stretched_positions_interpolate_the_learned_table_in_time():
    text_length, patches, width = 2, 3, 4
    table = torch.randn(1, text_length + 3 * patches, width, generator=torch.Generator().manual_seed(0))
    frame = [table[0, text_length + k * patches : text_length + (k + 1) * patches] for k in range(3)]
    # 3 latent frames stretched to 5 sit at positions 0, 0.5, 1, 1.5, 2 of the old ones.
    expected = [frame[0], (frame[0] + frame[1]) / 2, frame[1], (frame[1] + frame[2]) / 2, frame[2]]
    stretched = stretched_positions(table, text_length, 3, 5)
    torch.testing.assert_close(stretched[0, :text_length], table[0, :text_length])
    torch.testing.assert_close(stretched[0, text_length:], torch.cat(expected))
    torch.testing.assert_close(stretched_positions(table, text_length, 3, 3), table)


def test_longer_videos_keep_learned_positions_stretched_not_replaced():
    # CogVideoX-5b-I2V adds a learned position table; for another frame count diffusers swaps in sin-cos.
    transformer = tiny_cogvideox(use_learned_positional_embeddings=True)
    embed = transformer.patch_embed
    generator = torch.Generator().manual_seed(2)
    embed.pos_embedding = torch.randn(embed.pos_embedding.shape, generator=generator)  # a "learned" table
    original = embed.pos_embedding
    text, video = torch.randn(1, 4, 16, generator=generator), torch.randn(1, 5, 8, 4, 4, generator=generator)
    with torch.no_grad(), positions_for(transformer, 17):  # 17 frames: 5 latent frames, the table has 3
        with_table = embed(text, video)
        embed.pos_embedding = torch.zeros_like(embed.pos_embedding)
        without = embed(text, video)
    torch.testing.assert_close(with_table - without, stretched_positions(original, 4, 3, 5))
    assert embed.pos_embedding is original and embed.sample_frames == 9  # restored on leaving
    with torch.no_grad():
        assert not torch.allclose(embed(text, video), with_table)  # diffusers alone: other positions


def test_a_longer_video_runs_through_the_pipeline_with_the_stretched_table():
    pipeline = tiny_pipeline(use_learned_positional_embeddings=True)
    embed = pipeline.transformer.patch_embed
    seen = []
    embed.register_forward_pre_hook(
        lambda module, args: seen.append((module.sample_frames, module.pos_embedding.shape))
    )
    image = np.random.default_rng(0).random((32, 32, 3)).astype(np.float32)
    frames = generate_cogvideox_frames(
        pipeline, image, 17, steps=2, guidance=1.0, seed=0, schedule=single(None),
        prompt_embeds=torch.randn(1, 4, 16, generator=torch.Generator().manual_seed(1)),
    )  # fmt: skip
    assert frames.shape == (17, 32, 32, 3)
    assert seen == [(17, torch.Size([1, 4 + 5 * 4, 32]))] * 2  # 4 text positions + 5 latent frames of 2 x 2 patches
    assert embed.sample_frames == 9 and embed.pos_embedding.shape == (1, 4 + 3 * 4, 32)


def test_missing_weights_and_bad_frame_counts_fail_in_one_line(tmp_path):
    with pytest.raises(Scene4DError, match="no CogVideoX image-to-video weights at .*nowhere"):
        load_cogvideox(CogVideoXOptions(source=str(tmp_path / "nowhere")))
    for count in (48, 13):  # 13 = 4 latent frames, which diffusers' VAE decodes to 16 frames
        with pytest.raises(Scene4DError, match="8k \\+ 1"):
            check_frame_count(count)


def test_cameras_of_generated_frames_come_from_sfm():
    clip = make_clip(SynthConfig(kind="spatial", resolution=96, num_frames=9, trajectory="pan-right"), 1)
    fov_x_deg = float(np.rad2deg(2 * np.arctan(48 / float(clip.cameras.K[0, 0, 0]))))
    sfm, source = cameras_of_frames(clip.frames, fov_x_deg, "pan-right")
    assert source == "sfm"
    cameras = sfm.cameras
    truth = clip.cameras.relative_to(0).w2c[-1, :3, :3]
    assert rotation_error_deg(cameras.w2c[-1, :3, :3], truth) < 2.0


def test_fit_image_crops_the_centre_to_cogvideox_aspect():
    from scene4d.pipelines.cogvideox import fit_image

    columns = np.linspace(0, 1, 600, dtype=np.float32)
    image = np.repeat(np.repeat(columns[None, :, None], 300, axis=0), 3, axis=2)  # 300 x 600, brightness = column
    fitted = fit_image(image, 720, 480)
    assert fitted.shape == (480, 720, 3)
    # a 3:2 crop of a 2:1 image keeps columns 75..524; the output's edge columns sample their ends
    assert fitted[240, 0, 0] == pytest.approx(columns[75], abs=2e-3)
    assert fitted[240, -1, 0] == pytest.approx(columns[524], abs=2e-3)


def test_generate_with_cogvideox_names_missing_weights(tmp_path):
    from typer.testing import CliRunner

    from scene4d.cli import app
    from scene4d.io import write_image

    write_image(tmp_path / "photo.png", np.zeros((16, 16, 3), dtype=np.float32))
    args = ["generate", str(tmp_path / "photo.png"), "--out", str(tmp_path / "out"), "--backbone", "cogvideox"]
    result = CliRunner().invoke(app, [*args, "--cogvideox", str(tmp_path / "weights")])
    assert result.exit_code == 2 and "no CogVideoX image-to-video weights" in result.output
    assert len(result.output.strip().splitlines()) == 1 and not (tmp_path / "out").exists()


def test_a_director_trains_on_cogvideox_and_only_its_lora_moves(tmp_path):
    from scene4d.directors.lora import director_state
    from scene4d.io import save_clip
    from scene4d.train.director import TRAINED, DirectorTrainConfig, train_cogvideox_director

    for seed in range(2):
        save_clip(
            make_clip(SynthConfig(kind="temporal", resolution=16, num_frames=17, supersample=1), seed),
            tmp_path / f"c{seed}",
        )
    pipeline = tiny_pipeline(use_learned_positional_embeddings=True)  # as CogVideoX-5b-I2V
    base = {name: value.clone() for name, value in pipeline.transformer.state_dict().items()}
    seen, checkpointed = [], []
    pipeline.transformer.patch_embed.register_forward_pre_hook(
        lambda module, args: seen.append(module.pos_embedding.shape)
    )
    pipeline.transformer.register_forward_pre_hook(
        lambda module, args: checkpointed.append(module.gradient_checkpointing)
    )
    config = DirectorTrainConfig("temporal", rank=2, alpha=2.0, steps=2, batch_size=1, checkpoint_every=1)
    prompt = torch.randn(1, 4, 16, generator=torch.Generator().manual_seed(0))
    info = train_cogvideox_director(config, pipeline, prompt, tmp_path, tmp_path / "t.safetensors", 17, None)
    assert (info.kind, info.backbone) == ("temporal", "cogvideox")
    assert seen == [(1, 4 + 5 * 4, 32)] * 2  # 17 frames: the learned table stretched to 5 latent frames, not 3
    assert checkpointed == [True, True] and not pipeline.transformer.gradient_checkpointing  # only while training
    trained = director_state(pipeline.transformer, TRAINED)
    assert any(value.abs().max() > 0 for key, value in trained.items() if "lora_B" in key)
    for name, value in pipeline.transformer.state_dict().items():
        if "lora_" not in name:  # adapted layers keep their weights as base_layer.*
            torch.testing.assert_close(value, base[name.replace(".base_layer", "")])
    fresh = tiny_pipeline().transformer
    load_director(fresh, tmp_path / "t.safetensors", "temporal")
    for key, value in director_state(fresh, "temporal").items():
        torch.testing.assert_close(value, trained[key].half().float())


@pytest.mark.parametrize("invert_scale", [False, True])  # CogVideoX 1.5's VAE scales image latents by 1 / s
def test_an_interpolation_model_sees_the_last_image_as_the_last_latent_frame(invert_scale):
    pipeline = tiny_pipeline()
    pipeline.vae.register_to_config(invert_scale_latents=invert_scale)
    conditions = record_image_conditions(pipeline)
    rng = np.random.default_rng(0)
    first, last = (rng.random((32, 32, 3)).astype(np.float32) for _ in range(2))
    embeds = torch.randn(1, 4, 16, generator=torch.Generator().manual_seed(1))
    for image, end in ((first, last), (last, None), (first, None)):
        generate_cogvideox_frames(pipeline, image, 9, 1, 1.0, 0, single(None), prompt_embeds=embeds, last_image=end)
    both, last_alone, first_alone = conditions  # [1, 3, 4, 4, 4] image latents seen by the transformer
    torch.testing.assert_close(both[:, -1], last_alone[:, 0])  # encoded as diffusers encodes a condition image
    torch.testing.assert_close(both[:, 0], first_alone[:, 0])
    assert both[:, 1:-1].abs().max() == 0 and "prepare_latents" not in vars(pipeline)


def test_interpolation_directors_train_on_the_first_and_last_frame_condition():
    from scene4d.models.cogvideox import video_latents
    from scene4d.train.director import cogvideox_loss

    pipeline = tiny_pipeline()
    conditions = record_image_conditions(pipeline)
    videos = np.random.default_rng(0).random((1, 9, 32, 32, 3)).astype(np.float32)
    embeds = torch.randn(1, 4, 16, generator=torch.Generator().manual_seed(1))
    cogvideox_loss(pipeline, videos, embeds, torch.Generator().manual_seed(0), last_frame=True)
    generator = torch.Generator().manual_seed(0)  # the clip's latents, then its first and last frames alone
    video_latents(pipeline, videos, generator)
    ends = [
        video_latents(pipeline, videos[:, index], generator, condition=True) for index in (slice(0, 1), slice(-1, None))
    ]
    torch.testing.assert_close(conditions[0][:, :1], ends[0])
    torch.testing.assert_close(conditions[0][:, -1:], ends[1])
    assert conditions[0][:, 1:-1].abs().max() == 0


def test_director_files_read_dimensionx_names_as_moves(tmp_path):
    from scene4d.directors.lora import director_files, director_name

    for name in ("orbit_left_lora_weights", "pan-right", "temporal"):
        (tmp_path / f"{name}.safetensors").write_bytes(b"")
    (tmp_path / "notes.txt").write_text("")
    found = director_files(tmp_path)
    stems = {"orbit-left": "orbit_left_lora_weights", "pan-right": "pan-right", "temporal": "temporal"}
    assert found == {name: tmp_path / f"{stem}.safetensors" for name, stem in stems.items()}
    assert director_files(tmp_path / "absent") == {}
    assert director_name(tmp_path / "elsewhere" / "pan_left_lora_weights.safetensors") == "pan-left"
    (tmp_path / "orbit-left.safetensors").write_bytes(b"")  # two files, one name
    with pytest.raises(Scene4DError, match="both name the director 'orbit-left'"):
        director_files(tmp_path)


@pytest.mark.parametrize(
    ("options", "message"),
    [
        (["--last-frame"], "--last-frame is for --backbone cogvideox"),
        (["--backbone", "cogvideox", "--base", "model"], "--base names a scene4d model"),
    ],
)
def test_director_training_refuses_options_of_the_other_backbone(tmp_path, options, message):
    from typer.testing import CliRunner

    from scene4d.cli import app

    args = ["train", "director", "--kind", "spatial", "--trajectory", "pan-left", "--data", str(tmp_path)]
    result = CliRunner().invoke(app, [*args, "--out", str(tmp_path / "d.safetensors"), *options])
    assert result.exit_code == 2 and message in result.output


def test_frames_sfm_cannot_register_take_the_named_move_at_the_size_asked(monkeypatch):
    def fail(*args):
        raise Scene4DError("sfm: COLMAP registered 2 of 9 frames")

    monkeypatch.setattr("scene4d.pipelines.cogvideox.estimate_cameras", fail)
    sfm, source = cameras_of_frames(np.zeros((9, 32, 32, 3), dtype=np.float32), 55.0, "pan-right", 12.0)
    assert source.startswith("trajectory pan-right")
    assert rotation_error_deg(sfm.cameras.w2c[-1, :3, :3], torch.eye(3)) == pytest.approx(12.0, abs=1e-3)


def spiece_tokenizer(folder):
    """A T5 tokenizer folder as CogVideoX-5b-I2V ships it: a sentencepiece model, no tokenizer.json."""
    import io
    import json

    import sentencepiece

    words = ["a cat sits on the mat", "the camera orbits a house", "a dog runs past"] * 20
    model = io.BytesIO()
    sentencepiece.SentencePieceTrainer.train(
        sentence_iterator=iter(words), model_writer=model, vocab_size=20, pad_id=0, eos_id=1, unk_id=2, bos_id=-1
    )
    folder.mkdir(parents=True)
    (folder / "spiece.model").write_bytes(model.getvalue())
    (folder / "tokenizer_config.json").write_text(json.dumps({"tokenizer_class": "T5Tokenizer", "extra_ids": 0}))


def test_cogvideox_loads_from_a_local_folder_with_its_sentencepiece_tokenizer(tmp_path):
    from transformers import T5Config, T5EncoderModel, T5Tokenizer

    from scene4d.models.cogvideox import encoded_prompt

    spiece_tokenizer(tmp_path / "spiece")
    pipeline = tiny_pipeline()
    pipeline.tokenizer = T5Tokenizer.from_pretrained(tmp_path / "spiece")
    torch.manual_seed(0)
    config = T5Config(vocab_size=20, d_model=16, d_kv=8, d_ff=32, num_layers=1, num_heads=2)
    pipeline.text_encoder = T5EncoderModel(config).eval()
    pipeline.register_modules(tokenizer=pipeline.tokenizer, text_encoder=pipeline.text_encoder)
    pipeline.save_pretrained(tmp_path / "weights")
    for converted in (tmp_path / "weights" / "tokenizer").glob("tokenizer.json"):
        converted.unlink()  # as on the hub: only spiece.model
    (tmp_path / "weights" / "tokenizer" / "spiece.model").write_bytes(
        (tmp_path / "spiece" / "spiece.model").read_bytes()
    )
    loaded = load_cogvideox(CogVideoXOptions(source=str(tmp_path / "weights")))
    ours = encoded_prompt(loaded, "a cat", 6.0)["prompt_embeds"]
    torch.testing.assert_close(ours, encoded_prompt(pipeline, "a cat", 6.0)["prompt_embeds"])
    (tmp_path / "weights" / "transformer" / "config.json").write_text("{ broken")
    with pytest.raises(Scene4DError, match="the CogVideoX weights at .* did not load"):
        load_cogvideox(CogVideoXOptions(source=str(tmp_path / "weights")))


def test_director_training_takes_each_backbones_recipe(tmp_path, monkeypatch):
    from typer.testing import CliRunner

    from scene4d.cli import app

    configs = []
    monkeypatch.setattr("scene4d.models.cogvideox.load_cogvideox", lambda options: tiny_pipeline())
    monkeypatch.setattr("scene4d.models.cogvideox.encoded_prompt", lambda *args: {"prompt_embeds": None})
    monkeypatch.setattr("scene4d.train.director.train_cogvideox_director", lambda config, *args: configs.append(config))
    args = [
        "train",
        "director",
        "--kind",
        "temporal",
        "--data",
        str(tmp_path),
        "--out",
        str(tmp_path / "t.safetensors"),
    ]
    for options in (["--backbone", "cogvideox"], ["--backbone", "cogvideox", "--rank", "64", "--steps", "10"]):
        assert CliRunner().invoke(app, [*args, *options]).exit_code == 0
    monkeypatch.setattr("scene4d.train.director.train_director", lambda config, *args: configs.append(config))
    assert CliRunner().invoke(app, args).exit_code == 0  # the bundled tiny model
    recipes = [(config.rank, config.alpha, config.steps, config.batch_size) for config in configs]
    assert recipes == [(256, 1.0, 3000, 1), (64, 1.0, 10, 1), (16, 16.0, 300, 4)]  # DimensionX's; scaled down
