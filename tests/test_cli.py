import json
import shutil
from pathlib import Path

import numpy as np
from typer.testing import CliRunner

from scene4d.cli import app
from scene4d.io import load_clip

runner = CliRunner()


def run(*args):
    return runner.invoke(app, [str(a) for a in args])


def test_synth_writes_clips_resumes_and_is_deterministic(tmp_path):
    out = tmp_path / "data"
    args = ("synth", "--kind", "temporal", "--num", 2, "--res", 32, "--frames", 3, "--seed", 4, "--out", out)
    assert run(*args).exit_code == 0
    first = load_clip(out / "clip_00001")
    assert first.meta["kind"] == "temporal" and len(first) == 3 and first.width == 32
    again = run(*args)
    assert again.exit_code == 0 and "0 new clips, 2 already present" in again.stderr
    shutil.rmtree(out / "clip_00001")
    assert run(*args).exit_code == 0
    assert np.array_equal(load_clip(out / "clip_00001").frames, first.frames)
    assert not np.array_equal(load_clip(out / "clip_00000").frames, first.frames)
    other = run("synth", "--kind", "spatial", "--num", 3, "--res", 32, "--frames", 3, "--out", out)
    assert other.exit_code == 2 and "other settings" in other.stderr


def test_bad_arguments_print_one_line_and_write_nothing(tmp_path):
    cases = [
        (("synth", "--trajectory", "spin"), "valid names: pan-left"),
        (("synth", "--frames", -2), "at least 1"),
        (("synth", "--kind", "panorama"), "valid kinds"),
        (("synth", "--num", 0), "--num must be at least 1"),
    ]
    for args, message in cases:
        result = run(*args, "--out", tmp_path / "never")
        assert result.exit_code == 2
        lines = result.stderr.strip().splitlines()
        assert len(lines) == 1 and lines[0].startswith("error:") and message in lines[0]
    assert not (tmp_path / "never").exists()
    result = run("info", tmp_path / "missing")
    assert result.exit_code == 2 and "not found" in result.stderr


def test_demo_turns_the_shipped_image_into_a_video_and_splats(tmp_path):
    """The demo's first frame is the shipped image at the model's size, and the splats fit the video."""
    from importlib.resources import files

    from scene4d.io import load_ply, read_image
    from scene4d.io.clip import resize_images
    from scene4d.models.bundle import load_bundle

    result = run("demo", "--out", tmp_path, "--steps", 2, "--iters", 200)
    assert result.exit_code == 0, result.stderr
    clip = load_clip(tmp_path / "clip")
    size = load_bundle().info.resolution
    shipped = read_image(Path(str(files("scene4d") / "assets" / "demo.png")))
    np.testing.assert_allclose(clip.frames[0], resize_images(shipped[None], size)[0], atol=1 / 255)
    assert len(clip) == 16 and load_ply(tmp_path / "scene" / "scene.ply")["means"].shape[0] > 100
    metrics = json.loads((tmp_path / "scene" / "metrics.json").read_text())
    assert metrics["train_psnr"] > 20.0  # 200 steps already reproduce the generated views


def test_trajectories_lists_all_names():
    result = run("trajectories")
    assert result.exit_code == 0
    for name in ("pan-left", "roll-ccw", "pedestal-down", "orbit-up"):
        assert name in result.stdout
