"""Clip folders, transforms.json, images, videos and keyframe files."""

from scene4d.io.clip import Clip
from scene4d.io.clip_folder import convert_c2w_opencv_opengl, load_cameras, load_clip, save_cameras, save_clip
from scene4d.io.keyframes import load_keyframes
from scene4d.io.media import read_image, read_video, write_image, write_video
from scene4d.io.ply import load_ply, ply_rasterize_mode, save_ply

__all__ = [
    "Clip",
    "convert_c2w_opencv_opengl",
    "load_cameras",
    "load_clip",
    "load_keyframes",
    "load_ply",
    "ply_rasterize_mode",
    "read_image",
    "read_video",
    "save_cameras",
    "save_clip",
    "save_ply",
    "write_image",
    "write_video",
]
