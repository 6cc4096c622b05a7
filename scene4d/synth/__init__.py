"""A synthetic 3D/4D world with exact ground truth: scenes, a ray caster and Clip kinds."""

from scene4d.synth.clips import CLIP_KINDS, SynthConfig, make_clip
from scene4d.synth.render import render_view
from scene4d.synth.scene import Scene, random_scene

__all__ = ["CLIP_KINDS", "Scene", "SynthConfig", "make_clip", "random_scene", "render_view"]
