"""Landmark features of a face frame, as the quality gate reads them: mouth and eye aspect ratios, the landmark box,
sharpness, and the landmark search that also looks at the frame turned by 90° and 270°.

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
