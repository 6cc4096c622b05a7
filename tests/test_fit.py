import json

import numpy as np
import pytest
import torch
from typer.testing import CliRunner

from scene4d.cli import app
from scene4d.eval.metrics import psnr
from scene4d.io import load_ply, read_image, save_clip
from scene4d.splat.fit import FitConfig, fit_gaussians, fitted_to, initial_splats, render_splats
from scene4d.synth import SynthConfig, make_clip


@pytest.fixture(scope="module")
def small_clip():
    return make_clip(SynthConfig(kind="spatial", trajectory="orbit-left", resolution=32, num_frames=6), seed=3)


def training_psnr(splats, clip):
    rgb, _, _ = render_splats(splats, clip.cameras)
    return float(psnr(rgb, torch.from_numpy(clip.frames)).mean())


def test_fitting_improves_the_fit_to_the_training_views(small_clip):
    config = FitConfig(iterations=150, init_points=2000, refine_start=50, refine_every=50, sh_degree=1, sh_interval=75)
    before = training_psnr(initial_splats(small_clip, config), small_clip)
    after = training_psnr(fit_gaussians(small_clip, config), small_clip)
    assert after > before + 5.0


def test_depth_initialisation_puts_points_on_surfaces(small_clip):
    splats = initial_splats(small_clip, FitConfig(init_points=500))
    _, depth = small_clip.cameras[0].project(splats["means"])
    # Every point came from some view's depth map; all lie in front of the first camera.
    assert bool((depth > 0).all())
    no_depth = make_clip(SynthConfig(kind="spatial", resolution=32, num_frames=3), seed=1)
    no_depth.depth = None
    assert initial_splats(no_depth, FitConfig(init_points=300))["means"].shape == (300, 3)


@pytest.mark.parametrize("densify", [False, True])
def test_an_interrupted_fit_resumes_to_the_same_result(small_clip, tmp_path, densify):
    # gsplat's splits draw random samples: a resume must draw the ones the straight run drew.
    refine = {"refine_start": 1, "refine_every": 2, "grow_grad2d": 1e-9} if densify else {"refine_start": 1000}
    config = FitConfig(iterations=12, init_points=300, checkpoint_every=5, sh_degree=1, **refine)
    uninterrupted = fit_gaussians(small_clip, config)
    assert (len(uninterrupted["means"]) > 300) == densify

    def crash(step, loss):
        if step == 7:
            torch.rand(5)  # whatever else draws from the global generator in between
            raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        fit_gaussians(small_clip, config, checkpoint=tmp_path / "ckpt", on_step=crash)
    assert json.loads((tmp_path / "ckpt" / "state.json").read_text())["step"] == 5
    resumed = fit_gaussians(small_clip, config, checkpoint=tmp_path / "ckpt")
    for name, tensor in uninterrupted.items():
        torch.testing.assert_close(resumed[name], tensor, msg=name)


def test_a_checkpoint_of_another_clip_is_refused(small_clip, tmp_path):
    from scene4d.errors import Scene4DError
    from scene4d.io import Clip

    config = FitConfig(iterations=3, init_points=300, refine_start=1000, sh_degree=0)
    fit_gaussians(small_clip, config, checkpoint=tmp_path / "ckpt")
    fit_gaussians(small_clip, config, checkpoint=tmp_path / "ckpt")  # the same clip: the finished fit
    fewer = Clip(small_clip.frames[:-1], small_clip.cameras[:-1], small_clip.times[:-1], depth=small_clip.depth[:-1])
    with pytest.raises(Scene4DError, match="fitted to another clip"):
        fit_gaussians(fewer, config, checkpoint=tmp_path / "ckpt")
    assert fitted_to(tmp_path / "ckpt", small_clip) and not fitted_to(tmp_path / "ckpt", fewer)


@pytest.mark.parametrize("refine_stop_fraction, resets", [(0.9, True), (0.4, False)])
def test_opacities_reset_every_reset_every_steps_while_densifying(small_clip, refine_stop_fraction, resets):
    from scene4d.splat.fit import Trainer, run_training

    config = FitConfig(
        iterations=10, init_points=300, refine_start=1000, reset_every=4, refine_stop_fraction=refine_stop_fraction,
        sh_degree=0,
    )  # fmt: skip
    trainer = Trainer(initial_splats(small_clip, config), config, scene_scale=1.0)
    run_training(trainer, small_clip, np.arange(len(small_clip)), None, None, None, None, until=5)  # steps 0-4
    opacities = trainer.params["opacities"].detach()
    ceiling = float(torch.logit(torch.tensor(2 * trainer.strategy.prune_opa)))  # 3DGS: clamp to 0.01
    moments = trainer.optimizers["opacities"].state[trainer.params["opacities"]]["exp_avg"]
    assert bool((opacities <= ceiling + 1e-6).all()) == resets
    assert bool((moments == 0).all()) == resets


def test_a_diverging_fit_stops_with_one_error_and_keeps_the_last_good_checkpoint(small_clip, tmp_path):
    from scene4d.errors import Scene4DError
    from scene4d.io.checkpoints import load_checkpoint
    from scene4d.splat.fit import Trainer, run_training

    config = FitConfig(iterations=6, init_points=300, refine_start=1000, checkpoint_every=3, sh_degree=0)
    trainer = Trainer(initial_splats(small_clip, config), config, scene_scale=1.0)
    run_training(trainer, small_clip, np.arange(len(small_clip)), tmp_path / "ckpt", None, None, None, until=3)
    good = trainer.splats()
    with torch.no_grad():
        trainer.params["scales"][0] = torch.inf  # a diverged parameter
    for write in (lambda: trainer.save(tmp_path / "ckpt"), trainer.splats):
        with pytest.raises(Scene4DError, match=r"diverged at step 3 \((params/)?scales not finite\)"):
            write()
    tensors, state = load_checkpoint(tmp_path / "ckpt")
    assert state["step"] == 3
    for name, value in good.items():
        torch.testing.assert_close(tensors[f"params/{name}"], value, msg=name)
    with torch.no_grad():
        trainer.params["scales"][0] = 0.0
        trainer.params["sh0"][:] = torch.nan  # every colour: the rendered loss is NaN
    with pytest.raises(Scene4DError, match=r"diverged at step 3 \(loss not finite\)"):
        trainer.train_step(small_clip.cameras[0], torch.from_numpy(small_clip.frames[:1]), None, None)


def test_reconstruct_and_render_commands(small_clip, tmp_path):
    save_clip(small_clip, tmp_path / "clip")
    runner = CliRunner()
    result = runner.invoke(app, ["reconstruct", str(tmp_path / "clip"), "--out", str(tmp_path / "out"),
                                 "--iters", "20", "--init-points", "500", "--sh-degree", "1"])  # fmt: skip
    assert result.exit_code == 0, result.output
    metrics = json.loads((tmp_path / "out" / "metrics.json").read_text())
    splats = load_ply(tmp_path / "out" / "scene.ply")
    assert metrics["gaussians"] == splats["means"].shape[0]
    transforms = str(tmp_path / "clip" / "transforms.json")
    rendered = runner.invoke(
        app, ["render", str(tmp_path / "out" / "scene.ply"), "--cameras", transforms, "--out", str(tmp_path / "views")]
    )
    assert rendered.exit_code == 0, rendered.output
    images = np.stack([read_image(tmp_path / "views" / f"{i:04d}.png") for i in range(len(small_clip))])
    # The PNG renders reproduce the training-view PSNR recorded in metrics.json (8-bit rounding aside).
    recomputed = float(psnr(torch.from_numpy(images), torch.from_numpy(small_clip.frames)).mean())
    assert abs(recomputed - metrics["train_psnr"]) < 0.2
    assert (tmp_path / "out" / "orbit.mp4").stat().st_size > 0
    render = ["render", str(tmp_path / "out" / "scene.ply"), "--cameras", transforms, "--out"]
    (tmp_path / "views" / "0000.png").unlink()
    assert runner.invoke(app, [*render, str(tmp_path / "views")]).exit_code == 0  # an earlier render is replaced
    assert (tmp_path / "views" / "0000.png").is_file()
    before = sorted(path.name for path in (tmp_path / "out").iterdir())
    folder = ["render", str(tmp_path / "out"), "--cameras", transforms, "--out", str(tmp_path / "from_folder")]
    assert runner.invoke(app, folder).exit_code == 0  # a static fit's folder renders its scene.ply
    for index in range(len(small_clip)):
        name = f"{index:04d}.png"
        np.testing.assert_array_equal(
            read_image(tmp_path / "from_folder" / name), read_image(tmp_path / "views" / name)
        )
    refused = runner.invoke(app, [*render, str(tmp_path / "out")])  # the fit's folder is not
    assert refused.exit_code == 2 and "holds other files" in refused.output
    assert sorted(path.name for path in (tmp_path / "out").iterdir()) == before


def test_reconstruct_can_leave_the_objects_out_of_the_loss(small_clip, tmp_path, monkeypatch):
    from scipy.ndimage import distance_transform_edt

    import scene4d.splat.reconstruct as reconstruct

    save_clip(small_clip, tmp_path / "clip")
    given, plain = [], reconstruct.fit_gaussians

    def fit(*args, mask, **options):
        given.append(mask)
        return plain(*args, mask=mask, **options)

    monkeypatch.setattr(reconstruct, "fit_gaussians", fit)
    args = ["reconstruct", str(tmp_path / "clip"), "--iters", "2", "--init-points", "100", "--skip-objects"]
    assert CliRunner().invoke(app, [*args, "--out", str(tmp_path / "out")]).exit_code == 0
    supervised, objects = given[0], small_clip.masks > 0
    assert objects.any() and not supervised[objects].any()  # no object pixel counts
    # ... and every pixel farther from the objects than the dilation (3% of 32 px: 1 px) still does.
    far = np.stack([distance_transform_edt(~frame) > 1.5 for frame in objects])
    assert supervised[far].all() and far.sum() > 0.5 * far.size
    refused = CliRunner().invoke(app, [*args, "--dynamic", "--out", str(tmp_path / "dyn")])
    assert refused.exit_code == 2 and "--skip-objects fits a static scene" in refused.stderr


def test_reconstruct_with_lpips_from_local_weights(small_clip, tmp_path, lpips_weights):
    save_clip(small_clip, tmp_path / "clip")
    args = ["reconstruct", str(tmp_path / "clip"), "--iters", "4", "--init-points", "300", "--lpips-weight", "0.2"]
    result = CliRunner().invoke(app, [*args, "--out", str(tmp_path / "none")])
    assert result.exit_code == 2 and "needs the folder of LPIPS weights" in result.output
    assert not (tmp_path / "none").exists()
    result = CliRunner().invoke(app, [*args, "--out", str(tmp_path / "out"), "--lpips-weights", str(lpips_weights)])
    assert result.exit_code == 0, result.output
    state = json.loads((tmp_path / "out" / "checkpoint" / "state.json").read_text())
    assert state["config"]["lpips_weight"] == 0.2 and state["step"] == 4
    plain = args[:-2] + ["--out", str(tmp_path / "plain")]
    assert CliRunner().invoke(app, plain).exit_code == 0
    with_lpips, without = load_ply(tmp_path / "out" / "scene.ply"), load_ply(tmp_path / "plain" / "scene.ply")
    assert not torch.allclose(with_lpips["sh0"], without["sh0"])  # the LPIPS gradient reached the colours


def test_render_rejects_a_bad_ply(tmp_path):
    (tmp_path / "bad.ply").write_text("not a ply")
    result = CliRunner().invoke(app, ["render", str(tmp_path / "bad.ply"), "--cameras", str(tmp_path / "t.json"),
                                      "--out", str(tmp_path / "views")])  # fmt: skip
    assert result.exit_code == 2 and result.stderr.startswith("error:")
    assert not (tmp_path / "views").exists()


@pytest.mark.parametrize(
    ("backend", "message"),
    [
        pytest.param(
            "gsplat", "needs a CUDA GPU", marks=pytest.mark.skipif(torch.cuda.is_available(), reason="CUDA here")
        ),
        ("opengl", "unknown rasterizer backend"),
    ],
)
def test_a_backend_that_cannot_run_here_fails_before_any_work(small_clip, tmp_path, monkeypatch, backend, message):
    """reconstruct fails in one line before the initial points are built; render before reading the .ply."""
    import scene4d.splat.fit

    built = []
    monkeypatch.setattr(scene4d.splat.fit, "initial_splats", lambda *args: built.append(args))
    save_clip(small_clip, tmp_path / "clip")
    runner = CliRunner()
    result = runner.invoke(
        app,
        ["reconstruct", str(tmp_path / "clip"), "--iters", "4", "--out", str(tmp_path / "out"), "--backend", backend],
    )
    assert result.exit_code == 2 and message in result.stderr and len(result.stderr.strip().splitlines()) == 1
    assert not built and not (tmp_path / "out").exists()
    (tmp_path / "bad.ply").write_text("not a ply")
    rendered = runner.invoke(app, ["render", str(tmp_path / "bad.ply"), "--cameras", str(tmp_path / "t.json"),
                                   "--out", str(tmp_path / "views"), "--backend", backend])  # fmt: skip
    assert rendered.exit_code == 2 and message in rendered.stderr and not (tmp_path / "views").exists()


def test_depth_maps_without_surfaces_are_an_empty_point_cloud(small_clip):
    from scene4d.errors import Scene4DError
    from scene4d.io import Clip

    empty = Clip(small_clip.frames, small_clip.cameras, small_clip.times, depth=np.zeros_like(small_clip.depth))
    with pytest.raises(Scene4DError, match="empty point cloud"):
        initial_splats(empty, FitConfig(init_points=100))
    with pytest.raises(Scene4DError, match="init_points"):
        FitConfig(init_points=0)
    with pytest.raises(Scene4DError, match="valid: auto, cpu, gsplat, torch"):
        FitConfig(backend="vulkan")
    with pytest.raises(Scene4DError, match="depth weight"):
        FitConfig(depth_weight=-0.1)


def test_budget_keeps_the_most_opaque_gaussians(small_clip):
    from scene4d.splat.fit import Trainer

    config = FitConfig(init_points=300, refine_start=0, refine_every=1, grow_grad2d=0.0, max_gaussians=250)
    splats = initial_splats(small_clip, config)
    splats["opacities"] = torch.linspace(-3, 3, splats["means"].shape[0])
    trainer = Trainer(splats, config, scene_scale=1.0, step=1)
    trainer.train_step(small_clip.cameras[0], torch.from_numpy(small_clip.frames[:1]), None, None)
    assert trainer.params["means"].shape[0] == 250
    assert all(optimizer.param_groups[0]["params"][0].shape[0] == 250 for optimizer in trainer.optimizers.values())
    # Densifying copied every Gaussian; the budget dropped the least opaque ones.
    kept = torch.sigmoid(trainer.params["opacities"].detach())
    assert float(kept.min()) > float(torch.sigmoid(torch.tensor(-3.0)))


def test_depth_weight_adds_the_weighted_depth_error_to_the_step_loss(small_clip):
    from scene4d.splat.fit import Trainer, sh_degree_of
    from scene4d.splat.losses import depth_loss
    from scene4d.splat.rasterize import rasterize

    config = FitConfig(init_points=400, sh_degree=0, depth_weight=0.3, random_background=False)
    splats = initial_splats(small_clip, config)
    camera, target = small_clip.cameras[1], torch.from_numpy(small_clip.frames[1:2])
    target_depth = torch.from_numpy(small_clip.depth[1:2]) * 1.2  # 20% off where covered
    colors = torch.cat([splats["sh0"], splats["shN"]], dim=1)
    rendered = rasterize(
        splats["means"], splats["quats"], splats["scales"], splats["opacities"], colors, camera,
        torch.zeros(3), sh_degree=sh_degree_of(splats), mode=config.rasterize_mode,
    )  # fmt: skip
    expected = 0.3 * float(depth_loss(rendered.depth, rendered.alpha, target_depth))
    assert expected > 0.01
    photometric = Trainer(splats, config, scene_scale=1.0).train_step(camera, target, None, None)
    both = Trainer(splats, config, scene_scale=1.0).train_step(camera, target, None, None, target_depth=target_depth)
    assert np.isclose(both - photometric, expected, rtol=1e-5)


@pytest.mark.parametrize(("dynamic", "given", "expected"), [
    (False, {}, (True, 8e-4, 0.0)),
    (True, {}, (False, 2e-4, 0.5)),
    (True, {"absgrad": True, "pseudo_view_weight": 0.0}, (True, 8e-4, 0.0)),
    (False, {"absgrad": False, "grow_grad2d": 5e-4, "pseudo_view_weight": 0.2}, (False, 5e-4, 0.2)),
])  # fmt: skip
def test_static_fits_densify_by_absgrad_and_4d_fits_by_the_gradient_with_pseudo_views(
    small_clip, tmp_path, dynamic, given, expected
):
    from scene4d.splat.fit4d import fit_dynamic

    config = FitConfig(iterations=2, init_points=200, triangulate=False, **given)
    if dynamic:
        fit_dynamic(small_clip, config, warmup=1, checkpoint=tmp_path)
    else:
        fit_gaussians(small_clip, config, checkpoint=tmp_path)
    recorded = json.loads((tmp_path / "state.json").read_text())["config"]
    assert (recorded["absgrad"], recorded["grow_grad2d"], recorded["pseudo_view_weight"]) == expected
