"""Training data, photo rotations, and 2-step runs of every trainer preset (with resume)."""

import numpy as np
import pytest
import torch

from scene4d.geometry import Cameras, named_trajectory_w2c
from scene4d.io import save_clip
from scene4d.models.vae import TinyVAE, VAEConfig
from scene4d.synth import SynthConfig, make_clip
from scene4d.train.data import LatentClip, condition_positions, training_sample
from scene4d.train.model import PRESETS, SampleSource, TrainConfig, train_model
from scene4d.train.photo_motion import opencv_pixel_map, photo_rotation_clip, view_to_source_homography
from scene4d.train.state import optimizer_tensors, restore_optimizer
from scene4d.train.vae import VAETrainConfig, train_vae


@pytest.fixture(scope="module")
def clip_folder(tmp_path_factory):
    """Two tiny spatial clips and one hybrid clip (16 px, 8 frames)."""
    root = tmp_path_factory.mktemp("clips")
    for index, kind in enumerate(["spatial", "spatial", "hybrid"]):
        clip = make_clip(SynthConfig(kind=kind, resolution=16, num_frames=8, supersample=1), seed=index)
        save_clip(clip, root / f"clip_{index}")
    return root


def test_rotation_homography_agrees_with_projecting_rays():
    """Every view pixel's ray, projected by the source camera, lands where the homography says."""
    view = Cameras.from_fov(55.0, 12, 12, named_trajectory_w2c("roll-cw", 3, 25.0)).to(dtype=torch.float64)
    source = Cameras.from_fov(100.0, 40, 30).to(dtype=torch.float64)
    homographies = view_to_source_homography(view, source)
    pixels = view.pixel_centers().reshape(-1, 2)
    rays = view.ray_directions().reshape(len(view), -1, 3)
    for index in range(len(view)):
        expected, _ = source.project(rays[index][None] * 100.0)
        mapped = torch.cat([pixels, torch.ones(len(pixels), 1, dtype=torch.float64)], -1) @ homographies[index].T
        torch.testing.assert_close(mapped[:, :2] / mapped[:, 2:], expected[0])


def test_opencv_pixel_map_shifts_pixel_centres():
    """A pure translation by (3, 2) stays the same translation in OpenCV's integer-centre pixels."""
    shift = np.array([[1, 0, 3.0], [0, 1, 2.0], [0, 0, 1]])
    np.testing.assert_allclose(opencv_pixel_map(shift), shift)
    scale = np.diag([2.0, 2.0, 1.0])
    point = np.array([4.0, 5.0, 1.0])  # OpenCV pixel (4, 5) is our (4.5, 5.5), which maps to (9, 11)
    np.testing.assert_allclose(opencv_pixel_map(scale) @ point, [8.5, 10.5, 1.0])


def test_pan_left_slides_a_photo_right():
    photo = np.zeros((60, 80, 3), np.float32)
    photo[:, 38:42] = 1.0  # a bright vertical bar at the centre
    clip = photo_rotation_clip(photo, "pan-left", 4, 10.0, 32, 55.0)
    columns = [
        float((clip.frames[i, :, :, 0].mean(0) * np.arange(32)).sum() / clip.frames[i, :, :, 0].mean(0).sum())
        for i in range(4)
    ]
    assert columns[0] == pytest.approx(15.5, abs=0.6) and columns[0] < columns[1] < columns[2] < columns[3]


def test_condition_positions_are_sorted_unique_and_leave_targets():
    rng = np.random.default_rng(0)
    draws = [condition_positions(rng, 8, 3) for _ in range(200)]
    assert all(1 <= len(d) <= 3 and list(d) == sorted(set(d.tolist())) for d in draws)
    first = np.mean([d[0] == 0 for d in draws])
    assert 0.65 < first < 0.95  # the first frame is a condition 70% of the time, plus by chance


def test_sample_cameras_are_relative_to_the_first_condition():
    w2c = named_trajectory_w2c("truck-right", 6, 2.0)
    clip = LatentClip(torch.randn(6, 4, 4, 4), Cameras.from_fov(55.0, 16, 16, w2c), torch.zeros(6), 0.0, False)
    rng = np.random.default_rng(3)
    for _ in range(20):
        sample = training_sample(clip, 4, 3, rng)
        first = int(sample["cond_mask"].nonzero()[0])
        plucker = sample["plucker"][first]  # [6, h, w]: moments o x d vanish at the world origin
        torch.testing.assert_close(plucker[3:], torch.zeros_like(plucker[3:]), atol=1e-6, rtol=0)
        assert sample["clean"].shape == (4, 4, 4, 4) and sample["plucker"].shape == (4, 6, 4, 4)


@pytest.mark.parametrize("with_4d_clips", [True, False])
def test_still_samples_repeat_one_frame_of_a_3d_clip_at_one_camera(with_4d_clips):
    # Without 4D clips the 4D share goes to moving 3D samples.
    w2c = named_trajectory_w2c("orbit-left", 6, 30.0)
    latents = torch.randn(6, 4, 4, 4)
    clip = LatentClip(latents, Cameras.from_fov(55.0, 16, 16, w2c), torch.zeros(6), 0.0, False)
    dynamic = LatentClip(
        torch.randn(6, 4, 4, 4), Cameras.from_fov(55.0, 16, 16, w2c), torch.linspace(0, 1, 6), 1.0, True
    )
    config = TrainConfig(fraction_photo=0.0, fraction_4d=0.3, fraction_still=0.5)
    clips = [clip, dynamic] if with_4d_clips else [clip]
    source, rng = SampleSource(clips, torch.nn.Identity(), config), np.random.default_rng(0)
    kinds = []
    for _ in range(200):
        sample = source.sample(4, rng)
        still = bool((sample["clean"] == sample["clean"][0]).all())
        if still:  # one frame of the 3D clip, the same rays everywhere: the camera did not move
            assert any(torch.equal(sample["clean"][0], frame) for frame in latents)
            torch.testing.assert_close(sample["plucker"], sample["plucker"][:1].expand_as(sample["plucker"]))
            assert not sample["is_4d"] and float(sample["motion"]) == 0.0
        kinds.append("4d" if sample["is_4d"] else "still" if still else "3d")
    shares = {kind: kinds.count(kind) / len(kinds) for kind in ("4d", "still", "3d")}
    expected = {"4d": 0.3, "still": 0.5, "3d": 0.2} if with_4d_clips else {"4d": 0.0, "still": 0.5, "3d": 0.5}
    assert all(abs(shares[kind] - share) < 0.1 for kind, share in expected.items()), shares


@pytest.mark.parametrize(("shares", "message"), [
    ({"fraction_still": -0.1}, "fraction_still must lie in"),
    ({"fraction_still": 0.6, "fraction_4d": 0.35, "fraction_photo": 0.15}, "add up to"),
])  # fmt: skip
def test_train_config_rejects_sample_shares_outside_zero_to_one(shares, message):
    from scene4d.errors import Scene4DError

    with pytest.raises(Scene4DError, match=message):
        TrainConfig(**shares)


def test_training_data_passes_over_a_killed_save_staging_folder(tmp_path):
    from scene4d.train.data import find_clip_folders

    for folder in ("a", "nested/b", ".c.tmp-1234abcd", "nested/.d.old-1234abcd"):
        (tmp_path / folder).mkdir(parents=True)
        (tmp_path / folder / "transforms.json").write_text("{}")
    assert find_clip_folders(tmp_path) == [tmp_path / "a", tmp_path / "nested" / "b"]


def test_optimizer_state_round_trips_through_named_tensors():
    weights = torch.nn.Parameter(torch.randn(3))
    optimizer = torch.optim.AdamW([weights], lr=0.1)
    weights.sum().backward()
    optimizer.step()
    copy = torch.nn.Parameter(weights.detach().clone())
    restored = torch.optim.AdamW([copy], lr=0.1)
    restore_optimizer(restored, optimizer_tensors(optimizer))
    for opt, param in ((optimizer, weights), (restored, copy)):
        param.grad = torch.ones(3)
        opt.step()
    torch.testing.assert_close(copy, weights)


def test_vae_trainer_resumes_after_an_interrupt_to_the_same_weights(clip_folder, tmp_path):
    config = VAETrainConfig(resolution=16, steps=3, batch_size=4, checkpoint_every=1, max_clips=2)
    vae_config = VAEConfig(channels=(8, 8))
    straight = train_vae(config, vae_config, clip_folder, tmp_path / "a")

    def interrupt(step, loss):
        if step == 2:
            raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        train_vae(config, vae_config, clip_folder, tmp_path / "b", interrupt)
    resumed = train_vae(config, vae_config, clip_folder, tmp_path / "b")
    for name, value in straight.state_dict().items():
        torch.testing.assert_close(resumed.state_dict()[name], value)
    assert resumed.config.scaling_factor == pytest.approx(straight.config.scaling_factor)


@pytest.mark.parametrize("preset", sorted(PRESETS))
def test_every_preset_trains_two_steps_and_resumes_exactly(preset, clip_folder, tmp_path):
    """1 step + resume to 2 gives the same EMA weights as 2 steps straight (data, noise and Adam restored)."""
    from scene4d.models.bundle import load_bundle

    vae = TinyVAE(VAEConfig(channels=(8, 8))).eval()
    config = TrainConfig.for_preset(
        preset,
        resolution=16,
        steps=2,
        batch_size=2,
        frame_counts=(4, 6),
        checkpoint_every=1,
        fraction_photo=0.5,
        ema_decay=0.0,
        warmup_steps=1,  # the saved weights are the raw weights, moved at the full rate
    )
    straight = train_model(config, clip_folder, vae, tmp_path / "straight")
    train_model(TrainConfig(**{**config.__dict__, "steps": 1}), clip_folder, vae, tmp_path / "resumed")
    resumed = train_model(config, clip_folder, vae, tmp_path / "resumed")
    saved = load_bundle(tmp_path / "straight" / "model").denoiser.state_dict()
    for name, value in straight.denoiser.state_dict().items():
        torch.testing.assert_close(resumed.denoiser.state_dict()[name], value, rtol=1e-5, atol=1e-6)
        # the saved model is the float16 copy of the EMA weights
        torch.testing.assert_close(saved[name], value.half().float())
    assert not torch.equal(straight.denoiser.out.weight, torch.zeros_like(straight.denoiser.out.weight))


def test_fine_tuning_starts_from_the_init_model_and_keeps_its_description(clip_folder, tmp_path):
    """At a zero learning rate a fine-tune returns the --init denoiser as saved, with its description
    (its motion scale, not the data's); a denoiser of another size or resolution is refused."""
    from dataclasses import replace

    from scene4d.errors import Scene4DError
    from scene4d.models.bundle import load_bundle, save_bundle
    from scene4d.train.data import find_clip_folders, motion_scale_of

    start = tiny_bundle()
    start.info = replace(start.info, fov_x_deg=40.0, orbit_distance=3.0)  # not TrainConfig's defaults
    save_bundle(tmp_path / "start", start)
    config = TrainConfig(
        resolution=16, steps=1, batch_size=2, frame_counts=(4,), fraction_photo=0.0, learning_rate=0.0,
        init_model=str(tmp_path / "start"), denoiser=start.denoiser.config,
    )  # fmt: skip
    tuned = train_model(config, clip_folder, start.vae, tmp_path / "run")
    saved = load_bundle(tmp_path / "start").denoiser.state_dict()
    for name, value in tuned.denoiser.state_dict().items():
        torch.testing.assert_close(value, saved[name], rtol=0, atol=0)
    assert tuned.info == load_bundle(tmp_path / "run" / "model").info == start.info
    assert start.info.motion_scale != motion_scale_of(find_clip_folders(clip_folder))
    other_size = TrainConfig(**{**config.__dict__, "denoiser": PRESETS["tiny"]})
    with pytest.raises(Scene4DError, match="not the tiny preset"):
        train_model(other_size, clip_folder, start.vae, tmp_path / "other_size")
    other_resolution = TrainConfig(**{**config.__dict__, "resolution": 32})
    with pytest.raises(Scene4DError, match="not --res 32"):
        train_model(other_resolution, clip_folder, start.vae, tmp_path / "other_resolution")


def test_train_model_refuses_init_with_another_vae(tmp_path):
    from typer.testing import CliRunner

    from scene4d.cli import app

    args = ["train", "model", "--data", str(tmp_path), "--out", str(tmp_path / "run")]
    result = CliRunner().invoke(app, [*args, "--init", str(tmp_path / "start"), "--vae", str(tmp_path / "vae")])
    assert result.exit_code == 2 and "leave out --vae" in result.output and not (tmp_path / "run").exists()


@pytest.mark.parametrize(
    ("command", "option", "value", "message"),
    [
        ("vae", "--res", "30", "--res must be a multiple of 4"),  # two halving stages
        ("model", "--res", "30", "--res must be a multiple of 8"),  # and patches of 2 latent cells
        ("model", "--batch-size", "0", "--batch-size must be >= 1"),
        ("model", "--lr", "-1", "--lr >= 0"),
        ("vae", "--steps", "0", "--steps and --batch-size must be >= 1"),
        ("model", "--steps", "0", "--steps and --batch-size must be >= 1"),
    ],
)
def test_training_settings_that_cannot_work_fail_in_one_line(clip_folder, tmp_path, command, option, value, message):
    from typer.testing import CliRunner

    from scene4d.cli import app

    args = ["train", command, "--data", str(clip_folder), "--out", str(tmp_path / "run"), option, value]
    result = CliRunner().invoke(app, args)
    assert result.exit_code == 2 and message in result.output and len(result.output.strip().splitlines()) == 1
    assert not (tmp_path / "run").exists()


def test_a_director_needs_a_sample_per_step():
    from scene4d.errors import Scene4DError
    from scene4d.train.director import DirectorTrainConfig

    with pytest.raises(Scene4DError, match="--batch-size must be >= 1"):
        DirectorTrainConfig("temporal", batch_size=0)


@pytest.fixture(scope="module")
def director_folder(tmp_path_factory):
    """Spatial clips of two moves (one without a recorded move, as curated clips come) and a temporal clip."""
    root = tmp_path_factory.mktemp("director_clips")
    made = [
        ("spatial", "truck-right", 0),
        ("spatial", "truck-right", 1),
        ("spatial", "pan-left", 2),
        ("temporal", None, 3),
    ]
    for kind, trajectory, seed in made:
        clip = make_clip(
            SynthConfig(kind=kind, resolution=16, num_frames=8, supersample=1, trajectory=trajectory), seed
        )
        if seed == 1:
            clip.meta["trajectory"] = None  # read off the cameras instead
        save_clip(clip, root / f"clip_{seed}")
    return root


def tiny_bundle():
    from scene4d.models.bundle import ModelBundle, ModelInfo
    from scene4d.models.denoiser import DenoiserConfig, GenXDDenoiser

    torch.manual_seed(0)
    info = ModelInfo(resolution=16, fov_x_deg=55.0, motion_scale=1.0, orbit_distance=6.0, preset="tiny")
    vae = TinyVAE(VAEConfig(channels=(8, 8))).eval()
    denoiser = GenXDDenoiser(DenoiserConfig(width=32, depth=1, heads=2)).eval()
    for parameter in denoiser.parameters():  # a trained model's gates are open; zero-initialised ones pass no gradient
        parameter.data.normal_(0, 0.2)
    return ModelBundle(info, vae, denoiser)


def test_director_clips_are_chosen_by_kind_and_by_the_move_of_their_cameras(director_folder):
    from scene4d.train.director import DirectorTrainConfig, director_clip_folders

    truck = director_clip_folders(director_folder, DirectorTrainConfig("spatial", "truck-right"), 6.0)
    assert [folder.name for folder in truck] == ["clip_0", "clip_1"]
    temporal = director_clip_folders(director_folder, DirectorTrainConfig("temporal"), 6.0)
    assert [folder.name for folder in temporal] == ["clip_3"]


def test_director_trainer_leaves_the_base_frozen_and_resumes_exactly(director_folder, tmp_path):
    """1 step + resume to 2 gives the LoRA weights of 2 straight steps; the saved file rebuilds the model."""
    from scene4d.directors.lora import director_state, load_director
    from scene4d.train.director import TRAINED, DirectorTrainConfig, train_director

    config = DirectorTrainConfig(
        "spatial", "truck-right", rank=2, alpha=2.0, steps=2, batch_size=2, frame_counts=(4,), checkpoint_every=1
    )
    straight = tiny_bundle()
    base_weights = {name: value.clone() for name, value in straight.denoiser.state_dict().items()}
    train_director(config, straight, director_folder, tmp_path / "straight.safetensors", None)
    resumed = tiny_bundle()
    one_step = DirectorTrainConfig(**{**config.__dict__, "steps": 1})
    train_director(one_step, resumed, director_folder, tmp_path / "resumed.safetensors", None)
    resumed = tiny_bundle()
    train_director(config, resumed, director_folder, tmp_path / "resumed.safetensors", None)
    lora_straight, lora_resumed = director_state(straight.denoiser, TRAINED), director_state(resumed.denoiser, TRAINED)
    for name, value in lora_straight.items():
        torch.testing.assert_close(lora_resumed[name], value, rtol=1e-5, atol=1e-6)
    assert any(value.abs().max() > 0 for name, value in lora_straight.items() if "lora_B" in name)
    for name, value in straight.denoiser.state_dict().items():
        if "lora_" not in name:  # adapted layers keep their weights as base_layer.*
            torch.testing.assert_close(value, base_weights[name.replace(".base_layer", "")])
    fresh = tiny_bundle()
    info = load_director(fresh.denoiser, tmp_path / "straight.safetensors", "loaded")
    assert (info.kind, info.trajectory, info.backbone) == ("spatial", "truck-right", "scene4d-tiny")
    for name, value in director_state(fresh.denoiser, "loaded").items():
        torch.testing.assert_close(value, lora_straight[name].half().float())
