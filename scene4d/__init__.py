"""scene4d: 3D and 4D scenes from images with camera- and time-controllable video diffusion.

See ``docs/conventions.md`` for the camera, ray, time and file conventions used everywhere.
"""

__version__ = "0.1.0"
