"""Potentially moving pixels, masked out of SfM (GenXD section 3.1).

GenXD segments every instance that might move and prefers false positives to false negatives.
Segmentation networks need weights, so masks come from one of three sources:

- ``motion_masks`` (the default, weight-free): the pixels whose flow, and whose appearance
  along it, the camera's motion does not explain;
- ``read_user_masks``: a folder of per-frame mask images supplied by the user;
- ``segmentation_masks``: a transformers semantic segmentation model from a local path.

Every source returns instance ids [T, H, W] int32 (0 = static background), so that object
motion (motion.py) can be measured per object; ``sfm_mask`` dilates them into what SfM ignores
(dilated, so that a false negative at an object's edge does not leak features into SfM).
"""

import functools
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from scene4d.curate.flow import apply_homography, camera_motion, cycle_error, dense_flow, flow_samples, landed
from scene4d.errors import Scene4DError


@dataclass(frozen=True)
class MaskConfig:
    gap: int = 2  # frames between the flow pairs (slow objects move more over a longer gap)
    residual_px: float = 0.5  # flow residual (pixels per gap) above which a pixel may be moving
    min_gain: float = 0.005  # how much better (mean |intensity| over 5x5 px) the flow explains a moving pixel
    max_cycle_px: float = 1.0  # forward-backward flow disagreement above which a pixel's flow is not trusted
    border_px: float = 4.0  # pixels whose flow lands nearer than this to the frame's edge are not judged
    homography_fit: float = 0.8  # share of the flow a homography explains when the camera is still or rotates
    min_area: float = 0.002  # connected regions smaller than this fraction of the frame are noise
    dilate: float = 0.03  # dilation radius as a fraction of the longer image side


def motion_masks(frames: np.ndarray, config: MaskConfig = MaskConfig()) -> np.ndarray:
    """Instance ids [T, H, W] of the regions that move against the camera's motion (undilated).

    Per frame, ``moving_pixels`` towards a frame ``gap`` away; the regions lose specks and are
    numbered as connected components.
    """
    count = len(frames)
    if count < 2:
        return np.zeros(frames.shape[:3], np.int32)
    gap = min(config.gap, count - 1)
    moving = np.stack(
        [moving_pixels(frames[i], frames[i + gap if i + gap < count else i - gap], config) for i in range(count)]
    )
    return label_regions(drop_specks(moving, config.min_area))


def moving_pixels(frame_a: np.ndarray, frame_b: np.ndarray, config: MaskConfig = MaskConfig()) -> np.ndarray:
    """Bool [H, W]: the pixels of ``frame_a`` whose motion to ``frame_b`` the camera does not explain.

    A pixel moves when its flow (DIS refined at full resolution) lands more than ``residual_px``
    from where the camera's motion alone would take it (``camera_flow``), and the flow explains
    its appearance better than the camera's motion by ``min_gain`` (``photometric_gain``): on a
    textureless sky or an aliased, minified texture the flow is arbitrary and both explain the
    pixel equally. Pixels whose flow is not trusted are not judged: forward and backward flow
    disagree by more than ``max_cycle_px`` (occlusions), or it lands within ``border_px`` of the
    frame's edge (content leaving the frame).
    """
    flow = dense_flow(frame_a, frame_b, full_resolution=True)
    backward = dense_flow(frame_b, frame_a, full_resolution=True)
    camera = camera_flow(flow, config.homography_fit)
    residual = np.linalg.norm(flow - camera, axis=-1)
    trusted = (cycle_error(flow, backward) <= config.max_cycle_px) & lands_inside(flow, config.border_px)
    explained = photometric_gain(frame_a, frame_b, flow, camera) > config.min_gain
    return trusted & explained & (residual > config.residual_px)


def camera_flow(flow: np.ndarray, homography_fit: float = MaskConfig.homography_fit) -> np.ndarray:
    """The flow [H, W, 2] the camera's motion alone gives each pixel, nearest to ``flow`` [H, W, 2].

    That is the dominant RANSAC homography's. When the homography explains fewer than
    ``homography_fit`` of the flow samples (a translating camera, with parallax), a pixel may
    instead land anywhere on its epipolar line (a RANSAC fundamental matrix): static points keep
    to their epipolar lines whatever their depth. Each pixel then takes the nearer to its flow of
    the homography's landing and its flow's landing projected onto the line. (With a still or
    rotating camera the fundamental matrix is degenerate and would also fit the objects.)
    """
    import cv2

    height, width = flow.shape[:2]
    pixels, vectors = flow_samples(flow, step=1)
    moved = pixels + vectors
    motion = camera_motion(flow)
    landing = apply_homography(motion.homography, pixels)
    if motion.inliers.mean() < homography_fit:
        fundamental, _ = cv2.findFundamentalMat(motion.points, motion.points + motion.flow, cv2.FM_RANSAC, 0.5, 0.999)
        if fundamental is not None and fundamental.shape == (3, 3):
            on_line = epipolar_projection(fundamental, pixels, moved)
            nearer = np.linalg.norm(on_line - moved, axis=1) < np.linalg.norm(landing - moved, axis=1)
            landing = np.where(nearer[:, None], on_line, landing)
    return (landing - pixels).reshape(height, width, 2).astype(np.float32)


def epipolar_projection(fundamental: np.ndarray, points_a: np.ndarray, points_b: np.ndarray) -> np.ndarray:
    """``points_b`` [P, 2] moved perpendicularly onto the epipolar lines ``F x_a`` of ``points_a`` [P, 2]."""
    lines = np.concatenate([points_a, np.ones((len(points_a), 1))], 1) @ fundamental.T
    offset = (points_b * lines[:, :2]).sum(axis=1) + lines[:, 2]
    return points_b - (offset / np.maximum((lines[:, :2] ** 2).sum(axis=1), 1e-12))[:, None] * lines[:, :2]


def photometric_gain(
    frame_a: np.ndarray,  # [H, W, 3]
    frame_b: np.ndarray,  # [H, W, 3]
    flow: np.ndarray,  # [H, W, 2]
    camera: np.ndarray,  # [H, W, 2] the camera's flow
    window: int = 5,
) -> np.ndarray:
    """[H, W]: how much better ``flow`` than ``camera`` explains ``frame_a`` from ``frame_b``: the
    mean absolute intensity error of ``frame_b`` sampled where the camera's flow lands minus that
    where ``flow`` lands, each averaged over a ``window`` x ``window`` box."""
    import cv2

    def error(vectors: np.ndarray) -> np.ndarray:
        return cv2.blur(np.abs(landed(frame_b, vectors) - frame_a).mean(axis=-1), (window, window))

    return error(camera) - error(flow)


def lands_inside(flow: np.ndarray, margin_px: float) -> np.ndarray:
    """Bool [H, W]: pixels that ``flow`` [H, W, 2] moves at least ``margin_px`` inside the frame."""
    height, width = flow.shape[:2]
    cols, rows = np.meshgrid(np.arange(width) + 0.5, np.arange(height) + 0.5)
    x, y = cols + flow[..., 0], rows + flow[..., 1]
    return (x >= margin_px) & (x <= width - margin_px) & (y >= margin_px) & (y <= height - margin_px)


def sampson_distance(fundamental: np.ndarray, points_a: np.ndarray, points_b: np.ndarray) -> np.ndarray:
    """First-order geometric distance [P] (pixels) of correspondences to the epipolar geometry F."""
    homogeneous_a = np.concatenate([points_a, np.ones((len(points_a), 1))], 1)
    homogeneous_b = np.concatenate([points_b, np.ones((len(points_b), 1))], 1)
    line_b = homogeneous_a @ fundamental.T  # F x_a
    line_a = homogeneous_b @ fundamental  # F^T x_b
    algebraic = (homogeneous_b * line_b).sum(axis=1)
    gradient = line_b[:, 0] ** 2 + line_b[:, 1] ** 2 + line_a[:, 0] ** 2 + line_a[:, 1] ** 2
    return np.abs(algebraic) / np.sqrt(np.maximum(gradient, 1e-12))


def drop_specks(moving: np.ndarray, min_area: float) -> np.ndarray:
    """Bool masks [T, H, W] without connected regions smaller than ``min_area`` of the frame."""
    import cv2

    height, width = moving.shape[1:]
    cleaned = []
    for mask in moving.astype(np.uint8):
        _, labels, stats, _ = cv2.connectedComponentsWithStats(mask, connectivity=8)
        keep = np.flatnonzero(stats[:, cv2.CC_STAT_AREA] >= min_area * height * width)
        cleaned.append(np.isin(labels, keep[keep > 0]))
    return np.stack(cleaned)


def sfm_mask(objects: np.ndarray, dilate: float) -> np.ndarray:
    """Bool [T, H, W]: the pixels of ``objects`` (instance ids) dilated by ``dilate`` x the longer side."""
    import cv2

    height, width = objects.shape[1:]
    radius = max(1, round(dilate * max(height, width)))
    disc = cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (2 * radius + 1, 2 * radius + 1))
    return np.stack([cv2.dilate((mask > 0).astype(np.uint8), disc).astype(bool) for mask in objects])


def label_regions(moving: np.ndarray) -> np.ndarray:
    """Connected components of bool masks [T, H, W] as instance ids that persist over frames.

    A region keeps the id of the previous frame's region it overlaps most (objects move a few
    pixels per frame); regions overlapping none get new ids.
    """
    import cv2

    labelled = np.zeros(moving.shape, np.int32)
    next_id = 1
    for index, mask in enumerate(moving.astype(np.uint8)):
        count, regions = cv2.connectedComponents(mask, connectivity=8)
        for region in range(1, count):
            inside = regions == region
            previous = labelled[index - 1][inside] if index > 0 else np.zeros(0, np.int32)
            previous = previous[previous > 0]
            if len(previous):
                labelled[index][inside] = np.bincount(previous).argmax()
            else:
                labelled[index][inside] = next_id
                next_id += 1
    return labelled


def read_user_masks(folder: str | Path, source_index: np.ndarray, shape: tuple[int, int]) -> np.ndarray:
    """Instance ids [T, H, W] from ``folder/NNNNN.png``, one image per source frame number.

    Grey values (8- or 16-bit) are instance ids (0 = static); any image size is resized (nearest)
    to ``shape``.
    """
    from PIL import Image

    folder = Path(folder)
    masks = []
    for index in source_index:
        path = folder / f"{int(index):05d}.png"
        if not path.is_file():
            raise Scene4DError(f"mask not found for frame {int(index)}: {path}")
        with Image.open(path) as image:
            # 16-bit ids stay whole; a palette image (DAVIS, YouTube-VOS) holds the ids as its indices
            ids = image if image.mode in ("L", "P", "I", "I;16") else image.convert("L")
            masks.append(np.asarray(ids.resize((shape[1], shape[0]), Image.NEAREST), dtype=np.int32))
    return np.stack(masks)


MOVABLE_LABELS = (
    "person", "bicycle", "car", "motorcycle", "airplane", "bus", "train", "truck", "boat", "bird",
    "cat", "dog", "horse", "sheep", "cow", "elephant", "bear", "zebra", "giraffe", "animal", "rider",
)  # fmt: skip


@functools.cache  # one model per process, however many videos
def segmentation_masks(
    model_path: str | Path, movable: tuple[str, ...] = MOVABLE_LABELS, device: str = "cpu"
) -> Callable[[np.ndarray], np.ndarray]:
    """A local transformers semantic-segmentation model as a mask source.

    Pixels whose predicted class name is in ``movable`` (COCO/ADE-style names of things that can
    move) are potentially moving; connected regions become instances. GenXD uses an instance
    model (Mask2Former); semantic classes plus connected components keep any
    ``AutoModelForSemanticSegmentation`` usable.
    """
    import torch
    from transformers import AutoImageProcessor, AutoModelForSemanticSegmentation

    path = Path(model_path)
    if not (path / "config.json").is_file():
        raise Scene4DError(f"segmentation model not found: {path} (expected a transformers folder with config.json)")
    processor = AutoImageProcessor.from_pretrained(path, local_files_only=True)
    model = AutoModelForSemanticSegmentation.from_pretrained(path, local_files_only=True).to(device).eval()
    wanted = [int(i) for i, name in model.config.id2label.items() if name.lower() in movable]

    def masks(frames: np.ndarray) -> np.ndarray:
        moving = []
        for frame in frames:
            inputs = processor(images=(frame * 255).astype(np.uint8), return_tensors="pt").to(device)
            with torch.no_grad():
                logits = model(**inputs).logits
            resized = torch.nn.functional.interpolate(logits, frame.shape[:2], mode="bilinear")
            moving.append(np.isin(resized[0].argmax(dim=0).cpu().numpy(), wanted))
        return label_regions(np.stack(moving))

    return masks
