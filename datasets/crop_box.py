"""The square crop box of a clip and the geometry around it: the box rule, cropping, pasting back, mapping points.

The rule that turns per-frame face boxes into one square box (:func:`face_crop_box`), the centred square used
without detection (:func:`center_square_box`), cropping and resizing a frame (:func:`crop_frame`), putting a
crop back (:func:`paste_back`) and mapping points between crop and frame (:func:`crop_to_frame`,
:func:`frame_to_crop`). Pure geometry on boxes and arrays: no detection, no decoding (those, and the rule's
full description, are in :mod:`datasets.crop`, which re-exports every name here).
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
from PIL import Image

from datasets.face_detect import Box

__all__ = [
    "DEFAULT_SIZE",
    "DEFAULT_MARGIN",
    "DEFAULT_SHIFT_UP",
    "MIN_MARGIN",
    "MAX_OFFCENTRE",
    "CropBox",
    "face_crop_box",
    "center_square_box",
    "crop_frame",
    "paste_back",
    "crop_to_frame",
    "frame_to_crop",
]

DEFAULT_SIZE = 256
DEFAULT_MARGIN = 0.4  # per side, in face-box sides: crop side = 1.8 x the dlib face box
DEFAULT_SHIFT_UP = 0.08  # crop centre above the face-box centre, in face-box sides (room for hair)
_CONTAIN_PAD = 0.1  # face sides kept between any detected box and the crop edge
MIN_MARGIN = 0.15  # the crop may shrink to this margin to keep a face near the frame edge centred
MAX_OFFCENTRE = 0.1  # of the crop side: how far the face centre may sit from the crop centre before shrinking

CropBox = tuple[int, int, int, int]
"""``(x0, y0, x1, y1)`` square, half-open, in source pixels, inside the frame."""


def _size(size: int | Sequence[int]) -> int:
    if isinstance(size, int):
        s = size
    else:
        h, w = (int(v) for v in size[:2])
        if h != w:
            raise ValueError(f"crops are square; got size {h}x{w}")
        s = h
    if s < 1:
        raise ValueError(f"crop size must be >= 1, got {s}")
    return s


def _clamp_square(cx: float, cy: float, side: float, width: int, height: int) -> CropBox:
    side_i = int(min(max(1, round(side)), width, height))
    x0 = int(round(cx - side_i / 2))
    y0 = int(round(cy - side_i / 2))
    x0 = min(max(x0, 0), width - side_i)
    y0 = min(max(y0, 0), height - side_i)
    return (x0, y0, x0 + side_i, y0 + side_i)


def center_square_box(width: int, height: int) -> CropBox:
    """The largest square centred in a ``width × height`` frame."""
    return _clamp_square(width / 2, height / 2, min(width, height), width, height)


def _inliers(boxes: Sequence[Box]) -> list[Box]:
    if len(boxes) < 3:
        return list(boxes)
    sides = np.array([b.side for b in boxes])
    centers = np.array([b.center for b in boxes])
    s = float(np.median(sides))
    c = np.median(centers, axis=0)
    keep = [b for b, sd, ct in zip(boxes, sides, centers)
            if 0.5 * s <= sd <= 2 * s and float(np.hypot(*(ct - c))) <= s]
    return keep or list(boxes)


def face_crop_box(
    boxes: Sequence[Box],
    frame_size: tuple[int, int],
    margin: float = DEFAULT_MARGIN,
    shift_up: float = DEFAULT_SHIFT_UP,
) -> CropBox:
    """One square crop box for a clip from its per-frame face boxes (the rule in :mod:`datasets.crop`).

    Args:
        boxes: one face box per sampled frame (source pixels); at least one.
        frame_size: ``(width, height)`` of the source frames.
        margin: space added on each side, in face-box sides.
        shift_up: crop centre above the face centre, in face-box sides.

    Returns:
        ``(x0, y0, x1, y1)``, square and inside the frame.
    """
    if not boxes:
        raise ValueError("face_crop_box needs at least one face box")
    if margin < 0:
        raise ValueError(f"margin must be >= 0, got {margin}")
    width, height = frame_size
    kept = _inliers(boxes)
    s = float(np.median([b.side for b in kept]))
    cx = float(np.median([b.center[0] for b in kept]))
    cy = float(np.median([b.center[1] for b in kept])) - shift_up * s
    half = s * (1 + 2 * margin) / 2
    pad = _CONTAIN_PAD * s
    for b in kept:  # every kept face fits, with some room
        half = max(half, cx - b.x0 + pad, b.x1 - cx + pad, cy - b.y0 + pad, b.y1 - cy + pad)
    side = 2 * half
    # clamped at a side edge at distance e from the centre, the centre sits side/2 - e off: keep that <= 10 %
    edge = min(cx, width - cx)
    centred_max = edge / (0.5 - MAX_OFFCENTRE)
    if side > centred_max:
        side = max(centred_max, s * (1 + 2 * min(MIN_MARGIN, margin)))
    return _clamp_square(cx, cy, side, width, height)


def _check_box(box: CropBox, width: int, height: int) -> tuple[int, int, int, int]:
    x0, y0, x1, y1 = (int(v) for v in box)
    if not (0 <= x0 < x1 <= width and 0 <= y0 < y1 <= height):
        raise ValueError(f"box {box} is not inside the {width}x{height} frame")
    return x0, y0, x1, y1


def crop_frame(frame: np.ndarray, box: CropBox, size: int | Sequence[int] = DEFAULT_SIZE) -> np.ndarray:
    """Crop ``box`` out of ``frame`` and resize it (Lanczos, antialiased) to ``size × size``.

    Args:
        frame: ``(H, W, 3)`` uint8 RGB.
        box: ``(x0, y0, x1, y1)`` inside the frame.
        size: output side (an int, or ``(H, W)`` with H == W).

    Returns:
        ``(size, size, 3)`` uint8 RGB.
    """
    n = _size(size)
    x0, y0, x1, y1 = _check_box(box, frame.shape[1], frame.shape[0])
    img = Image.fromarray(np.ascontiguousarray(frame))
    if (x1 - x0, y1 - y0) == (n, n):
        return np.asarray(img.crop((x0, y0, x1, y1)))
    return np.asarray(img.resize((n, n), Image.LANCZOS, box=(x0, y0, x1, y1)))


def paste_back(full_frame: np.ndarray, crop: np.ndarray, box: CropBox) -> np.ndarray:
    """Put a crop (e.g. an animated 256×256 frame) back into the full frame it was cut from.

    The crop is resized to the box (Lanczos) and replaces the box's pixels; no blending.

    Args:
        full_frame: ``(H, W, 3)`` uint8 RGB at source resolution (not modified).
        crop: ``(S, S, 3)`` uint8 RGB (any S).
        box: the box the crop was made with.

    Returns:
        A new ``(H, W, 3)`` uint8 RGB frame.
    """
    x0, y0, x1, y1 = _check_box(box, full_frame.shape[1], full_frame.shape[0])
    crop = np.asarray(crop)
    if crop.dtype != np.uint8 or crop.ndim != 3 or crop.shape[2] != 3:
        raise ValueError(f"crop must be (S, S, 3) uint8 RGB, got {crop.shape} {crop.dtype}")
    out = np.array(full_frame, copy=True)
    if crop.shape[:2] != (y1 - y0, x1 - x0):
        crop = np.asarray(Image.fromarray(np.ascontiguousarray(crop)).resize((x1 - x0, y1 - y0), Image.LANCZOS))
    out[y0:y1, x0:x1] = crop
    return out


def crop_to_frame(points: np.ndarray, box: CropBox, size: int | Sequence[int] = DEFAULT_SIZE) -> np.ndarray:
    """Map ``(..., 2)`` (x, y) points from crop pixels to source-frame pixels."""
    n = _size(size)
    x0, y0, x1, _ = (float(v) for v in box)
    scale = (x1 - x0) / n
    p = np.asarray(points, dtype=np.float64)
    return (p + 0.5) * scale - 0.5 + np.array([x0, y0])


def frame_to_crop(points: np.ndarray, box: CropBox, size: int | Sequence[int] = DEFAULT_SIZE) -> np.ndarray:
    """Map ``(..., 2)`` (x, y) points from source-frame pixels to crop pixels (inverse of :func:`crop_to_frame`)."""
    n = _size(size)
    x0, y0, x1, _ = (float(v) for v in box)
    scale = (x1 - x0) / n
    p = np.asarray(points, dtype=np.float64)
    return (p - np.array([x0, y0]) + 0.5) / scale - 0.5
