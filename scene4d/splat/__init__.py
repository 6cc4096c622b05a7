"""Gaussian splatting: projection, rasterization (cpu / gsplat / torch), 3DGS and 4DGS fitting."""
