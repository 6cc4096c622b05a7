"""Stage 1 of curation: decode a video (or a folder of numbered frames), sample and resize."""

import re
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from scene4d.errors import Scene4DError

VIDEO_SUFFIXES = (".mp4", ".avi", ".mov", ".mkv")
IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg")


@dataclass(frozen=True)
class DecodeConfig:
    stride: int = 1  # keep every stride-th frame (ignored when fps is set)
    fps: float | None = None  # sample at this rate instead (videos whose rate is known)
    max_frames: int = 32  # frames kept per video
    size: int = 256  # longer side after resizing, pixels

    def __post_init__(self) -> None:
        if self.stride < 1 or self.max_frames < 1 or self.size < 16 or (self.fps is not None and self.fps <= 0):
            raise Scene4DError(
                f"decode: need stride >= 1, max frames >= 1, size >= 16 and fps > 0, got {self.stride}, "
                f"{self.max_frames}, {self.size}, {self.fps}"
            )


@dataclass
class SourceFrames:
    frames: np.ndarray  # [T, H, W, 3] float32 in [0, 1]
    source_index: np.ndarray  # [T] frame numbers in the source
    fps: float  # source frame rate (0 when unknown)


def find_sources(folder: str | Path) -> list[Path]:
    """Video files and sub-folders of numbered frames directly inside ``folder``, sorted."""
    folder = Path(folder)
    if not folder.is_dir():
        raise Scene4DError(f"videos folder not found: {folder}")
    sources = []
    for path in sorted(folder.iterdir()):
        if path.is_file() and path.suffix.lower() in VIDEO_SUFFIXES:
            sources.append(path)
        elif path.is_dir() and numbered_frames(path):
            sources.append(path)
    return sources


def numbered_frames(folder: Path) -> list[Path]:
    """Image files in ``folder`` whose names contain a number, sorted by that number."""
    images = [p for p in folder.iterdir() if p.suffix.lower() in IMAGE_SUFFIXES and re.search(r"\d+", p.stem)]
    return sorted(images, key=lambda p: int(re.findall(r"\d+", p.stem)[-1]))


def read_source(path: Path, config: DecodeConfig = DecodeConfig()) -> SourceFrames:
    """Decode, sample (stride or fps) and resize one source; raises ``Scene4DError`` if unreadable."""
    from scene4d.io.media import read_image, read_video

    if path.is_dir():
        files = numbered_frames(path)
        picked = list(range(0, len(files), config.stride))[: config.max_frames]
        if not picked:
            raise Scene4DError(f"no frames in {path}")
        frames, fps = np.stack([read_image(files[i], exif_orientation=True) for i in picked]), 0.0
    else:
        stride = config.stride if config.fps is None else stride_for_rate(path, config.fps, config.stride)
        frames, fps = read_video(path, max_frames=config.max_frames, stride=stride)
        picked = list(range(0, stride * len(frames), stride))
    return SourceFrames(resize_longer_side(frames, config.size), np.array(picked, np.int64), fps)


def stride_for_rate(path: Path, fps: float, fallback: int) -> int:
    """Every how many frames of the video ``path`` to keep to sample it at ``fps``; ``fallback``
    when the video stores no frame rate."""
    from scene4d.io.media import video_frame_rate

    rate = video_frame_rate(path)
    return max(1, round(rate / fps)) if rate > 0 else fallback


def resize_longer_side(frames: np.ndarray, size: int) -> np.ndarray:
    """Frames [T, H, W, 3] resized (area) so the longer side is ``size``, sides rounded to even."""
    import cv2

    height, width = frames.shape[1:3]
    scale = size / max(height, width)
    new_w, new_h = max(2, round(width * scale / 2) * 2), max(2, round(height * scale / 2) * 2)
    if (new_w, new_h) == (width, height):
        return frames
    interpolation = cv2.INTER_AREA if scale < 1 else cv2.INTER_LINEAR
    return np.stack([cv2.resize(frame, (new_w, new_h), interpolation=interpolation) for frame in frames])
