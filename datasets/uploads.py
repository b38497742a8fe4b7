"""User uploads (app, CLI): validate a file, then turn it into square frames for the animators.

Checks, in order, each failing with a one-line :class:`~datasets.errors.DataError` naming the file: the
path exists and is a file (a frame folder only with ``allow_folders``), its extension is in
:data:`UPLOAD_EXTS`, it is at most :data:`MAX_UPLOAD_BYTES`, then :func:`datasets.video.open_media`'s
checks (decodable, not truncated, has frames, sides ≤ ``MAX_SIDE``, frames ≤ ``MAX_FRAMES`` unless
``max_frames`` caps them).
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from datasets.crop import DEFAULT_MARGIN, DEFAULT_SIZE, CropResult, crop_media
from datasets.errors import DataError
from datasets.video import IMAGE_EXTS, VIDEO_EXTS, Media, open_media

__all__ = ["UPLOAD_EXTS", "MAX_UPLOAD_BYTES", "validate_upload", "prepare_upload", "upload_frames", "upload_image",
           "is_face_crop", "frames_used_note"]

UPLOAD_EXTS = VIDEO_EXTS + IMAGE_EXTS
MAX_UPLOAD_BYTES = 500 * 1024**2


def validate_upload(
    path: str | os.PathLike | Media,
    max_frames: int | None = None,
    max_bytes: int = MAX_UPLOAD_BYTES,
    allow_folders: bool = False,
) -> Media:
    """Check an uploaded file and open it.

    Args:
        path: the uploaded file (a :class:`~datasets.video.Media` already opened is returned, capped to
            ``max_frames``).
        max_frames: use at most this many frames (lifts the ``MAX_FRAMES`` limit).
        max_bytes: largest accepted file size.
        allow_folders: accept a folder of png/jpg frames too (CLI use).

    Returns:
        The opened :class:`~datasets.video.Media`.

    Raises:
        DataError: see the module docstring.
    """
    if isinstance(path, Media):
        return open_media(path, max_frames=max_frames)
    p = Path(path).expanduser()
    if not p.exists():
        raise DataError(f"{p} does not exist")
    if p.is_dir():
        if not allow_folders:
            raise DataError(f"{p} is a folder; upload a video or an image")
        return open_media(p, max_frames=max_frames)
    if p.suffix.lower() not in UPLOAD_EXTS:
        raise DataError(f"{p.name} is not a supported upload (allowed: {' '.join(UPLOAD_EXTS)})")
    size = p.stat().st_size
    if size == 0:
        raise DataError(f"{p.name} is an empty file")
    if size > max_bytes:
        raise DataError(f"{p.name} is {size / 2**20:.0f} MiB; uploads are limited to {max_bytes / 2**20:.0f} MiB")
    return open_media(p, max_frames=max_frames)


def prepare_upload(
    path: str | os.PathLike | Media,
    size: int | Sequence[int] = DEFAULT_SIZE,
    crop: bool = True,
    max_frames: int | None = None,
    margin: float = DEFAULT_MARGIN,
    detector: str = "auto",
) -> CropResult:
    """Validate an upload and set up its square crop (frames are decoded lazily from the result).

    Args:
        path: an image or a clip.
        size: side of the output frames.
        crop: face crop (one box for the whole clip); False: the centred square of the frame, no detection.
        max_frames: use at most this many frames.
        margin: face-crop margin (see :func:`datasets.crop.face_crop_box`).
        detector: face detector for the crop (``auto``, ``hog``, ``cnn``).

    Returns:
        :class:`~datasets.crop.CropResult`; ``box`` maps results back onto the upload
        (:func:`datasets.crop.paste_back`).

    Raises:
        DataError: a bad upload, or no face found (with ``crop=True``).
    """
    media = validate_upload(path, max_frames=max_frames)
    return crop_media(media, size=size, margin=margin, detector=detector if crop else "none")


def upload_frames(
    path: str | os.PathLike,
    size: int | Sequence[int] = DEFAULT_SIZE,
    crop: bool = True,
    max_frames: int | None = None,
    margin: float = DEFAULT_MARGIN,
) -> np.ndarray:
    """An uploaded image or clip as square frames, ``(N, size, size, 3)`` uint8 RGB (N = 1 for an image)."""
    return prepare_upload(path, size=size, crop=crop, max_frames=max_frames, margin=margin).read()


def upload_image(
    path: str | os.PathLike,
    size: int | Sequence[int] = DEFAULT_SIZE,
    crop: bool = True,
    margin: float = DEFAULT_MARGIN,
) -> np.ndarray:
    """A source image from an upload (the first frame of a clip), ``(size, size, 3)`` uint8 RGB."""
    return upload_frames(path, size=size, crop=crop, max_frames=1, margin=margin)[0]


def is_face_crop(path: str | os.PathLike | Media, size: int = DEFAULT_SIZE) -> bool:
    """Whether an upload already is a ``size``×``size`` face crop (VoxCeleb format): then it is not cropped again."""
    info = validate_upload(path, max_frames=1).info
    return (info.width, info.height) == (size, size)


def frames_used_note(media: Media, used: int | None = None, name: str | None = None) -> str | None:
    """What a frame limit cut: ``"used 50 of 4500 frames of clip.mp4"`` when ``max_frames`` kept fewer frames
    than the clip has, else None (the whole clip was used).

    Args:
        media: the opened upload (its ``max_frames`` is the limit).
        used: frames actually used (default: the limit).
        name: the name to show (default: the file's name).
    """
    total = media.info.num_frames
    if media.max_frames is None or media.max_frames >= total:
        return None
    used = len(media) if used is None else int(used)
    return f"used {used} of {total} frames of {name or media.path.name}"
