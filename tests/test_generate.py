"""`scene4d generate`: condition frames as given, the requested cameras and times, clear errors."""

import json

import numpy as np
import pytest
import torch
from typer.testing import CliRunner

from scene4d.cli import app
from scene4d.errors import Scene4DError
from scene4d.geometry import named_trajectory_w2c
from scene4d.io import load_clip, write_image
from scene4d.models.bundle import ModelBundle, ModelInfo, load_bundle, save_bundle
from scene4d.models.denoiser import DenoiserConfig, GenXDDenoiser
from scene4d.models.vae import TinyVAE, VAEConfig
from scene4d.pipelines.generate import (
    generate_clip,
    plan_generation,
    snap_to_trajectory,
    spread_positions,
    square_image,
)


@pytest.fixture(scope="module")
def model_dir(tmp_path_factory):
    torch.manual_seed(0)
    vae = TinyVAE(VAEConfig(channels=(8, 8)))
    denoiser = GenXDDenoiser(DenoiserConfig(width=32, depth=1, heads=2))
    with torch.no_grad():
        denoiser.out.weight.normal_(0, 0.1)  # a non-zero velocity, so sampling changes the latents
    folder = tmp_path_factory.mktemp("model") / "model"
    save_bundle(folder, ModelBundle(ModelInfo(16, 55.0, 0.01, 6.0, "test"), vae, denoiser))
    return folder


@pytest.fixture
def image_path(tmp_path):
    rng = np.random.default_rng(0)
    path = tmp_path / "photo.png"
    write_image(path, rng.random((24, 32, 3)).astype(np.float32))
    return path


def test_square_image_crops_the_centre_and_says_so():
    image = np.zeros((20, 40, 3), np.float32)
    image[:, 10:30] = 1.0  # exactly the centre square
    square, note = square_image(image, 10)
    assert square.shape == (10, 10, 3) and np.allclose(square, 1.0) and "40x20 centre-cropped" in note
    assert square_image(square, 10)[1] is None


def test_extra_views_spread_from_first_to_last_frame():
    assert spread_positions(1, 16) == [0]
    assert spread_positions(3, 16) == [0, 8, 15]
    with pytest.raises(Scene4DError, match="no frame to generate"):
        spread_positions(4, 4)


def test_condition_cameras_snap_to_the_nearest_trajectory_frames():
    from scene4d.geometry import Cameras

    path = Cameras.from_fov(55.0, 16, 16, named_trajectory_w2c("truck-right", 9, 4.0))  # 0.5 units per frame
    views = Cameras.from_fov(55.0, 16, 16, named_trajectory_w2c("truck-right", 9, 4.0)[[0, 6, 2]])
    snapped, positions = snap_to_trajectory(path, views)
    assert positions == [0, 6, 2]
    torch.testing.assert_close(snapped.w2c[[0, 6, 2]], views.w2c)


def test_generation_keeps_inputs_follows_the_path_and_is_seeded(model_dir):
    bundle = load_bundle(model_dir)
    rng = np.random.default_rng(1)
    images = [rng.random((16, 16, 3)).astype(np.float32) for _ in range(2)]
    condition, path, positions = plan_generation(bundle, images, "pan-left", 6, None, 0.0, None)
    clip = generate_clip(bundle, condition, path, positions, 0.0, 3, seed=4)
    again = generate_clip(bundle, condition, path, positions, 0.0, 3, seed=4)
    other = generate_clip(bundle, condition, path, positions, 0.0, 3, seed=5)
    assert np.array_equal(clip.frames[0], images[0]) and np.array_equal(clip.frames[5], images[1])
    assert np.array_equal(clip.frames, again.frames) and not np.array_equal(clip.frames[2], other.frames[2])
    torch.testing.assert_close(clip.cameras.w2c, named_trajectory_w2c("pan-left", 6))
    assert np.all(clip.times == 0)
    condition, path, positions = plan_generation(bundle, images[:1], "static", 5, None, 0.5, None)
    moving = generate_clip(bundle, condition, path, positions, 0.5, 2, seed=0, guidance=2.0)
    np.testing.assert_allclose(moving.times, np.linspace(0, 1, 5), atol=1e-6)
    torch.testing.assert_close(moving.cameras.w2c, torch.eye(4).expand(5, 4, 4))


def test_cli_writes_a_clip_with_the_first_image_as_given(model_dir, image_path, tmp_path):
    out = tmp_path / "out"
    result = CliRunner().invoke(
        app,
        ["generate", str(image_path), "--out", str(out), "--frames", "4", "--steps", "2", "--model", str(model_dir)],
    )
    assert result.exit_code == 0, result.output
    clip = load_clip(out)
    assert len(clip) == 4 and (out / "video.mp4").is_file()
    assert "centre-cropped" in result.output
    transforms = json.loads((out / "transforms.json").read_text())
    assert len(transforms["frames"]) == 4


@pytest.mark.parametrize(
    ("extra", "message"),
    [
        (["--trajectory", "spin"], "unknown trajectory"),
        (["--frames", "1"], "no frame to generate"),
        (["--motion", "2"], "--motion must lie in"),
        (["--reconstruct", "--lpips-weight", "0.1"], "needs the folder of LPIPS weights"),
        (["--reconstruct", "--lpips-weight", "0.1", "--lpips-weights", "no-such-folder"], "LPIPS weights missing"),
        (["--reconstruct", "--backend", "opengl"], "unknown rasterizer backend"),
    ],
)
def test_bad_requests_fail_in_one_line_and_write_nothing(model_dir, image_path, tmp_path, extra, message):
    out = tmp_path / "out"
    args = ["generate", str(image_path), "--out", str(out), "--steps", "1", "--model", str(model_dir), *extra]
    result = CliRunner().invoke(app, args)
    assert result.exit_code == 2 and message in result.output and not out.exists()
    assert len(result.output.strip().splitlines()) == 1


def test_more_images_than_frames_and_unreadable_images_fail_cleanly(model_dir, image_path, tmp_path):
    out = tmp_path / "out"
    many = [str(image_path)] * 3
    result = CliRunner().invoke(app, ["generate", *many, "--out", str(out), "--frames", "3", "--model", str(model_dir)])
    assert result.exit_code == 2 and "no frame to generate" in result.output and not out.exists()
    broken = tmp_path / "broken.png"
    broken.write_bytes(b"not an image")
    result = CliRunner().invoke(app, ["generate", str(broken), "--out", str(out), "--model", str(model_dir)])
    assert result.exit_code == 2 and "cannot read image" in result.output and not out.exists()


def test_missing_or_corrupt_weights_name_the_file(model_dir, image_path, tmp_path):
    import shutil

    broken = tmp_path / "model"
    shutil.copytree(model_dir, broken)
    (broken / "denoiser" / "model.safetensors").write_bytes(b"garbage")
    result = CliRunner().invoke(
        app, ["generate", str(image_path), "--out", str(tmp_path / "o"), "--model", str(broken)]
    )
    assert result.exit_code == 2 and "denoiser/model.safetensors" in result.output and "corrupt" in result.output
    (broken / "denoiser" / "model.safetensors").unlink()
    result = CliRunner().invoke(
        app, ["generate", str(image_path), "--out", str(tmp_path / "o"), "--model", str(broken)]
    )
    assert result.exit_code == 2 and "weights missing" in result.output
    result = CliRunner().invoke(
        app, ["generate", str(image_path), "--out", str(tmp_path / "o"), "--model", str(tmp_path)]
    )
    assert result.exit_code == 2 and "not a scene4d model folder" in result.output


def test_reconstruct_continues_into_4d_gaussians_when_things_move(model_dir, image_path, tmp_path):
    out = tmp_path / "out"
    args = ["generate", str(image_path), "--out", str(out), "--frames", "4", "--steps", "1", "--motion", "0.5"]
    result = CliRunner().invoke(
        app, [*args, "--trajectory", "static", "--model", str(model_dir), "--reconstruct", "--iters", "8"]
    )
    assert result.exit_code == 0, result.output
    from scene4d.io import load_cameras
    from scene4d.splat.deform import load_deformation

    _, times = load_cameras(out / "scene" / "cameras.json")
    np.testing.assert_allclose(times, np.linspace(0, 1, 4), atol=1e-6)  # the fit saw the generated times
    assert load_deformation(out / "scene" / "deformation") is not None
