"""The ``scene4d`` command: thin wrappers that parse arguments and call the library."""

import functools
import json
import re
import shutil
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn
from rich.table import Table

from scene4d.errors import Scene4DError

if TYPE_CHECKING:
    from scene4d.io import Clip
    from scene4d.splat.fit import FitConfig

app = typer.Typer(
    help="scene4d: 3D and 4D scenes from images with camera- and time-controllable video diffusion.",
    no_args_is_help=True,
    add_completion=False,
    rich_markup_mode="markdown",  # joins a docstring's wrapped lines; `code` is highlighted
    pretty_exceptions_enable=False,
)
console = Console(stderr=True)
BACKEND_HELP = (
    "Rasterizer: auto (gsplat on the GPU where PyTorch sees CUDA and gsplat's CUDA extension builds, else cpu), "
    "cpu (compiled kernels), gsplat (CUDA) or torch (the slow plain reference)."
)
LPIPS_WEIGHT_HELP = "Weight of LPIPS in the loss (DimensionX eq. 3); 0 = off. Needs --lpips-weights."
LPIPS_WEIGHTS_HELP = (
    "Folder holding torchvision's alexnet-owt-7be5be79.pth and the lpips package's weights/v0.1/alex.pth "
    "(nothing is downloaded)."
)


train_app = typer.Typer(
    help="Train the VAE, the video model and LoRA directors.", no_args_is_help=True, rich_markup_mode="markdown"
)
app.add_typer(train_app, name="train")


def command_of(typer_app: typer.Typer) -> Callable[[Callable[..., Any]], Callable[..., Any]]:
    """A decorator registering commands of ``typer_app`` whose ``Scene4DError``s print as one line and exit 2."""

    def register(function: Callable[..., Any]) -> Callable[..., Any]:
        @functools.wraps(function)
        def run(*args: Any, **kwargs: Any) -> Any:
            try:
                return function(*args, **kwargs)
            except Scene4DError as error:
                typer.echo(f"error: {error}", err=True)
                raise typer.Exit(2) from None

        return typer_app.command()(run)

    return register


command = command_of(app)
train_command = command_of(train_app)


def progress_bar() -> Progress:
    return Progress(
        TextColumn("{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeRemainingColumn(),
        console=console,
    )


def clip_seed(seed: int, index: int) -> int:
    """An independent seed for clip ``index`` of a dataset made with ``seed``."""
    import numpy as np

    return int(np.random.SeedSequence([seed, index]).generate_state(1)[0])


@command
def synth(
    out: Annotated[Path, typer.Option(help="Folder that receives one Clip folder per clip (clip_00000, ...).")],
    kind: Annotated[str, typer.Option(help="spatial | temporal | hybrid | multiview-video.")] = "hybrid",
    num: Annotated[int, typer.Option(help="Number of clips to make.")] = 10,
    res: Annotated[int, typer.Option(help="Square frame size in pixels (16-1024).")] = 128,
    frames: Annotated[int, typer.Option(help="Frames per clip (times per view for multiview-video).")] = 16,
    views: Annotated[int, typer.Option(help="Cameras per multiview-video clip.")] = 4,
    trajectory: Annotated[
        str | None,
        typer.Option(
            help="Camera move for spatial/hybrid clips (see `scene4d trajectories`); random per clip when omitted."
        ),
    ] = None,
    speed: Annotated[
        float | None,
        typer.Option(
            help="Object motion scale (1 = about one scene unit per clip); random in [0.3, 1.5] when omitted."
        ),
    ] = None,
    supersample: Annotated[
        int, typer.Option(help="Anti-aliasing: s x s rays per pixel for RGB (depth and masks stay exact).")
    ] = 2,
    props: Annotated[
        int, typer.Option(help="Static background pillars per scene (depth variation, e.g. for testing SfM).")
    ] = 0,
    seed: Annotated[int, typer.Option(help="Dataset seed; the same seed gives the same clips.")] = 0,
) -> None:
    """Render synthetic Clips with exact cameras, depth, instance masks and motion strength.

    Resumable: clips already present in OUT are kept and skipped.
    """
    from scene4d.io import save_clip
    from scene4d.synth import SynthConfig, make_clip

    if num < 1:
        raise Scene4DError(f"--num must be at least 1, got {num}")
    config = SynthConfig(
        kind=kind,
        resolution=res,
        num_frames=frames,
        num_views=views,
        supersample=supersample,
        trajectory=trajectory,
        speed=speed,
        props=props,
    )
    existing = sorted(out.glob("clip_*/meta.json"))
    if existing and json.loads(existing[0].read_text()).get("config") != asdict(config):
        raise Scene4DError(f"{out} holds clips made with other settings ({existing[0].parent.name}); use another --out")
    todo = [index for index in range(num) if not (out / f"clip_{index:05d}").is_dir()]
    start = time.perf_counter()
    with progress_bar() as progress:
        task = progress.add_task(f"synth {kind}", total=num, completed=num - len(todo))
        for index in todo:
            save_clip(make_clip(config, clip_seed(seed, index)), out / f"clip_{index:05d}")
            progress.advance(task)
    elapsed = time.perf_counter() - start
    rate = f", {len(todo) / elapsed:.2f} clips/s" if todo else ""
    console.print(f"{len(todo)} new clips, {num - len(todo)} already present in {out}{rate}")


@command
def trajectories() -> None:
    """List the named camera trajectories, their default magnitudes and what they look like."""
    from scene4d.geometry import MOVES

    table = Table("name", "kind", "default", "what you see")
    for name, move in MOVES.items():
        unit = "units" if move.kind == "translate" else "deg"
        table.add_row(name, move.kind, f"{move.default_magnitude:g} {unit}", move.description)
    Console().print(table)


@command
def info(clip: Annotated[Path, typer.Argument(help="A Clip folder or any nerfstudio-style folder.")]) -> None:
    """Validate a Clip folder and summarise it."""
    from scene4d.io import load_clip

    loaded = load_clip(clip)
    table = Table("field", "value")
    table.add_row("frames", f"{len(loaded)} x {loaded.width}x{loaded.height}")
    table.add_row("times", f"{loaded.times.min():.3f} .. {loaded.times.max():.3f}")
    table.add_row("depth", "yes" if loaded.depth is not None else "no")
    table.add_row("instance masks", "yes" if loaded.masks is not None else "no")
    for key in ("kind", "trajectory", "motion_strength", "num_views", "num_times"):
        if key in loaded.meta:
            table.add_row(key, str(loaded.meta[key]))
    Console().print(table)


@command
def demo(
    out: Annotated[Path, typer.Option(help="Folder for the demo outputs: OUT/clip and OUT/scene.")] = Path(
        "outputs/demo"
    ),
    trajectory: Annotated[str, typer.Option(help="Camera move of the generated video.")] = "orbit-left",
    steps: Annotated[int, typer.Option(help="Denoising steps.")] = 25,
    iters: Annotated[int, typer.Option(help="3DGS optimisation steps.")] = 1000,
    seed: Annotated[int, typer.Option(help="Seed of the noise and of the 3DGS fit.")] = 0,
) -> None:
    """The main job on the shipped demo image: image -> 16-frame orbit video -> 3D Gaussians.

    The image (scene4d/assets/demo.png) is a render of a synth scene never used in training.
    """
    from importlib.resources import files

    from scene4d.io import load_clip
    from scene4d.splat.fit import fitted_to

    image = Path(str(files("scene4d") / "assets" / "demo.png"))

    generate([image], out / "clip", trajectory=trajectory, frames=16, steps=steps, seed=seed)
    clip, checkpoint = load_clip(out / "clip"), out / "scene" / "checkpoint"
    if checkpoint.is_dir() and not fitted_to(checkpoint, clip):  # a new clip (other options): fit it afresh
        shutil.rmtree(checkpoint)
    fit_scene(clip, out / "scene", iters, False, seed)
    console.print(f"open it: scene4d view {out / 'scene'}")


@command
def reconstruct(
    clip: Annotated[Path, typer.Argument(help="A Clip folder (or any nerfstudio folder) to lift into Gaussians.")],
    out: Annotated[Path, typer.Option(help="Output folder: scene.ply, orbit.mp4, metrics.json, checkpoint/.")],
    iters: Annotated[int, typer.Option(help="Optimisation steps (one training view per step).")] = 3000,
    dynamic: Annotated[
        bool, typer.Option(help="Fit deformable 4D Gaussians to frames with times (adds OUT/deformation/).")
    ] = False,
    warmup: Annotated[int, typer.Option(help="--dynamic: static steps before the deformation is trained.")] = 500,
    bake_times: Annotated[
        int, typer.Option(help="--dynamic: also write this many per-time snapshots OUT/times/T.TTT.ply.")
    ] = 0,
    sh_degree: Annotated[int, typer.Option(help="Spherical-harmonics degree of the colours (0-3).")] = 3,
    init_points: Annotated[
        int,
        typer.Option(
            help="Initial Gaussians: pixels unprojected with the clip's depth maps, else its SfM points "
            "(transforms.json's ply_file_path; at most this many), else SIFT matches triangulated at its "
            "cameras; topped up from two-view stereo depth."
        ),
    ] = 20_000,
    depth_weight: Annotated[
        float,
        typer.Option(
            help="Weight of the relative depth error on frames whose clip carries depth (synth, curate); 0 = off."
        ),
    ] = 0.0,
    pseudo_view_weight: Annotated[
        float | None,
        typer.Option(
            help="Weight of a warp loss on a virtual camera between each training view and a neighbour, against "
            "overfitting few cameras (1.5-3.4x the time per step); default 0.5 with --dynamic, else 0 (off)."
        ),
    ] = None,
    lpips_weight: Annotated[float, typer.Option(help=LPIPS_WEIGHT_HELP)] = 0.0,
    lpips_weights: Annotated[Path | None, typer.Option(help=LPIPS_WEIGHTS_HELP)] = None,
    backend: Annotated[str, typer.Option(help=BACKEND_HELP)] = "auto",
    rasterize_mode: Annotated[
        str,
        typer.Option(
            help="antialiased: Mip-Splatting's 2D filter with opacity compensation (gsplat's mode of that name; "
            "sharper on fine texture); classic: 3DGS's 0.3 px dilation, as other viewers render. Recorded in "
            "scene.ply for `scene4d render`."
        ),
    ] = "antialiased",
    skip_objects: Annotated[
        bool,
        typer.Option(
            help="Static fits: leave the clip's object masks (the potentially moving objects of `curate`, synth's "
            "instances), dilated as for SfM, out of the loss, to fit the scene behind moving people or cars."
        ),
    ] = False,
    seed: Annotated[int, typer.Option(help="Seed of the initialisation and the view order.")] = 0,
) -> None:
    """Fit 3D Gaussian splats (or, with --dynamic, deformable 4D Gaussians) to a Clip.

    3DGS with L1 + D-SSIM (+ LPIPS with local weights), densification and an SH schedule.
    Resumable: an interrupted run continues from OUT/checkpoint when given the same options.
    """
    from scene4d.io import load_clip
    from scene4d.splat.fit import FitConfig

    config = FitConfig(
        iterations=iters, sh_degree=sh_degree, init_points=init_points, depth_weight=depth_weight, backend=backend,
        seed=seed, lpips_weight=lpips_weight, lpips_weights=None if lpips_weights is None else str(lpips_weights),
        rasterize_mode=rasterize_mode, pseudo_view_weight=pseudo_view_weight,
    )  # fmt: skip
    loaded = load_clip(clip)
    mask = None
    if skip_objects:
        from scene4d.curate.masks import MaskConfig, sfm_mask

        if dynamic or loaded.masks is None:
            raise Scene4DError("--skip-objects fits a static scene to a clip with object masks (masks/)")
        mask = ~sfm_mask(loaded.masks, MaskConfig().dilate)
    fit_with_progress(loaded, out, config, warmup if dynamic else None, bake_times, mask=mask)


def fit_with_progress(
    clip: "Clip", out: Path, config: "FitConfig", warmup: int | None, bake_times: int = 0, confidence: Any = None,
    mask: Any = None,
) -> None:  # fmt: skip
    """3DGS (or 4DGS after ``warmup`` static steps, when given) with a progress bar and a summary line;
    ``confidence`` [T, H, W] weights the 3DGS loss per pixel, and only pixels where ``mask`` is 1 count."""
    from scene4d.splat.reconstruct import reconstruct_dynamic, reconstruct_static

    label = "3DGS" if warmup is None else "4DGS"
    with progress_bar() as progress:
        task = progress.add_task(f"{label}: initial points", total=config.iterations)  # until the first step

        def on_step(step: int, loss: float) -> None:
            progress.update(task, completed=step, description=f"{label} loss {loss:.4f}")

        if warmup is None:
            metrics = reconstruct_static(clip, out, config, on_step, confidence, mask)
        else:
            metrics = reconstruct_dynamic(clip, out, config, warmup, bake_times, on_step)
    console.print(
        f"{out / 'scene.ply'}: {metrics['gaussians']} Gaussians, training-view PSNR {metrics['train_psnr']:.2f} dB"
    )


@command
def render(
    scene: Annotated[
        Path,
        typer.Argument(
            help="A 3DGS .ply file, or a folder from `reconstruct` (4D when it holds `deformation/`, from --dynamic)."
        ),
    ],
    cameras: Annotated[Path, typer.Option(help="A nerfstudio transforms.json whose cameras to render.")],
    out: Annotated[Path, typer.Option(help="Folder that receives NNNN.png in frame order.")],
    time: Annotated[
        float | None,
        typer.Option(help="4D scenes: render every camera at this time in [0, 1] (default: each frame's own time)."),
    ] = None,
    backend: Annotated[str, typer.Option(help=BACKEND_HELP)] = "auto",
) -> None:
    """Render a Gaussian scene at every camera of a transforms.json (e.g. held-out views), in the
    rasterize mode recorded in its .ply (classic 3DGS for files from other tools)."""
    from PIL import Image

    from scene4d.io import load_cameras, load_ply, ply_rasterize_mode
    from scene4d.io.atomic import atomic_directory
    from scene4d.io.media import to_uint8
    from scene4d.splat.deform import load_deformation
    from scene4d.splat.rasterize import backend_device
    from scene4d.splat.reconstruct import render_frames

    if time is not None and not 0.0 <= time <= 1.0:
        raise Scene4DError(f"--time must lie in [0, 1], got {time}")
    if not scene.exists():
        raise Scene4DError(f"scene not found: {scene}")
    dynamic = (scene / "deformation").is_dir()
    if time is not None and not dynamic:
        raise Scene4DError(f"--time renders a 4D scene folder (with deformation/); {scene} is static")
    backend_device(backend)  # fails here, before any file is read, where the backend cannot run
    field = load_deformation(scene / "deformation") if dynamic else None
    ply = scene / "scene.ply" if scene.is_dir() else scene
    splats, mode = load_ply(ply), ply_rasterize_mode(ply)
    views, times = load_cameras(cameras)
    moments = [float(moment) for moment in times] if time is None else [time] * len(views)
    with atomic_directory(out, holds_only_renders) as staging, progress_bar() as progress:
        task = progress.add_task("render", total=len(views))
        for index, rgb in enumerate(render_frames(splats, field, views, moments, None, backend, mode)):
            Image.fromarray(to_uint8(rgb.numpy())).save(staging / f"{index:04d}.png")
            progress.advance(task)
    console.print(f"{len(views)} views rendered to {out}")


def holds_only_renders(folder: Path) -> bool:
    """Whether every file in ``folder`` but hidden ones is a frame ``render`` writes (NNNN.png)."""
    return all(
        re.fullmatch(r"\d{4,}\.png", path.name) and path.is_file() for path in folder.iterdir() if path.name[0] != "."
    )


@command
def view(
    scene: Annotated[Path, typer.Argument(help="A 3DGS .ply file, or a scene folder holding scene.ply.")],
    cameras: Annotated[
        Path | None,
        typer.Option(
            help="transforms.json whose first camera starts the view (default: cameras.json beside the .ply)."
        ),
    ] = None,
    host: Annotated[str, typer.Option(help="Address to serve on; the default serves this machine only.")] = "127.0.0.1",
    port: Annotated[
        int, typer.Option(help="Port of the viewer; the next free one when it is taken (the address is printed).")
    ] = 8080,
) -> None:
    """Open Gaussian splats in the browser (viser); Ctrl-C stops the server."""
    from scene4d.io import load_cameras, load_ply
    from scene4d.splat.viewer import serve_splats

    ply = scene / "scene.ply" if scene.is_dir() else scene
    splats = load_ply(ply)
    cameras = cameras or (ply.parent / "cameras.json" if (ply.parent / "cameras.json").exists() else None)
    first = load_cameras(cameras)[0][0] if cameras is not None else None
    server = serve_splats(splats, first, host, port)
    console.print(f"viewing {splats['means'].shape[0]} Gaussians at http://{host}:{server.get_port()} (Ctrl-C to stop)")
    try:
        while True:
            time.sleep(1.0)
    except KeyboardInterrupt:
        server.stop()


@command
def curate(
    videos: Annotated[
        Path, typer.Argument(help="Folder of videos (mp4, avi, mov, mkv) and/or folders of numbered frames.")
    ],
    out: Annotated[
        Path, typer.Option(help="Dataset folder: OUT/clips/VIDEO/ (VIDEO: the video's file name) and OUT/index.jsonl.")
    ],
    workers: Annotated[int, typer.Option(help="Videos curated in parallel (processes).")] = 1,
    shard: Annotated[
        str, typer.Option(help="Curate only shard i of n ('i/n', 0-based), for several machines.")
    ] = "0/1",
    masks: Annotated[
        Path | None,
        typer.Option(
            help="Folder of user masks: MASKS/NAME/NNNNN.png per source frame (NAME: the video's file name "
            "without its suffix; grey = instance id, 0 = static). Videos without one use --segmentation-model, "
            "else flow-based motion masks."
        ),
    ] = None,
    depth_model: Annotated[
        Path | None,
        typer.Option(
            help="Local transformers depth model (e.g. Depth-Anything-V2) aligned to SfM depth by GenXD eq. 2. "
            "Without it, depth is the nearest SfM point's (coarse: motion strength is less reliable)."
        ),
    ] = None,
    segmentation_model: Annotated[
        Path | None,
        typer.Option(
            help="Local transformers semantic segmentation model; pixels of movable classes (person, car, "
            "animal, ...) are masked out of SfM. Without it, masks come from optical flow (good for SfM, "
            "unreliable for motion labels: see BENCHMARKS.md)."
        ),
    ] = None,
    max_frames: Annotated[int, typer.Option(help="Frames kept per video.")] = 32,
    stride: Annotated[int, typer.Option(help="Keep every stride-th source frame (ignored with --fps).")] = 1,
    fps: Annotated[float | None, typer.Option(help="Sample videos at this frame rate instead of by stride.")] = None,
    size: Annotated[int, typer.Option(help="Longer side of the curated frames, pixels.")] = 256,
    focal: Annotated[
        float | None,
        typer.Option(help="Known focal length in pixels at --size (all videos); estimated by SfM when omitted."),
    ] = None,
    retry_failed: Annotated[
        bool, typer.Option(help="Curate again the videos OUT/index.jsonl records as failed (their new record counts).")
    ] = False,
) -> None:
    """Turn raw videos into labelled training Clips (cameras, depth, masks, motion strength).

    Per video: static-camera test on optical flow, potentially moving masks, masked SfM
    (pycolmap), depth aligned to the SfM points (GenXD eq. 2), object motion strength (eq. 3-4),
    and a label: spatial, temporal, hybrid or rejected. Resumable: videos already in
    OUT/index.jsonl are skipped. A video that cannot be read or registered is recorded with its
    reason and skipped; the command fails when every video of the run failed.
    """
    from scene4d.curate.frames import DecodeConfig
    from scene4d.curate.pipeline import CurateConfig, Models, check_workers, curate_sources, pending_sources

    check_workers(workers)  # before the progress bar starts, so that the error is one line
    models = Models(depth=depth_model, segmentation=segmentation_model)
    for option, folder in (
        ("--masks", masks),
        ("--depth-model", depth_model),
        ("--segmentation-model", segmentation_model),
    ):
        if folder is not None and not folder.is_dir():
            raise Scene4DError(f"{option}: no folder {folder}")
    config = CurateConfig(decode=DecodeConfig(stride=stride, fps=fps, max_frames=max_frames, size=size), focal_px=focal)
    todo, already = pending_sources(videos, out, parse_shard(shard), retry_failed)
    with progress_bar() as progress:
        task = progress.add_task("curate", total=len(todo))

        def done(record: dict[str, Any]) -> None:
            progress.advance(task)
            if record["status"] == "failed":
                progress.console.print(f"[yellow]{record['video']}: failed: {record['reason']}")

        records = curate_sources(todo, out, config, workers, masks, models, done)
    console.print(curation_table(records))
    console.print(f"index: {out / 'index.jsonl'} ({already} earlier videos skipped)")
    if records and all(record["status"] == "failed" for record in records):
        raise Scene4DError(f"every video failed ({records[0]['video']}: {records[0]['reason']})")


def parse_shard(text: str) -> tuple[int, int]:
    """'i/n' -> (i, n); raises ``Scene4DError`` for anything else."""
    try:
        part, parts = (int(v) for v in text.split("/"))
    except ValueError:
        raise Scene4DError(f"--shard must look like i/n (e.g. 0/4), got {text!r}") from None
    return part, parts


def curation_table(records: list[dict[str, Any]]) -> Table:
    """Counts per status and label of this run's videos."""
    table = Table(title="curation")
    table.add_column("outcome")
    table.add_column("videos", justify="right")
    outcomes: dict[str, int] = {}
    for record in records:
        key = record["label"] if record["status"] == "ok" else record["status"]
        outcomes[key] = outcomes.get(key, 0) + 1
    for key in ("spatial", "temporal", "hybrid", "rejected", "failed"):
        table.add_row(key, str(outcomes.get(key, 0)))
    table.add_row("total", str(len(records)))
    return table


@train_command
def vae(
    data: Annotated[Path, typer.Option(help="Folder of Clip folders (from `scene4d synth` or `scene4d curate`).")],
    out: Annotated[Path, typer.Option(help="Run folder: OUT/vae (the trained VAE) and OUT/checkpoint.")],
    steps: Annotated[int, typer.Option(help="Optimisation steps.")] = 1500,
    batch_size: Annotated[int, typer.Option(help="Images per step (half synth frames, half photo crops).")] = 32,
    res: Annotated[int, typer.Option(help="Square training image size in pixels (a multiple of 4, the VAE's).")] = 64,
    seed: Annotated[int, typer.Option(help="Seed of the data order and the initial weights.")] = 0,
) -> None:
    """Train the small VAE on synth frames and crops of scikit-image's shipped photos.

    Resumable: rerun the same command to continue from OUT/checkpoint.
    """
    from scene4d.models.vae import VAEConfig
    from scene4d.train.state import check_resolution
    from scene4d.train.vae import VAETrainConfig, train_vae

    config = VAETrainConfig(resolution=res, steps=steps, batch_size=batch_size, seed=seed)
    check_resolution(res, VAEConfig().downsample)  # before the progress bar, so that the error is one line
    with progress_bar() as progress:
        task = progress.add_task("vae", total=steps)
        train_vae(
            config,
            VAEConfig(),
            data,
            out,
            lambda step, loss: progress.update(task, completed=step, description=f"vae loss {loss:.4f}"),
        )
    console.print(f"VAE written to {out / 'vae'}")


@train_command
def model(
    data: Annotated[
        Path, typer.Option(help="Folder of Clip folders: spatial clips (3D) and hybrid/temporal clips (4D).")
    ],
    out: Annotated[Path, typer.Option(help="Run folder: OUT/model (the trained model) and OUT/checkpoint.")],
    vae: Annotated[
        Path | None,
        typer.Option(
            help="A trained VAE folder (OUT/vae of `scene4d train vae`); default: the VAE of --init, "
            "else the bundled model's."
        ),
    ] = None,
    init: Annotated[
        Path | None,
        typer.Option(
            help="Fine-tune: start from this model folder's denoiser (same preset and --res) and keep its "
            "VAE, motion scale, field of view and orbit distance; default: fresh weights."
        ),
    ] = None,
    preset: Annotated[str, typer.Option(help="Denoiser size: tiny (3.3M parameters) or small.")] = "tiny",
    steps: Annotated[int, typer.Option(help="Optimisation steps.")] = 3000,
    batch_size: Annotated[int, typer.Option(help="Samples per step (per device).")] = 4,
    res: Annotated[
        int,
        typer.Option(
            help="Square frame size in pixels the model is trained at (a multiple of the VAE's downsampling times "
            "the denoiser's patch: 8 with the bundled VAE)."
        ),
    ] = 64,
    lr: Annotated[float, typer.Option(help="AdamW learning rate (after a 100-step warm-up).")] = 5e-4,
    device: Annotated[str, typer.Option(help="cpu or cuda; several GPUs with `accelerate launch -m scene4d`.")] = "cpu",
    seed: Annotated[int, typer.Option(help="Seed of the sampling of frames, conditions and noise.")] = 0,
    fraction_still: Annotated[
        float,
        typer.Option(
            help="Share of still 3D samples (one frame of a 3D clip repeated at its camera), so that "
            "--motion 0 with a still camera has been seen; the bundled model's recipe uses 0, then 0.1 to fine-tune."
        ),
    ] = 0.0,
) -> None:
    """Train the GenXD-style video model on Clips (3D and 4D) plus real photos under exact rotations.

    Each sample takes 8, 12 or 16 frames of a clip with 1-3 clean condition frames at random
    positions; the loss is masked flow matching; the EMA weights are saved. Resumable: rerun
    the same command to continue from OUT/checkpoint.
    """
    from scene4d.models.bundle import load_bundle, load_vae
    from scene4d.train.model import TrainConfig, train_model
    from scene4d.train.state import check_resolution

    if init is not None and vae is not None:
        raise Scene4DError("--init keeps the VAE of the model it starts from; leave out --vae")
    config = TrainConfig.for_preset(
        preset,
        resolution=res,
        steps=steps,
        batch_size=batch_size,
        learning_rate=lr,
        seed=seed,
        fraction_still=fraction_still,
        init_model=None if init is None else str(init),
    )
    codec = load_vae(vae) if vae is not None else load_bundle(init).vae
    check_resolution(res, codec.downsample * config.denoiser.patch_size)  # one line, before the progress bar
    with progress_bar() as progress:
        task = progress.add_task("model", total=steps)
        train_model(
            config,
            data,
            codec,
            out,
            device,
            lambda step, loss: progress.update(task, completed=step, description=f"model loss {loss:.4f}"),
        )
    console.print(f"model written to {out / 'model'}")


MODES = ("3d", "4d", "interp")
BACKBONES = ("scene4d-tiny", "cogvideox")
COGVIDEOX_FRAMES = 49  # CogVideoX-5b-I2V's video length
# Director recipe per backbone: rank, alpha, steps, batch. DimensionX: rank 256 for 3000 steps on CogVideoX,
# its files applied at alpha / rank = 1 / 256; the tiny model (width 128) takes a scaled-down recipe.
DIRECTOR_RECIPES = {"scene4d-tiny": (16, 16.0, 300, 4), "cogvideox": (256, 1.0, 3000, 1)}


@train_command
def director(
    kind: Annotated[
        str, typer.Option(help="spatial (an S-Director: camera moves, scene frozen) or temporal (a T-Director).")
    ],
    data: Annotated[
        Path, typer.Option(help="Folder of Clip folders; the clips of --kind (and --trajectory) are used.")
    ],
    out: Annotated[
        Path, typer.Option(help="The director file (.safetensors); its checkpoint goes to OUT.checkpoint/.")
    ],
    trajectory: Annotated[
        str | None, typer.Option(help="The camera move an S-Director learns (see `scene4d trajectories`).")
    ] = None,
    base: Annotated[
        Path | None, typer.Option(help="The model folder the director adapts (frozen); default: the bundled model.")
    ] = None,
    rank: Annotated[
        int | None,
        typer.Option(help="LoRA rank; default 16 on the tiny model, 256 on cogvideox (DimensionX's, width 3072)."),
    ] = None,
    alpha: Annotated[
        float | None,
        typer.Option(
            help="LoRA alpha, the update scaled by alpha / rank; default 16, on cogvideox 1 "
            "(DimensionX's files: 1 / rank)."
        ),
    ] = None,
    steps: Annotated[
        int | None,
        typer.Option(help="Optimisation steps; default 300 on the tiny model, 3000 on cogvideox (DimensionX's)."),
    ] = None,
    lr: Annotated[float, typer.Option(help="AdamW learning rate of the LoRA weights (DimensionX: 1e-3).")] = 1e-3,
    batch_size: Annotated[
        int | None, typer.Option(help="Samples per step; default 4 on the tiny model, 1 on cogvideox.")
    ] = None,
    seed: Annotated[int, typer.Option(help="Seed of the LoRA initialisation, the samples and the noise.")] = 0,
    backbone: Annotated[
        str, typer.Option(help="scene4d-tiny (the --base model folder) or cogvideox (CogVideoX-5b-I2V, CUDA).")
    ] = "scene4d-tiny",
    cogvideox: Annotated[
        str, typer.Option(help="cogvideox: a local folder or a cached diffusers id of the weights.")
    ] = "THUDM/CogVideoX-5b-I2V",
    prompt: Annotated[str, typer.Option(help="cogvideox: the text prompt of every training video.")] = "",
    frames: Annotated[
        int, typer.Option(help="cogvideox: frames per training video (8k + 1; not 49: RoPE extrapolated).")
    ] = COGVIDEOX_FRAMES,
    last_frame: Annotated[
        bool,
        typer.Option(
            help="cogvideox: condition on the last frame too, for an S-Director of a first-and-last-frame "
            "interpolation model (--cogvideox names it), as DimensionX's sparse-view directors."
        ),
    ] = False,
) -> None:
    """Train a LoRA director (DimensionX S-/T-Director) on a frozen base model.

    Resumable: rerun the same command to continue from OUT.checkpoint/.
    """
    from scene4d.train.director import DirectorTrainConfig

    if out.suffix != ".safetensors":
        raise Scene4DError(f"--out must name a .safetensors file, got {out}")
    if backbone not in BACKBONES:
        raise Scene4DError(f"--backbone must be one of {', '.join(BACKBONES)}, got {backbone!r}")
    if last_frame and backbone != "cogvideox":
        raise Scene4DError("--last-frame is for --backbone cogvideox: the scene4d model conditions on any frames")
    if base is not None and backbone == "cogvideox":
        raise Scene4DError("--base names a scene4d model; with --backbone cogvideox give --cogvideox")
    given = (rank, alpha, steps, batch_size)
    rank, alpha, steps, batch_size = (
        default if value is None else value for value, default in zip(given, DIRECTOR_RECIPES[backbone], strict=True)
    )
    config = DirectorTrainConfig(kind, trajectory, rank, alpha, steps, lr, batch_size, seed=seed)
    if backbone == "cogvideox":
        from scene4d.models.cogvideox import CogVideoXOptions, encoded_prompt, load_cogvideox
        from scene4d.train.director import train_cogvideox_director

        pipeline = load_cogvideox(CogVideoXOptions(cogvideox))
        prompt_embeds = encoded_prompt(pipeline, prompt, 1.0)["prompt_embeds"]

        def run(on_step: Callable[[int, float], None]) -> None:
            train_cogvideox_director(config, pipeline, prompt_embeds, data, out, frames, on_step, last_frame)
    else:
        from scene4d.models.bundle import load_bundle
        from scene4d.train.director import train_director

        bundle = load_bundle(base)

        def run(on_step: Callable[[int, float], None]) -> None:
            train_director(config, bundle, data, out, on_step)

    with progress_bar() as progress:
        tasks: list[Any] = []  # the bar appears with the first step, so data errors print alone

        def on_step(step: int, loss: float) -> None:
            if not tasks:
                tasks.append(progress.add_task("director", total=steps))
            progress.update(tasks[0], completed=step, description=f"director loss {loss:.4f}")

        run(on_step)
    console.print(f"director written to {out}")


@command
def generate(
    images: Annotated[list[Path], typer.Argument(help="Condition image(s); the first is frame 0 and the world frame.")],
    out: Annotated[
        Path,
        typer.Option(help="Output: a Clip folder (3d, interp), or OUT/views/NN, OUT/temporal and OUT/reference (4d)."),
    ],
    mode: Annotated[
        str,
        typer.Option(
            help="3d: a camera move from the image(s) (objects move too with --motion > 0, by Switch-Once); "
            "4d: synchronised multi-view videos of a moving scene; interp: the views between two images."
        ),
    ] = "3d",
    trajectory: Annotated[
        str,
        typer.Option(help="3d, 4d: a named move (see `scene4d trajectories`), `static`, or a keyframe .json file."),
    ] = "orbit-left",
    frames: Annotated[
        int | None,
        typer.Option(
            help="Frames to generate, conditions included (4d: times); default 16 (cogvideox: 49, any 8k + 1; "
            "longer videos extrapolate its 3D RoPE in time, as DimensionX's 145, with its learned position table "
            "stretched). 3d paths over 16 frames are chained on scene4d-tiny."
        ),
    ] = None,
    views: Annotated[
        int | None,
        typer.Option(
            help="4d: number of cameras along --trajectory; default 8 (cogvideox: 49, any 8k + 1; K views x N "
            "times take N + 2 videos and 2 (K - 1) shorter refinements, and hold K N frames of 720 x 480 in "
            "memory at about 5 MB each: 12 GB at 49 x 49)."
        ),
    ] = None,
    magnitude: Annotated[
        float | None, typer.Option(help="Size of the move (degrees or scene units); the move's default when omitted.")
    ] = None,
    motion: Annotated[
        float | None,
        typer.Option(
            help="Object motion strength in [0, 1]; default 0 (frozen scene) in 3d and interp, 1 in 4d "
            "(cogvideox 4d: none, the T-Director makes the motion)."
        ),
    ] = None,
    steps: Annotated[
        int, typer.Option(help="Denoising steps (Euler, flow matching; cogvideox: its pipeline's scheduler).")
    ] = 25,
    guidance: Annotated[
        float,
        typer.Option(
            help="3d, interp: classifier-free guidance on the images; 1 = off (half the time). "
            "cogvideox: guidance on the prompt (CogVideoX and DimensionX use 6)."
        ),
    ] = 1.0,
    director: Annotated[
        str,
        typer.Option(
            help="S-Director: auto (the one shipped for the move: --trajectory, or in interp the move matching "
            "the two views; cogvideox: the one in --director-dir), none (the base model), a shipped name, or a "
            ".safetensors LoRA file."
        ),
    ] = "auto",
    temporal_director: Annotated[
        str,
        typer.Option(help="T-Director for object motion: auto (the shipped `temporal`), none, a name or a file."),
    ] = "auto",
    switch_step: Annotated[
        int | None,
        typer.Option(
            help="3d with --motion > 0: Switch-Once runs the S-Director for this many steps (default 3), then the T."
        ),
    ] = None,
    cameras: Annotated[
        Path | None,
        typer.Option(
            help="transforms.json with the cameras of the input images, in order. 3d: each extra image takes the "
            "trajectory frame nearest its camera (default: spread along the path); interp: the path joins them "
            "(default: the move is estimated from the first and last image)."
        ),
    ] = None,
    model: Annotated[
        Path | None, typer.Option(help="A model folder from `scene4d train model`; default: bundled.")
    ] = None,
    backbone: Annotated[
        str,
        typer.Option(
            help="scene4d-tiny (the --model folder, Plücker cameras) or cogvideox (diffusers CogVideoX-5b-I2V; "
            "interp needs a first-and-last-frame model fine-tuned from it as --cogvideox: directors are LoRA files, "
            "cameras come from SfM on the frames)."
        ),
    ] = "scene4d-tiny",
    cogvideox: Annotated[
        str, typer.Option(help="cogvideox: a local folder or a cached diffusers id of the weights.")
    ] = "THUDM/CogVideoX-5b-I2V",
    prompt: Annotated[str, typer.Option(help="cogvideox: the text prompt.")] = "",
    director_dir: Annotated[
        Path | None,
        typer.Option(
            exists=True,
            file_okay=False,
            help="cogvideox: a folder of LoRA directors named by move (orbit-left.safetensors, or DimensionX's "
            "orbit_left_lora_weights.safetensors) and temporal.safetensors; `auto` and names pick from it.",
        ),
    ] = None,
    cpu_offload: Annotated[
        bool, typer.Option(help="cogvideox: diffusers model CPU offload (less GPU memory).")
    ] = False,
    vae_tiling: Annotated[bool, typer.Option(help="cogvideox: decode in tiles (less GPU memory).")] = False,
    reconstruct: Annotated[
        bool,
        typer.Option(help="Continue into 3D Gaussians (4D with object motion, and always in 4d), in OUT/scene."),
    ] = False,
    iters: Annotated[int, typer.Option(help="--reconstruct: optimisation steps.")] = 1500,
    lpips_weight: Annotated[float, typer.Option(help="--reconstruct: " + LPIPS_WEIGHT_HELP)] = 0.0,
    lpips_weights: Annotated[Path | None, typer.Option(help="--reconstruct: " + LPIPS_WEIGHTS_HELP)] = None,
    backend: Annotated[str, typer.Option(help="--reconstruct: " + BACKEND_HELP)] = "auto",
    seed: Annotated[int, typer.Option(help="Seed of the noise; the same seed gives the same frames.")] = 0,
) -> None:
    """Generate videos from one or more images with the GenXD-style model and DimensionX directors.

    The first frame is the first image as given; the camera path starts there. With more
    images the model sees several clean condition views (masked latent conditioning).
    """
    from scene4d.directors.lora import director_files
    from scene4d.io import load_cameras, read_image, save_clip
    from scene4d.io.atomic import check_replaceable
    from scene4d.io.clip_folder import is_clip_folder
    from scene4d.models.bundle import load_bundle
    from scene4d.pipelines.generate import SEGMENT_FRAMES

    if mode not in MODES:
        raise Scene4DError(f"--mode must be one of {', '.join(MODES)}, got {mode!r}")
    check_replaceable(out, is_4d_output if mode == "4d" else is_clip_folder)
    if reconstruct and iters < 1:
        raise Scene4DError(f"--iters must be >= 1, got {iters}")
    if mode == "interp" and motion:
        raise Scene4DError("--mode interp makes a frozen scene; leave out --motion")
    if backbone not in BACKBONES:
        raise Scene4DError(f"--backbone must be one of {', '.join(BACKBONES)}, got {backbone!r}")
    if director_dir is not None and backbone != "cogvideox":
        raise Scene4DError("--director-dir is for --backbone cogvideox; the scene4d model ships its directors")
    if switch_step is not None and (mode != "3d" or not motion):
        raise Scene4DError("--switch-step is for Switch-Once: --mode 3d with --motion > 0")
    if switch_step is not None and switch_step < 0:
        raise Scene4DError(f"--switch-step must be >= 0, got {switch_step}")
    if switch_step is None:
        from scene4d.directors.schedule import SWITCH_STEP

        switch_step = SWITCH_STEP
    fitting = {
        "lpips_weight": lpips_weight, "lpips_weights": None if lpips_weights is None else str(lpips_weights),
        "backend": backend,
    }  # fmt: skip
    if reconstruct:  # bad fitting options fail before the generation, not after it
        from scene4d.splat.fit import check_lpips
        from scene4d.splat.rasterize import backend_device

        check_lpips(fitting["lpips_weight"], fitting["lpips_weights"])
        backend_device(backend)
    if frames is None:
        frames = COGVIDEOX_FRAMES if backbone == "cogvideox" else SEGMENT_FRAMES
    request = GenerateRequest(trajectory, frames, magnitude, steps, guidance, director, temporal_director, seed)
    if backbone == "cogvideox":
        shipped = {} if director_dir is None else director_files(director_dir)
        settings = CogVideoXSettings(cogvideox, prompt, cpu_offload, vae_tiling, shipped)
        check_cogvideox_request(images, mode, request, cameras, settings)
        if mode == "4d":
            num_views = COGVIDEOX_FRAMES if views is None else views
            generate_4d_with_cogvideox(images, request, num_views, motion, settings, out)
            if reconstruct:
                fit_scene(load_multiview(out / "views"), out / "scene", iters, True, seed, **fitting)
            return
        if mode == "interp":
            clip = interpolate_with_cogvideox(images, request, settings)
        else:
            clip = generate_with_cogvideox(images, request, 0.0 if motion is None else motion, switch_step, settings)
        save_clip(clip, out)
        console.print(f"{len(clip)} frames written to {out} (cameras from {clip.meta['cameras_from']})")
        if reconstruct:
            fit_scene(clip, out / "scene", iters, bool(motion), seed, **fitting)
        return
    bundle = load_bundle(model)
    inputs = [read_image(path, exif_orientation=True) for path in images]
    known = load_cameras(cameras)[0] if cameras is not None else None
    if mode == "4d":
        generate_4d_views(
            bundle, inputs, request, 8 if views is None else views, 1.0 if motion is None else motion, out
        )
        if reconstruct:
            fit_scene(load_multiview(out / "views"), out / "scene", iters, True, seed, **fitting)
        return
    motion = 0.0 if motion is None else motion
    if mode == "interp":
        clip = generate_interp(bundle, inputs, request, known)
    else:
        clip = generate_3d(bundle, inputs, request, known, motion, switch_step)
    save_clip(clip, out)
    console.print(f"{len(clip)} frames written to {out}")
    if reconstruct:
        fit_scene(clip, out / "scene", iters, motion > 0, seed, **fitting)


@dataclass(frozen=True)
class CogVideoXSettings:
    source: str
    prompt: str
    cpu_offload: bool
    vae_tiling: bool
    directors: dict[str, Path]  # director files by name (``directors.lora.director_files``)


def open_cogvideox(photos: list, settings: CogVideoXSettings) -> tuple[Any, list]:
    """The pipeline and ``photos`` (read before it, so a bad path fails before minutes of loading weights)
    fitted to its frame size."""
    from scene4d.models.cogvideox import CogVideoXOptions, load_cogvideox
    from scene4d.pipelines.cogvideox import fit_image, frame_size

    pipeline = load_cogvideox(CogVideoXOptions(settings.source, settings.cpu_offload, settings.vae_tiling))
    return pipeline, [fit_image(photo, *frame_size(pipeline)) for photo in photos]


def cogvideox_meta(request: "GenerateRequest", settings: CogVideoXSettings) -> dict:
    """What a CogVideoX clip records of how it was made."""
    return {"kind": "generated", "backbone": "cogvideox", "seed": request.seed, "prompt": settings.prompt}


def camera_move(transformer: Any, name: str | None) -> str | None:
    """The move of a loaded S-Director: its header's, else its name when that names a move (a file of a
    --director-dir); the cameras when SfM cannot register the frames."""
    from scene4d.directors.lora import director_info
    from scene4d.geometry import TRAJECTORY_NAMES

    if name is None:
        return None
    return director_info(transformer, name).trajectory or (name if name in TRAJECTORY_NAMES else None)


def generate_with_cogvideox(
    images: list[Path], request: "GenerateRequest", motion: float, switch_step: int, settings: CogVideoXSettings
) -> "Clip":
    """DimensionX on CogVideoX-5b-I2V: LoRA directors (Switch-Once with --motion > 0), cameras by SfM."""
    from scene4d.io import read_image
    from scene4d.models.cogvideox import encoded_prompt
    from scene4d.pipelines.cogvideox import ASSUMED_FOV_X_DEG, cogvideox_clip, generate_cogvideox_frames
    from scene4d.pipelines.generate import check_motion, plan_directors

    check_motion(motion)
    pipeline, (image,) = open_cogvideox([read_image(images[0], exif_orientation=True)], settings)
    schedule = plan_directors(
        pipeline.transformer, settings.directors, request.director, request.temporal_director, request.trajectory,
        motion, switch_step,
    )  # fmt: skip
    console.print(f"directors: {schedule.describe()}")
    progress, on_step = step_progress("generate", request.steps)
    with progress:
        frames = generate_cogvideox_frames(
            pipeline, image, request.frames, request.steps, request.guidance, request.seed, schedule,
            on_step=on_step, **encoded_prompt(pipeline, settings.prompt, request.guidance),
        )  # fmt: skip
    meta = cogvideox_meta(request, settings)
    meta |= {"directors": [list(phase) for phase in schedule.phases]}
    move = camera_move(pipeline.transformer, schedule.phases[0][1])
    return cogvideox_clip(frames, ASSUMED_FOV_X_DEG, move, meta, motion > 0)


def interpolate_with_cogvideox(images: list[Path], request: "GenerateRequest", settings: CogVideoXSettings) -> "Clip":
    """The views between two images on a first-and-last-frame CogVideoX model (DimensionX sec. 3.3): the move
    read off the two images picks the S-Director of --director-dir (adaptive trajectory planning)."""
    from scene4d.directors.schedule import single
    from scene4d.io import read_image
    from scene4d.models.cogvideox import encoded_prompt
    from scene4d.pipelines.cogvideox import ASSUMED_FOV_X_DEG, cogvideox_clip, generate_cogvideox_frames
    from scene4d.pipelines.generate import pick_director

    photos = [read_image(path, exif_orientation=True) for path in images]
    move, size = move_between(*photos, needed=request.director == "auto")
    pipeline, (first, last) = open_cogvideox(photos, settings)
    spatial = pick_director(pipeline.transformer, settings.directors, request.director, move)
    console.print(f"the views differ by {move or 'an unread move'} ({size or 0:.3g}); director: {spatial or 'none'}")
    progress, on_step = step_progress("interpolate", request.steps)
    with progress:
        frames = generate_cogvideox_frames(
            pipeline, first, request.frames, request.steps, request.guidance, request.seed, single(spatial),
            on_step=on_step, last_image=last, **encoded_prompt(pipeline, settings.prompt, request.guidance),
        )  # fmt: skip
    frames[0], frames[-1] = first, last
    meta = cogvideox_meta(request, settings)
    meta |= {"matched_move": move, "condition_frames": [0, len(frames) - 1], "directors": [[0, spatial]]}
    return cogvideox_clip(frames, ASSUMED_FOV_X_DEG, move, meta, False, size)


def move_between(first: Any, last: Any, needed: bool) -> tuple[str | None, float | None]:
    """The named move and size joining two photos (``[H, W, 3]``), read off them (adaptive trajectory
    planning; the second is fitted to the first's size); ``(None, None)`` when unreadable and not needed."""
    from scene4d.geometry import Cameras
    from scene4d.geometry.trajectories import nearest_move
    from scene4d.pipelines.cogvideox import ASSUMED_FOV_X_DEG, fit_image
    from scene4d.pipelines.interpolate import relative_motion

    height, width = first.shape[:2]
    K = Cameras.from_fov(ASSUMED_FOV_X_DEG, width, height).K[0]  # noqa: N806
    try:
        return nearest_move(*relative_motion(first, fit_image(last, width, height), K))
    except Scene4DError as error:
        if needed:
            raise Scene4DError(f"{error}; name the S-Director with --director (or none)") from None
        console.print(f"[yellow]the move between the views is unread ({error})[/yellow]")
        return None, None


def check_cogvideox_request(
    images: list[Path], mode: str, request: "GenerateRequest", cameras: Path | None, settings: CogVideoXSettings
) -> None:  # fmt: skip
    """What the CogVideoX backbone cannot take, refused before its weights load."""
    from scene4d.models.cogvideox import COGVIDEOX_ID
    from scene4d.pipelines.cogvideox import check_frame_count

    if mode == "interp" and settings.source == COGVIDEOX_ID:
        raise Scene4DError(
            f"--mode interp needs a first-and-last-frame model fine-tuned from {COGVIDEOX_ID} (DimensionX fine-tunes "
            "one): pass its folder as --cogvideox; the image-to-video model conditions on the first frame only"
        )
    wanted = 2 if mode == "interp" else 1
    if len(images) != wanted:
        raise Scene4DError(f"--backbone cogvideox --mode {mode} takes {wanted} image(s), got {len(images)}")
    if cameras is not None or request.magnitude is not None:
        raise Scene4DError("--backbone cogvideox takes no --cameras or --magnitude: its directors set the camera move")
    check_frame_count(request.frames)
    shipped = settings.directors
    for name in (request.director, request.temporal_director):
        if name.endswith(".safetensors") and not Path(name).is_file():
            raise Scene4DError(f"no director file {name}")
        if name not in ("auto", "none") and not name.endswith(".safetensors") and name not in shipped:
            raise Scene4DError(f"no director {name!r} in --director-dir ({', '.join(shipped) or 'none given'})")


def generate_4d_with_cogvideox(
    images: list[Path], request: "GenerateRequest", num_views: int, motion: float | None, settings: CogVideoXSettings,
    out: Path,
) -> None:  # fmt: skip
    """DimensionX's identity-preserving 4D generation on CogVideoX-5b-I2V; writes like ``generate_4d_views``."""
    from scene4d.io import read_image
    from scene4d.models.cogvideox import encoded_prompt
    from scene4d.pipelines.cogvideox import check_frame_count
    from scene4d.pipelines.cogvideox_4d import generate_cogvideox_4d
    from scene4d.pipelines.four_d import FourDConfig
    from scene4d.pipelines.generate import TEMPORAL, pick_director

    if motion is not None:
        raise Scene4DError("--backbone cogvideox takes no --motion in 4d: CogVideoX has no motion strength input")
    check_frame_count(num_views)
    pipeline, (image,) = open_cogvideox([read_image(images[0], exif_orientation=True)], settings)
    shipped = settings.directors
    config = FourDConfig(
        request.trajectory, request.magnitude, num_views, request.frames, steps=request.steps, seed=request.seed,
        spatial_director=pick_director(pipeline.transformer, shipped, request.director, request.trajectory),
        temporal_director=pick_director(pipeline.transformer, shipped, request.temporal_director, TEMPORAL),
    )  # fmt: skip
    text = encoded_prompt(pipeline, settings.prompt, request.guidance)
    move = camera_move(pipeline.transformer, config.spatial_director)
    run_4d(config, functools.partial(generate_cogvideox_4d, pipeline, image, config, request.guidance, text, move), out)


def run_4d(config: Any, generate: Callable[[Callable[[str, int, int], None]], Any], out: Path) -> None:
    """Print a 4D generation's directors, run ``generate(on_progress)`` under a bar naming its stage, and
    write the result (``save_4d``)."""
    spatial, temporal = config.spatial_director, config.temporal_director
    console.print(f"directors: spatial {spatial or 'the base model'}, temporal {temporal or 'the base model'}")
    with progress_bar() as progress:
        task = progress.add_task("4d", total=None)
        result = generate(
            lambda stage, step, total: progress.update(task, description=f"4d: {stage}", completed=step, total=total)
        )
    save_4d(result, out)


def save_4d(result: Any, out: Path) -> None:
    """OUT/temporal, OUT/reference and OUT/views/NN of a 4D generation, written all or nothing."""
    from scene4d.io import save_clip
    from scene4d.io.atomic import atomic_directory

    with atomic_directory(out, is_4d_output) as staging:
        save_clip(result.temporal, staging / "temporal")
        save_clip(result.reference, staging / "reference")
        for index, view in enumerate(result.views):
            save_clip(view, staging / "views" / f"{index:02d}")
    console.print(f"{len(result.views)} views x {len(result.temporal)} times written to {out / 'views'}")


def is_4d_output(folder: Path) -> bool:
    """Whether ``folder`` holds what ``save_4d`` writes (its ``views`` folder)."""
    return (folder / "views").is_dir()


def load_multiview(folder: Path) -> "Clip":
    """The view Clips under ``folder`` (NN/, in order) as one view-major multi-view Clip."""
    from scene4d.io import load_clip
    from scene4d.pipelines.four_d import multiview_clip

    return multiview_clip([load_clip(view) for view in sorted(folder.iterdir())])


@dataclass(frozen=True)
class GenerateRequest:
    trajectory: str
    frames: int
    magnitude: float | None
    steps: int
    guidance: float
    director: str
    temporal_director: str
    seed: int

    def __post_init__(self) -> None:
        if self.steps < 1:
            raise Scene4DError(f"--steps must be >= 1, got {self.steps}")


def step_progress(label: str, total: int) -> tuple[Progress, Callable[[int, int], None]]:
    """A progress bar and the ``on_step(step, total)`` callback that moves it."""
    progress = progress_bar()
    task = progress.add_task(label, total=total)
    return progress, lambda step, steps: progress.update(task, completed=step, total=steps)


def generate_3d(
    bundle: Any, inputs: list, request: GenerateRequest, known: Any, motion: float, switch_step: int
) -> "Clip":
    """One video along the trajectory: the S-Director, then (objects moving) the T-Director (Switch-Once)."""
    from scene4d.pipelines.generate import (
        SEGMENT_FRAMES,
        generate_chained,
        generate_clip,
        plan_directors,
        plan_generation,
    )

    if motion > 0 and request.frames > SEGMENT_FRAMES:
        raise Scene4DError(f"with --motion > 0 at most {SEGMENT_FRAMES} frames can be generated, got {request.frames}")
    schedule = plan_directors(
        bundle.denoiser, bundle.directors, request.director, request.temporal_director, request.trajectory, motion,
        switch_step,
    )  # fmt: skip
    condition, path, positions = plan_generation(
        bundle, inputs, request.trajectory, request.frames, request.magnitude, motion, known, console.print
    )
    console.print(f"directors: {schedule.describe()}")
    progress, on_step = step_progress("generate", request.steps)
    with progress:
        if request.frames > SEGMENT_FRAMES:
            return generate_chained(
                bundle, condition, path, positions, request.steps, request.seed, request.guidance, on_step, schedule
            )
        return generate_clip(
            bundle, condition, path, positions, motion, request.steps, request.seed, request.guidance, on_step,
            schedule,
        )  # fmt: skip


def generate_interp(bundle: Any, inputs: list, request: GenerateRequest, known: Any) -> "Clip":
    """The views between the first and last image, with the S-Director of the move that joins them."""
    from scene4d.directors.schedule import single
    from scene4d.pipelines.generate import generate_clip, pick_director
    from scene4d.pipelines.interpolate import plan_interpolation

    condition, path, positions, move, size = plan_interpolation(bundle, inputs, request.frames, known, console.print)
    spatial = pick_director(bundle.denoiser, bundle.directors, request.director, move)
    console.print(f"the views differ by {move} ({size:.3g}); director: {spatial or 'none (base model)'}")
    progress, on_step = step_progress("interpolate", request.steps)
    with progress:
        clip = generate_clip(
            bundle, condition, path, positions, 0.0, request.steps, request.seed, request.guidance, on_step,
            single(spatial),
        )  # fmt: skip
    clip.meta["matched_move"] = move
    return clip


def generate_4d_views(
    bundle: Any, inputs: list, request: GenerateRequest, num_views: int, motion: float, out: Path
) -> None:
    """DimensionX's identity-preserving 4D generation; writes OUT/temporal, OUT/reference and OUT/views/NN."""
    from scene4d.pipelines.four_d import FourDConfig, generate_4d
    from scene4d.pipelines.generate import TEMPORAL, check_motion, pick_director, squared_images

    check_motion(motion)
    if len(inputs) != 1:
        raise Scene4DError(f"--mode 4d takes one image, got {len(inputs)}")
    config = FourDConfig(
        request.trajectory, request.magnitude, num_views, request.frames, motion, request.steps, seed=request.seed,
        spatial_director=pick_director(bundle.denoiser, bundle.directors, request.director, request.trajectory),
        temporal_director=pick_director(bundle.denoiser, bundle.directors, request.temporal_director, TEMPORAL),
    )  # fmt: skip
    image = squared_images(inputs, bundle.info.resolution, console.print)[0]
    run_4d(config, functools.partial(generate_4d, bundle, image, config), out)


def fit_scene(
    clip: "Clip", out: Path, iters: int, dynamic: bool, seed: int, lpips_weight: float = 0.0,
    lpips_weights: str | None = None, backend: str = "auto",
) -> None:  # fmt: skip
    """3DGS (or 4DGS) of a generated clip, with a progress bar; one initial Gaussian per 8 pixels (at most 20k).

    3DGS weights each pixel by the confidence of the generated frames (DimensionX eq. 3), whose
    LPIPS term is on when ``lpips_weight`` > 0 (weights from the ``lpips_weights`` folder).
    """
    from scene4d.pipelines.confidence import flow_confidence
    from scene4d.splat.fit import FitConfig

    pixels = len(clip) * clip.height * clip.width
    config = FitConfig(
        iterations=iters, seed=seed, sh_degree=1, init_points=min(20_000, pixels // 8), lpips_weight=lpips_weight,
        lpips_weights=lpips_weights, backend=backend,
    )  # fmt: skip
    if dynamic:
        fit_with_progress(clip, out, config, min(500, iters // 4))
    else:
        confidence = flow_confidence(clip.frames, clip.meta.get("condition_frames", [0]))
        fit_with_progress(clip, out, config, None, confidence=confidence)
