"""Cameras, projection, Plücker rays, trajectories and camera bounds (OpenCV convention)."""

from scene4d.geometry.bounds import PCABox, camera_pca_box
from scene4d.geometry.cameras import Cameras, look_at_w2c, rigid_inverse
from scene4d.geometry.plucker import plucker_rays
from scene4d.geometry.trajectories import (
    MOVES,
    TRAJECTORY_NAMES,
    Keyframe,
    keyframed_w2c,
    named_trajectory_w2c,
)

__all__ = [
    "MOVES",
    "TRAJECTORY_NAMES",
    "Cameras",
    "Keyframe",
    "PCABox",
    "camera_pca_box",
    "keyframed_w2c",
    "look_at_w2c",
    "named_trajectory_w2c",
    "plucker_rays",
    "rigid_inverse",
]
