"""Consistency metrics on frames with known motion: pure camera warps, an independently moving patch, other scenes."""

import numpy as np
import pytest

from scene4d.eval.consistency import matched_pixels, residual_motion, temporal_consistency
from scene4d.synth import SynthConfig, make_clip


def smooth_texture(rng: np.random.Generator, size: int) -> np.ndarray:
    import cv2

    texture = cv2.GaussianBlur(rng.random((size, size, 3)).astype(np.float32), (0, 0), 2.0)
    return (texture - texture.min()) / (texture.max() - texture.min())


def shifted_video(shift_px: float, object_px: float) -> np.ndarray:
    """Eight 64x64 frames of a texture sliding left ``shift_px`` per frame, a patch on it moving right ``object_px``."""
    import cv2

    rng = np.random.default_rng(0)
    texture, patch = smooth_texture(rng, 96), smooth_texture(rng, 20)
    frames = []
    for index in range(8):
        matrix = np.float32([[1, 0, -index * shift_px], [0, 1, 0]])
        frame = cv2.warpAffine(texture, matrix, (96, 96), flags=cv2.INTER_LINEAR)[16:80, 16:80].copy()
        left = 30 + round(index * (object_px - shift_px))
        frame[22:42, left : left + 20] = patch
        frames.append(frame)
    return np.stack(frames)


def test_residual_motion_ignores_the_camera_and_sees_objects():
    camera_only = residual_motion(shifted_video(2.0, 0.0))  # the patch moves with the background
    with_object = residual_motion(shifted_video(2.0, 3.0))  # it moves 3 px per frame on its own
    assert camera_only < 0.1
    # the patch covers ~10% of the frame and moves 3 px/frame against the background: ~0.3 px mean
    assert with_object == pytest.approx(0.3, abs=0.15)


def test_matched_pixels_are_many_for_views_of_one_scene_and_few_otherwise():
    clip = make_clip(SynthConfig(kind="spatial", resolution=64, num_frames=6, trajectory="orbit-left"), 3)
    unrelated = smooth_texture(np.random.default_rng(5), 64)  # synth scenes share texture photos: use noise
    # Measured: 3024 of 4096 pixels between neighbouring views, 72 against the noise.
    assert matched_pixels(clip.frames[0], clip.frames[1]) > 0.6 * 64 * 64
    assert matched_pixels(clip.frames[0], unrelated) < 0.05 * 64 * 64


def test_matched_pixels_of_a_shifted_view_are_those_still_in_frame():
    texture = smooth_texture(np.random.default_rng(7), 72)[:64]
    view_a, view_b = texture[:, :64], texture[:, 3:67]  # the camera moved 3 px right: a's first 3 columns left
    matched = matched_pixels(view_a, view_b)
    assert 0.9 * 64 * 61 <= matched <= 64 * 61 + 64  # every pixel still in view, within a column at the edge


def test_temporal_consistency_is_one_for_a_still_video_and_low_for_noise():
    still = np.repeat(smooth_texture(np.random.default_rng(1), 32)[None], 4, axis=0)
    assert temporal_consistency(still) == pytest.approx(1.0, abs=1e-6)
    noise = np.random.default_rng(2).random((4, 32, 32, 3)).astype(np.float32)
    assert temporal_consistency(noise) < 0.2
