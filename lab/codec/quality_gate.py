"""The sender's quality gate: drop unnatural frames (extreme pose or expression, blur, no face) before sending.

The paper's sender runs a "feature-based image quality evaluation" that filters out unnatural images
(extreme poses and/or expressions) "to avoid image degradation" (``../shared/spec/paper.md``, The system).
The paper gives no features; these are ours, each with a threshold in :class:`GateThresholds`.

Landmark mode, :meth:`QualityGate.assess` (68 landmarks of a :mod:`metrics.backends` backend, dlib by default):

==================  ============================================================================  ==========
feature             what                                                                          rejects as
==================  ============================================================================  ==========
``face``            1 when a face was found. A frame without one is searched again rotated by     ``no_face``
                    90° and 270° (the HOG detector only finds upright faces), so a phone held
                    sideways reads as a roll of ±90° instead of a missing face. Not 180°: on the
                    shared set's near-profile frames an upside-down search found a false face
``yaw`` ``pitch``   head pose, degrees (:func:`lab.codec.pose.head_pose`; thresholds on its scale,      ``pose_yaw``
``roll``            :data:`lab.codec.pose.LARGE_YAW_DEG` ...)                                           ...
``mouth_open``      inner-lip aspect ratio: mean of the 3 vertical gaps 61-67, 62-66, 63-65 over  ``mouth_open``
                    the width 60-64. Speech stays below ~0.55 on the shared set's clips (every
                    10th frame); laughing, shouting, yawning reach 0.7-0.8
``eye_asymmetry``   ``|EAR_l - EAR_r| / max(EAR_l, EAR_r)`` of the eye aspect ratios (a wink);    ``eye_asymmetry``
                    off by default (``max_eye_asymmetry=None``): blinks are natural
``sharpness``       variance of the Laplacian of the face box (landmark extent, grayscale,        ``blur``
                    resized to 128x128 so it does not depend on the face size). Shared-set clips
                    read 12-430 (motion blur at the low end); the demo face 180, 5 once blurred
                    with a 4 px Gaussian; the whole frame when no face is found (a frame too
                    blurred to detect reads as blur as well as no face)
``sharpness_ratio`` sharpness / the reference frame's (when a reference is given; the absolute    ``blur``
                    threshold is used only without one)
``face_size``       the landmark box's longer side / the frame's shorter side (0.24-0.87 on the   ``face_too_small``
                    shared set's crops)
``outside``         fraction of the 68 landmarks outside the frame (a face cut by the border)     ``face_out_of_frame``
==================  ============================================================================  ==========

Keypoint mode, :meth:`QualityGate.assess_motion`, for a phone without a landmark detector: the animator's own
motion payload (``value`` ``(N, K, 2)`` in [-1, 1], ``jacobian`` ``(N, K, 2, 2)``) against the reference
frame's:

* ``kp_displacement``: mean keypoint distance to the reference keypoints, in units of the reference's
  keypoint spread (RMS distance of its keypoints from their centroid): a head that moved or turned far
  (``keypoints_moved``);
* ``jac_ratio_min`` / ``jac_ratio_max``: per keypoint ``det J / det J_ref``, the local area change. A head
  turning sideways foreshortens the keypoint neighbourhoods (ratio near 0; ``jacobian_extreme`` below
  ``min_jacobian_ratio`` or above ``max_jacobian_ratio``); a negative ratio is a flipped (mirrored)
  neighbourhood, which no real head motion makes (``jacobian_flipped``).

:func:`gate_sequence` then says, per frame, whose motion the server animates with: rejected frames repeat
the last accepted one (``hold``), or fall back to the reference (``reference``).

The landmark features themselves (mouth and eye aspect ratios, face box, sharpness, the rotated search) are
computed in :mod:`lab.codec.landmark_features`, re-exported here; this module holds the gate.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass, field
from typing import Any

import numpy as np

from lab.codec.landmark_features import SHARPNESS_SIZE as SHARPNESS_SIZE
from lab.codec.landmark_features import (
    LandmarkTracker,
    eye_aspect_ratios,
    face_box,
    face_sharpness,
    landmarks_with_rotation,
    mouth_aspect_ratio,
)
from lab.codec.pose import LARGE_PITCH_DEG, LARGE_ROLL_DEG, LARGE_YAW_DEG, head_pose, resolve_landmark_backend

__all__ = [
    "GateThresholds",
    "GateDecision",
    "QualityGate",
    "gate_sequence",
    "REFERENCE",
    "GATE_POLICIES",
    "mouth_aspect_ratio",
    "eye_aspect_ratios",
    "face_box",
    "face_sharpness",
    "landmarks_with_rotation",
    "LandmarkTracker",
]

REFERENCE = -1
"""Index :func:`gate_sequence` returns for "use the reference frame's motion"."""
GATE_POLICIES = ("hold", "reference")


@dataclass(frozen=True)
class GateThresholds:
    """Thresholds of the quality gate (each feature is described in the module docstring).

    Attributes:
        max_yaw: reject ``|yaw|`` at or above this (degrees, :mod:`lab.codec.pose` scale).
        max_pitch: reject ``|pitch|`` at or above this.
        max_roll: reject ``|roll|`` at or above this.
        max_mouth_open: reject an inner-lip aspect ratio at or above this.
        max_eye_asymmetry: reject eye-aspect-ratio asymmetry at or above this; None: not checked.
        min_sharpness: reject a face-box Laplacian variance below this (used without a reference).
        min_sharpness_ratio: reject a sharpness below this fraction of the reference's.
        min_face_size: reject a face whose landmark box is smaller than this fraction of the frame's shorter side.
        max_outside: reject when more than this fraction of the landmarks lies outside the frame.
        max_kp_displacement: keypoint mode; reject a mean keypoint displacement above this many reference spreads.
        min_jacobian_ratio: keypoint mode; reject when some ``det J / det J_ref`` is in ``[0, this)``.
        max_jacobian_ratio: keypoint mode; reject when some ``det J / det J_ref`` exceeds this.
    """

    max_yaw: float = LARGE_YAW_DEG
    max_pitch: float = LARGE_PITCH_DEG
    max_roll: float = LARGE_ROLL_DEG
    max_mouth_open: float = 0.7
    max_eye_asymmetry: float | None = None
    min_sharpness: float = 8.0
    min_sharpness_ratio: float = 0.25
    min_face_size: float = 0.2
    max_outside: float = 0.1
    max_kp_displacement: float = 0.6
    min_jacobian_ratio: float = 0.25
    max_jacobian_ratio: float = 4.0

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass(frozen=True)
class GateDecision:
    """The gate's verdict on one frame.

    Attributes:
        accept: whether the frame is sent.
        reasons: why it was rejected (empty when accepted), e.g. ``("pose_yaw", "mouth_open")``.
        features: the measured features (NaN where not measurable, e.g. no face).
    """

    accept: bool
    reasons: tuple[str, ...] = ()
    features: dict[str, float] = field(default_factory=dict)


def _as_numpy(x: Any) -> np.ndarray:
    if hasattr(x, "detach"):
        x = x.detach().float().cpu().numpy()
    return np.asarray(x, dtype=np.float64)


# ---------------------------------------------------------------------------------------------- the gate


class QualityGate:
    """Feature-based quality gate of the sender (module docstring).

    Args:
        thresholds: :class:`GateThresholds` (defaults when None).
        backend: landmark backend name or instance for :meth:`assess`.
        rotation_search: look for faces turned by 90°/270° when none is found upright.
    """

    def __init__(
        self, thresholds: GateThresholds | None = None, backend: Any = "dlib", rotation_search: bool = True
    ) -> None:
        self.thresholds = thresholds or GateThresholds()
        self.backend = backend
        self.rotation_search = rotation_search

    # ------------------------------------------------------------------ landmark mode
    def features(
        self, frame: np.ndarray, landmarks: np.ndarray | None, rotation: int = 0,
        reference_sharpness: float | None = None,
    ) -> dict[str, float]:
        """The gate's features of one frame (NaN where not measurable).

        Args:
            frame: ``(H, W, 3)`` uint8 RGB.
            landmarks: its ``(68, 2)`` landmarks or None.
            rotation: degrees the frame was rotated by to find the face (reported only).
            reference_sharpness: the reference's :func:`face_sharpness`, for ``sharpness_ratio``.
        """
        h, w = frame.shape[:2]
        nan = float("nan")
        feats = {"face": 0.0, "rotation": float(rotation), "yaw": nan, "pitch": nan, "roll": nan,
                 "pose_error": nan, "mouth_open": nan, "eye_asymmetry": nan, "face_size": nan, "outside": nan}
        if landmarks is not None:
            lm = np.asarray(landmarks, dtype=np.float64)
            pose = head_pose(lm, (h, w))
            ear_l, ear_r = eye_aspect_ratios(lm)
            extent = lm.max(0) - lm.min(0)
            outside = (lm[:, 0] < -0.5) | (lm[:, 0] > w - 0.5) | (lm[:, 1] < -0.5) | (lm[:, 1] > h - 0.5)
            feats.update(
                face=1.0, yaw=pose.yaw, pitch=pose.pitch, roll=pose.roll, pose_error=pose.error,
                mouth_open=mouth_aspect_ratio(lm),
                eye_asymmetry=abs(ear_l - ear_r) / max(ear_l, ear_r, 1e-9),
                face_size=float(extent.max() / min(h, w)), outside=float(outside.mean()),
            )
            box = face_box(lm, (h, w))
        else:
            box = None
        feats["sharpness"] = face_sharpness(frame, box)
        feats["sharpness_ratio"] = (feats["sharpness"] / reference_sharpness
                                    if reference_sharpness and reference_sharpness > 0 else nan)
        return feats

    def decide(self, feats: Mapping[str, float]) -> GateDecision:
        """Apply the thresholds to a feature dict (from :meth:`features`)."""
        t = self.thresholds
        reasons: list[str] = []
        if feats.get("face", 0.0) < 1:
            reasons.append("no_face")
        else:
            for name, limit in (("yaw", t.max_yaw), ("pitch", t.max_pitch), ("roll", t.max_roll)):
                if abs(feats[name]) >= limit:
                    reasons.append(f"pose_{name}")
            if feats["mouth_open"] >= t.max_mouth_open:
                reasons.append("mouth_open")
            if t.max_eye_asymmetry is not None and feats["eye_asymmetry"] >= t.max_eye_asymmetry:
                reasons.append("eye_asymmetry")
            if feats["face_size"] < t.min_face_size:
                reasons.append("face_too_small")
            if feats["outside"] > t.max_outside:
                reasons.append("face_out_of_frame")
        ratio = feats.get("sharpness_ratio", float("nan"))
        if (ratio < t.min_sharpness_ratio) if not math.isnan(ratio) else (feats["sharpness"] < t.min_sharpness):
            reasons.append("blur")
        return GateDecision(not reasons, tuple(reasons), dict(feats))

    def assess(
        self,
        frames: np.ndarray,
        reference: np.ndarray | None = None,
        landmarks: Sequence[np.ndarray | None] | None = None,
    ) -> list[GateDecision]:
        """Decide, frame by frame, whether each frame is sent.

        Args:
            frames: ``(N, H, W, 3)`` (or one ``(H, W, 3)``) uint8 RGB.
            reference: the reference (source) frame ``(H', W', 3)``: sharpness is then judged relative to it.
            landmarks: precomputed landmarks per frame (skips detection and the rotation search).

        Returns:
            one :class:`GateDecision` per frame.
        """
        arr = np.asarray(frames)
        if arr.ndim == 3:
            arr = arr[None]
        if arr.ndim != 4 or arr.shape[-1] != 3:
            raise ValueError(f"frames must be (N, H, W, 3) RGB, got shape {arr.shape}")
        if landmarks is None:
            found = landmarks_with_rotation(arr, self.backend, self.rotation_search)
        else:
            if len(landmarks) != len(arr):
                raise ValueError(f"{len(landmarks)} landmark sets for {len(arr)} frames")
            found = [(lm, 0) for lm in landmarks]
        ref_sharp = None
        if reference is not None:
            ref = np.asarray(reference)
            ref_lm = resolve_landmark_backend(self.backend).landmarks(ref[None])[0]
            ref_sharp = face_sharpness(ref, None if ref_lm is None else face_box(ref_lm, ref.shape[:2]))
        return [self.decide(self.features(f, lm, rot, ref_sharp)) for f, (lm, rot) in zip(arr, found)]

    # ------------------------------------------------------------------ keypoint mode
    def assess_motion(self, motion: Mapping[str, Any], reference_motion: Mapping[str, Any]) -> list[GateDecision]:
        """Decide from the animator's keypoints alone (module docstring, keypoint mode).

        Args:
            motion: ``{"value": (N, K, 2) in [-1, 1], "jacobian": (N, K, 2, 2)}`` (tensors or arrays; without
                ``jacobian`` only the displacement is checked).
            reference_motion: the same for the reference frame (batch 1, or no batch dimension).

        Returns:
            one :class:`GateDecision` per frame.
        """
        if "value" not in motion or "value" not in reference_motion:
            raise ValueError("assess_motion needs keypoints: a motion dict with 'value' (N, K, 2)")
        t = self.thresholds
        kp = _as_numpy(motion["value"])
        ref = _as_numpy(reference_motion["value"])
        if kp.ndim != 3 or kp.shape[-1] != 2:
            raise ValueError(f"motion['value'] must be (N, K, 2), got {kp.shape}")
        ref = ref.reshape(-1, *ref.shape[-2:])[0]
        if ref.shape != kp.shape[1:]:
            raise ValueError(f"reference keypoints {ref.shape} do not match {kp.shape[1:]}")
        spread = float(np.sqrt(np.mean(np.sum((ref - ref.mean(0)) ** 2, axis=1))))
        disp = np.linalg.norm(kp - ref, axis=-1).mean(-1) / max(spread, 1e-6)
        has_jac = "jacobian" in motion and "jacobian" in reference_motion
        if has_jac:
            jac = _as_numpy(motion["jacobian"])
            rjac = _as_numpy(reference_motion["jacobian"])
            rjac = rjac.reshape(-1, *rjac.shape[-3:])[0]
            if jac.shape != (*kp.shape, 2) or rjac.shape != (kp.shape[1], 2, 2):
                raise ValueError(f"jacobians {jac.shape} / reference {rjac.shape} do not match keypoints {kp.shape}")
            ref_det = np.linalg.det(rjac)
            ref_det = np.where(np.abs(ref_det) < 1e-9, 1e-9, ref_det)
            ratio = np.linalg.det(jac) / ref_det  # (N, K)
        out = []
        for i in range(len(kp)):
            feats = {"kp_displacement": float(disp[i]), "kp_spread": spread}
            reasons = []
            if disp[i] > t.max_kp_displacement:
                reasons.append("keypoints_moved")
            if has_jac:
                r = ratio[i]
                feats.update(jac_ratio_min=float(r.min()), jac_ratio_max=float(r.max()))
                if (r < 0).any():
                    reasons.append("jacobian_flipped")
                if ((r >= 0) & (r < t.min_jacobian_ratio)).any() or (r > t.max_jacobian_ratio).any():
                    reasons.append("jacobian_extreme")
            out.append(GateDecision(not reasons, tuple(reasons), feats))
        return out


def gate_sequence(decisions: Sequence[GateDecision | bool], policy: str = "hold") -> list[int]:
    """Per frame, the index of the frame whose motion the server animates with.

    Args:
        decisions: the gate's decisions (or plain accept booleans), in frame order.
        policy: ``"hold"``: a rejected frame repeats the last accepted frame (the reference, :data:`REFERENCE`,
            before any was accepted); ``"reference"``: a rejected frame falls back to the reference.

    Returns:
        one index per frame: the frame itself when accepted, an earlier accepted frame, or :data:`REFERENCE`.
    """
    if policy not in GATE_POLICIES:
        raise ValueError(f"policy must be one of {GATE_POLICIES}, got {policy!r}")
    out: list[int] = []
    last = REFERENCE
    for i, d in enumerate(decisions):
        ok = d.accept if isinstance(d, GateDecision) else bool(d)
        if ok:
            last = i
            out.append(i)
        else:
            out.append(last if policy == "hold" else REFERENCE)
    return out
