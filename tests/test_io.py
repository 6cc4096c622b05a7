import json

import numpy as np
import pytest
import torch
from PIL import Image

from scene4d.errors import Scene4DError
from scene4d.geometry import Cameras, keyframed_w2c
from scene4d.io import (
    Clip,
    clip_folder,
    load_cameras,
    load_clip,
    load_keyframes,
    read_image,
    read_video,
    save_clip,
    write_video,
)
from scene4d.synth import SynthConfig, make_clip


@pytest.fixture(scope="module")
def synth_clip():
    return make_clip(SynthConfig(kind="hybrid", resolution=32, num_frames=4, supersample=1), seed=11)


def test_save_load_round_trip(synth_clip, tmp_path):
    folder = save_clip(synth_clip, tmp_path / "clip")
    loaded = load_clip(folder)
    # PNG stores 8 bits: the loaded frames are the quantised originals.
    np.testing.assert_array_equal(loaded.frames, np.round(synth_clip.frames * 255) / 255)
    np.testing.assert_array_equal(loaded.depth, synth_clip.depth)
    np.testing.assert_array_equal(loaded.masks, synth_clip.masks)
    np.testing.assert_array_equal(loaded.times, synth_clip.times)
    torch.testing.assert_close(loaded.cameras.w2c, synth_clip.cameras.w2c, atol=1e-5, rtol=0)
    torch.testing.assert_close(loaded.cameras.K, synth_clip.cameras.K)
    assert loaded.meta == json.loads(json.dumps(synth_clip.meta))
    assert read_video(folder / "video.mp4")[0].shape == synth_clip.frames.shape


def test_sfm_points_round_trip_and_nerfstudio_point_clouds(synth_clip, tmp_path):
    generator = np.random.default_rng(0)
    points = generator.normal(size=(50, 3)).astype(np.float32)
    colors = (generator.integers(0, 256, size=(50, 3)) / 255).astype(np.float32)
    with_points = Clip(synth_clip.frames, synth_clip.cameras, synth_clip.times, points=points, point_colors=colors)
    folder = save_clip(with_points, tmp_path / "clip")
    assert json.loads((folder / "transforms.json").read_text())["ply_file_path"] == "sparse_pc.ply"
    loaded = load_clip(folder)
    np.testing.assert_array_equal(loaded.points, points)
    np.testing.assert_allclose(loaded.point_colors, colors, atol=1e-6)
    assert load_clip(save_clip(synth_clip, tmp_path / "none")).points is None
    # nerfstudio's ns-process-data writes its COLMAP points as ASCII, colours as 0-255 integers
    properties = [f"property float {axis}" for axis in "xyz"]
    properties += [f"property uint8 {channel}" for channel in ("red", "green", "blue")]
    header = ["ply", "format ascii 1.0", "element vertex 2", *properties, "end_header"]
    (folder / "sparse_pc.ply").write_text("\n".join([*header, "1.5 -2 3 255 0 51", "0 0.25 -1 0 128 255"]) + "\n")
    loaded = load_clip(folder)
    np.testing.assert_allclose(loaded.points, [[1.5, -2, 3], [0, 0.25, -1]])
    np.testing.assert_allclose(loaded.point_colors, [[1, 0, 0.2], [0, 128 / 255, 1]], atol=1e-6)
    # other tools write float colours in [0, 1], or none (the points then start grey)
    floats = [*header[:6], *[f"property float {channel}" for channel in ("red", "green", "blue")], "end_header"]
    (folder / "sparse_pc.ply").write_text("\n".join([*floats, "1 2 3 0.5 0.25 1", "4 5 6 0 1 0"]) + "\n")
    np.testing.assert_allclose(load_clip(folder).point_colors, [[0.5, 0.25, 1], [0, 1, 0]])
    (folder / "sparse_pc.ply").write_text("\n".join([*header[:6], "end_header", "1 2 3", "4 5 6"]) + "\n")
    np.testing.assert_array_equal(load_clip(folder).point_colors, np.full((2, 3), 0.5, np.float32))
    with pytest.raises(Scene4DError, match="points and point_colors must both be"):
        Clip(synth_clip.frames, synth_clip.cameras, synth_clip.times, points=points[:, :2], point_colors=colors)
    with pytest.raises(Scene4DError, match="come together"):
        Clip(synth_clip.frames, synth_clip.cameras, synth_clip.times, points=points)


def test_transforms_json_is_nerfstudio_opengl(synth_clip, tmp_path):
    folder = save_clip(synth_clip, tmp_path / "clip")
    transforms = json.loads((folder / "transforms.json").read_text())
    assert {"fl_x", "fl_y", "cx", "cy", "w", "h"} <= set(transforms)
    matrix = np.array(transforms["frames"][0]["transform_matrix"])
    c2w = synth_clip.cameras.c2w[0].double().numpy()
    # OpenGL columns: +x right, +y up, +z backward, i.e. OpenCV's x, -y, -z; same centre.
    np.testing.assert_allclose(matrix[:3, 0], c2w[:3, 0], atol=1e-6)
    np.testing.assert_allclose(matrix[:3, 1], -c2w[:3, 1], atol=1e-6)
    np.testing.assert_allclose(matrix[:3, 2], -c2w[:3, 2], atol=1e-6)
    np.testing.assert_allclose(matrix[:3, 3], c2w[:3, 3], atol=1e-6)


def write_plain_folder(folder, frames, matrices, **top_level):
    (folder / "images").mkdir(parents=True)
    entries = []
    for index, (frame, matrix) in enumerate(zip(frames, matrices, strict=True)):
        Image.fromarray(frame).save(folder / "images" / f"f{index}.png")
        entries.append({"file_path": f"images/f{index}", "transform_matrix": matrix})
    (folder / "transforms.json").write_text(json.dumps({**top_level, "frames": entries}))


def test_loads_a_plain_blender_style_folder(tmp_path):
    # An OpenGL camera at (0, 0, 3) with identity rotation looks down world -z.
    matrix = [[1, 0, 0, 0], [0, 1, 0, 0], [0, 0, 1, 3.0], [0, 0, 0, 1]]
    frames = np.zeros((2, 8, 10, 3), np.uint8)
    write_plain_folder(tmp_path / "plain", frames, [matrix, matrix], camera_angle_x=np.pi / 2)
    clip = load_clip(tmp_path / "plain")
    assert clip.depth is None and clip.masks is None and (clip.times == 0).all()
    assert float(clip.cameras.K[0, 0, 0]) == pytest.approx(5.0)  # 0.5 W / tan(45 deg)
    expected_w2c = torch.tensor([[1.0, 0, 0, 0], [0, -1, 0, 0], [0, 0, -1, 3], [0, 0, 0, 1]])
    torch.testing.assert_close(clip.cameras.w2c[0], expected_w2c)
    # The world origin is 3 units in front of the camera, on the optical axis.
    pixel, depth = clip.cameras.project(torch.zeros(1, 3))
    torch.testing.assert_close(pixel[0, 0], torch.tensor([5.0, 4.0]))
    assert float(depth[0, 0]) == pytest.approx(3.0)


IDENTITY = np.eye(4).tolist()


@pytest.mark.parametrize(
    "damage, message",
    [
        (lambda folder: (folder / "images" / "f1.png").unlink(), "image not found"),
        (lambda folder: (folder / "images" / "f1.png").write_bytes(b"not a png"), "cannot read image"),
        (lambda folder: (folder / "transforms.json").write_text("{ not json"), "malformed JSON"),
        (lambda folder: (folder / "transforms.json").unlink(), "not found"),
        (
            lambda folder: rewrite(folder, lambda t: t["frames"][0].update(transform_matrix=[[float("nan")] * 4] * 4)),
            "NaN",
        ),
        (
            lambda folder: rewrite(folder, lambda t: t["frames"][1].update(transform_matrix=(2 * np.eye(4)).tolist())),
            r"frame images/f1.png: transform_matrix is not rigid \(.*det R = 8",
        ),
        (lambda folder: rewrite(folder, lambda t: t["frames"][0].update(transform_matrix=[1, 2])), "must be 4x4"),
        (lambda folder: rewrite(folder, lambda t: t.update(w=99)), "transforms.json says w=99, h=8"),
        (lambda folder: rewrite(folder, lambda t: t.pop("fl_x")), "no focal length"),
        (lambda folder: rewrite(folder, lambda t: t.update(frames=[])), "non-empty 'frames'"),
        (
            lambda folder: Image.fromarray(np.zeros((5, 5, 3), np.uint8)).save(folder / "images" / "f1.png"),
            "differs from the first",
        ),
        (
            lambda folder: rewrite(folder, lambda t: t["frames"][0].update(depth_file_path="d.npy")),
            "some frames but not all",
        ),
        (lambda folder: rewrite(folder, lambda t: t["frames"][0].update(time=1.5)), "times must lie in"),
        (lambda folder: rewrite(folder, lambda t: t.update(frames=[1, 2])), "list of objects"),
        (lambda folder: rewrite(folder, lambda t: t["frames"][0].update(time="abc")), "time must be a finite number"),
        (lambda folder: rewrite(folder, lambda t: t.update(fl_x="abc")), "fl_x must be a finite number"),
        (lambda folder: rewrite(folder, lambda t: t.update(camera_model="OPENCV_FISHEYE")), "not supported"),
        (lambda folder: rewrite(folder, lambda t: t.update(k1=0.3)), r"distortion \(k1\)"),
        (lambda folder: (folder / "meta.json").write_text("[1]"), "meta.json: expected a JSON object"),
    ],
)
def test_malformed_folders_raise_one_clear_error(tmp_path, damage, message):
    folder = tmp_path / "plain"
    write_plain_folder(folder, np.zeros((2, 8, 10, 3), np.uint8), [IDENTITY, IDENTITY], fl_x=9.0, w=10, h=8)
    damage(folder)
    with pytest.raises(Scene4DError, match=message) as raised:
        load_clip(folder)
    assert "\n" not in str(raised.value)


def rewrite(folder, change):
    transforms = json.loads((folder / "transforms.json").read_text())
    for frame in transforms["frames"]:
        frame["file_path"] += ".png"
    change(transforms)
    (folder / "transforms.json").write_text(json.dumps(transforms))


def test_a_crash_while_saving_leaves_nothing_half_written(synth_clip, tmp_path, monkeypatch):
    target = tmp_path / "clip"
    save_clip(synth_clip, target)
    before = sorted(p.name for p in target.rglob("*"))

    def crash(*args, **kwargs):
        raise KeyboardInterrupt

    monkeypatch.setattr(clip_folder, "write_video", crash)
    changed = Clip(synth_clip.frames[:2], synth_clip.cameras[:2], synth_clip.times[:2])
    with pytest.raises(KeyboardInterrupt):
        save_clip(changed, target)
    assert sorted(p.name for p in target.rglob("*")) == before  # the old clip is intact
    assert [p.name for p in tmp_path.iterdir()] == ["clip"]  # no temporary folder left behind


def test_a_clip_replaces_an_earlier_clip_but_never_a_folder_of_other_files(synth_clip, tmp_path):
    short = Clip(synth_clip.frames[:2], synth_clip.cameras[:2], synth_clip.times[:2])
    save_clip(synth_clip, tmp_path / "clip")
    save_clip(short, tmp_path / "clip")
    assert len(load_clip(tmp_path / "clip")) == 2
    (tmp_path / "photos").mkdir()
    (tmp_path / "photos" / "holiday.jpg").write_bytes(b"not ours")
    (tmp_path / "file").write_text("not a folder")
    for target in (tmp_path / "photos", tmp_path / "file"):
        with pytest.raises(Scene4DError, match="holds other files"):
            save_clip(short, target)
    assert (tmp_path / "photos" / "holiday.jpg").read_bytes() == b"not ours"
    assert (tmp_path / "file").read_text() == "not a folder"
    (tmp_path / "empty").mkdir()
    save_clip(short, tmp_path / "empty")
    assert len(load_clip(tmp_path / "empty")) == 2


def test_per_frame_intrinsics_round_trip(synth_clip, tmp_path):
    K = synth_clip.cameras.K.clone()
    K[1, 0, 0] *= 1.5
    K[2, 1, 2] += 3.0
    cameras = Cameras(K, synth_clip.cameras.w2c, synth_clip.width, synth_clip.height)
    clip = Clip(synth_clip.frames, cameras, synth_clip.times)
    transforms = json.loads((save_clip(clip, tmp_path / "clip") / "transforms.json").read_text())
    assert "fl_x" not in transforms and "fl_x" in transforms["frames"][1]
    torch.testing.assert_close(load_clip(tmp_path / "clip").cameras.K, K)


def test_instance_ids_beyond_16_bits_are_refused(synth_clip, tmp_path):
    masks = synth_clip.masks.copy()
    masks[0, 0, 0] = 70000
    clip = Clip(synth_clip.frames, synth_clip.cameras, synth_clip.times, masks=masks)
    with pytest.raises(Scene4DError, match="instance ids must lie in"):
        save_clip(clip, tmp_path / "clip")
    assert not (tmp_path / "clip").exists()


def test_clip_rejects_mismatched_shapes(synth_clip):
    cameras = synth_clip.cameras
    with pytest.raises(Scene4DError, match="4 frames but 2 cameras"):
        Clip(synth_clip.frames, cameras[:2], synth_clip.times)
    with pytest.raises(Scene4DError, match=r"depth must be \[4, 32, 32\]"):
        Clip(synth_clip.frames, cameras, synth_clip.times, depth=np.zeros((4, 16, 16)))
    with pytest.raises(Scene4DError, match="frames must be"):
        Clip(synth_clip.frames[..., :2], cameras, synth_clip.times)
    small = Cameras(cameras.K, cameras.w2c, 16, 16)
    with pytest.raises(Scene4DError, match="frames are 32x32 but cameras are 16x16"):
        Clip(synth_clip.frames, small, synth_clip.times)


def test_video_round_trip_and_errors(tmp_path):
    gradient = np.linspace(0, 1, 33, dtype=np.float32)
    frames = np.stack([np.stack([np.roll(gradient, k)[None].repeat(21, 0)] * 3, -1) for k in range(6)])
    write_video(tmp_path / "v.mp4", frames, fps=12)
    decoded, fps = read_video(tmp_path / "v.mp4")
    assert fps == pytest.approx(12.0)
    # Odd sizes are padded by one pixel for H.264; the content survives lossy coding.
    assert decoded.shape == (6, 22, 34, 3)
    assert np.abs(decoded[:, :21, :33] - frames).mean() < 0.03
    (tmp_path / "broken.mp4").write_bytes(b"\x00" * 100)
    with pytest.raises(Scene4DError, match="cannot read video"):
        read_video(tmp_path / "broken.mp4")
    with pytest.raises(Scene4DError, match="video not found"):
        read_video(tmp_path / "missing.mp4")


def test_read_image_converts_grey_to_rgb(tmp_path):
    Image.fromarray(np.full((4, 5), 51, np.uint8)).save(tmp_path / "grey.png")
    image = read_image(tmp_path / "grey.png")
    assert image.shape == (4, 5, 3) and np.allclose(image, 0.2)


def test_read_image_scales_16_bit_grey_to_the_unit_range(tmp_path):
    ramp = np.linspace(0, 65535, 20).astype(np.uint16).reshape(4, 5)
    Image.fromarray(ramp).save(tmp_path / "depth.png")
    image = read_image(tmp_path / "depth.png")
    np.testing.assert_allclose(image, np.repeat(ramp[..., None] / 65535.0, 3, axis=-1), atol=1e-6)


def test_photos_are_turned_upright_by_their_exif_orientation_and_clip_frames_are_not(tmp_path):
    upright = (np.random.default_rng(0).random((4, 6, 3)) * 255).astype(np.uint8)  # as a viewer shows it
    stored = np.rot90(upright, 1)  # the sensor's layout; EXIF orientation 6: turn 90 degrees clockwise to view
    exif = Image.Exif()
    exif[0x0112] = 6
    Image.fromarray(np.ascontiguousarray(stored)).save(tmp_path / "phone.png", exif=exif)
    np.testing.assert_array_equal(read_image(tmp_path / "phone.png", exif_orientation=True), upright / np.float32(255))
    np.testing.assert_array_equal(read_image(tmp_path / "phone.png"), stored / np.float32(255))


def test_keyframe_file(tmp_path):
    path = tmp_path / "path.json"
    path.write_text(
        json.dumps(
            {
                "keyframes": [
                    {"position": [0, 0, 0], "look_at": [0, 0, 4]},
                    {"position": [1, 0, 0], "quaternion": [1, 0, 0, 0]},
                    {"position": [2, 0, 0], "look_at": [2, 0, 5]},
                ]
            }
        )
    )
    keyframes = load_keyframes(path)
    assert [k.time for k in keyframes] == [0.0, 0.5, 1.0]
    torch.testing.assert_close(keyframes[0].rotation_c2w, torch.eye(3, dtype=torch.float64))
    # A 90-degree turn about +y (w, x, y, z) is a camera-to-world rotation: forward (+z) -> +x.
    path.write_text(json.dumps({"keyframes": [
        {"position": [0, 0, 0], "quaternion": [1, 0, 0, 0]},
        {"position": [0, 0, 1], "quaternion": [0.5**0.5, 0, 0.5**0.5, 0]},
    ]}))  # fmt: skip
    torch.testing.assert_close(
        load_keyframes(path)[1].rotation_c2w[:, 2], torch.tensor([1.0, 0, 0], dtype=torch.float64)
    )


def test_look_at_keyframes_keep_the_target_centred(tmp_path):
    path = tmp_path / "path.json"
    target = [0.5, -0.5, 5.0]
    path.write_text(json.dumps({"keyframes": [
        {"position": [0, 0, 0], "look_at": target},
        {"position": [2, -1, 1], "look_at": target},
        {"position": [3, 0, 3], "look_at": target},
    ]}))  # fmt: skip
    keyframes = load_keyframes(path)
    w2c = keyframed_w2c(keyframes, num_frames=3)  # frames land exactly on the keyframes
    first_w2c = torch.eye(4, dtype=torch.float64)
    first_w2c[:3, :3] = keyframes[0].rotation_c2w.T
    cameras = Cameras.from_fov(60.0, 64, 64, w2c)
    target_in_first = (first_w2c @ torch.tensor([*target, 1.0], dtype=torch.float64))[:3].float()
    pixels, depth = cameras.project(target_in_first[None])
    torch.testing.assert_close(pixels[:, 0], torch.full((3, 2), 32.0), atol=1e-3, rtol=0)
    assert bool((depth > 0).all())
    path.write_text(json.dumps({"keyframes": [{"position": [0, 0]}, {"position": [1, 0, 0]}]}))
    with pytest.raises(Scene4DError, match="keyframe 0: position: expected 3"):
        load_keyframes(path)
    path.write_text(json.dumps({"keyframes": [{"position": [0, 0, 0]}, {"position": [1, 0, 0]}]}))
    with pytest.raises(Scene4DError, match="needs 'look_at' or 'quaternion'"):
        load_keyframes(path)
    still = {"position": [1, 0, 0], "quaternion": [1, 0, 0, 0]}
    for bad, message in (
        ({"time": "a"}, "keyframe 0: time: expected 1 number"),
        ({"time": float("nan")}, "keyframe 0: time: expected 1 finite number"),
        ({"quaternion": [0, 0, 0, 0]}, "keyframe 0: the quaternion is zero"),
    ):
        path.write_text(json.dumps({"keyframes": [{**still, **bad}, still]}))
        with pytest.raises(Scene4DError, match=message):
            load_keyframes(path)


def test_load_cameras_needs_no_images(synth_clip, tmp_path):
    import shutil

    folder = save_clip(synth_clip, tmp_path / "clip")
    shutil.rmtree(folder / "images")
    cameras, times = load_cameras(folder / "transforms.json")
    torch.testing.assert_close(cameras.w2c, synth_clip.cameras.w2c, atol=1e-5, rtol=0)
    assert (cameras.width, cameras.height) == (synth_clip.width, synth_clip.height)
    np.testing.assert_array_equal(times, synth_clip.times)


def test_squared_clip_keeps_what_each_pixel_sees():
    """After cropping and resizing, a world point projects onto the same content (a marked pixel)."""
    from scene4d.geometry import Cameras
    from scene4d.io import Clip

    frames = np.zeros((1, 40, 80, 3), np.float32)
    frames[0, 20:24, 50:54] = 1.0  # a 4x4 bright square centred on pixel (52, 22) of the 80x40 image
    cameras = Cameras.from_fov(70.0, 80, 40)
    ray = cameras.unproject(torch.tensor([[[52.0, 22.0]]]), torch.tensor([[5.0]]))[0]
    square = Clip(frames, cameras, np.zeros(1)).squared(20)
    pixel, _ = square.cameras.project(ray)
    u, v = pixel[0, 0].tolist()  # crop keeps columns 20..60, scale 1/2: (52 - 20) / 2 = 16, 22 / 2 = 11
    assert (u, v) == pytest.approx((16.0, 11.0))
    assert square.frames[0, int(v), int(u)].mean() > 0.9 and square.frames.shape == (1, 20, 20, 3)
