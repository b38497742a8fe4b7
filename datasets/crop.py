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

Modules: this one crops clips (detection over the clip, :class:`CropResult`, :func:`crop_media`); the box rule,
cropping a frame, pasting back and the point mapping are :mod:`datasets.crop_box`, re-exported here.
"""

from __future__ import annotations

import math
import os
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from datasets.crop_box import (
    DEFAULT_MARGIN,
    DEFAULT_SHIFT_UP,
    DEFAULT_SIZE,
    CropBox,
    _size,
    center_square_box,
    crop_frame,
    crop_to_frame,
    face_crop_box,
    frame_to_crop,
    paste_back,
)
from datasets.crop_box import MAX_OFFCENTRE as MAX_OFFCENTRE
from datasets.crop_box import MIN_MARGIN as MIN_MARGIN
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

MAX_DETECTIONS = 40  # frames sampled for detection per clip
CNN_FALLBACK_FRAMES = 3  # frames tried with the (slow) CNN when HOG found nothing
CROP_DETECTORS = ("auto", "hog", "cnn", "none")  # none: centred square, no detection


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
