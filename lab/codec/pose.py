"""Head pose (yaw, pitch, roll) from 68 facial landmarks: solvePnP of a mean face, plus a landmark-only check.

Two estimators, both taking the iBUG 300-W 68-point scheme that :mod:`metrics.backends` returns (``(68, 2)``
``(x, y)`` pixel coordinates):

* :func:`head_pose` fits a rigid generic 3-D face (:data:`MEAN_FACE_3D`, below) to 14 of the points with
  ``cv2.solvePnP`` (SQPnP, globally optimal for the reprojection error, then Levenberg-Marquardt refinement)
  under a pinhole camera of focal length = image width and principal point at the image centre (a ~53°
  horizontal field of view: a webcam, or a face crop of one), no lens distortion. The rotation is split
  into Euler angles as ``R = Rz(roll) · Ry(-yaw) · Rx(-pitch)`` in OpenCV's camera axes (x right, y down,
  z forward);
* :func:`landmark_yaw_roll` reads yaw from where the nose tip sits between the two sides of the face
  contour, and roll from the line through the eye centres. It needs no 3-D model and no camera, and serves
  to cross-check the PnP angles (a wrong PnP minimum shows up as a disagreement in sign or size).

Sign convention (degrees, the same for both estimators):

* **yaw > 0**: the face turns towards the image's right (the subject's own left); the nose tip moves right
  of the face centre. A mirrored image negates yaw (and roll).
* **pitch > 0**: the face tilts up (chin forward, the subject looks up).
* **roll > 0**: the face rotates clockwise in the image (y points down, so the eye on the image's right
  sits lower): ``atan2(dy, dx)`` of the eye line.

The mean face (:data:`MEAN_FACE_3D`) is MediaPipe's canonical face mesh (the face geometry of the
``face_landmarker.task`` bundle) at the vertex nearest to where dlib's shape predictor puts each point: outer eye
corners 89 mm apart, inner corners 40 mm, mouth 49 mm wide, nasion 8 mm above the eye line, nose tip 30 mm below
it and 39 mm in front of the inner eye corners, subnasale 46 mm below, mouth corners 68 mm, chin 119 mm. Model
axes are the camera's for a frontal face at the optical axis: X towards the image right, Y down, Z away from
the camera (the nose tip has the smallest Z). The jaw contour (points 0-16) and the eyebrows are left out of
the fit: the contour is an occluding outline whose 3-D position changes with yaw, and brows move with
expression. The mouth corners and the chin move when the mouth opens, so the fit leans on the eyes and nose
(11 of its 14 points). Pitch zero is the canonical face's frame (:data:`MODEL_TILT_DEG` = 0).

Accuracy, against the reference (:mod:`lab.evaluation.pose_reference`: MediaPipe FaceLandmarker's facial transformation
matrix, a per-frame fit of its learned 478-point 3-D mesh, decomposed with the same convention). Every 10th frame
(<= 30 per clip) of the shared set's clips, dlib landmarks, mean absolute error (mean signed error) in degrees:

============  ======  ============  =============  ============
class         frames  yaw           pitch          roll
============  ======  ============  =============  ============
frontal, now    1452  2.03 (-0.37)  3.05 (-1.27)   0.65 (+0.04)
frontal, was    1452  2.19 (-0.41)  5.42 (-5.18)   0.84 (+0.07)
moderate, now    213  2.91 (-0.05)  3.41 (-2.14)   1.19 (+0.84)
moderate, was    213  3.15 (-0.01)  6.92 (-6.79)   1.49 (+0.18)
large, now       115  3.65 (+2.07)  4.25 (-2.24)   2.38 (+1.34)
large, was       115  4.03 (+2.85)  9.35 (-8.22)   3.52 (+0.21)
============  ======  ============  =============  ============

"was": the earlier anthropometric model (nose tip 40 mm below the eye line: 10 mm lower than where dlib puts
point 30) tilted by 13° so that the MEAD front-camera clips read pitch 0. Pitch read 5° low on average and up to
17° low on faces looking down: a 256² clip of a speaker looking slightly down read -15 to -33° (issue 12;
MediaPipe: -7 to -15°) and the Failures tab flagged it as a large pose. The focal length (image width, as
before) and the 14-point subset were checked too and kept: a focal of 0.6-4x the width moves the frontal yaw or
pitch MAE by up to +1.2° (the width is the best compromise); adding eyelid, inner-nostril or other lip points
moves it by less than 0.5°, fitting all inner points (17-67) is worse (pitch 4.4°). What remains is mostly per
person (5-7° of pitch MAE on a few clips, e.g. IP_LAP ``129.mp4``, styletalk ``trump_clip1``): a generic face
cannot follow each nose. ``python -m lab.evaluation.pose_reference`` re-measures it.

MediaPipe stays the calibration reference, not the default: every caller already has dlib's 68 points (the
quality gate, the failure flags and the landmark scores use them), and mediapipe is an extra install (with
``--no-deps``: ``requirements-nodeps.txt``).

With dlib's 68 points, **turned faces read a little low**: the shape predictor pulls its points towards the mean
(frontal) shape, so yaw reads 0.7-1.1x the reference's on the ``large`` clips (PC-AVS ``00010.mp4``: -16 to -29°
against -28 to -36°; styletalk ``furious_talk1_clip2``: 21-35° against 21-33°) and less than the set's classes,
which came from MediaPipe *landmark* yaw (``large``: p5/p95 >= 35°). The large-pose thresholds
(:data:`LARGE_YAW_DEG` ...) are set on this scale: on every 10th frame of the set's 224/256 px clips, p95 |yaw|
is 21-35° for every ``large`` clip and at most 14° for every ``frontal`` one.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

__all__ = [
    "HeadPose",
    "MEAN_FACE_3D",
    "PNP_POINTS",
    "MODEL_TILT_DEG",
    "model_points",
    "camera_matrix",
    "head_pose",
    "landmark_yaw_roll",
    "pose_of_landmarks",
    "pose_of_frames",
    "resolve_landmark_backend",
    "eye_centres",
    "inter_ocular",
    "MIRROR_68",
    "mirror_landmarks",
    "rotation_matrix",
    "LARGE_YAW_DEG",
    "LARGE_PITCH_DEG",
    "LARGE_ROLL_DEG",
]

#: Generic face, millimetres, by iBUG-68 index (0-based). Axes: X image-right, Y down, Z away from the camera,
#: for a frontal face; the origin is the midpoint of the inner eye corners. Each point is the vertex of MediaPipe's
#: canonical face mesh (``canonical_face_model``, the face geometry of ``face_landmarker.task``; Apache-2.0) nearest
#: to where dlib's 68-point predictor puts that landmark (measured on the shared set's frontal clips: mean
#: distance 0.02-0.05 inter-ocular), converted from its centimetres, Y up and Z towards the viewer; the nostril
#: pair averaged to be mirror symmetric. MediaPipe vertex per point: 27 -> 168, 28 -> 6, 30 -> 4, 31/35 ->
#: 240/460 and 305, 33 -> 2, 36/45 -> 33/263, 39/42 -> 155/382, 48/54 -> 61/291, 51 -> 0, 8 -> 152.
MEAN_FACE_3D: dict[int, tuple[float, float, float]] = {
    27: (0.0, -7.7, -15.5),  # nasion (top of the nose bridge)
    28: (0.0, 0.2, -21.0),  # nose bridge
    30: (0.0, 29.6, -39.0),  # nose tip: where dlib puts it, 7 mm above MediaPipe's pronasale (vertex 1)
    31: (-11.4, 40.2, -18.8),  # nostril, outer lower point (image left)
    33: (0.0, 45.9, -23.7),  # subnasale
    35: (11.4, 40.2, -18.8),  # nostril, outer lower point (image right)
    36: (-44.5, -1.7, 5.2),  # eye, outer corner (image left: the subject's right eye)
    39: (-20.0, 0.0, 0.0),  # eye, inner corner
    42: (20.0, 0.0, 0.0),  # eye, inner corner (image right: the subject's left eye)
    45: (44.5, -1.7, 5.2),  # eye, outer corner
    48: (-24.6, 68.4, -5.9),  # mouth corner (image left)
    51: (0.0, 59.0, -22.9),  # upper lip, top centre
    54: (24.6, 68.4, -5.9),  # mouth corner (image right)
    8: (0.0, 119.0, -5.8),  # chin (menton)
}
PNP_POINTS: tuple[int, ...] = tuple(MEAN_FACE_3D)
"""The landmark indices the PnP fit uses, in :data:`MEAN_FACE_3D` order."""

MODEL_TILT_DEG = 0.0
"""Tilt (degrees, up) applied to :data:`MEAN_FACE_3D` before the fit. 0: pitch zero is MediaPipe's canonical face
frame, the reference's (:mod:`lab.evaluation.pose_reference`). It was 13° with the earlier anthropometric
model, whose nose
tip sat 10 mm lower than where dlib puts point 30 (untilted, it read faces 8° higher than MediaPipe does); the
tilt, set so that the MEAD front-camera clips read 0 (MediaPipe reads their medians -3 to +10°), overshot:
pitch read 5° low on average and up to 17° low on faces looking down (issue 12)."""

# Thresholds of a "large" pose on this estimator's scale (used by lab.evaluation.failures and lab.codec.quality_gate).
LARGE_YAW_DEG = 25.0
"""|yaw| from which a pose counts as large. The shared set's classes put ``large`` at MediaPipe landmark
|yaw| >= 35°; dlib's 68 points on a turned face regress towards the mean (frontal) shape, so this estimator
reads such faces lower (PC-AVS ``00010.mp4``, noted "held at about -40°", reads -16 to -29°, the reference
matrix -28 to -36°; styletalk ``furious_talk1_clip2``, noted 30-44°, reads 21-35°). 25° here is that 35°.
Measured on every 10th frame of the 224/256 px clips: the frontal clips stay within |yaw| 18°, every large
clip has a p95 of at least 21°. On every 2nd frame of the first 300 of the 68 frontal clips up to 1024 px, one
frame reaches it: styletalk ``sad_emotion_clip1`` #132 (eyes squeezed shut behind glasses) reads -25°, dlib's
68 points having slid sideways over the face (the reference reads -11°)."""
LARGE_PITCH_DEG = 30.0
"""|pitch| from which a pose counts as large (the set's README defines no pitch class): on every 10th of the
first 100 frames of the 224/256 px frontal clips pitch reads -23° to +18° (before the issue-12 fix, -30° to
+13°); every 2nd frame of the first 300 of the 68 frontal clips up to 1024 px, -25° to +28°."""
LARGE_ROLL_DEG = 35.0
"""|roll| from which a pose counts as large: the set's README threshold as is (the eye line reads the same
angle with any landmark set; styletalk ``furious_talk2_clip7``, noted 43°, reads up to 40°)."""

#: iBUG-68 index of each point's mirror partner (image flipped left-right): jaw 0<->16, brows 17<->26,
#: nostrils 31<->35, eyes 36<->45 ..., mouth 48<->54 ...; the nose bridge and centre points map to themselves.
MIRROR_68: tuple[int, ...] = (
    *range(16, -1, -1),  # 0-16 jaw
    *range(26, 21, -1),  # 17-21 -> 26-22
    *range(21, 16, -1),  # 22-26 -> 21-17
    27, 28, 29, 30,  # nose bridge
    35, 34, 33, 32, 31,  # nostrils
    45, 44, 43, 42, 47, 46,  # eye 36-41 -> 45-42, 47, 46
    39, 38, 37, 36, 41, 40,  # eye 42-47 -> 39-36, 41, 40
    54, 53, 52, 51, 50, 49, 48,  # outer lip 48-54
    59, 58, 57, 56, 55,  # outer lip 55-59
    64, 63, 62, 61, 60,  # inner lip 60-64
    67, 66, 65,  # inner lip 65-67
)

# Landmark-only yaw: a vertical-cylinder head. The nose tip sits P in front of the yaw axis and the face
# outline is the cylinder's silhouette at +-W from it; under yaw θ the tip moves P·sin θ while the silhouette
# stays, so (dL - dR) / (dL + dR) = (P / W)·sin θ with dL, dR the tip's distances to the left/right outline.
# W = 65 mm (half the cheek width at the contour points used), P = 100 mm (nose tip to the neck axis).
_CYLINDER_W_OVER_P = 0.65
_CONTOUR_LEFT = (1, 2, 3)  # jaw-contour points on the image left, from the eye line down to the mouth
_CONTOUR_RIGHT = (15, 14, 13)  # their mirror partners on the image right


@dataclass(frozen=True)
class HeadPose:
    """A head pose in degrees (sign convention in the module docstring).

    Attributes:
        yaw: > 0 turned towards the image right.
        pitch: > 0 tilted up.
        roll: > 0 clockwise in the image.
        error: RMS reprojection error of the fit in pixels (NaN for a landmark-only estimate).
    """

    yaw: float
    pitch: float
    roll: float
    error: float = float("nan")

    def max_abs(self) -> float:
        """The largest of ``|yaw|``, ``|pitch|``, ``|roll|``."""
        return max(abs(self.yaw), abs(self.pitch), abs(self.roll))

    def as_dict(self) -> dict[str, float]:
        """``{"yaw": .., "pitch": .., "roll": .., "error": ..}``."""
        return {"yaw": self.yaw, "pitch": self.pitch, "roll": self.roll, "error": self.error}


def _check_landmarks(landmarks: np.ndarray) -> np.ndarray:
    lm = np.asarray(landmarks, dtype=np.float64)
    if lm.shape != (68, 2):
        raise ValueError(f"landmarks must be a (68, 2) array of (x, y) pixels, got shape {lm.shape}")
    if not np.isfinite(lm).all():
        raise ValueError("landmarks contain NaN or inf")
    return lm


def eye_centres(landmarks: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Centres of the two eyes (means of points 36-41 and 42-47): ``(image-left eye, image-right eye)``."""
    lm = np.asarray(landmarks, dtype=np.float64)
    return lm[36:42].mean(0), lm[42:48].mean(0)


def inter_ocular(landmarks: np.ndarray) -> float:
    """Distance between the eye centres in pixels (the usual landmark normaliser)."""
    a, b = eye_centres(landmarks)
    return float(np.hypot(*(b - a)))


def mirror_landmarks(landmarks: np.ndarray, width: int) -> np.ndarray:
    """The landmarks of the left-right mirrored image (``x -> width - 1 - x``), re-indexed by :data:`MIRROR_68`."""
    lm = _check_landmarks(landmarks).copy()
    lm[:, 0] = (width - 1) - lm[:, 0]
    return lm[list(MIRROR_68)]


def camera_matrix(image_size: Sequence[int], focal: float | None = None) -> np.ndarray:
    """Pinhole intrinsics for an ``(H, W)`` image: focal ``focal`` (default W), principal point at the centre."""
    h, w = (float(v) for v in image_size[:2])
    f = w if focal is None else float(focal)
    return np.array([[f, 0.0, (w - 1) / 2], [0.0, f, (h - 1) / 2], [0.0, 0.0, 1.0]])


def _rot_x(deg: float) -> np.ndarray:
    a = math.radians(deg)
    return np.array([[1.0, 0.0, 0.0], [0.0, math.cos(a), -math.sin(a)], [0.0, math.sin(a), math.cos(a)]])


def model_points() -> np.ndarray:
    """The ``(14, 3)`` 3-D points of the fit: :data:`MEAN_FACE_3D` in :data:`PNP_POINTS` order, tilted up by
    :data:`MODEL_TILT_DEG` (pitch > 0 is ``Rx(-pitch)`` in camera axes)."""
    obj = np.array([MEAN_FACE_3D[i] for i in PNP_POINTS], dtype=np.float64)
    return obj @ _rot_x(-MODEL_TILT_DEG).T


def _euler(r: np.ndarray) -> tuple[float, float, float]:
    """``R = Rz(roll) · Ry(-yaw) · Rx(-pitch)`` → (yaw, pitch, roll) in degrees."""
    beta = math.asin(max(-1.0, min(1.0, -r[2, 0])))
    alpha = math.atan2(r[2, 1], r[2, 2])
    gamma = math.atan2(r[1, 0], r[0, 0])
    return -math.degrees(beta), -math.degrees(alpha), math.degrees(gamma)


def rotation_matrix(yaw: float = 0.0, pitch: float = 0.0, roll: float = 0.0) -> np.ndarray:
    """The camera-frame rotation of a head pose in degrees: ``Rz(roll) · Ry(-yaw) · Rx(-pitch)`` (module docstring)."""
    a, b, g = math.radians(-pitch), math.radians(-yaw), math.radians(roll)
    rx = np.array([[1, 0, 0], [0, math.cos(a), -math.sin(a)], [0, math.sin(a), math.cos(a)]])
    ry = np.array([[math.cos(b), 0, math.sin(b)], [0, 1, 0], [-math.sin(b), 0, math.cos(b)]])
    rz = np.array([[math.cos(g), -math.sin(g), 0], [math.sin(g), math.cos(g), 0], [0, 0, 1]])
    return rz @ ry @ rx


def head_pose(landmarks: np.ndarray, image_size: Sequence[int], focal: float | None = None) -> HeadPose:
    """Head pose of one face by solvePnP of :data:`MEAN_FACE_3D` (module docstring).

    Args:
        landmarks: ``(68, 2)`` ``(x, y)`` pixel coordinates (iBUG 300-W order).
        image_size: ``(H, W)`` of the image the landmarks are in.
        focal: focal length in pixels (default: the image width).

    Returns:
        :class:`HeadPose` in degrees, with the RMS reprojection error in pixels.
    """
    import cv2

    lm = _check_landmarks(landmarks)
    obj = model_points()
    img = lm[list(PNP_POINTS)]
    k = camera_matrix(image_size, focal)
    dist = np.zeros(4)
    ok, rvec, tvec = cv2.solvePnP(obj, img, k, dist, flags=cv2.SOLVEPNP_SQPNP)
    if not ok:  # pragma: no cover - SQPnP succeeds on any >= 3 non-collinear points
        ok, rvec, tvec = cv2.solvePnP(obj, img, k, dist, flags=cv2.SOLVEPNP_EPNP)
    rvec, tvec = cv2.solvePnPRefineLM(obj, img, k, dist, rvec, tvec)
    proj, _ = cv2.projectPoints(obj, rvec, tvec, k, dist)
    err = float(np.sqrt(np.mean(np.sum((proj.reshape(-1, 2) - img) ** 2, axis=1))))
    r, _ = cv2.Rodrigues(rvec)
    yaw, pitch, roll = _euler(r)
    return HeadPose(yaw, pitch, roll, err)


def landmark_yaw_roll(landmarks: np.ndarray) -> HeadPose:
    """Yaw and roll from landmark positions only (no 3-D model; ``pitch`` is NaN).

    * roll: ``atan2(dy, dx)`` of the line from the image-left eye centre to the image-right one;
    * yaw: in the face's own frame (roll removed), the nose tip's horizontal distances ``dL``, ``dR`` to
      the contour points 1-3 and 13-15 give ``r = (dL - dR) / (dL + dR)``; a vertical-cylinder head with
      the nose tip 100 mm in front of the neck axis and a 65 mm half-width turns it into
      ``yaw = asin(clip(0.65 · r, -1, 1))``.

    Args:
        landmarks: ``(68, 2)`` ``(x, y)`` pixel coordinates.

    Returns:
        :class:`HeadPose` with ``pitch`` and ``error`` NaN.
    """
    lm = _check_landmarks(landmarks)
    le, re = eye_centres(lm)
    dx, dy = re - le
    roll = math.atan2(dy, dx)
    c, s = math.cos(-roll), math.sin(-roll)
    x = lm[:, 0] * c - lm[:, 1] * s  # x in the de-rolled frame
    tip = x[30]
    d_left = float(np.mean(tip - x[list(_CONTOUR_LEFT)]))
    d_right = float(np.mean(x[list(_CONTOUR_RIGHT)] - tip))
    total = d_left + d_right
    if total <= 0:  # degenerate outline (points collapsed): no reading
        return HeadPose(float("nan"), float("nan"), math.degrees(roll))
    # past ~40° the nose tip can leave the outline (dR < 0, r > 1): the cylinder still holds, only sin θ is clipped
    r = (d_left - d_right) / total
    yaw = math.degrees(math.asin(float(np.clip(_CYLINDER_W_OVER_P * r, -1.0, 1.0))))
    return HeadPose(yaw, float("nan"), math.degrees(roll))


def pose_of_landmarks(
    landmarks: Sequence[np.ndarray | None], image_size: Sequence[int], focal: float | None = None
) -> list[HeadPose | None]:
    """:func:`head_pose` per frame; ``None`` stays ``None`` (no face)."""
    return [None if lm is None else head_pose(lm, image_size, focal) for lm in landmarks]


def resolve_landmark_backend(backend: Any = "dlib") -> Any:
    """A landmark backend from a name (:func:`metrics.backends.get_landmark_backend`) or an instance."""
    if isinstance(backend, str):
        from metrics.backends import get_landmark_backend

        return get_landmark_backend(backend)
    if not hasattr(backend, "landmarks"):
        raise TypeError(f"backend must be a name or have a landmarks(frames) method, got {type(backend).__name__}")
    return backend


def pose_of_frames(frames: np.ndarray, backend: Any = "dlib", focal: float | None = None) -> list[HeadPose | None]:
    """Detect landmarks and estimate the head pose of every frame.

    Args:
        frames: ``(N, H, W, 3)`` (or one ``(H, W, 3)``) uint8 RGB.
        backend: a landmark backend name (``"dlib"``, ``"face-alignment"``) or an object with
            ``landmarks(frames)``.
        focal: focal length in pixels (default: the frame width).

    Returns:
        per frame a :class:`HeadPose`, or ``None`` where no face was found.
    """
    arr = np.asarray(frames)
    if arr.ndim == 3:
        arr = arr[None]
    if arr.ndim != 4 or arr.shape[-1] != 3:
        raise ValueError(f"frames must be (N, H, W, 3) RGB, got shape {arr.shape}")
    lms = resolve_landmark_backend(backend).landmarks(arr)
    return pose_of_landmarks(lms, arr.shape[1:3], focal)
