"""The ``scene4d`` command: thin wrappers that parse arguments and call the library."""

import functools
import json
import time
from collections.abc import Callable
from dataclasses import asdict
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn
from rich.table import Table

from scene4d.errors import Scene4DError

app = typer.Typer(
    help="scene4d: 3D and 4D scenes from images with camera- and time-controllable video diffusion.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)
console = Console(stderr=True)


def command(function: Callable[..., Any]) -> Callable[..., Any]:
    """Register a command whose ``Scene4DError``s print as one line on stderr and exit 2."""

    @functools.wraps(function)
    def run(*args: Any, **kwargs: Any) -> Any:
        try:
            return function(*args, **kwargs)
        except Scene4DError as error:
            typer.echo(f"error: {error}", err=True)
            raise typer.Exit(2) from None

    return app.command()(run)


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
    out: Annotated[Path, typer.Option(help="Folder for the demo outputs.")] = Path("outputs/demo"),
    res: Annotated[int, typer.Option(help="Frame size in pixels.")] = 128,
    seed: Annotated[int, typer.Option(help="Seed of the demo scenes.")] = 0,
) -> None:
    """Synthesize one clip of each kind and write their preview videos."""
    from scene4d.io import save_clip
    from scene4d.synth import CLIP_KINDS, SynthConfig, make_clip

    table = Table("kind", "frames", "motion strength", "preview")
    with progress_bar() as progress:
        task = progress.add_task("demo", total=len(CLIP_KINDS))
        for kind in CLIP_KINDS:
            clip = make_clip(SynthConfig(kind=kind, resolution=res), clip_seed(seed, CLIP_KINDS.index(kind)))
            folder = save_clip(clip, out / kind)
            table.add_row(kind, str(len(clip)), f"{clip.meta['motion_strength']:.4f}", str(folder / "video.mp4"))
            progress.advance(task)
    Console().print(table)


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
        int, typer.Option(help="Initial Gaussians (from depth when the clip has it, else random along camera rays).")
    ] = 20_000,
    backend: Annotated[
        str, typer.Option(help="Rasterizer: auto (gsplat on CUDA, else cpu), cpu, gsplat or torch.")
    ] = "auto",
    seed: Annotated[int, typer.Option(help="Seed of the initialisation and the view order.")] = 0,
) -> None:
    """Fit 3D Gaussian splats (or, with --dynamic, deformable 4D Gaussians) to a Clip.

    3DGS with L1 + D-SSIM, densification and an SH schedule. Resumable: an interrupted run
    continues from OUT/checkpoint when given the same options.
    """
    from scene4d.io import load_clip
    from scene4d.splat.fit import FitConfig
    from scene4d.splat.reconstruct import reconstruct_dynamic, reconstruct_static

    loaded = load_clip(clip)
    config = FitConfig(iterations=iters, sh_degree=sh_degree, init_points=init_points, backend=backend, seed=seed)
    with progress_bar() as progress:
        task = progress.add_task("4DGS" if dynamic else "3DGS", total=iters)

        def on_step(step: int, loss: float) -> None:
            progress.update(task, completed=step, description=f"{'4DGS' if dynamic else '3DGS'} loss {loss:.4f}")

        if dynamic:
            metrics = reconstruct_dynamic(loaded, out, config, warmup, bake_times, on_step)
        else:
            metrics = reconstruct_static(loaded, out, config, on_step)
    console.print(
        f"{out / 'scene.ply'}: {metrics['gaussians']} Gaussians, training-view PSNR {metrics['train_psnr']:.2f} dB"
    )


@command
def render(
    scene: Annotated[Path, typer.Argument(help="A 3DGS .ply file, or a 4D scene folder from `reconstruct --dynamic`.")],
    cameras: Annotated[Path, typer.Option(help="A nerfstudio transforms.json whose cameras to render.")],
    out: Annotated[Path, typer.Option(help="Folder that receives NNNN.png in frame order.")],
    time: Annotated[
        float | None,
        typer.Option(help="4D scenes: render every camera at this time in [0, 1] (default: each frame's own time)."),
    ] = None,
    backend: Annotated[str, typer.Option(help="Rasterizer: auto, cpu, gsplat or torch.")] = "auto",
) -> None:
    """Render a Gaussian scene at every camera of a transforms.json (e.g. held-out views)."""
    from PIL import Image

    from scene4d.io import load_cameras, load_ply
    from scene4d.io.atomic import atomic_directory
    from scene4d.io.media import to_uint8
    from scene4d.splat.deform import load_deformation
    from scene4d.splat.reconstruct import render_at

    if time is not None and not 0.0 <= time <= 1.0:
        raise Scene4DError(f"--time must lie in [0, 1], got {time}")
    field = load_deformation(scene / "deformation") if scene.is_dir() else None
    splats = load_ply(scene / "scene.ply" if scene.is_dir() else scene)
    views, times = load_cameras(cameras)
    with atomic_directory(out) as staging, progress_bar() as progress:
        task = progress.add_task("render", total=len(views))
        for index in range(len(views)):
            moment = float(times[index]) if time is None else time
            rgb = render_at(splats, field, views[index], moment, None, backend)
            Image.fromarray(to_uint8(rgb[0].numpy())).save(staging / f"{index:04d}.png")
            progress.advance(task)
    console.print(f"{len(views)} views rendered to {out}")


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
    port: Annotated[int, typer.Option(help="Port of the viewer.")] = 8080,
) -> None:
    """Open Gaussian splats in the browser (viser); Ctrl-C stops the server."""
    from scene4d.io import load_cameras, load_ply
    from scene4d.splat.viewer import serve_splats

    ply = scene / "scene.ply" if scene.is_dir() else scene
    splats = load_ply(ply)
    cameras = cameras or (ply.parent / "cameras.json" if (ply.parent / "cameras.json").exists() else None)
    first = load_cameras(cameras)[0][0] if cameras is not None else None
    server = serve_splats(splats, first, host, port)
    console.print(f"viewing {splats['means'].shape[0]} Gaussians at http://{host}:{port} (Ctrl-C to stop)")
    try:
        while True:
            time.sleep(1.0)
    except KeyboardInterrupt:
        server.stop()
