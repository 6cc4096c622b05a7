import numpy as np
import pytest
import torch

from scene4d.errors import Scene4DError
from scene4d.splat.deform import (
    DeformationConfig,
    DeformationField,
    deform_gaussians,
    load_deformation,
    save_deformation,
)
from scene4d.splat.fit import FitConfig, fit_gaussians, render_splats
from scene4d.splat.fit4d import fit_dynamic
from scene4d.splat.reconstruct import render_frames


def render_dynamic(splats, field, clip):
    frames = []
    for index in range(len(clip)):
        time = float(clip.times[index])
        means, quats, scales = deform_gaussians(field, splats["means"], splats["quats"], splats["scales"], time)
        moved = {**splats, "means": means.detach(), "quats": quats.detach(), "scales": scales.detach()}
        frames.append(render_splats(moved, clip.cameras[index])[0])
    return torch.cat(frames)


def moving_object_error(rgb, clip):
    """Mean squared error over the pixels of the objects that move."""
    movers = [o["instance_id"] for o in clip.meta["objects"] if o["motion"]["kind"] != "static"]
    on_movers = torch.from_numpy(np.isin(clip.masks, movers))
    return float(((rgb - torch.from_numpy(clip.frames)) ** 2).mean(dim=-1)[on_movers].mean())


def test_deformation_field_starts_as_the_identity():
    field = DeformationField(DeformationConfig())
    means, quats, scales = torch.randn(10, 3), torch.randn(10, 4), torch.randn(10, 3)
    moved_means, moved_quats, moved_scales = deform_gaussians(field, means, quats, scales, 0.7)
    torch.testing.assert_close(moved_means, means)
    torch.testing.assert_close(moved_quats, quats / quats.norm(dim=-1, keepdim=True))
    torch.testing.assert_close(moved_scales, scales)


def test_deformation_round_trips_through_safetensors(tmp_path):
    field = DeformationField(DeformationConfig(width=16, depth=2, centre=(1.0, 2.0, 3.0), radius=2.0))
    torch.nn.init.normal_(field.head.weight)
    save_deformation(tmp_path / "deform", field)
    loaded = load_deformation(tmp_path / "deform")
    means = torch.randn(5, 3)
    for expected, actual in zip(field(means, 0.3), loaded(means, 0.3), strict=True):
        torch.testing.assert_close(actual, expected)


@pytest.mark.parametrize(
    "corrupt",
    [
        lambda folder: (folder / "config.json").write_text("{not json"),
        lambda folder: (folder / "config.json").write_text('{"width": 16, "colour": 3}'),
        lambda folder: (folder / "model.safetensors").write_bytes(b"truncated"),
        lambda folder: (folder / "config.json").write_text('{"width": 32, "depth": 2, "centre": [0, 0, 0]}'),
    ],
    ids=["bad-json", "unknown-key", "bad-weights", "weights-of-another-shape"],
)
def test_a_broken_deformation_folder_is_one_clear_error(tmp_path, corrupt):
    save_deformation(tmp_path / "deform", DeformationField(DeformationConfig(width=16, depth=2)))
    corrupt(tmp_path / "deform")
    with pytest.raises(Scene4DError, match="not a deformation field"):
        load_deformation(tmp_path / "deform")


def test_deformation_fits_a_moving_scene_better_than_static_gaussians(moving_clip):
    config = FitConfig(iterations=240, init_points=1500, refine_start=60, refine_every=60, sh_degree=0)
    static = fit_gaussians(moving_clip, config)
    splats, field = fit_dynamic(moving_clip, config, warmup=60)
    static_rgb, _, _ = render_splats(static, moving_clip.cameras)
    dynamic_rgb = render_dynamic(splats, field, moving_clip)
    # On the moving objects' pixels the deformation halves the error (0.0067 vs 0.0132 when written).
    assert moving_object_error(dynamic_rgb, moving_clip) < 0.7 * moving_object_error(static_rgb, moving_clip)
    # render_frames, which the CLI and the metrics use, moves each view to its own time as the twin above does
    frames = render_frames(splats, field, moving_clip.cameras, moving_clip.times, None, "cpu", config.rasterize_mode)
    torch.testing.assert_close(torch.stack(list(frames)), dynamic_rgb, rtol=0, atol=1e-5)


def test_an_interrupted_4d_fit_resumes_to_the_same_result(moving_clip, tmp_path):
    config = FitConfig(iterations=14, init_points=200, refine_start=1000, checkpoint_every=5, sh_degree=0)
    expected_splats, expected_field = fit_dynamic(moving_clip, config, warmup=4)

    def crash(step, loss):
        if step == 12:
            raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        fit_dynamic(moving_clip, config, warmup=4, checkpoint=tmp_path / "ckpt", on_step=crash)
    splats, field = fit_dynamic(moving_clip, config, warmup=4, checkpoint=tmp_path / "ckpt")
    for name, tensor in expected_splats.items():
        torch.testing.assert_close(splats[name], tensor, msg=name)
    for name, tensor in expected_field.state_dict().items():
        torch.testing.assert_close(field.state_dict()[name], tensor, msg=name)


def test_a_diverged_deformation_field_is_an_error_not_nan_splats(moving_clip):
    from scene4d.splat.deform import deformation_for_scene
    from scene4d.splat.fit import initial_splats
    from scene4d.splat.fit4d import DynamicTrainer

    config = FitConfig(init_points=200, sh_degree=0)
    splats = initial_splats(moving_clip, config)
    trainer = DynamicTrainer(splats, config, 1.0, deformation_for_scene(splats["means"]), warmup=0)
    trainer.splats()  # finite: no error
    with torch.no_grad():
        trainer.field.head.bias[0] = torch.nan
    with pytest.raises(Scene4DError, match="field/head.bias not finite"):
        trainer.splats()


def test_dynamic_reconstruct_and_render_at_a_time(moving_clip, tmp_path):
    from typer.testing import CliRunner

    from scene4d.cli import app
    from scene4d.io import read_image, save_clip

    save_clip(moving_clip, tmp_path / "clip")
    runner = CliRunner()
    args = ["reconstruct", str(tmp_path / "clip"), "--out", str(tmp_path / "out"), "--dynamic", "--iters", "20",
            "--warmup", "5", "--bake-times", "2", "--init-points", "400", "--sh-degree", "0"]  # fmt: skip
    result = runner.invoke(app, args)
    assert result.exit_code == 0, result.output
    assert (tmp_path / "out" / "deformation" / "config.json").is_file()
    transforms = str(tmp_path / "clip" / "transforms.json")
    baked_ply = str(tmp_path / "out" / "times" / "0.000.ply")
    for args in ([str(tmp_path / "out"), "--out", str(tmp_path / "at_time"), "--time", "0"],
                 [baked_ply, "--out", str(tmp_path / "baked")]):  # fmt: skip
        assert runner.invoke(app, ["render", *args, "--cameras", transforms]).exit_code == 0
    # The 4D scene at t = 0 and its baked t = 0 snapshot are the same Gaussians.
    for index in range(len(moving_clip)):
        at_time = read_image(tmp_path / "at_time" / f"{index:04d}.png")
        baked = read_image(tmp_path / "baked" / f"{index:04d}.png")
        np.testing.assert_allclose(at_time, baked, atol=1 / 255)
    bad = runner.invoke(app, ["render", str(tmp_path / "out"), "--cameras", transforms, "--out", str(tmp_path / "x"),
                              "--time", "2"])  # fmt: skip
    assert bad.exit_code == 2 and "--time must lie in [0, 1]" in bad.stderr
    static = runner.invoke(app, ["render", baked_ply, "--cameras", transforms, "--out", str(tmp_path / "y"),
                                 "--time", "0.5"])  # fmt: skip
    assert static.exit_code == 2 and "is static" in static.stderr and not (tmp_path / "y").exists()
