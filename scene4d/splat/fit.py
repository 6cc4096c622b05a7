"""Fitting 3D Gaussian splats to a Clip (3DGS, Kerbl et al. 2023).

The loop is a readable function: render one training view, the photometric loss of DimensionX
eq. 3 (L1 + D-SSIM, and LPIPS when its local weights are given, with per-pixel confidence,
optional masks), Adam with per-parameter learning rates, gsplat's ``DefaultStrategy`` for
densification (clone/split by view-space gradient, for static scenes the summed absolute
per-pixel gradients of AbsGS; prune by opacity and size; opacity resets),
and an SH degree raised in steps. Checkpoints are written atomically, so a run can resume after
a crash or Ctrl-C.
"""

import math
from collections.abc import Callable
from dataclasses import asdict, dataclass, replace
from pathlib import Path

import numpy as np
import torch
from torch import Tensor

from scene4d.errors import Scene4DError
from scene4d.eval.lpips import load_lpips, lpips_files
from scene4d.geometry import Cameras
from scene4d.geometry.bounds import optical_axes_centre
from scene4d.io import Clip
from scene4d.io.checkpoints import load_checkpoint, save_checkpoint
from scene4d.splat.losses import depth_loss, photometric_loss
from scene4d.splat.projection import SH_C0
from scene4d.splat.pseudo_view import OPAQUE, camera_between, warp_loss
from scene4d.splat.rasterize import backend_device, check_rasterize_mode, rasterize

SPLAT_NAMES = ("means", "quats", "scales", "opacities", "sh0", "shN")
Splats = dict[str, Tensor]


@dataclass(frozen=True)
class FitConfig:
    iterations: int = 3000
    sh_degree: int = 3
    sh_interval: int = 500  # raise the SH degree by one every this many steps
    ssim_weight: float = 0.2
    depth_weight: float = 0.0  # weight of the relative depth error on frames whose Clip carries depth
    pseudo_view_weight: float | None = None  # warp loss of views between cameras (splat.pseudo_view); None: settled
    lpips_weight: float = 0.0  # weight of LPIPS in eq. 3 (DimensionX); needs lpips_weights
    lpips_weights: str | None = None  # folder with the LPIPS weight files (eval.lpips.load_lpips)
    init_points: int = 20_000
    triangulate: bool = True  # no depth and no points: start from matches triangulated at the cameras
    init_opacity: float = 0.1
    lr_means: float = 1.6e-4  # times the scene scale, decayed exponentially to lr_means_final
    lr_means_final: float = 1.6e-6
    lr_scales: float = 5e-3
    lr_quats: float = 1e-3
    lr_opacities: float = 5e-2
    lr_sh0: float = 2.5e-3
    lr_shN: float = 2.5e-3 / 20  # noqa: N815 -- gsplat's parameter name
    refine_start: int = 300
    refine_every: int = 100
    refine_stop_fraction: float = 0.7  # densify until this fraction of the iterations
    reset_every: int = 3000  # opacity reset period
    absgrad: bool | None = None  # densify by AbsGS's absolute per-pixel gradients; None: static fits only
    grow_grad2d: float | None = None  # densification threshold; None: gsplat's 8e-4 with absgrad, else 2e-4
    max_gaussians: int = 60_000  # budget: past it, the least opaque Gaussians are pruned after densifying
    background: tuple[float, float, float] = (0.0, 0.0, 0.0)  # for renders and metrics
    random_background: bool = True  # train against a random colour per step, so coverage must be opaque
    checkpoint_every: int = 500
    seed: int = 0
    backend: str = "auto"
    rasterize_mode: str = "antialiased"  # rasterize(): Mip-Splatting's 2D filter, or classic 3DGS

    def __post_init__(self) -> None:
        if self.iterations < 1:
            raise Scene4DError(f"iterations must be at least 1, got {self.iterations}")
        if not 0 <= self.sh_degree <= 3:
            raise Scene4DError(f"SH degree must be 0-3, got {self.sh_degree}")
        backend_device(self.backend)  # an unknown backend, or gsplat without CUDA, fails before any work
        check_rasterize_mode(self.rasterize_mode)
        if self.depth_weight < 0:
            raise Scene4DError(f"depth weight must be non-negative, got {self.depth_weight}")
        if self.pseudo_view_weight is not None and self.pseudo_view_weight < 0:
            raise Scene4DError(f"pseudo-view weight must be non-negative, got {self.pseudo_view_weight}")
        if self.init_points < 4:
            raise Scene4DError(f"init_points must be at least 4, got {self.init_points}")
        check_lpips(self.lpips_weight, self.lpips_weights)


def settled(config: FitConfig, dynamic: bool) -> FitConfig:
    """``config`` with what it leaves open (None) settled for a static or a 4D fit (BENCHMARKS.md):

    - densification: AbsGS for static fits and the plain gradient for 4D ones (AbsGS raised held-out
      PSNR on static scenes and lowered it on the 4D ones), at gsplat's threshold for that choice
      (8e-4 with AbsGS, 2e-4 without);
    - the pseudo-view weight: 0.5 for 4D fits (from 4 cameras it raised held-out PSNR on every scene
      measured, at about 1.5x the time), off for static ones (from 40 views: no gain, 3.4x the time).
    """
    absgrad = not dynamic if config.absgrad is None else config.absgrad
    threshold = (8e-4 if absgrad else 2e-4) if config.grow_grad2d is None else config.grow_grad2d
    pseudo_view_weight = (0.5 if dynamic else 0.0) if config.pseudo_view_weight is None else config.pseudo_view_weight
    return replace(config, absgrad=absgrad, grow_grad2d=threshold, pseudo_view_weight=pseudo_view_weight)


def check_lpips(weight: float, folder: str | None) -> None:
    """Raise unless ``weight`` is 0, or positive with ``folder`` holding the LPIPS weight files."""
    if weight < 0:
        raise Scene4DError(f"LPIPS weight must be non-negative, got {weight}")
    if weight > 0 and folder is None:
        raise Scene4DError("an LPIPS weight needs the folder of LPIPS weights (--lpips-weights)")
    if weight > 0:
        lpips_files(Path(folder))


def sh_degree_of(splats: Splats) -> int:
    """The SH degree stored in ``splats`` ((degree + 1)^2 coefficients in sh0 and shN)."""
    return int(round(math.sqrt(1 + splats["shN"].shape[1]))) - 1


def render_splats(
    splats: Splats, cameras: Cameras, background: Tensor | None = None, backend: str = "auto",
    mode: str = FitConfig.rasterize_mode,
) -> tuple[Tensor, Tensor, Tensor]:  # fmt: skip
    """RGB [C, H, W, 3], alpha [C, H, W] and depth [C, H, W] of ``splats`` seen by each camera, without
    gradients, in the rasterize ``mode`` they were fitted with; rendered on the ``backend``'s device
    (``backend_device``) and returned on the CPU."""
    device = backend_device(backend)
    splats = {name: value.to(device) for name, value in splats.items()}
    cameras = cameras.to(device)  # rasterize moves the background to the Gaussians' device
    colors = torch.cat([splats["sh0"], splats["shN"]], dim=1)
    outputs = []
    with torch.no_grad():
        for index in range(len(cameras)):
            result = rasterize(
                splats["means"], splats["quats"], splats["scales"], splats["opacities"], colors,
                cameras[index], background, sh_degree=sh_degree_of(splats), backend=backend, mode=mode,
            )  # fmt: skip
            outputs.append((result.rgb.cpu(), result.alpha.cpu(), result.depth.cpu()))
    return tuple(torch.cat(parts) for parts in zip(*outputs, strict=True))


def scene_geometry(cameras: Cameras) -> tuple[float, float, float]:
    """(scene scale, near, far) from the cameras alone.

    Where the optical axes converge (an orbit), the distance to that point sets the depth range;
    a forward-facing rig falls back to the camera spread. The scale follows gsplat (1.1x the
    largest distance of a camera from their mean), floored at a quarter of the viewing distance.
    """
    centres = cameras.centers
    spread = 1.1 * float((centres - centres.mean(dim=0)).norm(dim=-1).max())
    focus = optical_axes_centre(cameras.c2w)
    distance = float((focus - centres).norm(dim=-1).median()) if focus is not None else max(spread, 1.0)
    return max(spread, 0.25 * distance), 0.2 * distance, 5.0 * distance


def initial_points(
    clip: Clip, count: int, generator: torch.Generator, triangulate: bool = True
) -> tuple[Tensor, Tensor]:
    """``count`` points [P, 3] and colours [P, 3] to start the Gaussians from: pixels unprojected at
    the Clip's depth when it has depth; else its SfM points (``sfm_points``), or when it has none
    (and ``triangulate``) matches triangulated at its cameras (``triangulated_points``), topped up
    from pixels (``pixel_points``) when they are fewer than ``count``, as a few hundred usually are."""
    if clip.depth is not None:
        return pixel_points(clip, count, generator)
    if clip.points is None and triangulate:
        clip = triangulated_points(clip)
    if clip.points is None:
        return pixel_points(clip, count, generator)
    points, colors = sfm_points(clip, count, generator)
    if len(points) == count:
        return points, colors
    more_points, more_colors = pixel_points(clip, count - len(points), generator)
    return torch.cat([points, more_points]), torch.cat([colors, more_colors])


def triangulated_points(clip: Clip) -> Clip:
    """``clip`` with sparse points triangulated from COLMAP's matches at its own cameras
    (``curate.sfm.triangulate_known_cameras``); none when nothing matches. When its frames span
    several times, objects may move between them: its masked pixels, dilated as for masked SfM,
    give no features, and without masks nothing is triangulated."""
    from scene4d.curate.masks import MaskConfig, sfm_mask
    from scene4d.curate.sfm import triangulate_known_cameras

    moving = None
    if len(np.unique(clip.times)) > 1:
        if clip.masks is None:
            return clip
        moving = sfm_mask(clip.masks, MaskConfig().dilate)
    points, colors = triangulate_known_cameras(clip.frames, clip.cameras, moving)
    return replace(clip, points=points, point_colors=colors)


def pixel_points(clip: Clip, count: int, generator: torch.Generator) -> tuple[Tensor, Tensor]:
    """Points [P, 3] and colours [P, 3] at random pixels: unprojected from the Clip's depth when it has
    depth; else from two-view stereo depth (``curate.stereo``) where the views fix it, at the far bound
    where stereo finds the pixel too far to measure, and at random depths (uniform in inverse depth
    between near and far) along the other pixels' rays."""
    frames = torch.from_numpy(clip.frames)
    frame = torch.randint(len(clip), (count,), generator=generator)
    row = torch.randint(clip.height, (count,), generator=generator)
    col = torch.randint(clip.width, (count,), generator=generator)
    if clip.depth is not None:
        depth = torch.from_numpy(clip.depth)[frame, row, col]
        depth = torch.where(depth > 0, depth, torch.full_like(depth, torch.nan))  # no surface measured
    else:
        from scene4d.curate.stereo import stereo_depth

        _, near, far = scene_geometry(clip.cameras)
        inverse = torch.rand(count, generator=generator) * (1 / near - 1 / far) + 1 / far
        measured = torch.from_numpy(stereo_depth(clip))[frame, row, col]
        measured = torch.where(torch.isinf(measured), far, measured)  # too far to measure: the far bound
        depth = torch.where(torch.isnan(measured), 1 / inverse, measured)
    pixels = torch.stack([col + 0.5, row + 0.5], dim=-1).float()
    cameras = clip.cameras
    points = torch.cat([cameras[int(f)].unproject(pixels[frame == f][None], depth[frame == f][None].float())[0]
                        for f in range(len(clip))])  # fmt: skip
    colors = torch.cat([frames[f, row[frame == f], col[frame == f]] for f in range(len(clip))])
    return points, colors


def sfm_points(clip: Clip, count: int, generator: torch.Generator) -> tuple[Tensor, Tensor]:
    """The Clip's sparse points [P, 3] and colours [P, 3] (3DGS starts from COLMAP's), ``count`` of
    them drawn at random when there are more."""
    points, colors = torch.from_numpy(clip.points), torch.from_numpy(clip.point_colors)
    if len(points) > count:
        keep = torch.randperm(len(points), generator=generator)[:count]
        points, colors = points[keep], colors[keep]
    return points, colors


def initial_splats(clip: Clip, config: FitConfig) -> Splats:
    """Gaussians at the initial points: isotropic with the mean distance to their 3 nearest neighbours,
    random rotations, ``init_opacity``, SH DC from the pixel colour and zero higher bands."""
    from scipy.spatial import cKDTree

    generator = torch.Generator().manual_seed(config.seed)
    points, colors = initial_points(clip, config.init_points, generator, config.triangulate)
    valid = torch.isfinite(points).all(dim=-1)
    points, colors = points[valid], colors[valid]
    if points.shape[0] < 4:
        raise Scene4DError("empty point cloud: the clip's depth maps give no valid points (zero or non-finite depth)")
    distances, _ = cKDTree(points.numpy()).query(points.numpy(), k=4)
    spacing = torch.from_numpy(distances[:, 1:].mean(axis=1)).float().clamp(min=1e-4)
    count = points.shape[0]
    quats = torch.randn(count, 4, generator=generator)
    return {
        "means": points,
        "quats": quats / quats.norm(dim=-1, keepdim=True),
        "scales": torch.log(spacing)[:, None].repeat(1, 3),
        "opacities": torch.full((count,), math.log(config.init_opacity / (1 - config.init_opacity))),
        "sh0": ((colors - 0.5) / SH_C0)[:, None, :],
        "shN": torch.zeros(count, (config.sh_degree + 1) ** 2 - 1, 3),
    }


def learning_rates(config: FitConfig, scene_scale: float) -> dict[str, float]:
    return {
        "means": config.lr_means * scene_scale, "scales": config.lr_scales, "quats": config.lr_quats,
        "opacities": config.lr_opacities, "sh0": config.lr_sh0, "shN": config.lr_shN,
    }  # fmt: skip


class Trainer:
    """The state of one fit: parameters, Adam optimizers, the densification strategy and the step,
    on the device of the configured backend (``backend_device``: CUDA for gsplat)."""

    def __init__(self, splats: Splats, config: FitConfig, scene_scale: float, step: int = 0) -> None:
        from gsplat.strategy import DefaultStrategy

        self.config, self.step, self.scene_scale = config, step, scene_scale
        self.clip_digest: str | None = None  # of the clip trained on (run_training); a checkpoint records it
        self.device = backend_device(config.backend)
        self.params = torch.nn.ParameterDict(
            {name: torch.nn.Parameter(splats[name].to(self.device, copy=True)) for name in SPLAT_NAMES}
        )
        rates = learning_rates(config, scene_scale)
        self.optimizers = {
            name: torch.optim.Adam([param], lr=rates[name], eps=1e-15, fused=True)
            for name, param in self.params.items()
        }
        self.strategy = DefaultStrategy(
            refine_start_iter=config.refine_start,
            refine_stop_iter=int(config.refine_stop_fraction * config.iterations),
            refine_every=config.refine_every,
            reset_every=config.reset_every,
            grow_grad2d=config.grow_grad2d,
            absgrad=config.absgrad,
            verbose=False,
        )
        self.strategy.check_sanity(self.params, self.optimizers)
        self.strategy_state = self.strategy.initialize_state(scene_scale=scene_scale)
        self.lpips = None if config.lpips_weight == 0 else load_lpips(Path(config.lpips_weights)).to(self.device)

    def means_lr(self) -> float:
        """Exponential decay of the position learning rate from ``lr_means`` to ``lr_means_final``."""
        fraction = min(self.step / self.config.iterations, 1.0)
        ratio = self.config.lr_means_final / self.config.lr_means
        return self.config.lr_means * self.scene_scale * ratio**fraction

    def gaussians_at(self, time: float) -> tuple[Tensor, Tensor, Tensor]:
        """Means, quaternions and log-scales to render at ``time``: the parameters themselves (static)."""
        return self.params["means"], self.params["quats"], self.params["scales"]

    def densify(self, info: dict) -> None:
        """gsplat's densification step, with its random split samples drawn from a generator seeded by
        (seed, step), so that a resumed fit repeats them; then the Gaussian budget; then the periodic
        opacity reset, which gsplat 1.5.3 never runs (its test ``step % reset_every == 0 & step > 0``
        is always false; a reset twice is the same as once)."""
        from gsplat.strategy.ops import reset_opa

        with torch.random.fork_rng(devices=[self.device] if self.device.type == "cuda" else []):
            torch.manual_seed(self.config.seed * 1_000_033 + self.step)
            self.strategy.step_post_backward(self.params, self.optimizers, self.strategy_state, self.step, info)
        self.enforce_budget()  # before a reset, which leaves the opacities it would rank tied
        if 0 < self.step < self.strategy.refine_stop_iter and self.step % self.config.reset_every == 0:
            reset_opa(self.params, self.optimizers, self.strategy_state, value=2 * self.strategy.prune_opa)

    def enforce_budget(self) -> None:
        """Prune the least opaque Gaussians beyond ``max_gaussians``: CPU time per step grows with
        the count, and gsplat's ``DefaultStrategy`` has no cap of its own."""
        from gsplat.strategy.ops import remove

        excess = self.params["means"].shape[0] - self.config.max_gaussians
        if excess <= 0:
            return
        drop = torch.zeros(self.params["means"].shape[0], dtype=torch.bool, device=self.device)
        drop[torch.topk(self.params["opacities"].detach(), excess, largest=False).indices] = True
        remove(self.params, self.optimizers, self.strategy_state, drop)

    def training_background(self) -> Tensor:
        """The configured background, or a colour drawn from (seed, step) so that resuming repeats it."""
        if not self.config.random_background:
            return torch.tensor(self.config.background, device=self.device)
        generator = torch.Generator().manual_seed(self.config.seed * 7_919 + self.step)
        return torch.rand(3, generator=generator).to(self.device)

    def step_extra_optimizers(self) -> None:
        """Step optimizers beyond the per-splat ones (none for a static scene)."""

    def train_step(
        self, camera: Cameras, target: Tensor, confidence: Tensor | None, mask: Tensor | None, time: float = 0.0,
        target_depth: Tensor | None = None, virtual: Cameras | None = None,
    ) -> float:  # fmt: skip
        """One optimisation step on one view: render, loss (photometric, plus ``depth_weight`` times
        the depth error when ``target_depth`` [1, H, W] is given, plus ``pseudo_view_weight`` times
        the warp loss of the ``virtual`` camera when given), backward, Adam, densification.
        The inputs live on ``self.device`` (``run_training`` puts a clip's there once)."""
        sh_degree = min(self.step // self.config.sh_interval, self.config.sh_degree)
        params = self.params
        colors = torch.cat([params["sh0"], params["shN"]], dim=1)
        background = self.training_background()
        means, quats, scales = self.gaussians_at(time)
        result = rasterize(
            means, quats, scales, params["opacities"], colors, camera, background,
            sh_degree=sh_degree, backend=self.config.backend, mode=self.config.rasterize_mode,
            absgrad=self.config.absgrad,
        )  # fmt: skip
        loss = photometric_loss(
            result.rgb, target, self.config.ssim_weight, confidence, mask, self.config.lpips_weight, self.lpips
        )
        if target_depth is not None and self.config.depth_weight > 0:
            loss = loss + self.config.depth_weight * depth_loss(result.depth, result.alpha, target_depth, mask)
        if virtual is not None and self.config.pseudo_view_weight:
            seen = rasterize(
                means, quats, scales, params["opacities"], colors, virtual, background,
                sh_degree=sh_degree, backend=self.config.backend, mode=self.config.rasterize_mode,
            )  # fmt: skip
            depth = result.depth[0].detach() * (result.alpha[0].detach() > OPAQUE)  # where the render has a surface
            warped = warp_loss(seen.rgb, seen.depth, camera, virtual, depth, target)
            loss = loss + self.config.pseudo_view_weight * warped
        if not bool(torch.isfinite(loss)):
            raise_diverged(self.step, ["loss"])
        self.strategy.step_pre_backward(params, self.optimizers, self.strategy_state, self.step, result.info)
        loss.backward()
        self.optimizers["means"].param_groups[0]["lr"] = self.means_lr()
        for optimizer in self.optimizers.values():
            optimizer.step()
            optimizer.zero_grad(set_to_none=True)
        self.step_extra_optimizers()
        self.densify(result.info)
        self.step += 1
        return float(loss.detach())

    def splats(self) -> Splats:
        """The parameters, detached, on the CPU; an error where the fit diverged (non-finite values)."""
        splats = {name: param.detach().to("cpu", copy=True) for name, param in self.params.items()}
        check_finite(splats, self.step)
        return splats

    def save(self, folder: Path) -> None:
        """Parameters, Adam moments and strategy statistics, atomically."""
        tensors = {f"params/{name}": param for name, param in self.params.items()}
        steps = {}
        for name, optimizer in self.optimizers.items():
            moments = optimizer.state.get(self.params[name], {})
            for key in ("exp_avg", "exp_avg_sq"):
                if key in moments:
                    tensors[f"adam/{name}/{key}"] = moments[key]
            steps[name] = float(moments["step"]) if "step" in moments else 0.0
        for key, value in self.strategy_state.items():
            if isinstance(value, Tensor):
                tensors[f"strategy/{key}"] = value
        state = {
            "step": self.step, "scene_scale": self.scene_scale, "adam_steps": steps, "config": asdict(self.config),
            "clip": self.clip_digest,
        }  # fmt: skip
        tensors = {**tensors, **self.extra_tensors()}
        check_finite(tensors, self.step)  # a diverged fit never replaces the last good checkpoint
        save_checkpoint(folder, tensors, {**state, **self.extra_state()})

    def extra_tensors(self) -> dict[str, Tensor]:
        """Checkpoint tensors beyond the splats (none for a static scene)."""
        return {}

    def extra_state(self) -> dict:
        """Checkpoint state beyond the step and settings (none for a static scene)."""
        return {}

    def restore(self, tensors: dict[str, Tensor], state: dict) -> None:
        """Load the Adam moments and strategy statistics written by ``save``."""
        for name, optimizer in self.optimizers.items():
            if f"adam/{name}/exp_avg" in tensors:
                optimizer.state[self.params[name]] = {
                    "step": torch.tensor(state["adam_steps"][name], device=self.params[name].device),
                    "exp_avg": tensors[f"adam/{name}/exp_avg"].to(self.device),
                    "exp_avg_sq": tensors[f"adam/{name}/exp_avg_sq"].to(self.device),
                }
        for key in list(self.strategy_state):
            if f"strategy/{key}" in tensors:
                self.strategy_state[key] = tensors[f"strategy/{key}"].to(self.device)


def check_finite(tensors: dict[str, Tensor], step: int) -> None:
    """Raise (``raise_diverged``) where a floating-point tensor holds NaN or infinity."""
    bad = [name for name, value in tensors.items() if value.is_floating_point() and not bool(value.isfinite().all())]
    if bad:
        raise_diverged(step, bad)


def raise_diverged(step: int, names: list[str]) -> None:
    raise Scene4DError(
        f"the fit diverged at step {step} ({', '.join(names[:3])} not finite); "
        "its last good checkpoint, if any, is kept"
    )


def clip_digest(clip: Clip) -> str:
    """A fingerprint (SHA-1) of what a fit learns from: the frames, cameras, times and depth of ``clip``."""
    import hashlib

    digest = hashlib.sha1()
    arrays = [clip.frames, clip.cameras.K.numpy(), clip.cameras.w2c.numpy(), clip.times]
    for array in arrays + ([] if clip.depth is None else [clip.depth]):
        digest.update(np.ascontiguousarray(array).tobytes())
    return digest.hexdigest()


def fitted_to(folder: Path, clip: Clip) -> bool:
    """Whether the checkpoint ``folder`` records ``clip`` as the clip it was fitted to."""
    import json

    state = folder / "state.json"
    return state.is_file() and json.loads(state.read_text()).get("clip") == clip_digest(clip)


def read_checkpoint(folder: Path, config: FitConfig, clip: Clip) -> tuple[Splats, dict[str, Tensor], dict]:
    """Splats, all tensors and the state of a checkpoint that was made with ``config`` on ``clip``."""
    import json

    tensors, state = load_checkpoint(folder)
    if state["config"] != json.loads(json.dumps(asdict(config))):
        raise Scene4DError(f"checkpoint {folder} was made with other settings; use another --out or the same options")
    if "clip" not in state:
        raise Scene4DError(f"checkpoint {folder} is from an earlier scene4d that did not record its clip; delete it")
    if state["clip"] != clip_digest(clip):
        raise Scene4DError(f"checkpoint {folder} was fitted to another clip; use another --out")
    return {name: tensors[f"params/{name}"] for name in SPLAT_NAMES}, tensors, state


def fit_gaussians(
    clip: Clip,
    config: FitConfig,
    checkpoint: Path | None = None,
    confidence: np.ndarray | None = None,  # [T, H, W] per-pixel confidence (eq. 3)
    mask: np.ndarray | None = None,  # [T, H, W] 1 = supervise
    on_step: Callable[[int, float], None] | None = None,
) -> Splats:
    """Fit 3D Gaussians to every frame of ``clip`` (all treated as one static scene).

    With ``checkpoint``, resumes from it when present and refreshes it every
    ``checkpoint_every`` steps and at the end.
    """
    torch.manual_seed(config.seed)
    config = settled(config, dynamic=False)
    if checkpoint is not None and (checkpoint / "state.json").exists():
        splats, tensors, state = read_checkpoint(checkpoint, config, clip)
        trainer = Trainer(splats, config, state["scene_scale"], step=state["step"])
        trainer.restore(tensors, state)
    else:
        trainer = Trainer(initial_splats(clip, config), config, scene_geometry(clip.cameras)[0])
    run_training(trainer, clip, np.arange(len(clip)), checkpoint, confidence, mask, on_step)
    return trainer.splats()


def run_training(
    trainer: Trainer,
    clip: Clip,
    frame_indices: np.ndarray,
    checkpoint: Path | None,
    confidence: np.ndarray | None,
    mask: np.ndarray | None,
    on_step: Callable[[int, float], None] | None,
    until: int | None = None,
) -> None:
    """Step ``trainer`` up to ``until`` (default: the configured iterations), cycling through the
    given frames in a seeded random order per epoch; each frame is rendered at its clip time."""
    config, device = trainer.config, trainer.device
    trainer.clip_digest = clip_digest(clip)
    until = config.iterations if until is None else until
    frames, cameras = torch.from_numpy(clip.frames).to(device), clip.cameras.to(device)
    confidences = None if confidence is None else torch.from_numpy(np.asarray(confidence, np.float32)).to(device)
    masks = None if mask is None else torch.from_numpy(np.asarray(mask, np.float32)).to(device)
    depths = None
    if clip.depth is not None and config.depth_weight > 0:
        depths = torch.from_numpy(clip.depth).float().to(device)
    training_w2c = torch.unique(cameras.w2c, dim=0)  # distinct poses: where virtual views may lie between
    pseudo_views = bool(config.pseudo_view_weight) and len(training_w2c) > 1  # None: unsettled, off
    while trainer.step < until:
        epoch, position = divmod(trainer.step, len(frame_indices))
        order = torch.randperm(
            len(frame_indices), generator=torch.Generator().manual_seed(config.seed * 1_000_003 + epoch)
        )
        index = int(frame_indices[int(order[position])])
        virtual = None
        if pseudo_views:
            generator = torch.Generator().manual_seed(config.seed * 31 + trainer.step)
            virtual = camera_between(cameras[index], training_w2c, generator)
        loss = trainer.train_step(
            cameras[index], frames[index][None],
            None if confidences is None else confidences[index][None], None if masks is None else masks[index][None],
            time=float(clip.times[index]), target_depth=None if depths is None else depths[index][None],
            virtual=virtual,
        )  # fmt: skip
        if on_step is not None:
            on_step(trainer.step, loss)
        if checkpoint is not None and (trainer.step % config.checkpoint_every == 0 or trainer.step == until):
            trainer.save(checkpoint)
