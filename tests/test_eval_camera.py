"""Camera rotation and dynamic degree measured from frames, against synth ground truth."""

import numpy as np
import pytest
import torch
from conftest import warp

from scene4d.eval.camera import chained_rotation, dynamic_degree, image_shift, similarity_transform
from scene4d.geometry.rotations import axis_angle_to_matrix, rotation_error_deg
from scene4d.synth import SynthConfig, make_clip


def test_rotation_error_of_a_known_turn():
    turn = axis_angle_to_matrix(torch.tensor([0.0, 0.0, 1.0], dtype=torch.float64), torch.tensor(np.deg2rad(7.0)))
    assert rotation_error_deg(torch.eye(3, dtype=torch.float64), turn) == pytest.approx(7.0, abs=1e-6)


@pytest.mark.parametrize("trajectory", ["pan-right", "orbit-left"])
def test_rotation_from_rendered_frames_matches_the_true_cameras(trajectory):
    clip = make_clip(SynthConfig(kind="spatial", resolution=64, num_frames=12, trajectory=trajectory), seed=3)
    true = clip.cameras.R[-1].double() @ clip.cameras.R[0].double().T
    estimated = chained_rotation(clip.frames, clip.cameras.K[0])
    assert estimated is not None
    # 0.07-0.09 of the turn on these clips; RANSAC on DIS flow at 64 px (before) 0.16-0.28
    assert rotation_error_deg(true, estimated) < 0.15 * rotation_error_deg(true, torch.eye(3, dtype=torch.float64))


def test_image_shift_of_a_sliding_texture_ignores_a_small_moving_object():
    rng = np.random.default_rng(1)
    import cv2

    texture = cv2.GaussianBlur(rng.random((48, 80, 3)).astype(np.float32), (5, 5), 1.0)
    frames = np.stack([texture[:, 3 * k : 3 * k + 48] for k in range(5)])  # content slides 3 px left per frame
    for k in range(5):
        frames[k, 4 + 2 * k : 16 + 2 * k, 30:42] = texture[:12, 60:72]  # a patch moving 2 px down per frame
    np.testing.assert_allclose(image_shift(frames), [-12.0, 0.0], atol=0.4)


@pytest.mark.parametrize("trajectory", ["pan-right", "tilt-up"])
def test_image_shift_of_a_turning_camera_matches_the_centre_ray(trajectory):
    """The summed shift of the image centre under the true per-frame rotations, f tan of each step."""
    clip = make_clip(SynthConfig(kind="spatial", resolution=64, num_frames=12, trajectory=trajectory), seed=3)
    R, K = clip.cameras.R.double(), clip.cameras.K[0].double()  # noqa: N806
    expected = np.zeros(2)
    for index in range(len(clip) - 1):
        ray = R[index + 1] @ R[index].T @ torch.tensor([0.0, 0.0, 1.0], dtype=torch.float64)
        expected += (K[[0, 1], [0, 1]] * ray[:2] / ray[2]).numpy()
    shift = image_shift(clip.frames)
    assert np.linalg.norm(shift - expected) < 0.1 * np.linalg.norm(expected)


def test_dynamic_degree_reads_a_known_shift():
    rng = np.random.default_rng(0)
    texture = rng.random((48, 80, 3)).astype(np.float32)
    import cv2

    texture = cv2.GaussianBlur(texture, (5, 5), 1.0)
    frames = np.stack([texture[:, 3 * k : 3 * k + 48] for k in range(4)])  # content slides 3 px left per frame
    masks = np.zeros((4, 48, 48), bool)
    masks[:, 12:36, 12:36] = True
    assert dynamic_degree(frames, masks) == pytest.approx(3.0, abs=0.3)
    assert dynamic_degree(np.repeat(frames[:1], 4, axis=0), masks) == pytest.approx(0.0, abs=0.05)


@pytest.mark.parametrize("speed", [0.5, 1.0])
def test_dynamic_degree_reads_a_small_object_at_its_speed(speed):
    """A 6-pixel object sliding ``speed`` px per frame over a still background, 64-pixel frames:
    the measured flow on the object's pixels is its speed (patch-based flow at the frames' own
    size reads a fifth of it)."""
    rng = np.random.default_rng(1)
    import cv2

    background = cv2.GaussianBlur(rng.random((64, 64, 3)).astype(np.float32), (5, 5), 1.0)
    texture = cv2.GaussianBlur(rng.random((64, 64, 3)).astype(np.float32), (3, 3), 0.7)
    square = np.zeros((64, 64), np.float32)
    square[24:30, 20:26] = 1.0
    step = np.array([1.0, 0.3]) * speed / np.hypot(1.0, 0.3)
    frames, masks = [], []
    for k in range(6):
        shift = np.array([[1, 0, step[0] * k], [0, 1, step[1] * k], [0, 0, 1]])
        cover = warp(square, shift)[..., None]
        frames.append(background * (1 - cover) + warp(texture, shift) * cover)
        masks.append(cover[..., 0] > 0.5)
    assert dynamic_degree(np.stack(frames), np.stack(masks)) == pytest.approx(speed, rel=0.15)
    assert dynamic_degree(np.stack(frames), ~np.stack(masks).any(axis=0, keepdims=True).repeat(6, 0)) < 0.1 * speed


def test_similarity_transform_recovers_a_known_one():
    generator = np.random.default_rng(2)
    source = generator.normal(size=(30, 3))
    rotation = axis_angle_to_matrix(torch.tensor([0.3, -0.5, 0.8], dtype=torch.float64), torch.tensor(1.1)).numpy()
    target = 2.5 * source @ rotation.T + np.array([1.0, -2.0, 0.5])
    scale, found, translation = similarity_transform(source, target + 1e-9 * generator.normal(size=target.shape))
    assert scale == pytest.approx(2.5, rel=1e-6)
    np.testing.assert_allclose(found, rotation, atol=1e-6)
    np.testing.assert_allclose(translation, [1.0, -2.0, 0.5], atol=1e-6)
    mirrored = source * np.array([1.0, 1.0, -1.0])  # no rotation maps a shape onto its mirror image
    assert np.linalg.det(similarity_transform(source, mirrored)[1]) == pytest.approx(1.0)
