"""Landmark features of a face frame, as the quality gate reads them: mouth and eye aspect ratios, the landmark box,
sharpness, the landmark search that also looks at the frame turned by 90° and 270°, and the
:class:`LandmarkTracker` a live call's gate follows the face with (the detector every few frames only).

Each is described, with the thresholds the gate applies to it, in :mod:`lab.codec.quality_gate` (which
re-exports every name here). Points are the iBUG 300-W 68-point scheme of :mod:`metrics.backends`, ``(x, y)``
pixels.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import numpy as np

from lab.codec.pose import resolve_landmark_backend

__all__ = [
    "SHARPNESS_SIZE",
    "mouth_aspect_ratio",
    "eye_aspect_ratios",
    "face_box",
    "face_sharpness",
    "landmarks_with_rotation",
    "LandmarkTracker",
]

SHARPNESS_SIZE = 128  # side the face box is resized to before the Laplacian


def mouth_aspect_ratio(landmarks: np.ndarray) -> float:
    """Inner-lip opening: mean of the gaps 61-67, 62-66, 63-65 over the inner-mouth width 60-64."""
    lm = np.asarray(landmarks, dtype=np.float64)
    gap = (np.linalg.norm(lm[61] - lm[67]) + np.linalg.norm(lm[62] - lm[66]) + np.linalg.norm(lm[63] - lm[65])) / 3
    width = float(np.linalg.norm(lm[60] - lm[64]))
    return float(gap / width) if width > 0 else float("nan")


def eye_aspect_ratios(landmarks: np.ndarray) -> tuple[float, float]:
    """Eye aspect ratios (Soukupová & Čech 2016) of the image-left (36-41) and image-right (42-47) eyes."""
    lm = np.asarray(landmarks, dtype=np.float64)

    def ear(p: np.ndarray) -> float:
        w = float(np.linalg.norm(p[0] - p[3]))
        return float((np.linalg.norm(p[1] - p[5]) + np.linalg.norm(p[2] - p[4])) / (2 * w)) if w > 0 else float("nan")

    return ear(lm[36:42]), ear(lm[42:48])


def face_box(landmarks: np.ndarray, image_size: Sequence[int], pad: float = 0.0) -> tuple[int, int, int, int]:
    """The landmarks' extent as an integer box ``(x0, y0, x1, y1)``, enlarged by ``pad`` of its side on each
    side and clipped to the ``(H, W)`` image (at least 1 px wide and high)."""
    lm = np.asarray(landmarks, dtype=np.float64)
    h, w = (int(v) for v in image_size[:2])
    (x0, y0), (x1, y1) = lm.min(0), lm.max(0)
    side = max(x1 - x0, y1 - y0)
    x0, y0, x1, y1 = x0 - pad * side, y0 - pad * side, x1 + pad * side, y1 + pad * side
    bx0 = int(min(max(math.floor(x0), 0), w - 1))
    by0 = int(min(max(math.floor(y0), 0), h - 1))
    bx1 = int(max(min(math.ceil(x1) + 1, w), bx0 + 1))
    by1 = int(max(min(math.ceil(y1) + 1, h), by0 + 1))
    return bx0, by0, bx1, by1


def _gray(frame: np.ndarray) -> np.ndarray:
    f = np.asarray(frame, dtype=np.float64)
    return f[..., 0] * 0.299 + f[..., 1] * 0.587 + f[..., 2] * 0.114


def face_sharpness(frame: np.ndarray, box: Sequence[int] | None = None) -> float:
    """Variance of the Laplacian of the grayscale box (the whole frame when None), resized to 128x128."""
    import cv2

    f = np.asarray(frame)
    if box is not None:
        x0, y0, x1, y1 = (int(v) for v in box)
        f = f[y0:y1, x0:x1]
    g = _gray(f).astype(np.float32)
    if g.shape != (SHARPNESS_SIZE, SHARPNESS_SIZE):
        interp = cv2.INTER_AREA if min(g.shape) >= SHARPNESS_SIZE else cv2.INTER_CUBIC
        g = cv2.resize(g, (SHARPNESS_SIZE, SHARPNESS_SIZE), interpolation=interp)
    return float(cv2.Laplacian(g.astype(np.float64), cv2.CV_64F).var())


def _unrotate(points: np.ndarray, k: int, height: int, width: int) -> np.ndarray:
    """Map ``(x, y)`` points found in ``np.rot90(frame, k)`` back to the ``height × width`` frame."""
    x, y = points[:, 0], points[:, 1]
    if k == 1:
        return np.stack([(width - 1) - y, x], 1)
    if k == 3:
        return np.stack([y, (height - 1) - x], 1)
    raise ValueError(f"k must be 1 or 3, got {k}")


def landmarks_with_rotation(
    frames: np.ndarray, backend: Any = "dlib", search: bool = True
) -> list[tuple[np.ndarray | None, int]]:
    """68 landmarks per frame; where no face is found (and ``search``), the frame turned by 90° and 270°.

    Returns:
        per frame ``(landmarks in the frame's own pixel coordinates or None, degrees (anticlockwise, as
        ``np.rot90``) the frame was turned by to find the face: 0, 90 or 270)``.
    """
    be = resolve_landmark_backend(backend)
    arr = np.asarray(frames)
    out: list[tuple[np.ndarray | None, int]] = [(lm, 0) for lm in be.landmarks(arr)]
    if not search:
        return out
    h, w = arr.shape[1:3]
    for i, (lm, _) in enumerate(out):
        if lm is not None:
            continue
        for k in (1, 3):  # a phone on its side; not 180° (false faces on near-profile frames)
            found = be.landmarks(np.ascontiguousarray(np.rot90(arr[i], k))[None])[0]
            if found is not None:
                out[i] = (_unrotate(found, k, h, w), 90 * k)
                break
    return out


class LandmarkTracker:
    """68 landmarks through consecutive frames of one camera, detecting the face only every ``redetect_every``
    frames: the live gate's landmarks (:class:`lab.conference.sender.SenderGate`).

    dlib's HOG detector (upsampled once) costs ~40 ms on a 256² crop, its shape predictor ~3 ms given a box.
    On a detection frame the landmarks are :func:`landmarks_with_rotation`'s (detector + predictor, the rotated
    search where nothing is found). In between, the predictor alone runs in the **last detection's box moved
    with the face**: shifted by the drift of the landmark centroid since that detection and scaled by the ratio
    of the landmarks' RMS spread (a box of the shape the predictor was trained on, unlike the landmarks' own
    extent). A tracked result whose spread leaves ``[1 / max_scale, max_scale]`` of the detection's, or whose
    centroid leaves the frame, is dropped and the frame detected anew; so is every frame after a miss, after a
    face found only turned by 90°/270°, and every frame with a backend that cannot predict in a given box
    (``face_rect`` and ``landmarks_in``, :class:`metrics.backends.dlib_backend.DlibBackend`).

    What tracking cannot see: a face that leaves between two detections still gets 68 points (the predictor
    always places them), so "no face" is reported up to ``redetect_every - 1`` frames late.
    ``redetect_every=1`` detects every frame: exactly :func:`landmarks_with_rotation`.

    Args:
        backend: landmark backend name or instance (:func:`lab.codec.pose.resolve_landmark_backend`).
        redetect_every: frames per detection (>= 1).
        search: the rotated search on detection frames (:func:`landmarks_with_rotation`).
        max_scale: the largest spread change, either way, a tracked result may show against its detection.
    """

    def __init__(self, backend: Any = "dlib", redetect_every: int = 5, search: bool = True,
                 max_scale: float = 1.3) -> None:
        if int(redetect_every) != redetect_every or redetect_every < 1:
            raise ValueError(f"redetect_every must be an integer >= 1, got {redetect_every}")
        if not max_scale > 1:
            raise ValueError(f"max_scale must be > 1, got {max_scale}")
        self.backend = resolve_landmark_backend(backend)
        self.redetect_every = int(redetect_every)
        self.search = bool(search)
        self.max_scale = float(max_scale)
        self.can_track = hasattr(self.backend, "face_rect") and hasattr(self.backend, "landmarks_in")
        self.frames = 0  # frames seen
        self.detections = 0  # of which detected (the rest tracked)
        self.reset()

    def reset(self) -> None:
        """Forget the face: the next frame is detected."""
        self._rect: np.ndarray | None = None  # last detection's box (x0, y0, x1, y1)
        self._anchor: np.ndarray | None = None  # the landmarks predicted in it
        self._prev: np.ndarray | None = None  # the last frame's landmarks
        self._since = 0  # frames tracked since that detection

    @staticmethod
    def _spread(lm: np.ndarray) -> float:
        return float(np.sqrt(((lm - lm.mean(0)) ** 2).sum(1).mean()))

    def _follow(self) -> np.ndarray:
        """The detection box moved and scaled as the landmarks moved from the detection to the last frame."""
        assert self._rect is not None and self._anchor is not None and self._prev is not None  # noqa: S101
        scale = self._spread(self._prev) / max(self._spread(self._anchor), 1e-6)
        centre = (self._rect[:2] + self._rect[2:]) / 2 + self._prev.mean(0) - self._anchor.mean(0)
        half = (self._rect[2:] - self._rect[:2]) / 2 * scale
        return np.concatenate([centre - half, centre + half])

    def _plausible(self, lm: np.ndarray, shape: Sequence[int]) -> bool:
        assert self._anchor is not None  # noqa: S101
        ratio = self._spread(lm) / max(self._spread(self._anchor), 1e-6)
        cx, cy = lm.mean(0)
        h, w = shape[:2]
        return 1 / self.max_scale <= ratio <= self.max_scale and 0 <= cx < w and 0 <= cy < h

    def __call__(self, frame: np.ndarray) -> tuple[np.ndarray | None, int]:
        """The landmarks of the next frame: ``(landmarks or None, degrees turned)`` as :func:`landmarks_with_rotation`.

        Args:
            frame: ``(H, W, 3)`` uint8 RGB, the same camera (and size) as the frames before.
        """
        frame = np.ascontiguousarray(frame)
        self.frames += 1
        if self._rect is not None and self._since + 1 < self.redetect_every:
            lm = self.backend.landmarks_in(frame, self._follow())
            if self._plausible(lm, frame.shape):
                self._prev = lm
                self._since += 1
                return lm, 0
        self.detections += 1
        self.reset()
        lm, rot = landmarks_with_rotation(frame[None], self.backend, self.search)[0]
        if lm is not None and rot == 0 and self.can_track and self.redetect_every > 1:
            rect = self.backend.face_rect(frame)
            if rect is not None:
                self._rect = np.asarray(rect, np.float64)
                self._anchor = self._prev = np.asarray(lm, np.float64)
        return lm, rot
