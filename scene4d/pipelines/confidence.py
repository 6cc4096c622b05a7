"""Per-pixel confidence of generated frames for DimensionX's confidence-weighted 3DGS loss (eq. 3).

A generated pixel is trusted when its neighbours agree with it: the forward flow to a
neighbouring frame followed by the backward flow returns to where it started (geometry), and the
neighbour's colour where the flow lands matches (appearance). The confidence is
``exp(-(cycle error / tolerance_px)^2 - (colour error / tolerance_rgb)^2)`` averaged over the
previous and next frame; flicker and detail that changes from frame to frame lose weight.
Condition frames (the user's images) are trusted fully.
"""

import numpy as np

from scene4d.curate.flow import cycle_error, dense_flow, landed


def neighbour_agreement(frame: np.ndarray, neighbour: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Cycle error [H, W] in pixels (forward flow, then backward flow) and colour error [H, W]
    (mean absolute RGB difference to the neighbour where the forward flow lands)."""
    forward, backward = dense_flow(frame, neighbour), dense_flow(neighbour, frame)
    return cycle_error(forward, backward), np.abs(landed(neighbour, forward) - frame).mean(axis=-1)


def flow_confidence(
    frames: np.ndarray,  # [T, H, W, 3] in [0, 1]
    condition_frames: list[int],
    tolerance_px: float = 1.0,
    tolerance_rgb: float = 0.1,
) -> np.ndarray:
    """Confidence [T, H, W] in (0, 1] of every generated pixel; 1 on the condition frames."""
    confidence = np.ones(frames.shape[:3], dtype=np.float32)
    for index in range(len(frames)):
        if index in condition_frames:
            continue
        scores = []
        for other in (index - 1, index + 1):
            if 0 <= other < len(frames):
                cycle, colour = neighbour_agreement(frames[index], frames[other])
                scores.append(np.exp(-((cycle / tolerance_px) ** 2) - (colour / tolerance_rgb) ** 2))
        confidence[index] = np.mean(scores, axis=0)
    return confidence
