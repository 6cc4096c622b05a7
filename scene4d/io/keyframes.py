"""Keyframed camera paths from JSON files.

Format (any world frame, OpenCV camera axes: +x right, +y down, +z forward; the path is
re-expressed relative to its first keyframe, so writing it in the first camera's frame is
simplest)::

    {
      "up": [0, -1, 0],                          optional world up for look-at keyframes
      "keyframes": [
        {"time": 0.0, "position": [0, 0, 0], "look_at": [0, 0, 4]},
        {"time": 1.0, "position": [1, 0, 0.5], "quaternion": [w, x, y, z]}
      ]
    }

``time`` is optional (keyframes are then spread evenly over [0, 1]); each keyframe gives either
``look_at`` (a world point the camera faces) or ``quaternion`` (its camera-to-world rotation).
"""

from pathlib import Path

import torch

from scene4d.errors import Scene4DError
from scene4d.geometry import Keyframe
from scene4d.geometry.rotations import look_at_c2w_rotation, quaternion_to_matrix
from scene4d.io.clip_folder import read_json


def load_keyframes(path: str | Path) -> list[Keyframe]:
    """Parse a keyframed path file into ``Keyframe``s, with a clear error for each malformed field."""
    path = Path(path)
    document = read_json(path)
    raw = document.get("keyframes") if isinstance(document, dict) else None
    if not isinstance(raw, list) or len(raw) < 2:
        raise Scene4DError(f"{path}: expected a 'keyframes' list with at least 2 entries")
    up = vector(document.get("up", [0.0, -1.0, 0.0]), 3, f"{path}: up")
    keyframes = []
    for index, entry in enumerate(raw):
        where = f"{path}: keyframe {index}"
        if not isinstance(entry, dict) or "position" not in entry:
            raise Scene4DError(f"{where}: needs a 'position'")
        position = vector(entry["position"], 3, f"{where}: position")
        if "quaternion" in entry:
            quaternion = vector(entry["quaternion"], 4, f"{where}: quaternion")
            if float(quaternion.norm()) < 1e-8:
                raise Scene4DError(f"{where}: the quaternion is zero, no rotation")
            rotation = quaternion_to_matrix(quaternion)
        elif "look_at" in entry:
            target = vector(entry["look_at"], 3, f"{where}: look_at")
            try:
                rotation = look_at_c2w_rotation(position, target, up)
            except Scene4DError as error:
                raise Scene4DError(f"{where}: {error}") from None
        else:
            raise Scene4DError(f"{where}: needs 'look_at' or 'quaternion'")
        time = float(vector([entry.get("time", index / (len(raw) - 1))], 1, f"{where}: time")[0])
        keyframes.append(Keyframe(time, position, rotation))
    return keyframes


def vector(value: object, size: int, where: str) -> torch.Tensor:
    try:
        tensor = torch.tensor(value, dtype=torch.float64)
    except (TypeError, ValueError):
        raise Scene4DError(f"{where}: expected {size} numbers, got {value!r}") from None
    if tensor.shape != (size,) or not bool(torch.isfinite(tensor).all()):
        raise Scene4DError(f"{where}: expected {size} finite numbers, got {value!r}")
    return tensor
