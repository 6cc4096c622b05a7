"""Curation end to end: decoding, labels, the dataset index, resuming, bad input, the CLI."""

import json

import numpy as np
import pytest
import torch
from typer.testing import CliRunner

from scene4d.cli import app
from scene4d.curate.frames import DecodeConfig, find_sources, read_source
from scene4d.curate.masks import read_user_masks
from scene4d.curate.pipeline import CurateConfig, curate_folder, label
from scene4d.errors import Scene4DError
from scene4d.geometry.rotations import rotation_error_deg
from scene4d.io import load_clip, write_image, write_video
from scene4d.synth import SynthConfig, make_clip

INDEX_KEYS = {
    "video",
    "status",
    "reason",
    "label",
    "camera_static",
    "camera_static_score",
    "motion_strength",
    "registered_frames",
    "clip",
}


def write_mask_images(folder, masks):
    from PIL import Image

    folder.mkdir(parents=True)
    for index, mask in enumerate(masks):
        Image.fromarray(mask.astype(np.uint8)).save(folder / f"{index:05d}.png")


def write_frames(folder, frames, names=None):
    folder.mkdir(parents=True)
    for index, frame in enumerate(frames):
        write_image(folder / (names[index] if names else f"frame_{index}.png"), frame)


@pytest.fixture(scope="module")
def clips():
    return {
        "still": make_clip(SynthConfig("temporal", 96, 9, supersample=1, speed=1.5), seed=8),
        "pan": make_clip(SynthConfig("spatial", 128, 12, trajectory="pan-right"), seed=9),
    }


@pytest.fixture(scope="module")
def videos(tmp_path_factory, clips):
    folder = tmp_path_factory.mktemp("videos")
    write_frames(folder / "still", clips["still"].frames)
    write_frames(folder / "pan", clips["pan"].frames)
    write_mask_images(folder.parent / "user_masks" / "pan", clips["pan"].masks)
    (folder / "broken.mp4").write_bytes(b"not a video")
    write_video(folder / "black.mp4", np.zeros((6, 32, 32, 3)))
    write_frames(folder / "single", np.random.default_rng(0).random((1, 32, 32, 3)))
    write_frames(folder / "noise", np.random.default_rng(3).random((6, 64, 64, 3)))  # nothing to register
    (folder / "notes.txt").write_text("not a source")
    return folder


def test_read_source_samples_by_stride_and_orders_frames_by_number(tmp_path):
    frames = np.random.default_rng(1).random((12, 20, 40, 3)).astype(np.float32)
    write_frames(tmp_path / "seq", frames, [f"img_{i}.png" for i in range(12)])  # img_10 after img_9
    source = read_source(tmp_path / "seq", DecodeConfig(stride=3, max_frames=3, size=40))
    np.testing.assert_array_equal(source.source_index, [0, 3, 6])
    np.testing.assert_allclose(source.frames, frames[[0, 3, 6]], atol=1 / 255)
    small = read_source(tmp_path / "seq", DecodeConfig(max_frames=2, size=20))
    assert small.frames.shape == (2, 10, 20, 3)


def test_read_source_samples_videos_at_a_frame_rate(tmp_path):
    write_video(tmp_path / "clip.mp4", np.random.default_rng(2).random((20, 32, 32, 3)), fps=20)
    source = read_source(tmp_path / "clip.mp4", DecodeConfig(fps=5, max_frames=4, size=32))
    np.testing.assert_array_equal(source.source_index, [0, 4, 8, 12])
    assert source.fps == 20


@pytest.mark.parametrize(
    ("camera_static", "strength", "expected"),
    [(True, 0.01, "temporal"), (False, 0.01, "hybrid"), (False, 0.0, "spatial"), (True, 0.0, "reject")],
)
def test_labels_follow_camera_and_object_motion(camera_static, strength, expected):
    assert label(camera_static, strength, CurateConfig()) == expected


def test_user_masks_are_read_by_source_frame_number(tmp_path):
    from PIL import Image

    tmp_path.joinpath("m").mkdir()
    Image.fromarray(np.full((8, 8), 1, np.uint8)).save(tmp_path / "m" / "00000.png")
    Image.fromarray(np.full((8, 8), 300, np.uint16)).save(tmp_path / "m" / "00004.png")  # 16-bit, as save_clip writes
    palette = Image.fromarray(np.repeat(np.arange(3, dtype=np.uint8), [24, 20, 20]).reshape(8, 8), mode="P")
    palette.putpalette([0, 0, 0, 200, 0, 0, 0, 100, 0])  # ids 1 and 2 as colours of about equal brightness
    palette.save(tmp_path / "m" / "00007.png")
    masks = read_user_masks(tmp_path / "m", np.array([4, 0, 7]), (8, 8))
    assert masks.shape == (3, 8, 8) and masks[0, 0, 0] == 300 and masks[1, 0, 0] == 1
    np.testing.assert_array_equal(masks[2], np.asarray(palette))  # the indices, whatever their colours
    with pytest.raises(Scene4DError, match="frame 2"):
        read_user_masks(tmp_path / "m", np.array([2]), (4, 4))


def test_curate_folder_labels_records_and_resumes(videos, clips, tmp_path):
    out = tmp_path / "dataset"
    user_masks = videos.parent / "user_masks"  # the pan's instance masks; the others use flow masks
    config = CurateConfig(decode=DecodeConfig(size=128))
    records = curate_folder(videos, out, config, user_masks=user_masks)
    lines = [json.loads(line) for line in (out / "index.jsonl").read_text().splitlines()]
    assert [r["video"] for r in lines] == [p.name for p in find_sources(videos)] == [r["video"] for r in records]
    assert all(set(r) == INDEX_KEYS for r in lines)
    by_video = {r["video"]: r for r in lines}
    assert by_video["broken.mp4"]["status"] == "failed" and "cannot read" in by_video["broken.mp4"]["reason"]
    assert by_video["black.mp4"]["reason"] == "black frames" and by_video["single"]["reason"] == "a single frame"
    assert by_video["noise"]["status"] == "failed" and by_video["noise"]["reason"].startswith("sfm:")
    still, pan = by_video["still"], by_video["pan"]
    assert (still["status"], still["label"], still["camera_static"]) == ("ok", "temporal", True)
    assert (pan["status"], pan["camera_static"]) == ("ok", False)
    # the frozen scene measures well below the moving one (at 128 px, tracking noise on static
    # objects can still pass the label threshold, so the label itself is not pinned)
    assert pan["motion_strength"] < 0.5 * still["motion_strength"]

    curated = load_clip(out / pan["clip"])
    transforms = json.loads((out / pan["clip"] / "transforms.json").read_text())
    assert [f["source_index"] for f in transforms["frames"]] == list(range(12))
    assert curated.meta["kind"] == pan["label"] and curated.meta["unregistered_source_index"] == []
    np.testing.assert_array_equal(curated.masks, clips["pan"].masks)
    truth = clips["pan"].cameras
    relative_est = curated.cameras.R[-1].double() @ curated.cameras.R[0].double().T
    relative_true = truth.R[-1].double() @ truth.R[0].double().T
    assert rotation_error_deg(relative_est, relative_true) < 2.5  # within 8% of a 31-degree pan at 128 px
    assert torch.allclose(curated.cameras.w2c[0], torch.eye(4), atol=1e-5)
    temporal = load_clip(out / still["clip"])
    np.testing.assert_allclose(temporal.times, np.linspace(0, 1, 9), atol=1e-6)

    assert curate_folder(videos, out, user_masks=user_masks) == []  # everything is done
    kept = [line for line in (out / "index.jsonl").read_text().splitlines() if '"single"' not in line]
    (out / "index.jsonl").write_text("\n".join(kept) + '\n{"video": "tor')  # a torn last line
    again = curate_folder(videos, out, user_masks=user_masks)
    assert [r["video"] for r in again] == ["single"]
    assert json.loads((out / "index.jsonl").read_text().splitlines()[-1])["video"] == "single"


def test_curated_clips_keep_the_sfm_points_in_their_first_camera_frame():
    from conftest import random_w2c

    from scene4d.curate.frames import SourceFrames
    from scene4d.curate.pipeline import curated_clip
    from scene4d.curate.sfm import SfMResult
    from scene4d.geometry import Cameras

    generator = torch.Generator().manual_seed(4)
    cameras = Cameras.from_fov(60.0, 16, 16, random_w2c(3, generator).float())
    points = np.random.default_rng(4).normal(size=(40, 3)).astype(np.float32)
    colors = np.random.default_rng(5).random((40, 3)).astype(np.float32)
    frames = np.zeros((3, 16, 16, 3), np.float32)
    source = SourceFrames(frames, np.arange(3), 0.0)
    sfm = SfMResult(cameras, np.arange(3), points, colors)
    clip = curated_clip(source, np.arange(3), frames, sfm, None, np.zeros((3, 16, 16), np.int32), "spatial", 0.0, {})
    before, before_depth = cameras.project(torch.from_numpy(points).expand(3, -1, -1))
    after, after_depth = clip.cameras.project(torch.from_numpy(clip.points).expand(3, -1, -1))
    torch.testing.assert_close(after, before, atol=1e-3, rtol=1e-4)  # every camera sees them where it did
    torch.testing.assert_close(after_depth, before_depth, atol=1e-4, rtol=1e-4)
    np.testing.assert_array_equal(clip.point_colors, colors)
    empty = SfMResult(cameras, np.arange(3), points[:0], colors[:0])
    assert curated_clip(source, np.arange(3), frames, empty, None, clip.masks, "spatial", 0.0, {}).points is None


def test_curate_command_prints_a_summary_and_rejects_a_bad_shard(videos, tmp_path):
    runner = CliRunner()
    result = runner.invoke(
        app, ["curate", str(videos), "--out", str(tmp_path / "d"), "--shard", "1/2", "--size", "128"]
    )
    assert result.exit_code == 0, result.output
    sources = [p.name for p in find_sources(videos)][1::2]
    lines = (tmp_path / "d" / "index.jsonl").read_text().splitlines()
    assert [json.loads(line)["video"] for line in lines] == sources
    assert "total" in result.stderr and str(len(sources)) in result.stderr
    missing = str(tmp_path / "nothing")
    for option, value, word in (
        ("--shard", "2/2", "shard"), ("--stride", "0", "stride"), ("--focal", "-5", "focal length must be positive"),
        ("--segmentation-model", missing, "--segmentation-model: no folder"),
        ("--depth-model", missing, "--depth-model: no folder"), ("--masks", missing, "--masks: no folder"),
    ):  # fmt: skip
        bad = runner.invoke(app, ["curate", str(videos), "--out", str(tmp_path / "e"), option, value])
        assert bad.exit_code == 2 and word in bad.stderr and len(bad.stderr.strip().splitlines()) == 1
    assert not (tmp_path / "e").exists()


def test_a_run_whose_every_video_fails_fails_and_retry_failed_tries_them_again(tmp_path):
    (tmp_path / "videos").mkdir()
    (tmp_path / "videos" / "broken.mp4").write_bytes(b"not a video")
    (tmp_path / "videos" / "broken.avi").write_bytes(b"not a video either")
    args = ["curate", str(tmp_path / "videos"), "--out", str(tmp_path / "d")]
    result = CliRunner().invoke(app, args)
    assert result.exit_code == 2 and "every video failed (broken.avi: cannot read" in result.stderr
    assert CliRunner().invoke(app, args).exit_code == 0  # nothing left to do: the failures are recorded
    again = CliRunner().invoke(app, [*args, "--retry-failed"])
    assert again.exit_code == 2
    index = (tmp_path / "d" / "index.jsonl").read_text().splitlines()
    assert sorted(json.loads(line)["video"] for line in index) == [
        "broken.avi",
        "broken.avi",
        "broken.mp4",
        "broken.mp4",
    ]
