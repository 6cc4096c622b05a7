"""Clip folders: a nerfstudio-style ``transforms.json`` beside images, depth, masks and a preview.

Layout::

    CLIP/transforms.json      nerfstudio layout: OpenGL camera-to-world ``transform_matrix``,
                              ``fl_x fl_y cx cy w h`` (top level when shared, else per frame),
                              per-frame ``time``, ``depth_file_path``, ``instance_mask_path``
    CLIP/images/NNNN.png      8-bit RGB
    CLIP/depth/NNNN.npy       float32 camera z-depth, scene units
    CLIP/masks/NNNN.png       16-bit instance ids, 0 = background
    CLIP/sparse_pc.ply        optional SfM points and colours (nerfstudio's ``ply_file_path``)
    CLIP/meta.json            ``Clip.meta``
    CLIP/video.mp4            preview of the frames

Instance masks use ``instance_mask_path`` rather than nerfstudio's ``mask_path``: nerfstudio
reads ``mask_path`` as a loss mask (0 = ignore) and would drop every background pixel.
"""

import json
from pathlib import Path
from typing import Any

import numpy as np
import torch

from scene4d.errors import Scene4DError
from scene4d.geometry import Cameras, rigid_inverse
from scene4d.geometry.cameras import check_rigid
from scene4d.io.atomic import atomic_directory, write_json
from scene4d.io.clip import Clip
from scene4d.io.media import read_image, to_uint8, write_video
from scene4d.io.ply import load_point_cloud, save_point_cloud

OPENCV_TO_OPENGL = np.diag([1.0, -1.0, -1.0, 1.0])
PINHOLE_MODELS = ("OPENCV", "PINHOLE", "SIMPLE_PINHOLE")
DISTORTION_KEYS = ("k1", "k2", "k3", "k4", "p1", "p2")
MAX_INSTANCE_ID = 65535  # masks are 16-bit PNGs
POINTS_FILE = "sparse_pc.ply"  # the name nerfstudio's ns-process-data gives its COLMAP points


def convert_c2w_opencv_opengl(c2w: np.ndarray) -> np.ndarray:
    """Camera-to-world [..., 4, 4] between OpenCV (+y down, +z forward) and OpenGL (+y up, -z forward).

    Flips the camera's y and z axes; the conversion is its own inverse, so this one function
    serves both directions. It is the only place where the two conventions meet.
    """
    return c2w @ OPENCV_TO_OPENGL


def is_clip_folder(folder: Path) -> bool:
    """Whether ``folder`` holds a Clip written by ``save_clip`` (its ``transforms.json`` and ``meta.json``)."""
    return (folder / "transforms.json").is_file() and (folder / "meta.json").is_file()


def save_clip(clip: Clip, folder: str | Path, fps: float = 10.0) -> Path:
    """Write ``clip`` as a Clip folder, atomically (a crash leaves no partial folder)."""
    from PIL import Image

    folder = Path(folder)
    with atomic_directory(folder, is_clip_folder) as staging:
        (staging / "images").mkdir()
        frames = transforms_frames(clip)
        for index, image in enumerate(to_uint8(clip.frames)):
            Image.fromarray(image).save(staging / frames[index]["file_path"])
        if clip.depth is not None:
            (staging / "depth").mkdir()
            for index, depth in enumerate(clip.depth):
                np.save(staging / frames[index]["depth_file_path"], depth.astype(np.float32))
        if clip.masks is not None:
            if clip.masks.min() < 0 or clip.masks.max() > MAX_INSTANCE_ID:
                raise Scene4DError(f"clip: instance ids must lie in [0, {MAX_INSTANCE_ID}] to be saved as 16-bit PNG")
            (staging / "masks").mkdir()
            for index, mask in enumerate(clip.masks):
                Image.fromarray(mask.astype(np.uint16)).save(staging / frames[index]["instance_mask_path"])
        transforms = {**shared_intrinsics(clip.cameras), "frames": frames}
        if clip.points is not None:
            save_point_cloud(staging / POINTS_FILE, clip.points, clip.point_colors)
            transforms["ply_file_path"] = POINTS_FILE
        write_json(staging / "transforms.json", transforms)
        write_json(staging / "meta.json", clip.meta)
        write_video(staging / "video.mp4", clip.frames, fps=fps)
    return folder


def save_cameras(path: str | Path, cameras: Cameras, times: np.ndarray) -> None:
    """Write cameras and times as a nerfstudio ``transforms.json`` (no images needed), atomically."""
    write_json(path, {**shared_intrinsics(cameras), "frames": camera_frames(cameras, times)})


def camera_frames(cameras: Cameras, times: np.ndarray) -> list[dict[str, Any]]:
    """Per-frame ``transforms.json`` entries: image path, OpenGL c2w, time, intrinsics unless shared."""
    c2w_opengl = convert_c2w_opencv_opengl(cameras.c2w.double().numpy())
    shared = bool(shared_intrinsics(cameras))
    frames = []
    for index in range(len(cameras)):
        entry: dict[str, Any] = {
            "file_path": f"images/{index:04d}.png",
            "transform_matrix": c2w_opengl[index].tolist(),
            "time": float(times[index]),
        }
        if not shared:
            entry.update(intrinsics_entry(cameras.K[index], cameras))
        frames.append(entry)
    return frames


def transforms_frames(clip: Clip) -> list[dict[str, Any]]:
    """Per-frame entries of a Clip folder's ``transforms.json`` (cameras, times, data file paths).

    A curated clip's ``meta["source_index"]`` (each frame's number in its source video) is also
    written per frame.
    """
    frames = camera_frames(clip.cameras, clip.times)
    source_index = clip.meta.get("source_index")
    for index, entry in enumerate(frames):
        if source_index is not None:
            entry["source_index"] = int(source_index[index])
        if clip.depth is not None:
            entry["depth_file_path"] = f"depth/{index:04d}.npy"
        if clip.masks is not None:
            entry["instance_mask_path"] = f"masks/{index:04d}.png"
    return frames


def shared_intrinsics(cameras: Cameras) -> dict[str, Any]:
    """Top-level intrinsics when every camera has the same K, else an empty dict."""
    if not bool((cameras.K == cameras.K[:1]).all()):
        return {}
    return {"camera_model": "OPENCV", **intrinsics_entry(cameras.K[0], cameras)}


def intrinsics_entry(K: torch.Tensor, cameras: Cameras) -> dict[str, Any]:  # noqa: N803
    return {
        "fl_x": float(K[0, 0]),
        "fl_y": float(K[1, 1]),
        "cx": float(K[0, 2]),
        "cy": float(K[1, 2]),
        "w": cameras.width,
        "h": cameras.height,
    }


def load_clip(folder: str | Path) -> Clip:
    """Read a Clip folder, or any nerfstudio-style folder (transforms.json + images).

    Optional fields may be absent: times default to 0, depth, masks and points (the point cloud
    named by ``ply_file_path``, in the cameras' world) to None. Raises
    ``Scene4DError`` naming the file and the problem for anything missing or malformed.
    """
    folder = Path(folder)
    transforms, entries = read_transforms(folder / "transforms.json")
    frames = read_frames(folder, entries)
    cameras, times = cameras_from_transforms(transforms, entries, folder, frames.shape[2], frames.shape[1])
    meta = read_json(folder / "meta.json") if (folder / "meta.json").exists() else {}
    if not isinstance(meta, dict):
        raise Scene4DError(f"{folder / 'meta.json'}: expected a JSON object")
    points, colors = None, None
    if "ply_file_path" in transforms:
        points, colors = load_point_cloud(folder / str(transforms["ply_file_path"]))
    return Clip(
        frames=frames,
        cameras=cameras,
        times=times,
        depth=load_per_frame(folder, entries, "depth_file_path", np.load),
        masks=load_per_frame(folder, entries, "instance_mask_path", read_mask),
        meta=meta,
        points=points,
        point_colors=colors,
    )


def load_cameras(path: str | Path) -> tuple[Cameras, np.ndarray]:
    """Cameras and times [T] of a ``transforms.json``, without reading its images.

    The image size comes from ``w``/``h`` (top level or first frame), else from the first image.
    """
    path = Path(path)
    transforms, entries = read_transforms(path)
    width = entries[0].get("w", transforms.get("w"))
    height = entries[0].get("h", transforms.get("h"))
    if width is None or height is None:
        first = read_image(resolve_image_path(path.parent, entries[0]))
        height, width = first.shape[:2]
    size = (int(number(width, "w")), int(number(height, "h")))
    return cameras_from_transforms(transforms, entries, path.parent, *size)


def read_transforms(path: Path) -> tuple[dict, list[dict]]:
    """The parsed ``transforms.json`` and its frame entries, validated for shape and camera model."""
    transforms = read_json(path)
    entries = transforms.get("frames") if isinstance(transforms, dict) else None
    if not isinstance(entries, list) or not entries or not all(isinstance(e, dict) for e in entries):
        raise Scene4DError(f"{path}: expected a non-empty 'frames' list of objects")
    if not all("file_path" in entry for entry in entries):
        raise Scene4DError(f"{path}: a frame has no 'file_path'")
    check_pinhole(transforms, entries, path)
    return transforms, entries


def cameras_from_transforms(
    transforms: dict, entries: list[dict], folder: Path, width: int, height: int
) -> tuple[Cameras, np.ndarray]:
    """OpenCV ``Cameras`` and times [T] from nerfstudio entries (OpenGL ``transform_matrix``)."""
    K = torch.stack([frame_intrinsics(transforms, entry, width, height) for entry in entries])
    c2w_opencv = torch.stack([frame_c2w_opencv(entry, folder) for entry in entries])
    times = np.array([number(e.get("time", 0.0), f"{e['file_path']}: time") for e in entries], np.float32)
    return Cameras(K.float(), rigid_inverse(c2w_opencv).float(), width, height), times


def read_json(path: Path) -> Any:
    if not path.is_file():
        raise Scene4DError(f"not found: {path}")
    try:
        return json.loads(path.read_text())
    except (json.JSONDecodeError, UnicodeDecodeError) as error:
        raise Scene4DError(f"{path}: malformed JSON ({error})") from None


def read_frames(folder: Path, entries: list[dict]) -> np.ndarray:
    """Frames [T, H, W, 3] of all entries; every image must have the first one's size."""
    images = [read_image(resolve_image_path(folder, entry)) for entry in entries]
    for entry, image in zip(entries, images, strict=True):
        if image.shape != images[0].shape:
            raise Scene4DError(
                f"{folder / entry['file_path']}: size {image.shape[1]}x{image.shape[0]} differs from "
                f"the first frame's {images[0].shape[1]}x{images[0].shape[0]}"
            )
    return np.stack(images)


def resolve_image_path(folder: Path, entry: dict[str, Any]) -> Path:
    """The image of a frame entry; nerfstudio's Blender-style paths may omit ``.png``."""
    path = folder / entry["file_path"]
    if not path.suffix and not path.exists() and path.with_suffix(".png").exists():
        return path.with_suffix(".png")
    return path


def frame_intrinsics(transforms: dict, entry: dict, width: int, height: int) -> torch.Tensor:
    """K [3, 3] of one frame: per-frame fields override top-level ones.

    Accepts ``camera_angle_x`` (Blender synthetic layout) when ``fl_x`` is absent; the
    principal point defaults to the image centre.
    """
    where = entry["file_path"]

    def field(name: str) -> float | None:
        value = entry.get(name, transforms.get(name))
        return None if value is None else number(value, f"{where}: {name}")

    declared = (field("w"), field("h"))
    if declared != (None, None) and declared != (width, height):
        said = {name: entry.get(name, transforms.get(name)) for name in ("w", "h")}
        raise Scene4DError(f"{where}: image is {width}x{height} but transforms.json says w={said['w']}, h={said['h']}")
    fl_x, angle = field("fl_x"), field("camera_angle_x")
    if fl_x is None and angle is not None:
        fl_x = 0.5 * width / np.tan(0.5 * angle)
    if fl_x is None:
        raise Scene4DError(f"transforms.json: no focal length (fl_x or camera_angle_x) for {where}")
    fl_y = field("fl_y") if field("fl_y") is not None else fl_x
    cx = field("cx") if field("cx") is not None else width / 2
    cy = field("cy") if field("cy") is not None else height / 2
    return torch.tensor([[fl_x, 0.0, cx], [0.0, fl_y, cy], [0.0, 0.0, 1.0]], dtype=torch.float64)


def number(value: object, where: str) -> float:
    """A finite number from a JSON field, or a ``Scene4DError`` naming the field."""
    if isinstance(value, bool) or not isinstance(value, int | float) or not np.isfinite(value):
        raise Scene4DError(f"transforms.json: {where} must be a finite number, got {value!r}")
    return float(value)


def check_pinhole(transforms: dict, entries: list[dict], path: Path) -> None:
    """Refuse camera models and lens distortion that pinhole ``Cameras`` cannot represent."""
    for scope in (transforms, *entries):
        model = scope.get("camera_model", "OPENCV")
        if model not in PINHOLE_MODELS:
            raise Scene4DError(
                f"{path}: camera model {model!r} is not supported; undistort the images "
                f"first (supported: {', '.join(PINHOLE_MODELS)})"
            )
        distorted = [key for key in DISTORTION_KEYS if scope.get(key, 0) not in (0, 0.0)]
        if distorted:
            raise Scene4DError(
                f"{path}: lens distortion ({', '.join(distorted)}) is not supported; undistort the images first"
            )


def frame_c2w_opencv(entry: dict, folder: Path) -> torch.Tensor:
    """OpenCV camera-to-world [4, 4] from a frame's OpenGL ``transform_matrix``."""
    try:
        matrix = np.asarray(entry["transform_matrix"], dtype=np.float64)
    except (KeyError, ValueError, TypeError):
        raise Scene4DError(
            f"{folder / 'transforms.json'}: {entry['file_path']} has no valid 4x4 transform_matrix"
        ) from None
    if matrix.shape == (3, 4):
        matrix = np.vstack([matrix, [0.0, 0.0, 0.0, 1.0]])
    if matrix.shape != (4, 4):
        raise Scene4DError(f"{entry['file_path']}: transform_matrix must be 4x4, got {list(matrix.shape)}")
    c2w = torch.from_numpy(convert_c2w_opencv_opengl(matrix))
    check_rigid(c2w[None], f"{folder / 'transforms.json'}: frame {entry['file_path']}: transform_matrix")
    return c2w


def load_per_frame(folder: Path, entries: list[dict], key: str, reader: Any) -> np.ndarray | None:
    """Stack an optional per-frame array; all frames must have it or none."""
    present = [key in entry for entry in entries]
    if not any(present):
        return None
    if not all(present):
        raise Scene4DError(f"{folder / 'transforms.json'}: '{key}' is given for some frames but not all")
    arrays = []
    for entry in entries:
        path = folder / entry[key]
        if not path.is_file():
            raise Scene4DError(f"not found: {path}")
        try:
            arrays.append(reader(path))
        except (OSError, ValueError) as error:
            raise Scene4DError(f"cannot read {path}: {error}") from None
        if arrays[-1].shape != arrays[0].shape:
            raise Scene4DError(f"{path}: shape {list(arrays[-1].shape)} differs from {list(arrays[0].shape)}")
    return np.stack(arrays)


def read_mask(path: Path) -> np.ndarray:
    from PIL import Image

    with Image.open(path) as image:
        return np.asarray(image).astype(np.int32)
