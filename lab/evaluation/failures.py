"""Failure-case flags per driving frame (the paper's Figure 2); the gallery of the worst frames is
:mod:`lab.evaluation.failure_gallery`.

The paper shows two failure cases of its codec: a **large head pose** (face blurred, artifacts on the hair)
and a **weak temporal correlation** between source and driving frames (far apart in appearance, pose or time:
the result "looks terrible and weird"). :func:`analyse_failures` flags, for every driving frame of a run
(one source, one driving clip, optionally the model's predictions):

``large_pose``
    ``|yaw| >= max_yaw`` or ``|pitch| >= max_pitch`` or ``|roll| >= max_roll`` (degrees, :mod:`lab.codec.pose`;
    defaults :data:`lab.codec.pose.LARGE_YAW_DEG` 25°, :data:`~lab.codec.pose.LARGE_PITCH_DEG` 30°,
    :data:`~lab.codec.pose.LARGE_ROLL_DEG` 35°: the shared set's ``large`` class on this estimator's scale).
``weak_correlation``
    from four scores of the driving frame against the source:

    * ``pose_diff``: ``max(|Δyaw|, |Δpitch|, |Δroll|)`` in degrees;
    * ``landmark_disp``: the 68 landmarks of each frame with their centroid removed and the driving set scaled
      to the source's spread (RMS distance from the centroid), mean point distance, in source inter-ocular
      distances (so translation and zoom do not count; rotation, expression and a changed face shape do);
    * ``appearance_corr``: zero-mean normalised cross-correlation of the grayscale face boxes (landmark extent
      + 10 % per side, resized to 64×64; whole frames where a face is missing), in [-1, 1];
    * ``frame_gap_s``: ``|t - t_source| / fps`` when the source is frame ``source_index`` of the driving
      clip and ``fps`` is known (NaN otherwise).

    Each score becomes a severity, 1 at its threshold: ``pose_diff / max_pose_diff``,
    ``landmark_disp / max_landmark_disp``, ``(1 - appearance_corr) / (1 - min_appearance_corr)``,
    ``frame_gap_s / max_frame_gap_s``. ``weak_score`` is the largest of the first three (NaN ignored).
    The flag trips when ``weak_score >= 1``, or when the frame gap's severity is >= 1 **and**
    ``weak_score >= 0.5`` (time apart alone is harmless; time apart plus a drift half-way to a threshold is
    not). Defaults (measured with source = frame 0 on every 10th frame of shared-set clips): frontal talking
    clips stay below pose_diff 16°, landmark_disp 0.18 and mostly above appearance_corr 0.35; fast or
    large head motion (styletalk ``furious_talk2_clip6``/``clip7``) reaches 28° and 0.35. Cross-identity runs
    compare different people, so ``appearance_corr`` is low by construction (0.36-0.76 measured): set
    ``min_appearance_corr=None`` there to leave it out.
``no_face`` / ``no_face_prediction``
    no face in the driving frame (searched upright and turned by 90°/270°) / in the prediction. dlib's HOG
    detector finds faces up to about 45-60° of yaw, so near-profile frames read as ``no_face`` (a quarter
    to a half of the frames of PC-AVS ``00002.mp4``, noted -18..-54°).
``gate_rejected``
    the sender's :class:`lab.codec.quality_gate.QualityGate` (default thresholds unless one is given, the source
    as its reference) would not send this frame; ``gate_reasons`` says why.

With ``ground_truth`` (reconstruction: the driving frames themselves) and ``predictions``, ``l1`` is the
per-frame L1 (:func:`metrics.functional.l1`), which ranks the gallery's ``worst_l1`` entries.

:func:`lab.evaluation.failure_gallery.gallery_items` picks the worst frames per reason and renders
``source | driving | prediction`` tiles; :func:`lab.evaluation.failure_gallery.write_failures` writes the files.
Nothing here writes files.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np

from lab.codec.pose import (
    LARGE_PITCH_DEG,
    LARGE_ROLL_DEG,
    LARGE_YAW_DEG,
    HeadPose,
    head_pose,
    inter_ocular,
    resolve_landmark_backend,
)
from lab.codec.quality_gate import QualityGate, face_box, landmarks_with_rotation

__all__ = [
    "FLAGS",
    "FailureThresholds",
    "FailureReport",
    "analyse_failures",
    "landmark_displacement",
    "appearance_correlation",
]

FLAGS = ("large_pose", "weak_correlation", "no_face", "no_face_prediction", "gate_rejected")
"""Boolean columns of a report, in the order reasons are listed."""
APPEARANCE_SIZE = 64


@dataclass(frozen=True)
class FailureThresholds:
    """Thresholds of the failure flags (module docstring).

    Attributes:
        max_yaw: large pose from this ``|yaw|`` (degrees).
        max_pitch: large pose from this ``|pitch|``.
        max_roll: large pose from this ``|roll|``.
        max_pose_diff: weak correlation from this pose difference to the source (degrees).
        max_landmark_disp: weak correlation from this normalised landmark displacement (inter-ocular units).
        min_appearance_corr: weak correlation at or below this face-box correlation; None: not used.
        max_frame_gap_s: frame gap (seconds) that counts, together with a half-way drift.
    """

    max_yaw: float = LARGE_YAW_DEG
    max_pitch: float = LARGE_PITCH_DEG
    max_roll: float = LARGE_ROLL_DEG
    max_pose_diff: float = 20.0
    max_landmark_disp: float = 0.25
    min_appearance_corr: float | None = 0.3
    max_frame_gap_s: float = 10.0

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass
class FailureReport:
    """Per-frame failure flags and scores of one run.

    Attributes:
        rows: one dict per driving frame: ``frame``, ``video``, the :data:`FLAGS` (bool), ``failed`` (any flag),
            ``yaw``/``pitch``/``roll``, ``pose_diff``, ``landmark_disp``, ``appearance_corr``, ``frame_gap_s``,
            ``weak_score``, ``l1``, ``gate_reasons`` and ``reasons`` (text).
        thresholds: the :class:`FailureThresholds` used.
        video: a name for the driving clip (gallery captions, CSV).
        fps: frame rate of the driving clip (None when unknown).
        source_index: the driving frame the source is (None: a separate image).
        backend: the landmark backend's label.
        source_pose: the source's head pose (None: no face in the source).
    """

    rows: list[dict[str, Any]]
    thresholds: FailureThresholds
    video: str = ""
    fps: float | None = None
    source_index: int | None = None
    backend: str = ""
    source_pose: HeadPose | None = None

    def __len__(self) -> int:
        return len(self.rows)

    @property
    def summary(self) -> dict[str, int]:
        """Frames per flag, plus ``frames`` and ``failed`` (frames with any flag)."""
        out = {"frames": len(self.rows)}
        for f in (*FLAGS, "failed"):
            out[f] = int(sum(bool(r[f]) for r in self.rows))
        return out

    def flagged(self, flag: str) -> list[int]:
        """Frame indices where ``flag`` is set."""
        if flag not in (*FLAGS, "failed"):
            raise ValueError(f"flag must be one of {(*FLAGS, 'failed')}, got {flag!r}")
        return [r["frame"] for r in self.rows if r[flag]]

    def to_frame(self):
        """The rows as a pandas DataFrame (one row per driving frame)."""
        import pandas as pd

        return pd.DataFrame(self.rows)


# ---------------------------------------------------------------------------------------------- scores


def landmark_displacement(landmarks: np.ndarray, source_landmarks: np.ndarray) -> float:
    """Mean landmark distance after removing translation and scale, in source inter-ocular distances."""
    d = np.asarray(landmarks, dtype=np.float64)
    s = np.asarray(source_landmarks, dtype=np.float64)
    cd, cs = d - d.mean(0), s - s.mean(0)
    rd = math.sqrt(float((cd**2).sum(1).mean()))
    rs = math.sqrt(float((cs**2).sum(1).mean()))
    iod = inter_ocular(s)
    if rd <= 0 or iod <= 0:
        return float("nan")
    return float(np.linalg.norm(cd * (rs / rd) - cs, axis=1).mean() / iod)


def _face_patch(frame: np.ndarray, landmarks: np.ndarray | None) -> np.ndarray:
    import cv2

    f = np.asarray(frame)
    if landmarks is not None:
        x0, y0, x1, y1 = face_box(landmarks, f.shape[:2], pad=0.1)
        f = f[y0:y1, x0:x1]
    g = cv2.cvtColor(np.ascontiguousarray(f), cv2.COLOR_RGB2GRAY).astype(np.float32)
    interp = cv2.INTER_AREA if min(g.shape) >= APPEARANCE_SIZE else cv2.INTER_LINEAR
    return cv2.resize(g, (APPEARANCE_SIZE, APPEARANCE_SIZE), interpolation=interp).astype(np.float64)


def appearance_correlation(
    frame: np.ndarray,
    source: np.ndarray,
    landmarks: np.ndarray | None = None,
    source_landmarks: np.ndarray | None = None,
) -> float:
    """Zero-mean normalised cross-correlation of the grayscale face boxes (whole frames unless both have landmarks).

    Returns:
        in [-1, 1]; 1 for identical patches, NaN when a patch is flat.
    """
    both = landmarks is not None and source_landmarks is not None
    a = _face_patch(frame, landmarks if both else None)
    b = _face_patch(source, source_landmarks if both else None)
    a, b = a - a.mean(), b - b.mean()
    den = math.sqrt(float((a * a).sum() * (b * b).sum()))
    return float((a * b).sum() / den) if den > 0 else float("nan")


def nanmax(values: Sequence[float]) -> float:
    v = [x for x in values if not math.isnan(x)]
    return max(v) if v else float("nan")


def check_frames(name: str, frames: np.ndarray, n: int | None = None) -> np.ndarray:
    a = np.asarray(frames)
    if a.ndim == 3:
        a = a[None]
    if a.ndim != 4 or a.shape[-1] != 3 or a.dtype != np.uint8:
        raise ValueError(f"{name} must be (N, H, W, 3) uint8 RGB, got {a.shape} {a.dtype}")
    if n is not None and len(a) != n:
        raise ValueError(f"{name} has {len(a)} frames, the driving clip {n}")
    return a


_LANDMARK_CHUNK = 8  # frames per landmark call (progress granularity)
ROW_COLUMNS = ("video", "frame", "failed", *FLAGS, "reasons", "yaw", "pitch", "roll", "rotation", "pose_diff",
               "landmark_disp", "appearance_corr", "frame_gap_s", "weak_score", "l1", "gate_reasons")
"""The columns of a report's rows, in order (``failures.csv``)."""


@dataclass(frozen=True)
class _Source:
    """The source frame with its landmarks and head pose (None: no face found)."""

    frame: np.ndarray
    landmarks: np.ndarray | None
    pose: HeadPose | None


def analyse_failures(
    source: np.ndarray,
    driving: np.ndarray,
    predictions: np.ndarray | None = None,
    fps: float | None = None,
    thresholds: FailureThresholds | None = None,
    gate: QualityGate | None = None,
    backend: Any = "dlib",
    *,
    ground_truth: np.ndarray | None = None,
    source_index: int | None = None,
    video: str = "",
    progress=None,
) -> FailureReport:
    """Flag the failure cases of every driving frame (module docstring).

    Args:
        source: ``(H, W, 3)`` uint8 RGB reference frame.
        driving: ``(N, H, W, 3)`` uint8 RGB driving frames.
        predictions: ``(N, H', W', 3)`` uint8 model outputs (checked for a face; ``l1`` with ``ground_truth``).
        fps: frame rate of the driving clip (for ``frame_gap_s``).
        thresholds: :class:`FailureThresholds` (defaults when None).
        gate: the sender's quality gate; None: :class:`~lab.codec.quality_gate.QualityGate` with its defaults.
        backend: landmark backend name or instance.
        ground_truth: ``(N, H', W', 3)`` frames the predictions should equal (reconstruction: the driving clip).
        source_index: the driving frame the source was taken from (reconstruction), for ``frame_gap_s``.
        video: a name for the driving clip.
        progress: a :data:`lab.core.progress.ProgressFn`: the frames whose landmarks are found so far (driving
            frames, then predictions).

    Returns:
        :class:`FailureReport`.
    """
    t = thresholds or FailureThresholds()
    src = np.asarray(source)
    if src.ndim != 3 or src.shape[-1] != 3 or src.dtype != np.uint8:
        raise ValueError(f"source must be (H, W, 3) uint8 RGB, got {src.shape} {src.dtype}")
    drv = check_frames("driving", driving)
    n = len(drv)
    pred = None if predictions is None else check_frames("predictions", predictions, n)
    gt = None if ground_truth is None else check_frames("ground_truth", ground_truth, n)
    be = resolve_landmark_backend(backend)
    gate = gate or QualityGate(backend=be)

    src_lm = be.landmarks(src[None])[0]
    ref = _Source(src, src_lm, None if src_lm is None else head_pose(src_lm, src.shape[:2]))
    found = _in_chunks(drv, lambda c: landmarks_with_rotation(c, be), progress, "face landmarks of the driving frames")
    drv_lms = [lm for lm, _ in found]
    decisions = gate.assess(drv, reference=src, landmarks=drv_lms)
    pred_lms = ([None] * n if pred is None
                else _in_chunks(pred, lambda c: list(be.landmarks(c)), progress, "face landmarks of the predictions"))
    l1s = _per_frame_l1(pred, gt)
    rows = []
    for i in range(n):
        row = {"video": video, "frame": i, "rotation": found[i][1], **_driving_scores(drv[i], drv_lms[i], ref, t)}
        row["frame_gap_s"] = abs(i - source_index) / fps if source_index is not None and fps else float("nan")
        row["weak_score"], row["weak_correlation"] = _weak_correlation(row, t)
        row["no_face_prediction"] = pred is not None and pred_lms[i] is None
        row["gate_rejected"] = not decisions[i].accept
        row["gate_reasons"] = " ".join(decisions[i].reasons)
        row["l1"] = float("nan") if l1s is None else float(l1s[i])
        row["failed"] = any(row[f] for f in FLAGS)
        row["reasons"] = _reason_text(row, t)
        rows.append({k: row[k] for k in ROW_COLUMNS})
    return FailureReport(rows, t, video=video, fps=fps, source_index=source_index,
                         backend=getattr(be, "label", getattr(be, "name", type(be).__name__)), source_pose=ref.pose)


def _in_chunks(frames: np.ndarray, find, progress, what: str) -> list:
    """``find`` (frames → one result per frame) over ``frames`` in chunks of :data:`_LANDMARK_CHUNK`, so that a
    long clip reports its progress (landmarks are independent per frame)."""
    from lab.core.progress import report

    n, out = len(frames), []
    for i in range(0, n, _LANDMARK_CHUNK):
        report(progress, what, i, n)
        out += find(frames[i : i + _LANDMARK_CHUNK])
    report(progress, what, n, n)
    return out


def _per_frame_l1(pred: np.ndarray | None, gt: np.ndarray | None) -> np.ndarray | None:
    if pred is None or gt is None:
        return None
    from metrics.functional import l1

    return np.asarray(l1(pred, gt, reduction="none"), dtype=np.float64)


def _driving_scores(frame: np.ndarray, lm: np.ndarray | None, ref: _Source, t: FailureThresholds) -> dict[str, Any]:
    """A driving frame's face and pose flags and its scores against the source: ``no_face``, ``large_pose``,
    ``yaw``/``pitch``/``roll``, ``pose_diff``, ``landmark_disp`` and ``appearance_corr``."""
    nan = float("nan")
    pose = None if lm is None else head_pose(lm, frame.shape[:2])
    row: dict[str, Any] = {"no_face": lm is None}
    row["large_pose"] = pose is not None and (
        abs(pose.yaw) >= t.max_yaw or abs(pose.pitch) >= t.max_pitch or abs(pose.roll) >= t.max_roll
    )
    row["yaw"], row["pitch"], row["roll"] = (nan,) * 3 if pose is None else (pose.yaw, pose.pitch, pose.roll)
    if pose is not None and ref.pose is not None:
        row["pose_diff"] = max(abs(pose.yaw - ref.pose.yaw), abs(pose.pitch - ref.pose.pitch),
                               abs(_wrap(pose.roll - ref.pose.roll)))
        row["landmark_disp"] = landmark_displacement(lm, ref.landmarks)
    else:
        row["pose_diff"] = row["landmark_disp"] = nan
    row["appearance_corr"] = appearance_correlation(frame, ref.frame, lm, ref.landmarks)
    return row


def _weak_correlation(row: dict[str, Any], t: FailureThresholds) -> tuple[float, bool]:
    """``(weak_score, weak_correlation)`` of a row with its scores and ``frame_gap_s`` (module docstring)."""
    sev = [row["pose_diff"] / t.max_pose_diff, row["landmark_disp"] / t.max_landmark_disp]
    if t.min_appearance_corr is not None:
        sev.append((1 - row["appearance_corr"]) / (1 - t.min_appearance_corr))
    ws = nanmax(sev)
    gap_sev = row["frame_gap_s"] / t.max_frame_gap_s
    return ws, bool(not math.isnan(ws) and (ws >= 1 or (gap_sev >= 1 and ws >= 0.5)))


def _wrap(deg: float) -> float:
    """An angle difference in [-180, 180)."""
    return (deg + 180.0) % 360.0 - 180.0


def _reason_text(row: dict[str, Any], t: FailureThresholds) -> str:
    parts = []
    if row["large_pose"]:
        big = [f"{k} {row[k]:+.0f}°" for k, lim in (("yaw", t.max_yaw), ("pitch", t.max_pitch), ("roll", t.max_roll))
               if abs(row[k]) >= lim]
        parts.append("large pose (" + ", ".join(big) + ")")
    if row["weak_correlation"]:
        bits = []
        if row["pose_diff"] >= t.max_pose_diff:
            bits.append(f"pose diff {row['pose_diff']:.0f}°")
        if row["landmark_disp"] >= t.max_landmark_disp:
            bits.append(f"landmarks moved {row['landmark_disp']:.2f} IOD")
        if t.min_appearance_corr is not None and row["appearance_corr"] <= t.min_appearance_corr:
            bits.append(f"appearance r {row['appearance_corr']:.2f}")
        if row["frame_gap_s"] >= t.max_frame_gap_s:
            bits.append(f"{row['frame_gap_s']:.0f} s apart, drift {row['weak_score']:.2f}")
        parts.append("weak correlation (" + ", ".join(bits) + ")")
    if row["no_face"]:
        parts.append("no face in the driving frame")
    if row["no_face_prediction"]:
        parts.append("no face in the prediction")
    if row["gate_rejected"]:
        parts.append(f"gate rejected ({row['gate_reasons']})")
    return "; ".join(parts)
