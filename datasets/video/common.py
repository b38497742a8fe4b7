"""What the parts of :mod:`datasets.video` share: the file kinds, :class:`MediaInfo`, :class:`DataWarning`, and
the decoding backends (PyAV, OpenCV), imported lazily."""

from __future__ import annotations

import os
import re
import warnings
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from datasets.errors import DataError

VIDEO_EXTS = (".mp4", ".mov", ".m4v", ".webm", ".avi", ".mkv")
IMAGE_EXTS = (".png", ".jpg", ".jpeg", ".webp", ".bmp")
FRAME_EXTS = (".png", ".jpg", ".jpeg")  # files making up a frame folder

Frame = np.ndarray
"""``(H, W, 3)`` uint8 RGB."""


class DataWarning(UserWarning):
    """Media was usable only in part (a clip whose decoding stopped early); the message names the file."""


def _data_warning(message: str, notes: list[str] | None, stacklevel: int) -> None:
    """Warn with a :class:`DataWarning` and keep the message in ``notes`` (:attr:`Media.notes`)."""
    if notes is not None and message not in notes:
        notes.append(message)
    warnings.warn(message, DataWarning, stacklevel=stacklevel + 1)


@dataclass(frozen=True)
class MediaInfo:
    """What is known about a medium before decoding it.

    Attributes:
        width: frame width in pixels, after any display rotation.
        height: frame height in pixels, after any display rotation.
        num_frames: frame count (see the :mod:`datasets.video` docstring for how it is obtained; 1 for an
            image).
        fps: frames per second (average rate for a video; :data:`DEFAULT_FOLDER_FPS` for a folder; 0 for
            an image).
        has_audio: whether the file has an audio stream (always False for folders, images and OpenCV).
        codec: video codec name (``h264``), ``png``/``jpeg``/... for images and folders.
    """

    width: int
    height: int
    num_frames: int
    fps: float
    has_audio: bool
    codec: str

    @property
    def duration_s(self) -> float:
        """Duration in seconds (``num_frames / fps``; 0 for an image)."""
        return self.num_frames / self.fps if self.fps else 0.0


def natural_key(name: str) -> list:
    """Sort key that orders ``frame2.png`` before ``frame10.png``."""
    return [int(t) if t.isdigit() else t.lower() for t in re.split(r"(\d+)", name)]


def media_kind(path: str | os.PathLike) -> str | None:
    """``"video"``, ``"image"`` or ``"frames"`` from the path alone (None when unsupported)."""
    p = Path(path)
    if p.is_dir():
        return "frames"
    ext = p.suffix.lower()
    if ext in VIDEO_EXTS:
        return "video"
    if ext in IMAGE_EXTS:
        return "image"
    return None


# ---------------------------------------------------------------------------------------------- backends


def _import_av():
    """PyAV or None (imported lazily; tests make the import fail to exercise the OpenCV path)."""
    try:
        import av
    except ImportError:
        return None
    return av


def _import_cv2():
    try:
        import cv2
    except ImportError:
        return None
    return cv2


def _video_backend(path: Path) -> str:
    if _import_av() is not None:
        return "av"
    if _import_cv2() is not None:
        return "cv2"
    raise DataError(
        f"cannot decode {path}: neither PyAV (pip install av) nor OpenCV (pip install opencv-python-headless) "
        "is installed"
    )


def _one_line(e: BaseException) -> str:
    if getattr(e, "strerror", None):  # FFmpeg errors: the message without errno and file name
        return str(e.strerror)
    s = str(e).strip().splitlines()
    return s[0] if s else type(e).__name__
