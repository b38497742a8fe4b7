"""Full-resolution composition: put the animated head back into the full upper-body frame (paper Sec. 3.4).

The decoder animates a 256×256 face crop; the receiver wants the whole camera frame. The server holds the
full-resolution reference frame (sent once), so every output frame is that reference with the animated
crop composed into the crop box. Three methods, compared in the paper's Figure 4 spirit:

``naive``
    the crop, resized to the box, replaces the box's pixels (:func:`datasets.crop.paste_back`). Where the
    animated head has moved, the neck and the background inside the box no longer meet the still frame
    outside it: a visible square seam.
``feather`` (default)
    alpha blending with a mask that is 1 on the head and falls to 0 at the box edge with a raised-cosine
    ramp over ``feather`` × box side: the crop's border pixels are the reference frame's, so there is no
    step at the box edge, and the change is spread over a band instead of one pixel.
``poisson``
    gradient-domain cloning (OpenCV ``seamlessClone``, Pérez et al. 2003) of the crop's interior into the
    frame: the seam's colour offset is removed by solving a Poisson equation; the boundary values are the
    frame's.

:func:`seam_score` measures what the methods are meant to fix: the mean step across the box border.
:class:`Compositor` composes many heads into one frame and box (a call: the reference and the box are fixed),
with what does not change per frame computed once; its frames equal :func:`compose`'s.
Arrays are ``(H, W, 3)`` uint8 RGB; no file I/O.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
from PIL import Image

from datasets.crop import CropBox, paste_back

__all__ = ["COMPOSITION_METHODS", "blend_mask", "compose", "compose_frames", "Compositor", "seam_score", "resize_rgb"]

COMPOSITION_METHODS = ("feather", "poisson", "naive")


def _box(box: Sequence[int], full: np.ndarray) -> tuple[int, int, int, int]:
    x0, y0, x1, y1 = (int(v) for v in box)
    h, w = full.shape[:2]
    if not (0 <= x0 < x1 <= w and 0 <= y0 < y1 <= h):
        raise ValueError(f"box {tuple(box)} is not inside the {w}x{h} frame")
    return x0, y0, x1, y1


def resize_rgb(img: np.ndarray, width: int, height: int, resample: int = Image.LANCZOS) -> np.ndarray:
    """``(H, W, 3)`` uint8 RGB resized to ``width × height`` (Lanczos by default); returned as is when it fits."""
    img = np.asarray(img)
    if img.dtype != np.uint8 or img.ndim != 3 or img.shape[2] != 3:
        raise ValueError(f"expected an (H, W, 3) uint8 RGB image, got {img.shape} {img.dtype}")
    if img.shape[:2] == (height, width):
        return img
    return np.asarray(Image.fromarray(np.ascontiguousarray(img)).resize((width, height), resample))


def blend_mask(width: int, height: int, feather: float = 0.12) -> np.ndarray:
    """``(height, width)`` float32 alpha: 1 inside, raised-cosine ramp to 0 over ``feather`` × side at the edges.

    Args:
        width: box width in pixels.
        height: box height in pixels.
        feather: ramp width as a fraction of the box side, in ``(0, 0.5]``.
    """
    if not 0 < feather <= 0.5:
        raise ValueError(f"feather must be in (0, 0.5], got {feather}")

    def ramp(n: int) -> np.ndarray:
        band = max(1.0, feather * n)
        # distance of each pixel centre to the nearest edge, 0.5 for the border pixels
        d = np.minimum(np.arange(n) + 0.5, n - 0.5 - np.arange(n))
        z = np.clip((d - 0.5) / band, 0.0, 1.0)  # 0 on the border pixel itself
        return 0.5 - 0.5 * np.cos(np.pi * z)

    return np.outer(ramp(height), ramp(width)).astype(np.float32)


def _checked(full: np.ndarray, method: str) -> np.ndarray:
    """``full`` as an array, after checking it is ``(H, W, 3)`` uint8 and ``method`` is known (else ValueError)."""
    if method not in COMPOSITION_METHODS:
        raise ValueError(f"unknown composition method '{method}'; choose from {', '.join(COMPOSITION_METHODS)}")
    full = np.asarray(full)
    if full.dtype != np.uint8 or full.ndim != 3 or full.shape[2] != 3:
        raise ValueError(f"full frame must be (H, W, 3) uint8 RGB, got {full.shape} {full.dtype}")
    return full


def compose(full: np.ndarray, crop: np.ndarray, box: CropBox, method: str = "feather",
            feather: float = 0.12) -> np.ndarray:
    """Compose an animated crop into a full-resolution frame.

    Args:
        full: ``(H, W, 3)`` uint8 RGB, the full frame the crop box refers to (the reference frame); not modified.
        crop: ``(S, S, 3)`` uint8 RGB, the animated head (any S; resized to the box with Lanczos).
        box: ``(x0, y0, x1, y1)`` of the crop in ``full``.
        method: ``feather``, ``poisson`` or ``naive`` (module docstring).
        feather: ramp width of ``feather`` (and the margin left to the frame by ``poisson``), in box sides.

    Returns:
        A new ``(H, W, 3)`` uint8 RGB frame.
    """
    full = _checked(full, method)
    if method == "naive":
        return paste_back(full, crop, box)
    x0, y0, x1, y1 = _box(box, full)
    w, h = x1 - x0, y1 - y0
    patch = resize_rgb(crop, w, h)
    if method == "feather":
        a = blend_mask(w, h, feather)[..., None]
        out = np.array(full, copy=True)
        region = full[y0:y1, x0:x1].astype(np.float32)
        out[y0:y1, x0:x1] = np.clip(np.rint(a * patch + (1 - a) * region), 0, 255).astype(np.uint8)
        return out
    return _poisson(full, patch, (x0, y0, x1, y1), feather)


class Compositor:
    """:func:`compose` for many crops into the same full frame and box, the per-frame work only.

    With the frame and box fixed (a call's reference frame and crop box), ``feather`` composition needs per crop
    only the resize, ``alpha × crop`` and the rounding: the mask and the frame's share ``(1 − alpha) × frame`` are
    computed once, and the float buffer is reused. The result equals :func:`compose`'s bit for bit (the same
    float32 operations in the same order). ``poisson`` and ``naive`` have no such share; they call :func:`compose`.

    Args:
        full: ``(H, W, 3)`` uint8 RGB, the frame every crop is composed into (kept, not modified).
        box: ``(x0, y0, x1, y1)`` of the crop in ``full``.
        method, feather: as :func:`compose`.
    """

    def __init__(self, full: np.ndarray, box: CropBox, method: str = "feather", feather: float = 0.12) -> None:
        full = _checked(full, method)
        self.full = np.array(full, copy=True)
        self.box = _box(box, full)
        self.method = method
        self.feather = feather
        if method == "feather":
            x0, y0, x1, y1 = self.box
            alpha = blend_mask(x1 - x0, y1 - y0, feather)[..., None]
            self._background = (1 - alpha) * self.full[y0:y1, x0:x1].astype(np.float32)
            # per channel: a contiguous product is ~4x faster than the broadcast one, with the same values
            self._alpha = np.ascontiguousarray(np.broadcast_to(alpha, self._background.shape))
            self._buffer = np.empty_like(self._background)

    def __call__(self, crop: np.ndarray) -> np.ndarray:
        """``crop`` (``(S, S, 3)`` uint8 RGB) composed into the frame: a new ``(H, W, 3)`` uint8 RGB frame."""
        if self.method != "feather":
            return compose(self.full, crop, self.box, self.method, self.feather)
        x0, y0, x1, y1 = self.box
        patch = resize_rgb(crop, x1 - x0, y1 - y0)
        buf = self._buffer
        np.multiply(self._alpha, patch, out=buf)
        buf += self._background
        np.rint(buf, out=buf)
        np.clip(buf, 0, 255, out=buf)
        out = self.full.copy()
        out[y0:y1, x0:x1] = buf  # integers in [0, 255]: the cast is exact
        return out


def _poisson(full: np.ndarray, patch: np.ndarray, box: tuple[int, int, int, int], feather: float) -> np.ndarray:
    try:
        import cv2
    except ImportError as e:  # pragma: no cover - opencv comes with face-alignment
        raise ImportError("composition 'poisson' needs OpenCV (pip install opencv-python)") from e
    x0, y0, x1, y1 = box
    w, h = x1 - x0, y1 - y0
    # seamlessClone needs the mask strictly inside the destination: keep a margin of the ramp width
    m = max(2, int(round(feather * min(w, h) / 2)))
    if w <= 2 * m + 2 or h <= 2 * m + 2:
        raise ValueError(f"box {box} is too small for poisson composition")
    mask = np.zeros((h, w), np.uint8)
    mask[m:h - m, m:w - m] = 255
    # OpenCV works in BGR; the clone is channel-wise, so RGB in = RGB out
    centre = (x0 + w // 2, y0 + h // 2)
    return cv2.seamlessClone(np.ascontiguousarray(patch), np.ascontiguousarray(full), mask, centre, cv2.NORMAL_CLONE)


def compose_frames(full: np.ndarray, crops: np.ndarray, box: CropBox, method: str = "feather",
                   feather: float = 0.12) -> np.ndarray:
    """:func:`compose` every crop of ``(N, S, S, 3)`` into the same full frame → ``(N, H, W, 3)`` uint8."""
    return np.stack([compose(full, c, box, method, feather) for c in np.asarray(crops)])


def seam_score(frame: np.ndarray, box: CropBox) -> float:
    """Mean absolute step across the box border, in 8-bit levels (the seam a naive paste leaves).

    For each side of the box that is not on the frame border: the difference between the pixel row/column
    just inside the box and the one just outside, averaged over channels and the side's length.
    A natural image has a small value here (its own gradient); a pasted crop that does not match its
    surroundings a large one.

    Args:
        frame: ``(H, W, 3)`` uint8.
        box: ``(x0, y0, x1, y1)``.
    """
    f = np.asarray(frame).astype(np.float64)
    x0, y0, x1, y1 = _box(box, f)
    h, w = f.shape[:2]
    steps = []
    if x0 > 0:
        steps.append(np.abs(f[y0:y1, x0] - f[y0:y1, x0 - 1]))
    if x1 < w:
        steps.append(np.abs(f[y0:y1, x1 - 1] - f[y0:y1, x1]))
    if y0 > 0:
        steps.append(np.abs(f[y0, x0:x1] - f[y0 - 1, x0:x1]))
    if y1 < h:
        steps.append(np.abs(f[y1 - 1, x0:x1] - f[y1, x0:x1]))
    if not steps:
        raise ValueError(f"box {tuple(box)} covers the whole frame: there is no seam to measure")
    return float(np.concatenate([s.reshape(-1) for s in steps]).mean())
