"""Masked structure from motion with pycolmap (GenXD section 3.1, "Camera Pose Estimation").

Features on potentially moving pixels are dropped before matching (COLMAP's mask images), so
object motion cannot be mistaken for camera motion. Matching is sequential (video order), the
mapper is COLMAP's global pipeline (GLOMAP), and the largest reconstruction is kept. What we add:

- writing frames and masks where COLMAP reads them, and converting the result to ``Cameras``;
- each matched pair's relative pose from dense optical flow instead of COLMAP's few hundred SIFT
  matches: COLMAP's verification calls nearly every pair of a video "planar or panoramic", and a
  forward move over a ground plane then comes out 6-16 degrees wrong; the five-point solver on
  the static pixels' flow is a fraction of a degree off (``flow_two_view_geometries``);
- cameras that only rotate (pan, tilt, roll, or a tripod) come from homographies: then every
  static pixel follows one homography H = K R K^-1 whose K^-1 H K is a rotation, which no
  translating camera gives (``rotation_only_cameras``). Where the cameras are already known
(a synth or generated Clip), ``triangulate_known_cameras`` only triangulates the matches at them,
the sparse points 3DGS starts from.
COLMAP and scene4d share the camera convention (OpenCV axes, world-to-camera, pixel centres at
+0.5), so no axis flips are needed.
"""

import tempfile
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from torch import Tensor

from scene4d.curate.flow import apply_homography, dense_flow, landing_matches
from scene4d.curate.masks import sampson_distance
from scene4d.curate.tracks import pixel_rows_cols
from scene4d.errors import Scene4DError
from scene4d.geometry import Cameras
from scene4d.io.media import to_uint8

DEFAULT_FOCAL_FACTOR = 1.2  # focal length = factor x longer image side when unknown (COLMAP's prior)
ROTATION_NOISE = 0.005  # rms rotation_deviation that flow noise alone gives (synth rotations: <= 0.0025)


@dataclass(frozen=True)
class SfMConfig:
    max_features: int = 4096  # SIFT features per frame
    peak_threshold: float = 0.004  # SIFT contrast threshold (COLMAP's default 0.0067 finds few on small frames)
    overlap: int = 10  # sequential matching: each frame is matched with the next ``overlap`` frames
    flow_match_px: float = 1.0  # SIFT matches within this Sampson distance of the flow's epipolar geometry are kept
    min_registered_fraction: float = 0.8  # below this the video is reported as an SfM failure
    rotation_residual_px: float = 1.0  # rotation-only cameras: median static-flow homography residual
    rotation_orthogonality: float = 0.02  # rotation-only cameras: median |M^T M - I| of M = K^-1 H K, det 1
    keyframe_gap: int = 3  # rotation-only cameras: frames between keyframes (DIS flow loses wider gaps)
    rotation_test_gap: int = 6  # camera_translates: frames between the homographies' pairs
    num_threads: int = 1  # COLMAP with more threads varies from run to run; use --workers for parallelism
    seed: int = 0


@dataclass
class SfMResult:
    cameras: Cameras  # one per registered frame, in frame order
    registered: np.ndarray  # [R] indices of the registered frames
    points: np.ndarray  # [P, 3] sparse world points of the static scene
    colors: np.ndarray  # [P, 3] their colours in [0, 1]

    @classmethod
    def cameras_only(cls, cameras: Cameras) -> "SfMResult":
        """Every frame registered at ``cameras``, and no points (a camera that only rotates, or a named move)."""
        none = np.zeros((0, 3), np.float32)
        return cls(cameras, np.arange(len(cameras)), none, none)

    def relative_to_first(self) -> "SfMResult":
        """The same reconstruction in the first registered camera's frame (``Cameras.relative_to(0)``):
        every point moves by that camera's world-to-camera transform, so each camera sees it where it did."""
        first_w2c = self.cameras.w2c[0].double().numpy()
        points = (self.points @ first_w2c[:3, :3].T + first_w2c[:3, 3]).astype(np.float32)
        return SfMResult(self.cameras.relative_to(0), self.registered, points, self.colors)


def estimate_cameras(
    frames: np.ndarray,  # [T, H, W, 3] in [0, 1]
    moving: np.ndarray | None,  # [T, H, W] bool, potentially moving pixels
    K: Tensor | None = None,  # [3, 3] known intrinsics, estimated when None  # noqa: N803
    config: SfMConfig = SfMConfig(),
) -> SfMResult:
    """Rotations from homographies when the camera does not translate, else masked SfM.

    When SfM refines the focal length to an implausible value (short clips with little parallax
    let it drift), it is run again with the focal length fixed at COLMAP's prior. When SfM fails,
    rotation-only cameras are taken after all if the static pixels follow homographies. Raises
    ``Scene4DError`` naming why when neither registers ``min_registered_fraction`` of the frames.
    """
    rotation_only = rotation_only_cameras(frames, moving, K, config)
    known_K = None if K is None else K.double().numpy()  # noqa: N806
    if rotation_only is not None and not camera_translates(frames, moving, known_K, config):
        return rotation_only
    try:
        result = masked_sfm(frames, moving, K, config)
        if K is None and not plausible_focal(result.cameras):
            result = masked_sfm(frames, moving, default_intrinsics(frames.shape[2], frames.shape[1]), config)
        if len(result.registered) >= config.min_registered_fraction * len(frames):
            return result
        reason = f"sfm: COLMAP registered {len(result.registered)} of {len(frames)} frames"
    except Scene4DError as error:
        reason = str(error)
    if rotation_only is None:
        raise Scene4DError(f"{reason}, and the camera does not only rotate")
    return rotation_only


def masked_sfm(
    frames: np.ndarray,  # [T, H, W, 3] in [0, 1]
    moving: np.ndarray | None,  # [T, H, W] bool, potentially moving pixels (no features there)
    K: Tensor | None = None,  # [3, 3] known intrinsics shared by all frames, estimated when None  # noqa: N803
    config: SfMConfig = SfMConfig(),
) -> SfMResult:
    """Camera poses and sparse static points of a video; raises ``Scene4DError`` when SfM fails."""
    import pycolmap

    with tempfile.TemporaryDirectory(prefix="scene4d-sfm-") as scratch:
        scratch = Path(scratch)
        names = extract_and_match(scratch, frames, moving, K, config)
        flow_two_view_geometries(scratch / "database.db", names, frames, moving, config)
        options = global_mapper_options(config, K is not None)
        models = pycolmap.global_mapping(scratch / "database.db", scratch / "images", scratch / "sparse", options)
    if not models:
        raise Scene4DError("sfm: COLMAP reconstructed nothing (too little texture or parallax)")
    largest = max(models.values(), key=lambda model: model.num_reg_images())
    return result_from_reconstruction(largest, names, frames.shape)


def triangulate_known_cameras(
    frames: np.ndarray,  # [T, H, W, 3] in [0, 1]
    cameras: Cameras,  # [T] the frames' cameras, kept as they are
    moving: np.ndarray | None = None,  # [T, H, W] bool, potentially moving pixels (no features there)
    config: SfMConfig = SfMConfig(),
) -> tuple[np.ndarray, np.ndarray]:
    """Sparse static points [P, 3] and their colours [P, 3] in [0, 1] where the cameras are known:
    COLMAP's features and sequential matches, verified and triangulated at the given poses and
    per-frame intrinsics (``pycolmap.triangulate_points``; nothing is re-estimated). Empty when no
    match survives (too little texture) or there is a single frame."""
    import pycolmap

    if len(cameras) != len(frames):
        raise Scene4DError(f"sfm: {len(cameras)} cameras for {len(frames)} frames")
    if len(frames) < 2:
        return np.zeros((0, 3), np.float32), np.zeros((0, 3), np.float32)
    with tempfile.TemporaryDirectory(prefix="scene4d-sfm-") as scratch:
        scratch = Path(scratch)
        names = extract_and_match(scratch, frames, moving, cameras.K, config)
        reconstruction = posed_reconstruction(scratch / "database.db", names, cameras.w2c)
        options = mapper_options(config, intrinsics_known=True)
        triangulated = pycolmap.triangulate_points(
            reconstruction, scratch / "database.db", scratch / "images", scratch / "sparse", options=options
        )
    return points_and_colors(triangulated)


def extract_and_match(
    scratch: Path,
    frames: np.ndarray,  # [T, H, W, 3] in [0, 1]
    moving: np.ndarray | None,  # [T, H, W] bool
    K: Tensor | None,  # [3, 3] shared, [T, 3, 3] per frame, or None (estimated)  # noqa: N803
    config: SfMConfig,
) -> list[str]:
    """SIFT features (none on ``moving`` pixels) and verified sequential matches of ``frames`` in
    ``scratch/database.db``, the frames written to ``scratch/images``; returns the image names in
    frame order. One COLMAP camera for all frames, or one per frame when ``K`` is per frame (set
    before matching, so that verification uses each frame's own intrinsics)."""
    import pycolmap

    pycolmap.logging.minloglevel = 2  # warnings and errors only
    if moving is not None and moving.shape != frames.shape[:3]:
        raise Scene4DError(f"sfm: masks {list(moving.shape)} do not match frames {list(frames.shape[:3])}")
    names = write_colmap_inputs(scratch, frames, moving)
    per_frame = K is not None and K.ndim == 3
    pycolmap.extract_features(
        scratch / "database.db",
        scratch / "images",
        image_names=names,
        camera_mode=pycolmap.CameraMode.PER_IMAGE if per_frame else pycolmap.CameraMode.SINGLE,
        reader_options=reader_options(scratch if moving is not None else None, K[0] if per_frame else K),
        extraction_options=extraction_options(config),
        device=pycolmap.Device.cpu,
    )
    if per_frame:
        set_frame_intrinsics(scratch / "database.db", names, K)
    pycolmap.match_sequential(
        scratch / "database.db",
        pairing_options=pycolmap.SequentialPairingOptions(overlap=config.overlap, quadratic_overlap=False),
        matching_options=matching_options(config),
        verification_options=verification_options(config),
        device=pycolmap.Device.cpu,
    )
    return names


def flow_two_view_geometries(
    database_path: Path,
    names: list[str],
    frames: np.ndarray,  # [T, H, W, 3] in [0, 1]
    moving: np.ndarray | None,  # [T, H, W] bool
    config: SfMConfig,
) -> None:
    """Replace each verified pair's two-view geometry in the database by a calibrated one from
    dense flow (``flow_relative_pose``, at the database's intrinsics), with the SIFT matches
    within ``flow_match_px`` of its epipolar geometry as inliers. Pairs whose flow yields no
    pose or fewer than 15 such matches keep COLMAP's geometry."""
    import pycolmap

    database = pycolmap.Database.open(database_path)
    try:
        images = {image.image_id: image for image in database.read_all_images()}
        index_of = {name: index for index, name in enumerate(names)}
        K = {i: database.read_camera(image.camera_id).calibration_matrix() for i, image in images.items()}  # noqa: N806
        for pair_id, geometry in zip(*database.read_two_view_geometries(), strict=True):
            id_a, id_b = pycolmap.pair_id_to_image_pair(pair_id)
            a, b = index_of[images[id_a].name], index_of[images[id_b].name]
            pose = flow_relative_pose(frames[a], frames[b], K[id_a], K[id_b], *static_masks(moving, a, b))
            if pose is None:
                continue
            rotation, translation = pose
            matches = database.read_matches(id_a, id_b)
            fundamental = fundamental_matrix(rotation, translation, K[id_a], K[id_b])
            points_a = database.read_keypoints(id_a)[matches[:, 0], :2]
            points_b = database.read_keypoints(id_b)[matches[:, 1], :2]
            inliers = sampson_distance(fundamental, points_a, points_b) < config.flow_match_px
            if inliers.sum() < 15:
                continue
            geometry.config = pycolmap.TwoViewGeometryConfiguration.CALIBRATED
            geometry.E = cross_matrix(translation) @ rotation
            geometry.F = fundamental
            geometry.cam2_from_cam1 = pycolmap.Rigid3d(pycolmap.Rotation3d(rotation), translation)
            geometry.inlier_matches = matches[inliers]
            database.update_two_view_geometry(id_a, id_b, geometry)
    finally:
        database.close()


def flow_relative_pose(
    frame_a: np.ndarray,  # [H, W, 3]
    frame_b: np.ndarray,  # [H, W, 3]
    K_a: np.ndarray,  # [3, 3]  # noqa: N803
    K_b: np.ndarray,  # [3, 3]  # noqa: N803
    static_a: np.ndarray | None = None,  # [H, W] bool, pixels that may carry correspondences
    static_b: np.ndarray | None = None,  # [H, W] bool
    threshold_px: float = 0.5,
) -> tuple[np.ndarray, np.ndarray] | None:
    """(R [3, 3], t [3], |t| = 1) with ``x_b = R x_a + t`` in camera coordinates, or None.

    Correspondences are ``static_flow_matches``; the solver is OpenCV's RANSAC five-point
    essential matrix on normalised coordinates, and ``recoverPose`` picks the pose that puts
    the inliers in front of both cameras.
    """
    import cv2

    points_a, points_b = static_flow_matches(frame_a, frame_b, static_a, static_b)
    if len(points_a) < 64:
        return None
    normalised_a = cv2.undistortPoints(points_a[:, None], K_a, None)[:, 0]
    normalised_b = cv2.undistortPoints(points_b[:, None], K_b, None)[:, 0]
    focal = float(np.sqrt(K_a[0, 0] * K_a[1, 1]))
    essential, inliers = cv2.findEssentialMat(
        normalised_a, normalised_b, np.eye(3), cv2.RANSAC, 0.999, threshold_px / focal
    )
    if essential is None or essential.shape[0] < 3:
        return None
    count, rotation, translation, _ = cv2.recoverPose(
        essential[:3], normalised_a, normalised_b, np.eye(3), mask=inliers
    )
    return (rotation, translation[:, 0]) if count >= 32 else None


def static_flow_matches(
    frame_a: np.ndarray,  # [H, W, 3]
    frame_b: np.ndarray,  # [H, W, 3]
    static_a: np.ndarray | None = None,  # [H, W] bool
    static_b: np.ndarray | None = None,  # [H, W] bool
) -> tuple[np.ndarray, np.ndarray]:
    """Pixel correspondences ([P, 2], [P, 2]) from DIS flow refined at full resolution: every
    second static pixel of frame a that lands inside frame b on a static pixel."""
    points_a, points_b = landing_matches(dense_flow(frame_a, frame_b, full_resolution=True), step=2)
    keep = np.ones(len(points_a), bool)
    for static, points in ((static_a, points_a), (static_b, points_b)):
        if static is not None:
            keep &= static[pixel_rows_cols(points, static.shape)]
    return points_a[keep], points_b[keep]


def static_masks(moving: np.ndarray | None, a: int, b: int) -> tuple[np.ndarray | None, np.ndarray | None]:
    """The static pixels [H, W] of frames ``a`` and ``b`` given ``moving`` [T, H, W] (None: all)."""
    return (None, None) if moving is None else (~moving[a], ~moving[b])


def fundamental_matrix(rotation: np.ndarray, translation: np.ndarray, K_a: np.ndarray, K_b: np.ndarray) -> np.ndarray:  # noqa: N803
    """F [3, 3] = K_b^-T [t]x R K_a^-1: ``x_b^T F x_a = 0`` for pixels of one point."""
    return np.linalg.inv(K_b).T @ cross_matrix(translation) @ rotation @ np.linalg.inv(K_a)


def cross_matrix(vector: np.ndarray) -> np.ndarray:
    """[v]x [3, 3]: ``cross_matrix(v) @ w == np.cross(v, w)``."""
    x, y, z = vector
    return np.array([[0.0, -z, y], [z, 0.0, -x], [-y, x, 0.0]])


def set_frame_intrinsics(database_path: Path, names: list[str], K: Tensor) -> None:  # noqa: N803
    """Give each image's own (PINHOLE) COLMAP camera the intrinsics ``K`` [T, 3, 3] of its frame."""
    import pycolmap

    index_of = {name: index for index, name in enumerate(names)}
    database = pycolmap.Database.open(database_path)
    try:
        for image in database.read_all_images():
            camera = database.read_camera(image.camera_id)
            frame_K = K[index_of[image.name]].double()  # noqa: N806
            camera.params = [float(frame_K[0, 0]), float(frame_K[1, 1]), float(frame_K[0, 2]), float(frame_K[1, 2])]
            database.update_camera(camera)
    finally:
        database.close()


def posed_reconstruction(database_path: Path, names: list[str], w2c: Tensor) -> "pycolmap.Reconstruction":  # noqa: F821
    """A pycolmap ``Reconstruction`` of the database's cameras and images, each frame registered at
    its known pose ``w2c`` [T, 4, 4] (our w2c is COLMAP's ``cam_from_world``), and no points yet."""
    import pycolmap

    index_of = {name: index for index, name in enumerate(names)}
    reconstruction = pycolmap.Reconstruction()
    database = pycolmap.Database.open(database_path)
    try:
        for camera in database.read_all_cameras():
            reconstruction.add_camera(camera)
        for rig in database.read_all_rigs():
            reconstruction.add_rig(rig)
        colmap_frames = {frame.frame_id: frame for frame in database.read_all_frames()}
        for image in database.read_all_images():
            pose = w2c[index_of[image.name]].double().numpy()
            colmap_frame = colmap_frames[image.frame_id]
            colmap_frame.rig_from_world = pycolmap.Rigid3d(pycolmap.Rotation3d(pose[:3, :3]), pose[:3, 3])
            reconstruction.add_frame(colmap_frame)
            keypoints = database.read_keypoints(image.image_id)[:, :2]
            posed = pycolmap.Image(
                name=image.name, keypoints=keypoints, camera_id=image.camera_id, image_id=image.image_id
            )
            posed.frame_id = image.frame_id
            reconstruction.add_image(posed)
            reconstruction.register_frame(image.frame_id)
    finally:
        database.close()
    return reconstruction


def write_colmap_inputs(folder: Path, frames: np.ndarray, moving: np.ndarray | None) -> list[str]:
    """Frames as ``images/NNNNN.png`` and COLMAP masks ``masks/NNNNN.png.png`` (0 = no features)."""
    from PIL import Image

    (folder / "images").mkdir()
    (folder / "masks").mkdir()
    names = [f"{index:05d}.png" for index in range(len(frames))]
    for index, name in enumerate(names):
        Image.fromarray(to_uint8(frames[index])).save(folder / "images" / name)
        if moving is not None:
            keep = np.where(moving[index], 0, 255).astype(np.uint8)
            Image.fromarray(keep).save(folder / "masks" / f"{name}.png")
    return names


def reader_options(mask_folder: Path | None, K: Tensor | None):  # noqa: N803
    import pycolmap

    options = pycolmap.ImageReaderOptions()
    if mask_folder is not None:
        options.mask_path = str(mask_folder / "masks")
    if K is not None:
        options.camera_model = "PINHOLE"
        options.camera_params = ",".join(str(float(v)) for v in (K[0, 0], K[1, 1], K[0, 2], K[1, 2]))
    else:
        options.camera_model = "SIMPLE_PINHOLE"
    return options


def extraction_options(config: SfMConfig):
    import pycolmap

    options = pycolmap.FeatureExtractionOptions()
    options.num_threads = config.num_threads
    options.use_gpu = False
    options.sift.max_num_features = config.max_features
    options.sift.peak_threshold = config.peak_threshold
    return options


def matching_options(config: SfMConfig):
    import pycolmap

    options = pycolmap.FeatureMatchingOptions()
    options.num_threads = config.num_threads
    return options


def verification_options(config: SfMConfig):
    """Two-view geometry with a seeded RANSAC (COLMAP seeds it from the clock by default)."""
    import pycolmap

    options = pycolmap.TwoViewGeometryOptions()
    options.ransac.random_seed = config.seed
    return options


def mapper_options(config: SfMConfig, intrinsics_known: bool):
    import pycolmap

    options = pycolmap.IncrementalPipelineOptions()
    options.num_threads = config.num_threads
    options.random_seed = config.seed
    options.mapper.random_seed = config.seed
    options.triangulation.random_seed = config.seed
    options.multiple_models = True
    options.ba_refine_focal_length = not intrinsics_known
    options.ba_refine_principal_point = False
    options.ba_refine_extra_params = False
    return options


def global_mapper_options(config: SfMConfig, intrinsics_known: bool):
    """COLMAP's global pipeline (GLOMAP), seeded, on ``num_threads``, on the CPU."""
    import pycolmap

    options = pycolmap.GlobalPipelineOptions()
    options.num_threads = config.num_threads
    options.random_seed = config.seed
    mapper = options.mapper
    mapper.num_threads = config.num_threads
    mapper.random_seed = config.seed
    mapper.rotation_averaging.random_seed = config.seed
    mapper.global_positioning.random_seed = config.seed
    mapper.retriangulation.random_seed = config.seed
    mapper.global_positioning.use_gpu = False
    mapper.bundle_adjustment.ceres.use_gpu = False
    mapper.bundle_adjustment.refine_focal_length = not intrinsics_known
    mapper.bundle_adjustment.refine_principal_point = False
    mapper.bundle_adjustment.refine_extra_params = False
    return options


def result_from_reconstruction(reconstruction, names: list[str], shape: tuple[int, ...]) -> SfMResult:
    """Registered frames' ``Cameras`` (COLMAP ``cam_from_world`` is our w2c) and the sparse points."""
    index_of = {name: index for index, name in enumerate(names)}
    images = sorted(reconstruction.images.values(), key=lambda image: index_of[image.name])
    registered = np.array([index_of[image.name] for image in images if image.has_pose], dtype=np.int64)
    w2c, K = [], []  # noqa: N806
    for image in images:
        if not image.has_pose:
            continue
        matrix = np.eye(4)
        matrix[:3] = image.cam_from_world().matrix()
        w2c.append(matrix)
        K.append(reconstruction.cameras[image.camera_id].calibration_matrix())
    height, width = shape[1:3]
    cameras = Cameras(torch.tensor(np.stack(K)).float(), torch.tensor(np.stack(w2c)).float(), width, height)
    return SfMResult(cameras, registered, *points_and_colors(reconstruction))


def points_and_colors(reconstruction) -> tuple[np.ndarray, np.ndarray]:
    """A reconstruction's 3D points [P, 3] and their colours [P, 3] in [0, 1]."""
    points = list(reconstruction.points3D.values())
    xyz = np.array([point.xyz for point in points], dtype=np.float32).reshape(-1, 3)
    rgb = np.array([point.color for point in points], dtype=np.float32).reshape(-1, 3) / 255
    return xyz, rgb


def rotation_only_cameras(
    frames: np.ndarray,  # [T, H, W, 3]
    moving: np.ndarray | None,  # [T, H, W] bool
    K: Tensor | None,  # [3, 3]; when None, the focal length is fitted to the homographies  # noqa: N803
    config: SfMConfig,
) -> SfMResult | None:
    """Cameras of a still or purely rotating camera, or None when the camera translates.

    A rotation about the camera centre maps pixels by one homography H = K R K^-1, so R is the
    rotation nearest to K^-1 H K. Each frame's homography is taken from a keyframe
    (``keyframe_homographies``); rotations chain through the keyframes. The first camera is the
    identity and every centre stays at 0. None when the static pixels leave the homographies
    (parallax); a translating camera over a plane or a distant scene may still pass this, which
    ``camera_translates`` tells apart.
    """
    height, width = frames.shape[1:3]
    chain = keyframe_homographies(frames, moving, config)
    if chain is None:
        return None
    if K is None:
        K = intrinsics_from_rotations([h for _, h in chain], width, height)  # noqa: N806
    camera, inverse = K.double().numpy(), torch.linalg.inv(K.double()).numpy()
    rotations = [np.eye(3)]
    for key, homography in chain:
        rotations.append(nearest_rotation(inverse @ homography @ camera) @ rotations[key])
    w2c = torch.eye(4, dtype=torch.float64).repeat(len(frames), 1, 1)
    w2c[:, :3, :3] = torch.tensor(np.stack(rotations))
    cameras = Cameras(K.float().expand(len(frames), 3, 3).clone(), w2c.float(), width, height)
    return SfMResult.cameras_only(cameras)


def keyframe_homographies(
    frames: np.ndarray, moving: np.ndarray | None, config: SfMConfig
) -> list[tuple[int, np.ndarray]] | None:
    """For frames 1..T-1: (keyframe index, homography [3, 3] from the keyframe to the frame).

    A keyframe every ``keyframe_gap`` frames; each frame's homography is fitted to the dense
    flow of the static pixels from its keyframe (``static_flow_matches``): thousands of
    correspondences where a smooth scene (sky, plain ground) offers a few dozen corners, and
    errors add up only at keyframes. None when a homography leaves half the static pixels over
    ``rotation_residual_px`` away (parallax: the camera translates).
    """
    chain = []
    for index in range(1, len(frames)):
        key = (index - 1) // config.keyframe_gap * config.keyframe_gap
        points, moved = static_flow_matches(frames[key], frames[index], *static_masks(moving, key, index))
        homography = None if len(points) < 16 else fitted_homography(points, moved, config)
        if homography is None:
            return None
        chain.append((key, homography))
    return chain


def intrinsics_from_rotations(homographies: list[np.ndarray], width: int, height: int) -> Tensor:
    """[3, 3] K (square pixels, centred principal point) whose K^-1 H K are closest to rotations.

    For a rotating camera each K^-1 H K is a rotation times a scale; the focal length is the
    one (searched over 0.3-5 x the longer side, log-spaced, then refined) that makes them most
    nearly orthogonal. When the search finds no interior minimum, or COLMAP's prior fits about
    as well as the best or within ``ROTATION_NOISE`` rms (a still camera, a roll about the
    optical axis, a slow turn: the focal length is unobservable), the prior is kept.
    """

    def orthogonality_error(focal: float) -> float:
        K = centred_intrinsics(focal, width, height).numpy()  # noqa: N806
        return sum(rotation_deviation(homography, K) ** 2 for homography in homographies)

    side = max(width, height)
    grid = side * np.geomspace(0.3, 5.0, 120)
    errors = [orthogonality_error(f) for f in grid]
    best = int(np.argmin(errors))
    prior = orthogonality_error(DEFAULT_FOCAL_FACTOR * side)
    if best in (0, len(grid) - 1) or prior <= 1.5 * errors[best] + len(homographies) * ROTATION_NOISE**2:
        return default_intrinsics(width, height)  # no interior minimum: focal length unobservable
    fine = np.linspace(grid[best - 1], grid[best + 1], 41)
    return centred_intrinsics(float(fine[int(np.argmin([orthogonality_error(f) for f in fine]))]), width, height)


def camera_translates(
    frames: np.ndarray,  # [T, H, W, 3]
    moving: np.ndarray | None,  # [T, H, W] bool
    K: np.ndarray | None,  # [3, 3]; when None, the focal length that makes the homographies most nearly rotations  # noqa: N803
    config: SfMConfig,
) -> bool:
    """Whether the camera moves its centre, not only turns.

    A translating camera's static pixels may follow homographies too (a ground plane, a
    distant scene), but then K^-1 H K is no rotation (a dolly scales, a truck shears). Per pair
    of frames ``rotation_test_gap`` apart (the last pair ends at the last frame), the homography of
    their static flow (``static_flow_matches``, RANSAC, 1 px); True when the median
    ``rotation_deviation`` exceeds ``rotation_orthogonality``. Dense flow, not the few corners a
    smooth scene offers: on 256x256 synth clips of 24-32 frames rotating cameras measure at most
    0.011, translating ones at least 0.08; at 128x128 with 16 frames (a faster move per frame)
    the two overlap (0.005-0.07 against 0.15-0.37).
    """
    import cv2

    if len(frames) < 2:
        return False
    gap = min(config.rotation_test_gap, len(frames) - 1)
    starts = sorted({*range(0, len(frames) - gap, gap), len(frames) - 1 - gap})
    homographies = []
    for start in starts:
        masks = static_masks(moving, start, start + gap)
        points_a, points_b = static_flow_matches(frames[start], frames[start + gap], *masks)
        homography = None if len(points_a) < 16 else cv2.findHomography(points_a, points_b, cv2.RANSAC, 1.0)[0]
        if homography is None:
            return True
        homographies.append(homography)
    if K is None:
        K = intrinsics_from_rotations(homographies, frames.shape[2], frames.shape[1]).numpy()  # noqa: N806
    deviations = [rotation_deviation(homography, K) for homography in homographies]
    return bool(np.median(deviations) > config.rotation_orthogonality)


def rotation_deviation(homography: np.ndarray, K: np.ndarray) -> float:  # noqa: N803
    """|M^T M - I| (Frobenius) of M = K^-1 H K scaled to det 1: 0 when ``homography`` [3, 3] is a
    rotation of a camera with intrinsics ``K`` [3, 3]."""
    matrix = np.linalg.inv(K) @ homography @ K
    matrix /= np.cbrt(np.linalg.det(matrix))
    return float(np.linalg.norm(matrix.T @ matrix - np.eye(3)))


def fitted_homography(points: np.ndarray, moved: np.ndarray, config: SfMConfig) -> np.ndarray | None:
    """RANSAC homography [3, 3] from ``points`` to ``moved`` ([P, 2]), or None when half the
    points or more miss it by over ``rotation_residual_px``."""
    import cv2

    homography, _ = cv2.findHomography(points, moved, cv2.RANSAC, 1.0)
    if homography is None:
        return None
    residual = np.linalg.norm(apply_homography(homography, points) - moved, axis=1)
    return homography if np.median(residual) <= config.rotation_residual_px else None


def nearest_rotation(matrix: np.ndarray) -> np.ndarray:
    """The rotation closest (Frobenius) to ``matrix`` [3, 3] up to scale, by SVD."""
    u, _, v_t = np.linalg.svd(matrix)
    rotation = u @ v_t
    return rotation if np.linalg.det(rotation) > 0 else -rotation


def plausible_focal(cameras: Cameras, low: float = 0.4, high: float = 4.0) -> bool:
    """Whether the focal length lies within [low, high] x the longer side (fields of view of
    about 14-100 degrees)."""
    side = max(cameras.width, cameras.height)
    return bool(((cameras.K[:, 0, 0] >= low * side) & (cameras.K[:, 0, 0] <= high * side)).all())


def default_intrinsics(width: int, height: int) -> Tensor:
    """[3, 3] K with COLMAP's prior focal length and the principal point at the image centre."""
    return centred_intrinsics(DEFAULT_FOCAL_FACTOR * max(width, height), width, height)


def centred_intrinsics(focal_px: float, width: int, height: int) -> Tensor:
    """[3, 3] K with square pixels and the principal point at the image centre."""
    return torch.tensor([[focal_px, 0, width / 2], [0, focal_px, height / 2], [0, 0, 1]], dtype=torch.float64)
