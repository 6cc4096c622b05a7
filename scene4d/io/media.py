"""Images and videos on disk as float32 RGB arrays in [0, 1]."""

from pathlib import Path

import numpy as np

from scene4d.errors import Scene4DError
from scene4d.io.atomic import atomic_file

SIXTEEN_BIT_GREY = ("I;16", "I;16B", "I;16L", "I")  # PIL's modes of 16-bit grey PNGs and TIFFs


def read_image(path: str | Path, exif_orientation: bool = False) -> np.ndarray:
    """An image file -> [H, W, 3] float32 in [0, 1] (grey is repeated, 16-bit grey scaled by 1 / 65535,
    alpha dropped). With ``exif_orientation`` the picture is turned upright as a viewer shows it (photos
    from phones); Clip frames are read as stored, the layout their intrinsics describe."""
    from PIL import Image, ImageOps, UnidentifiedImageError

    path = Path(path)
    if not path.is_file():
        raise Scene4DError(f"image not found: {path}")
    try:
        with Image.open(path) as image:
            if exif_orientation:
                image = ImageOps.exif_transpose(image)
            if image.mode in SIXTEEN_BIT_GREY:  # PIL's conversion to RGB would clip it at 255
                grey = np.clip(np.asarray(image, dtype=np.float32) / 65535.0, 0.0, 1.0)
                return np.repeat(grey[..., None], 3, axis=-1)
            array = np.asarray(image.convert("RGB"), dtype=np.float32)
    except (UnidentifiedImageError, OSError, SyntaxError) as error:
        raise Scene4DError(f"cannot read image {path}: {error}") from None
    return array / 255.0


def write_image(path: str | Path, image: np.ndarray) -> None:
    """Write [H, W, 3] float in [0, 1] as an 8-bit image (format from the suffix), atomically."""
    from PIL import Image

    if image.ndim != 3 or image.shape[-1] != 3:
        raise Scene4DError(f"write_image: expected [H, W, 3], got {list(image.shape)}")
    with atomic_file(path) as staging:
        Image.fromarray(to_uint8(image)).save(staging)


def read_video(path: str | Path, max_frames: int | None = None, stride: int = 1) -> tuple[np.ndarray, float]:
    """A video file -> frames [T, H, W, 3] float32 in [0, 1] (every ``stride``-th) and its frame rate."""
    import imageio.v2 as imageio

    path = Path(path)
    if not path.is_file():
        raise Scene4DError(f"video not found: {path}")
    if (max_frames is not None and max_frames < 1) or stride < 1:
        raise Scene4DError(f"max_frames and stride must be at least 1, got {max_frames}, {stride}")
    frames = []
    try:
        with imageio.get_reader(path, format="FFMPEG") as reader:
            fps = float(reader.get_meta_data().get("fps", 0.0))
            for index, frame in enumerate(reader):
                if index % stride:
                    continue
                frames.append(np.asarray(frame[..., :3], dtype=np.float32) / 255.0)
                if max_frames is not None and len(frames) >= max_frames:
                    break
    except (OSError, RuntimeError, ValueError, StopIteration) as error:
        raise Scene4DError(f"cannot read video {path}: {str(error).splitlines()[0]}") from None
    if not frames:
        raise Scene4DError(f"video has no frames: {path}")
    return np.stack(frames), fps


def video_frame_rate(path: str | Path) -> float:
    """Frames per second stored in a video file (0 when absent or unreadable)."""
    import imageio.v2 as imageio

    try:
        with imageio.get_reader(path, format="FFMPEG") as reader:
            return float(reader.get_meta_data().get("fps", 0.0))
    except (OSError, RuntimeError, ValueError):
        return 0.0


def write_video(path: str | Path, frames: np.ndarray, fps: float = 10.0) -> None:
    """Write frames [T, H, W, 3] float in [0, 1] as H.264 (``.mp4``), atomically.

    Odd sizes are padded by one edge pixel: H.264 with 4:2:0 chroma needs even sizes.
    """
    import imageio.v2 as imageio

    if frames.ndim != 4 or frames.shape[-1] != 3 or frames.shape[0] < 1:
        raise Scene4DError(f"write_video: expected frames [T>=1, H, W, 3], got {list(frames.shape)}")
    frames = to_uint8(frames)
    pad_h, pad_w = frames.shape[1] % 2, frames.shape[2] % 2
    frames = np.pad(frames, ((0, 0), (0, pad_h), (0, pad_w), (0, 0)), mode="edge")
    with atomic_file(path) as staging:
        with imageio.get_writer(
            staging,
            format="FFMPEG",
            fps=fps,
            codec="libx264",
            quality=8,
            macro_block_size=1,
            pixelformat="yuv420p",
            ffmpeg_log_level="error",
        ) as writer:
            for frame in frames:
                writer.append_data(frame)


def to_uint8(images: np.ndarray) -> np.ndarray:
    """Float images in [0, 1] -> uint8, rounded."""
    return (np.clip(images, 0.0, 1.0) * 255.0 + 0.5).astype(np.uint8)
