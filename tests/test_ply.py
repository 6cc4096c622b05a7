import numpy as np
import pytest
import torch
from plyfile import PlyData, PlyElement

from scene4d.errors import Scene4DError
from scene4d.io.ply import load_ply, ply_rasterize_mode, save_ply


def random_splats(num=7, rest=15):
    return {
        "means": torch.randn(num, 3), "quats": torch.randn(num, 4), "scales": torch.randn(num, 3),
        "opacities": torch.randn(num), "sh0": torch.randn(num, 1, 3), "shN": torch.randn(num, rest, 3),
    }  # fmt: skip


@pytest.mark.parametrize(("num", "rest"), [(7, 15), (7, 0), (0, 15), (0, 0)])  # none left after pruning too
def test_round_trip(tmp_path, num, rest):
    splats = random_splats(num, rest)
    save_ply(tmp_path / "s.ply", splats)
    loaded = load_ply(tmp_path / "s.ply")
    for name, tensor in splats.items():
        torch.testing.assert_close(loaded[name], tensor, msg=name)


def test_the_rasterize_mode_travels_in_a_header_comment(tmp_path):
    splats = random_splats()
    save_ply(tmp_path / "aa.ply", splats, "antialiased")
    save_ply(tmp_path / "plain.ply", splats)
    assert ply_rasterize_mode(tmp_path / "aa.ply") == "antialiased"
    assert ply_rasterize_mode(tmp_path / "plain.ply") == "classic"  # as files from other tools
    assert PlyData.read(str(tmp_path / "aa.ply")).comments == ["scene4d rasterize_mode antialiased"]
    loaded = load_ply(tmp_path / "aa.ply")
    for name, tensor in splats.items():
        torch.testing.assert_close(loaded[name], tensor, msg=name)


def test_reads_the_inria_channel_major_rest_layout(tmp_path):
    # Written field by field as the INRIA exporter does: f_rest_0..2 are the red coefficients
    # of bands 1..3 (for degree 1), f_rest_3..5 the green ones, f_rest_6..8 the blue ones.
    names = ["x", "y", "z", "nx", "ny", "nz", "f_dc_0", "f_dc_1", "f_dc_2", *(f"f_rest_{i}" for i in range(9)),
             "opacity", "scale_0", "scale_1", "scale_2", "rot_0", "rot_1", "rot_2", "rot_3"]  # fmt: skip
    vertex = np.zeros(1, dtype=[(n, "f4") for n in names])
    for i in range(9):
        vertex[f"f_rest_{i}"] = i
    vertex["rot_0"] = 1.0
    PlyData([PlyElement.describe(vertex, "vertex")]).write(str(tmp_path / "inria.ply"))
    splats = load_ply(tmp_path / "inria.ply")
    assert splats["shN"].shape == (1, 3, 3)
    assert splats["shN"][0, :, 0].tolist() == [0, 1, 2]  # red, bands 1..3
    assert splats["shN"][0, 1, :].tolist() == [1, 4, 7]  # second coefficient, r g b
    assert splats["quats"][0].tolist() == [1, 0, 0, 0]


def test_missing_fields_and_missing_files_raise(tmp_path):
    vertex = np.zeros(2, dtype=[("x", "f4"), ("y", "f4"), ("z", "f4")])
    PlyData([PlyElement.describe(vertex, "vertex")]).write(str(tmp_path / "points.ply"))
    with pytest.raises(Scene4DError, match="missing fields f_dc_0"):
        load_ply(tmp_path / "points.ply")
    with pytest.raises(Scene4DError, match="not found"):
        load_ply(tmp_path / "nothing.ply")
    (tmp_path / "garbage.ply").write_bytes(b"ply\nformat nonsense\n")
    with pytest.raises(Scene4DError, match="cannot read"):
        load_ply(tmp_path / "garbage.ply")


@pytest.mark.parametrize("rest", [3, 6, 48])
def test_rest_fields_that_make_no_sh_degree_are_refused(tmp_path, rest):
    names = ["x", "y", "z", "f_dc_0", "f_dc_1", "f_dc_2", *(f"f_rest_{i}" for i in range(rest)), "opacity",
             *(f"scale_{i}" for i in range(3)), *(f"rot_{i}" for i in range(4))]  # fmt: skip
    vertex = np.zeros(2, dtype=[(name, "f4") for name in names])
    PlyData([PlyElement.describe(vertex, "vertex")]).write(str(tmp_path / "odd.ply"))
    with pytest.raises(Scene4DError, match=f"{rest} f_rest fields; SH of degree 0-3 have 0, 9, 24, 45"):
        load_ply(tmp_path / "odd.ply")
