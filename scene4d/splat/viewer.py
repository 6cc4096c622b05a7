"""Serving Gaussian splats to a browser with viser (offline: everything is served from localhost).

viser draws splats its own way, without the opacity compensation of the ``antialiased`` rasterize
mode: splats fitted in that mode show there with their sub-pixel splats more opaque than
``scene4d render`` draws them.
"""

import math

import numpy as np
import torch

from scene4d.geometry import Cameras
from scene4d.splat.projection import SH_C0, covariance_3d


def serve_splats(splats: dict[str, torch.Tensor], camera: Cameras | None, host: str, port: int):  # noqa: ANN201
    """Start a viser server showing ``splats`` (DC colour); the view starts at ``camera`` when given.

    Returns the running ``viser.ViserServer``; its threads serve until ``server.stop()``.
    """
    import viser

    server = viser.ViserServer(host=host, port=port, verbose=False)
    server.scene.add_gaussian_splats(
        "/scene",
        centers=splats["means"].numpy().astype(np.float32),
        covariances=covariance_3d(splats["quats"], splats["scales"]).numpy().astype(np.float32),
        rgbs=(SH_C0 * splats["sh0"][:, 0] + 0.5).clamp(0, 1).numpy().astype(np.float32),
        opacities=torch.sigmoid(splats["opacities"])[:, None].numpy().astype(np.float32),
    )
    if camera is not None:
        c2w = camera.c2w[0].double().numpy()
        server.scene.set_up_direction(tuple(-c2w[:3, 1]))
        server.initial_camera.up = tuple(-c2w[:3, 1])  # OpenCV +y is down
        server.initial_camera.position = tuple(c2w[:3, 3])
        server.initial_camera.look_at = tuple(c2w[:3, 3] + c2w[:3, 2])
        server.initial_camera.fov = 2 * math.atan(camera.height / (2 * float(camera.K[0, 1, 1])))
    return server
