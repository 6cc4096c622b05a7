import socket
import urllib.request

import numpy as np
import torch

from scene4d.geometry import Cameras, look_at_w2c
from scene4d.splat.viewer import serve_splats


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def small_splats(count: int) -> dict[str, torch.Tensor]:
    return {
        "means": torch.randn(count, 3), "quats": torch.randn(count, 4), "scales": torch.randn(count, 3) - 3,
        "opacities": torch.randn(count), "sh0": torch.randn(count, 1, 3), "shN": torch.zeros(count, 0, 3),
    }  # fmt: skip


def test_viewer_serves_on_localhost_from_the_first_camera():
    splats = small_splats(30)
    eye = torch.tensor([1.0, -2.0, -4.0])
    camera = Cameras.from_fov(60.0, 64, 48, look_at_w2c(eye, torch.zeros(3), torch.tensor([0.0, -1.0, 0.0]))[None])
    port = free_port()
    server = serve_splats(splats, camera, "127.0.0.1", port)
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/", timeout=10) as response:
            assert response.status == 200 and b"<html" in response.read(2000).lower()
        np.testing.assert_allclose(server.initial_camera.position, eye.numpy(), atol=1e-5)
        direction = server.initial_camera.look_at - server.initial_camera.position
        np.testing.assert_allclose(direction / np.linalg.norm(direction), (-eye / eye.norm()).numpy(), atol=1e-5)
    finally:
        server.stop()


def test_view_prints_the_port_it_serves_on_when_the_one_asked_is_taken(tmp_path, monkeypatch):
    import re
    from types import SimpleNamespace

    from typer.testing import CliRunner

    import scene4d.splat.viewer
    from scene4d.cli import app
    from scene4d.io import save_ply

    save_ply(tmp_path / "scene.ply", small_splats(5))
    servers = []
    monkeypatch.setattr(
        scene4d.splat.viewer, "serve_splats", lambda *args: servers.append(serve_splats(*args)) or servers[-1]
    )

    def interrupt(seconds):
        raise KeyboardInterrupt  # Ctrl-C at the serving loop's first wait

    monkeypatch.setattr("scene4d.cli.time", SimpleNamespace(sleep=interrupt))
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        result = CliRunner().invoke(app, ["view", str(tmp_path / "scene.ply"), "--port", str(port)])
    assert result.exit_code == 0, result.output
    printed = int(re.search(r"Gaussians at http://127\.0\.0\.1:(\d+)", result.output).group(1))
    assert printed == servers[0].get_port() != port
