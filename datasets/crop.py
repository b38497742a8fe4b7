"""Face crop of a whole clip with one stable square box, and the mapping back to the full frame.

The idea of FOMM's ``crop-video.py`` (AliaksandrSiarohin/first-order-model@c027484): detect the face over
the clip, take one box for the whole clip ("tube" box) enlarged by a margin, crop every frame with it
and resize to 256×256. FOMM only prints ffmpeg commands (FOMM #84, #104); here the crop is done, and
the box is kept so that results can be pasted back at full resolution (:func:`paste_back`).

Box rule (:func:`face_crop_box`):

1. detect faces (dlib HOG, :mod:`datasets.face_detect`) on at most ``max_detections`` frames evenly
   spread over the clip (every k-th frame), frames over 640 px downscaled first; keep the main face of
   each frame (:func:`~datasets.face_detect.main_face`: the largest of the detections scoring at least half
   the frame's best, so a weak hit on an emblem is not taken over the real face).
   With no face at all, ``detector="auto"`` retries with dlib's CNN on 3 frames; then
   :class:`~datasets.errors.DataError` "no face found in <file>";
2. drop outliers (a box whose size is outside ½–2× the median size or whose centre is more than one
   median face size from the median centre);
3. square of side ``median_side × (1 + 2 × margin)`` centred on the median face centre raised by
   ``shift_up × median_side``; enlarged if needed so that every kept box fits inside with 0.1 face sides
   to spare (the head may move);
4. kept centred near a left/right frame edge: when that edge would leave the face centre more than 10 %
   of the side off the crop centre (a face at the side of an already-cropped clip), the side shrinks
   until it does not, but not below a margin of 0.15 (``MIN_MARGIN``): a tighter crop rather than an
   off-centre face. Not vertically: VoxCeleb-format clips (the PC-AVS 224×224 ones) hold the face high
   with the top of the head cut, and re-cropping such a clip should give the whole frame back;
5. clamped to the frame: shifted inside, and shrunk to the frame's shorter side when it cannot fit.

Margin: dlib's box spans about brows to chin and cheek to cheek. ``margin=0.4`` (crop side = 1.8 ×
face box) and ``shift_up=0.08`` reproduce the framing of the VoxCeleb/FOMM-style 256×256 clips of the
shared set (measured there with the same detector on every 10th frame of the 37 256×256 clips: median
crop side / box side 1.71 at upsample 0 and 1.97 at upsample 1, box centre 0.06–0.09 box sides below
the crop centre): the whole head, some hair and the top of the neck. FOMM's own ``increase=0.1`` is
relative to the larger boxes of face-alignment's S3FD detector and to a union over the clip.

Coordinates: a box is ``(x0, y0, x1, y1)`` integers in source pixels, half-open, square
(``x1 - x0 == y1 - y0``), inside the frame. Pixel centres are at integer coordinates in both the crop
and the frame (:func:`crop_to_frame`, :func:`frame_to_crop`).
"""

from __future__ import annotations

import math
import os
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from PIL import Image

from datasets.errors import DataError
from datasets.face_detect import DETECT_MAX_SIDE, Box, detect_faces, main_face
from datasets.video import Media, open_media

__all__ = [
    "DEFAULT_SIZE",
    "DEFAULT_MARGIN",
    "DEFAULT_SHIFT_UP",
    "MAX_DETECTIONS",
    "CROP_DETECTORS",
    "CropBox",
    "CropResult",
    "face_crop_box",
    "center_square_box",
    "detect_clip",
    "crop_media",
    "crop_array",
    "crop_frames",
    "crop_frame",
    "paste_back",
    "crop_to_frame",
    "frame_to_crop",
]

DEFAULT_SIZE = 256
DEFAULT_MARGIN = 0.4  # per side, in face-box sides: crop side = 1.8 x the dlib face box
DEFAULT_SHIFT_UP = 0.08  # crop centre above the face-box centre, in face-box sides (room for hair)
MAX_DETECTIONS = 40  # frames sampled for detection per clip
CNN_FALLBACK_FRAMES = 3  # frames tried with the (slow) CNN when HOG found nothing
CROP_DETECTORS = ("auto", "hog", "cnn", "none")  # none: centred square, no detection
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
    """One square crop box for a clip from its per-frame face boxes (the rule in the module docstring).

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


# ---------------------------------------------------------------------------------------------- clips


@dataclass
class CropResult:
    """A clip (or image) cropped with one box.

    Attributes:
        box: ``(x0, y0, x1, y1)`` in source pixels.
        source_size: ``(width, height)`` of the source frames.
        fps: frame rate of the source (0 for an image).
        size: side of the cropped frames.
        num_frames: frames :meth:`iter_frames` yields.
        detector: ``"hog"``, ``"cnn"`` or ``"none"`` (centred square).
        margin: the margin used. shift_up: the upward shift used.
        detections: ``(frame index, Box)`` of the faces the box was computed from, source pixels.
        path: the source file (None for arrays).
    """

    box: CropBox
    source_size: tuple[int, int]
    fps: float
    size: int
    num_frames: int
    detector: str
    margin: float
    shift_up: float
    detections: list[tuple[int, Box]] = field(default_factory=list)
    path: Path | None = None
    _media: Media | None = field(default=None, repr=False)
    _frames: np.ndarray | None = field(default=None, repr=False)

    def iter_frames(self) -> Iterator[np.ndarray]:
        """Yield the cropped frames lazily, ``(size, size, 3)`` uint8 RGB (re-decodes a clip on each call)."""
        src = self._frames if self._frames is not None else self._media.iter_frames(0, self.num_frames)
        for f in src:
            yield crop_frame(f, self.box, self.size)

    def __iter__(self) -> Iterator[np.ndarray]:
        return self.iter_frames()

    def __len__(self) -> int:
        return self.num_frames

    def read(self) -> np.ndarray:
        """All cropped frames, ``(N, size, size, 3)`` uint8 RGB."""
        return np.stack(list(self.iter_frames()))

    def to_dict(self) -> dict:
        """JSON-ready description (what ``facelab crop`` writes to ``box.json``)."""
        return {
            "input": str(self.path) if self.path else None,
            "box": list(self.box),
            "box_format": "x0, y0, x1, y1 in source pixels, half-open, square",
            "source_size": list(self.source_size),
            "fps": self.fps,
            "size": self.size,
            "frames": self.num_frames,
            "detector": self.detector,
            "margin": self.margin,
            "shift_up": self.shift_up,
            "detections": [{"frame": i, "box": [round(v, 1) for v in b.as_tuple()], "score": round(b.score, 3)}
                           for i, b in self.detections],
        }


def _sample_step(n: int, max_detections: int) -> int:
    return max(1, math.ceil(n / max(1, max_detections)))


def detect_clip(
    frames: Media | np.ndarray,
    max_detections: int = MAX_DETECTIONS,
    detector: str = "auto",
    name: str = "the input",
) -> list[tuple[int, Box]]:
    """The main face (:func:`~datasets.face_detect.main_face`) on evenly spaced frames of a clip.

    Args:
        frames: an opened :class:`~datasets.video.Media` (decoded lazily) or ``(N, H, W, 3)`` uint8 RGB.
        max_detections: at most this many frames are searched (every k-th frame).
        detector: ``"auto"`` (HOG, CNN on a few frames if HOG finds nothing), ``"hog"`` or ``"cnn"``.
        name: how errors name the input.

    Returns:
        ``(frame index, Box)`` per frame where a face was found.

    Raises:
        DataError: no face on any searched frame.
    """
    if detector not in ("auto", "hog", "cnn"):
        raise ValueError(f"detector must be one of auto, hog, cnn; got {detector!r}")
    n = len(frames)
    step = _sample_step(n, max_detections)
    scale = 1.0  # source px per detection-image px
    if isinstance(frames, Media):  # let the decoder downscale big frames (what detect_faces would do)
        small = frames.scaled_size(DETECT_MAX_SIDE)
        scale = frames.info.width / small[0]
        sampled = ((i * step, f) for i, f in enumerate(frames.iter_frames(0, n, step, max_side=DETECT_MAX_SIDE)))
    else:
        sampled = ((i, frames[i]) for i in range(0, n, step))
    found: list[tuple[int, Box]] = []
    kept: list[tuple[int, np.ndarray]] = []
    for i, f in sampled:
        if detector == "cnn":
            boxes = detect_faces(f, detector="cnn")
        else:
            boxes = detect_faces(f, detector="hog")
            if not boxes and detector == "auto":
                kept.append((i, f))
        if boxes:
            found.append((i, main_face(boxes)))
    if not found and detector == "auto" and kept:
        pick = np.linspace(0, len(kept) - 1, min(CNN_FALLBACK_FRAMES, len(kept))).round().astype(int)
        for j in dict.fromkeys(pick.tolist()):
            i, f = kept[j]
            boxes = detect_faces(f, detector="cnn")
            if boxes:
                found.append((i, main_face(boxes)))
    if not found:
        raise DataError(f"no face found in {name}")
    return found if scale == 1.0 else [(i, b.scaled(scale)) for i, b in found]


def crop_media(
    path: str | os.PathLike | Media,
    size: int | Sequence[int] = DEFAULT_SIZE,
    margin: float = DEFAULT_MARGIN,
    max_frames: int | None = None,
    detector: str = "auto",
    max_detections: int = MAX_DETECTIONS,
    shift_up: float = DEFAULT_SHIFT_UP,
) -> CropResult:
    """Face-crop a video, frame folder or image with one box for the whole clip.

    Decodes the clip twice: once (every k-th frame) to find the box, then lazily in
    :meth:`CropResult.iter_frames`.

    Args:
        path: media path or an opened :class:`~datasets.video.Media`.
        size: side of the output frames.
        margin: see :func:`face_crop_box`.
        max_frames: crop only the first frames (also lifts the frame-count limit of
            :func:`~datasets.video.open_media`).
        detector: ``"auto"``, ``"hog"``, ``"cnn"``, or ``"none"`` for the centred square without detection.
        max_detections: frames searched for faces.
        shift_up: see :func:`face_crop_box`.

    Returns:
        :class:`CropResult` whose frames are ``(size, size, 3)`` uint8 RGB.

    Raises:
        DataError: unreadable media, or "no face found in <file>".
    """
    if detector not in CROP_DETECTORS:
        raise ValueError(f"detector must be one of {CROP_DETECTORS}, got {detector!r}")
    n_out = _size(size)
    media = open_media(path, max_frames=max_frames)
    w, h = media.info.width, media.info.height
    if detector == "none":
        box, found, used = center_square_box(w, h), [], "none"
    else:
        found = detect_clip(media, max_detections, detector, name=str(media.path))
        box = face_crop_box([b for _, b in found], (w, h), margin, shift_up)
        used = found[0][1].detector
    return CropResult(box=box, source_size=(w, h), fps=media.info.fps, size=n_out, num_frames=len(media),
                      detector=used, margin=margin, shift_up=shift_up, detections=found, path=media.path,
                      _media=media)


def crop_array(
    frames: np.ndarray,
    size: int | Sequence[int] = DEFAULT_SIZE,
    margin: float = DEFAULT_MARGIN,
    detector: str = "auto",
    max_detections: int = MAX_DETECTIONS,
    shift_up: float = DEFAULT_SHIFT_UP,
    fps: float = 0.0,
) -> CropResult:
    """:func:`crop_media` for frames already in memory.

    Args:
        frames: ``(N, H, W, 3)`` or one ``(H, W, 3)`` uint8 RGB.

    Returns:
        :class:`CropResult` (``path`` None) over the given frames.
    """
    if detector not in CROP_DETECTORS:
        raise ValueError(f"detector must be one of {CROP_DETECTORS}, got {detector!r}")
    arr = np.asarray(frames)
    if arr.ndim == 3:
        arr = arr[None]
    if arr.dtype != np.uint8 or arr.ndim != 4 or arr.shape[3] != 3 or len(arr) == 0:
        raise ValueError(f"frames must be (N, H, W, 3) uint8 RGB with N >= 1, got {arr.shape} {arr.dtype}")
    h, w = arr.shape[1:3]
    if detector == "none":
        box, found, used = center_square_box(w, h), [], "none"
    else:
        found = detect_clip(arr, max_detections, detector, name="the frames")
        box = face_crop_box([b for _, b in found], (w, h), margin, shift_up)
        used = found[0][1].detector
    return CropResult(box=box, source_size=(w, h), fps=fps, size=_size(size), num_frames=len(arr),
                      detector=used, margin=margin, shift_up=shift_up, detections=found, _frames=arr)


def crop_frames(
    frames: np.ndarray,
    size: int | Sequence[int] = DEFAULT_SIZE,
    margin: float = DEFAULT_MARGIN,
    detector: str = "auto",
) -> np.ndarray:
    """Face-crop frames in memory with one box; ``(N, H, W, 3)`` → ``(N, size, size, 3)`` uint8 RGB.

    Raises:
        DataError: no face found.
    """
    return crop_array(frames, size=size, margin=margin, detector=detector).read()
