"""DimensionX pipelines: chained 3D paths, identity-preserving 4D (eq. 4-6), interpolation with director choice."""

import numpy as np
import pytest
import torch
from test_eval_consistency import smooth_texture
from typer.testing import CliRunner

from scene4d.cli import app
from scene4d.directors.lora import (
    DirectorInfo,
    active_director,
    inject_director,
    save_director,
    target_modules,
    use_director,
)
from scene4d.directors.schedule import switch_once
from scene4d.errors import Scene4DError
from scene4d.geometry import Cameras, named_trajectory_w2c
from scene4d.geometry.rotations import rotation_error_deg
from scene4d.geometry.trajectories import direction_error_deg
from scene4d.io import load_clip, write_image
from scene4d.models.bundle import ModelBundle, ModelInfo, load_bundle, save_bundle
from scene4d.models.denoiser import DenoiserConfig, GenXDDenoiser
from scene4d.models.vae import TinyVAE, VAEConfig, from_model_images
from scene4d.pipelines.four_d import FourDConfig, blend_hook, generate_4d, reference_index, spatial_videos
from scene4d.pipelines.generate import generate_chained, generate_clip, pick_director, segment_starts
from scene4d.pipelines.interpolate import plan_interpolation, relative_motion
from scene4d.synth import SynthConfig, make_clip


@pytest.fixture(scope="module")
def model_dir(tmp_path_factory):
    """A tiny random model shipping two directors, ``pan-left`` and ``temporal``."""
    torch.manual_seed(0)
    vae = TinyVAE(VAEConfig(channels=(8, 8)))
    denoiser = GenXDDenoiser(DenoiserConfig(width=32, depth=1, heads=2))
    with torch.no_grad():
        for parameter in denoiser.parameters():
            parameter.normal_(0, 0.1)
    folder = tmp_path_factory.mktemp("model") / "model"
    save_bundle(folder, ModelBundle(ModelInfo(16, 55.0, 0.01, 6.0, "test"), vae, denoiser))
    for kind, name in (("spatial", "pan-left"), ("temporal", "temporal")):
        inject_director(denoiser, name, 2, 2.0, target_modules(denoiser))
        for key, parameter in denoiser.named_parameters():
            if f"lora_B.{name}." in key:
                parameter.data.normal_(0, 0.3)
        info = DirectorInfo(kind, name if kind == "spatial" else None, 2, 2.0, "scene4d-test")
        save_director(folder / "directors" / f"{name}.safetensors", denoiser, name, info)
    return folder


def test_pick_director_loads_shipped_directors_and_falls_back_to_the_base(model_dir, tmp_path):
    bundle = load_bundle(model_dir)
    backbone, shipped = bundle.denoiser, bundle.directors
    assert sorted(shipped) == ["pan-left", "temporal"]
    assert pick_director(backbone, shipped, "auto", "pan-left") == "pan-left"
    assert active_director(backbone) is None  # loading does not switch the model
    assert pick_director(backbone, shipped, "auto", "orbit-up") is None  # not shipped: the base model
    assert pick_director(backbone, shipped, "none", "pan-left") is None
    assert pick_director(backbone, shipped, "temporal", "pan-left") == "temporal"
    with pytest.raises(Scene4DError, match="pan-left, temporal"):
        pick_director(backbone, shipped, "spin", "pan-left")
    impostor = tmp_path / "temporal.safetensors"  # another file with a loaded director's name
    impostor.write_bytes(shipped["pan-left"].read_bytes())
    with pytest.raises(Scene4DError, match="share the name 'temporal'"):
        pick_director(backbone, shipped, str(impostor), None)


def test_generate_clip_runs_the_schedule_step_by_step_and_restores_the_model(model_dir):
    bundle = load_bundle(model_dir)
    for name in ("pan-left", "temporal"):
        use_director(bundle.denoiser, name, bundle.directors)
    seen = []
    bundle.denoiser.register_forward_pre_hook(
        lambda module, args, kwargs: seen.append(active_director(module)), with_kwargs=True
    )
    image = np.random.default_rng(1).random((1, 16, 16, 3)).astype(np.float32)
    cameras = Cameras.from_fov(55.0, 16, 16, named_trajectory_w2c("pan-left", 4, 20.0))
    generate_clip(bundle, image, cameras, [0], 0.5, steps=5, seed=0, schedule=switch_once("pan-left", "temporal", 2))
    assert seen == ["pan-left"] * 2 + ["temporal"] * 3
    assert active_director(bundle.denoiser) is None


def test_segments_overlap_by_two_frames_and_cover_the_path():
    assert segment_starts(16) == [0]
    assert segment_starts(30) == [0, 14]
    assert segment_starts(45) == [0, 14, 28, 42]  # 28 + 16 = 44 frames leave frame 44 to a fourth segment
    assert segment_starts(44) == [0, 14, 28]


def test_chained_path_starts_as_one_segment_and_conditions_on_the_overlap(model_dir):
    bundle = load_bundle(model_dir)
    image = np.random.default_rng(1).random((1, 16, 16, 3)).astype(np.float32)
    cameras = Cameras.from_fov(55.0, 16, 16, named_trajectory_w2c("pan-left", 20, 40.0))
    chained = generate_chained(bundle, image, cameras, [0], steps=2, seed=3)
    first = generate_clip(bundle, image, cameras[list(range(16))], [0], 0.0, steps=2, seed=3)
    np.testing.assert_array_equal(chained.frames[:14], first.frames[:14])
    second = generate_clip(
        bundle, first.frames[[14, 15]], cameras[list(range(14, 20))].relative_to(0), [0, 1], 0.0, steps=2, seed=4
    )
    np.testing.assert_array_equal(chained.frames[14:], second.frames)
    assert chained.meta["segments"] == [0, 14] and np.all(chained.times == 0)


def test_blend_hook_is_eq5_on_what_the_first_steps_denoised():
    generator = torch.Generator().manual_seed(0)
    latents, reference, noise = (torch.randn(2, 3, 4, 4, 4, generator=generator) for _ in range(3))
    sigma = torch.tensor([0.7, 0.7])
    hook = blend_hook(reference, noise, weight=0.25, steps=2)
    by_hand = 0.25 * latents + 0.75 * (0.3 * reference + 0.7 * noise)
    for step in (1, 2):  # before steps 1 and 2: the output of steps 0 and 1
        torch.testing.assert_close(hook(step, sigma, latents), by_hand)
    assert hook(0, sigma, latents) is latents and hook(3, sigma, latents) is latents


def test_reference_frame_is_where_most_moves():
    rng = np.random.default_rng(0)
    background, patch = smooth_texture(rng, 64), smooth_texture(rng, 20)
    offsets = [10, 10, 10, 11, 15, 16, 16, 16]  # the patch jumps 4 px between frames 3 and 4
    frames = np.stack([background.copy() for _ in offsets])
    for frame, offset in zip(frames, offsets, strict=True):
        frame[22:42, offset : offset + 20] = patch
    assert reference_index(frames) in (3, 4)


class Still(torch.nn.Module):
    """A denoiser predicting zero velocity: sampling leaves the latents where they start."""

    def forward(self, latents, sigma, cond_mask, **conditioning):
        return torch.zeros_like(latents)


def test_every_time_starts_from_the_shared_noisy_reference_latent(model_dir):
    """Eq. 4: with a still denoiser and no blending, every time's views stay at one shared start, the
    reference latent noised to ``reference_strength``; without sharing each time has its own."""
    loaded = load_bundle(model_dir)
    bundle = ModelBundle(loaded.info, loaded.vae, Still())
    frames = np.random.default_rng(2).random((3, 16, 16, 3)).astype(np.float32)
    cameras = Cameras.from_fov(55.0, 16, 16, named_trajectory_w2c("pan-left", 4, 20.0))
    reference = torch.randn(4, 4, 4, 4, generator=torch.Generator().manual_seed(5))  # [K, C, h, w]
    shared = spatial_videos(bundle, frames, cameras, reference, FourDConfig(steps=10, blend_lambda=1.0), None)
    np.testing.assert_array_equal(shared[:, 0], frames)
    for time in (1, 2):
        np.testing.assert_array_equal(shared[time, 1:], shared[0, 1:])
    with torch.no_grad():
        clean = from_model_images(bundle.vae.decode(reference))[1:]
    faint = FourDConfig(steps=10, reference_strength=0.1, blend_lambda=1.0)
    nearly_clean = spatial_videos(bundle, frames, cameras, reference, faint, None)[0, 1:]
    assert np.abs(nearly_clean - clean).mean() < 0.5 * np.abs(shared[0, 1:] - clean).mean()
    alone = spatial_videos(bundle, frames, cameras, reference, FourDConfig(steps=10, share_reference=False), None)
    assert not np.allclose(alone[1, 1:], alone[0, 1:])


def test_4d_views_share_times_hold_one_camera_each_and_view_zero_is_the_temporal_video(model_dir):
    bundle = load_bundle(model_dir)
    image = np.random.default_rng(3).random((16, 16, 3)).astype(np.float32)
    config = FourDConfig(trajectory="pan-left", num_views=3, num_times=4, steps=2, refine_strengths=(0.5,))
    result = generate_4d(bundle, image, config)
    assert len(result.views) == 3 and len(result.reference) == 3
    np.testing.assert_array_equal(result.views[0].frames, result.temporal.frames)
    np.testing.assert_array_equal(result.temporal.frames[0], image)
    for index, view in enumerate(result.views):
        np.testing.assert_array_equal(view.times, result.temporal.times)
        torch.testing.assert_close(view.cameras.w2c, result.reference.cameras.w2c[[index] * 4])
    assert active_director(bundle.denoiser) is None


def test_4d_stages_run_their_directors(model_dir):
    # DimensionX sec. 3.4: the T-Director makes the temporal video, the S-Director the reference and the
    # spatial videos, and the T-Director refines each view (eq. 6).
    bundle = load_bundle(model_dir)
    for name in ("pan-left", "temporal"):
        use_director(bundle.denoiser, name, bundle.directors)
    pending, runs = [], {}
    bundle.denoiser.register_forward_pre_hook(
        lambda module, args, kwargs: pending.append(active_director(module)), with_kwargs=True
    )

    def progress(stage, step, total):  # reported after each step: the denoiser calls since belong to it
        runs.setdefault(stage, set()).update(pending)
        pending.clear()

    config = FourDConfig(trajectory="pan-left", num_views=3, num_times=4, steps=4, refine_strengths=(0.5,),
                         spatial_director="pan-left", temporal_director="temporal")  # fmt: skip
    generate_4d(bundle, np.random.default_rng(3).random((16, 16, 3)).astype(np.float32), config, progress)
    assert runs == {
        "temporal video": {"temporal"}, "reference video": {"pan-left"}, "spatial videos": {"pan-left"},
        "refine view 1": {"temporal"}, "refine view 2": {"temporal"},
    }  # fmt: skip
    assert active_director(bundle.denoiser) is None


def test_4d_refinement_noises_every_view_alike(model_dir, monkeypatch):
    import scene4d.pipelines.four_d as four_d

    seeds = []

    def refine(bundle, frames, anchor, strength, config, seed, on_step):
        seeds.append((strength, seed))
        return frames

    monkeypatch.setattr(four_d, "refine_view", refine)
    image = np.random.default_rng(3).random((16, 16, 3)).astype(np.float32)
    config = FourDConfig(trajectory="pan-left", num_views=3, num_times=4, steps=2, refine_strengths=(0.5, 0.3))
    generate_4d(load_bundle(model_dir), image, config)
    assert [strength for strength, _ in seeds] == [0.5, 0.3, 0.5, 0.3]  # views 1 and 2; view 0 is the temporal video
    assert seeds[0] == seeds[2] and seeds[1] == seeds[3] and seeds[0][1] != seeds[1][1]


def test_interpolation_with_known_cameras_picks_the_move_and_joins_the_views(model_dir):
    bundle = load_bundle(model_dir)
    clip = make_clip(SynthConfig(kind="spatial", resolution=32, num_frames=9, trajectory="orbit-left"), 1)
    ends = clip.cameras[[0, 8]]
    images, path, positions, move, size = plan_interpolation(
        bundle, [clip.frames[0], clip.frames[8]], 9, ends, notify=lambda note: None
    )
    assert move == "orbit-left" and size == pytest.approx(clip.meta["trajectory_magnitude"], abs=1.5)
    assert positions == [0, 8]
    torch.testing.assert_close(path.w2c[0], torch.eye(4))
    torch.testing.assert_close(path.w2c[8], ends.relative_to(0).w2c[1].to(path.w2c), atol=1e-5, rtol=0)


def test_relative_motion_from_images_matches_the_rendered_rotation():
    clip = make_clip(SynthConfig(kind="spatial", resolution=256, num_frames=16, trajectory="pan-right"), 1)
    rotation, direction = relative_motion(clip.frames[0], clip.frames[-1], clip.cameras.K[0])
    truth = clip.cameras.relative_to(0).w2c[-1, :3, :3]
    assert direction is None  # the camera only turned
    assert rotation_error_deg(rotation, truth) < 1.0


@pytest.mark.parametrize("trajectory", ["truck-right", "dolly-in"])
def test_relative_motion_from_images_of_a_translating_camera_matches_the_rendered_pose(trajectory):
    """The essential-matrix branch on pure translations: the direction to b's centre, not its opposite."""
    clip = make_clip(SynthConfig(kind="spatial", resolution=256, num_frames=16, trajectory=trajectory, props=6), 2)
    rotation, direction = relative_motion(clip.frames[0], clip.frames[-1], clip.cameras.K[0])
    truth = clip.cameras.relative_to(0)
    assert rotation_error_deg(rotation, truth.w2c[-1, :3, :3]) < 1.0
    assert direction_error_deg(truth.centers[-1].double(), direction) < 5.0


def test_generate_4d_and_interp_write_their_outputs(model_dir, tmp_path):
    image = tmp_path / "photo.png"
    write_image(image, np.random.default_rng(0).random((20, 24, 3)).astype(np.float32))
    out = tmp_path / "four"
    args = ["generate", str(image), "--out", str(out), "--mode", "4d", "--views", "2", "--frames", "3"]
    result = CliRunner().invoke(app, [*args, "--steps", "2", "--model", str(model_dir)])
    assert result.exit_code == 0, result.output
    views = [load_clip(out / "views" / name) for name in ("00", "01")]
    np.testing.assert_array_equal(views[0].frames, load_clip(out / "temporal").frames)
    assert len(load_clip(out / "reference")) == 2 and len(views[1]) == 3
    known = tmp_path / "known"
    clip = make_clip(SynthConfig(kind="spatial", resolution=16, num_frames=5, trajectory="pan-left"), 0)
    from scene4d.io import Clip, save_clip

    save_clip(Clip(clip.frames[[0, 4]], clip.cameras[[0, 4]], clip.times[[0, 4]]), known)
    for index in (0, 4):
        write_image(tmp_path / f"view{index}.png", clip.frames[index])
    views_args = [str(tmp_path / "view0.png"), str(tmp_path / "view4.png"), "--cameras", str(known / "transforms.json")]
    result = CliRunner().invoke(
        app,
        ["generate", *views_args, "--out", str(tmp_path / "between"), "--mode", "interp", "--frames", "5"]
        + ["--steps", "2", "--model", str(model_dir)],
    )
    assert result.exit_code == 0, result.output
    assert "director: pan-left" in result.output
    between = load_clip(tmp_path / "between")
    np.testing.assert_allclose(between.frames[[0, 4]], clip.frames[[0, 4]], atol=1 / 255)
    bad = CliRunner().invoke(app, ["generate", str(image), "--out", str(tmp_path / "x"), "--mode", "5d"])
    assert bad.exit_code == 2 and "--mode must be one of" in bad.output and not (tmp_path / "x").exists()


def test_confidence_trusts_consistent_motion_and_distrusts_flicker():
    from test_eval_consistency import shifted_video

    from scene4d.pipelines.confidence import flow_confidence

    panning = shifted_video(2.0, 0.0)
    flicker = panning.copy()
    flicker[:, 40:60, 5:25] = np.random.default_rng(3).random((len(flicker), 20, 20, 3))  # new detail every frame
    confidence = flow_confidence(flicker, condition_frames=[0])
    assert np.all(confidence[0] == 1.0)
    assert confidence[1:, :30].mean() > 0.95  # the panning texture agrees with its neighbours
    assert confidence[1:, 40:60, 5:25].mean() < 0.2


@pytest.mark.parametrize(
    ("extra", "phases"),
    [
        ([], [[0, "pan-left"]]),
        (["--motion", "0.5", "--switch-step", "1"], [[0, "pan-left"], [1, "temporal"]]),
        (["--motion", "0.5", "--director", "none"], [[0, None], [3, "temporal"]]),
        (["--motion", "0.5", "--trajectory", "static"], [[0, "temporal"]]),
    ],
)
def test_generate_3d_records_the_director_of_every_step(model_dir, tmp_path, extra, phases):
    image = tmp_path / "photo.png"
    write_image(image, np.random.default_rng(0).random((16, 16, 3)).astype(np.float32))
    args = ["generate", str(image), "--out", str(tmp_path / "out"), "--trajectory", "pan-left", "--frames", "4"]
    result = CliRunner().invoke(app, [*args, "--steps", "2", "--model", str(model_dir), *extra])
    assert result.exit_code == 0, result.output
    assert load_clip(tmp_path / "out").meta["directors"] == phases


def test_train_director_command_writes_a_loadable_director(model_dir, tmp_path):
    from scene4d.directors.lora import read_director
    from scene4d.io import save_clip

    for seed in range(2):
        clip = make_clip(SynthConfig(kind="temporal", resolution=16, num_frames=16, supersample=1), seed)
        save_clip(clip, tmp_path / "data" / f"clip_{seed}")  # 16 frames: samples draw 8, 12 or 16
    out = tmp_path / "t.safetensors"
    args = ["train", "director", "--kind", "temporal", "--data", str(tmp_path / "data"), "--out", str(out)]
    result = CliRunner().invoke(
        app, [*args, "--base", str(model_dir), "--steps", "2", "--rank", "2", "--batch-size", "2"]
    )
    assert result.exit_code == 0, result.output
    state, info = read_director(out)
    assert (info.kind, info.rank, info.backbone) == ("temporal", 2, "scene4d-test")
    assert "blocks.0.temporal.qkv.lora_A.weight" in state
    wrong = CliRunner().invoke(app, [*args[:-1], str(tmp_path / "t.pt"), "--base", str(model_dir)])
    assert wrong.exit_code == 2 and "--out must name a .safetensors file" in wrong.output
    spatial = CliRunner().invoke(app, ["train", "director", "--kind", "spatial", *args[4:], "--base", str(model_dir)])
    assert spatial.exit_code == 2 and "needs --trajectory" in spatial.output
