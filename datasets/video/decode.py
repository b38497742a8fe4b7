"""Reading frames (part of :mod:`datasets.video`): :func:`open_media` opens a video, a frame folder or an image
as a :class:`Media`, which decodes it lazily (videos with PyAV, else OpenCV; images and folders with Pillow);
:func:`iter_frames` and :func:`read_frames` are the one-call forms."""

from __future__ import annotations

import copy
import os
from collections.abc import Iterator
from pathlib import Path

import numpy as np
from PIL import Image, ImageOps, UnidentifiedImageError

from datasets.errors import DataError
from datasets.video.common import (
    IMAGE_EXTS,
    VIDEO_EXTS,
    Frame,
    MediaInfo,
    _data_warning,
    _import_av,
    _import_cv2,
    _one_line,
    _video_backend,
    media_kind,
)
from datasets.video.probe import _check_frames, _check_side, _folder_frames, _image_size, _probe_av, _probe_cv2

DEFAULT_FOLDER_FPS = 25.0  # frame folders store no rate; VoxCeleb/PC-AVS folders are 25 fps
MAX_READ_BYTES = 4 * 1024**3  # Media.read() refuses to stack more than this; iterate instead


def _rotate(arr: np.ndarray, rotation: float) -> np.ndarray:
    """Apply a display rotation (degrees counter-clockwise, PyAV's ``VideoFrame.rotation``)."""
    k = int(round(rotation / 90.0)) % 4
    return np.ascontiguousarray(np.rot90(arr, k)) if k else arr


def _load_image(path: Path, size: tuple[int, int] | None = None, what: str = "") -> np.ndarray:
    """Decode an image file to ``(H, W, 3)`` uint8 RGB (EXIF orientation applied)."""
    try:
        with Image.open(path) as im:
            im = ImageOps.exif_transpose(im)
            arr = np.asarray(im.convert("RGB"))
    except (UnidentifiedImageError, Image.DecompressionBombError) as e:
        raise DataError(f"{path} is not a readable image ({_one_line(e)})") from e
    except OSError as e:  # truncated or corrupt
        raise DataError(f"cannot read {path}: {_one_line(e)}") from e
    if size is not None and (arr.shape[1], arr.shape[0]) != size:
        raise DataError(
            f"{path} is {arr.shape[1]}x{arr.shape[0]} px but the first frame of {what} is {size[0]}x{size[1]}"
        )
    return np.ascontiguousarray(arr)


def _resized(frames: Iterator[Frame], size: tuple[int, int]) -> Iterator[Frame]:
    for f in frames:
        yield np.asarray(Image.fromarray(f).resize(size, Image.BILINEAR))


# ---------------------------------------------------------------------------------------------- Media


class Media:
    """A video file, a frame folder or an image, opened for lazy reading (see :func:`open_media`).

    The object holds no open file: each :meth:`iter_frames` call opens and closes the file, so a
    ``Media`` can be pickled into DataLoader workers.

    Attributes:
        path: the file or folder.
        kind: ``"video"``, ``"frames"`` or ``"image"``.
        info: :class:`MediaInfo`.
        max_frames: cap on the frames read (None: all).
        backend: ``"av"``, ``"cv2"`` (videos) or ``"pil"`` (images and folders).
        notes: the :class:`DataWarning` messages this medium gave so far (opening it, then decoding), each
            once, for a UI that shows them (warnings themselves go to the process's stderr); capped copies
            share the list.
    """

    def __init__(
        self,
        path: Path,
        kind: str,
        info: MediaInfo,
        *,
        max_frames: int | None = None,
        backend: str = "pil",
        frame_files: tuple[Path, ...] = (),
        frames_exact: bool = True,
        rotation: float = 0.0,
        notes: list[str] | None = None,
    ) -> None:
        self.path = path
        self.kind = kind
        self.info = info
        self.max_frames = max_frames
        self.backend = backend
        self._frame_files = frame_files
        self._frames_exact = frames_exact
        self._rotation = rotation
        self.notes: list[str] = [] if notes is None else notes

    def __repr__(self) -> str:
        i = self.info
        return (f"Media({str(self.path)!r}, kind={self.kind!r}, {i.width}x{i.height}, frames={len(self)}, "
                f"fps={i.fps:g}, backend={self.backend!r})")

    def __len__(self) -> int:
        """Frames this object yields: ``info.num_frames`` capped by ``max_frames``."""
        n = self.info.num_frames
        return n if self.max_frames is None else min(n, self.max_frames)

    def __iter__(self) -> Iterator[Frame]:
        return self.iter_frames()

    def iter_frames(
        self, start: int = 0, stop: int | None = None, step: int = 1, max_side: int | None = None
    ) -> Iterator[Frame]:
        """Yield frames ``start, start+step, ... < stop`` lazily, one decoded frame at a time.

        Args:
            start: index of the first frame.
            stop: index past the last frame (None: to the end, or to ``max_frames``).
            step: keep every ``step``-th frame (videos still decode the frames in between).
            max_side: downscale (keeping the aspect ratio) so that the longer side is at most this; see
                :meth:`scaled_size`. For videos FFmpeg scales while converting to RGB, much cheaper than
                resizing afterwards (face detection on 1080p clips).

        Yields:
            ``(H, W, 3)`` uint8 RGB arrays of ``info.height`` × ``info.width`` (or the downscaled size).

        Raises:
            DataError: the file cannot be decoded at all (or a frame of a folder is missing/corrupt).
        """
        if start < 0 or step < 1 or (stop is not None and stop < 0):
            raise ValueError(f"need start >= 0, stop >= 0 and step >= 1, got {start}, {stop}, {step}")
        if self.max_frames is not None:
            stop = self.max_frames if stop is None else min(stop, self.max_frames)
        if stop is not None and stop <= start:
            return iter(())
        size = self.scaled_size(max_side)
        if self.kind == "image":
            it = self._iter_image(start, stop)
        elif self.kind == "frames":
            it = self._iter_folder(start, stop, step)
        elif self.backend == "cv2":
            it = self._iter_cv2(start, stop, step)
        else:
            return self._iter_av(start, stop, step, size)
        return it if size == (self.info.width, self.info.height) else _resized(it, size)

    def scaled_size(self, max_side: int | None) -> tuple[int, int]:
        """``(width, height)`` of the frames :meth:`iter_frames` yields with ``max_side``."""
        w, h = self.info.width, self.info.height
        if max_side is None or max(w, h) <= max_side:
            return (w, h)
        s = max_side / max(w, h)
        return (max(1, round(w * s)), max(1, round(h * s)))

    def read(self, max_frames: int | None = None) -> np.ndarray:
        """Decode frames into one array.

        Args:
            max_frames: read at most this many frames (None: all of :meth:`__len__`).

        Returns:
            ``(N, H, W, 3)`` uint8 RGB.
        """
        n = len(self) if max_frames is None else min(len(self), max_frames)
        need = n * self.info.width * self.info.height * 3
        if need > MAX_READ_BYTES:
            raise DataError(
                f"{self.path}: {n} frames of {self.info.width}x{self.info.height} need {need / 2**30:.1f} GiB; "
                "iterate with iter_frames() or pass max_frames"
            )
        frames = list(self.iter_frames(0, n))
        if not frames:
            raise DataError(f"{self.path} has no frames")
        return np.stack(frames)

    def frame(self, index: int = 0) -> Frame:
        """One frame, ``(H, W, 3)`` uint8 RGB (decodes the frames before it for a video)."""
        for f in self.iter_frames(index, index + 1):
            return f
        raise DataError(f"{self.path} has no frame {index} (it has {len(self)})")

    # -------------------------------------------------------------------------------------- decoders
    def _iter_image(self, start: int, stop: int | None) -> Iterator[Frame]:
        if start == 0:
            yield _load_image(self.path)

    def _iter_folder(self, start: int, stop: int | None, step: int) -> Iterator[Frame]:
        size = (self.info.width, self.info.height)
        for p in self._frame_files[start:stop:step]:
            yield _load_image(p, size, f"the folder {self.path}")

    def _iter_av(self, start: int, stop: int | None, step: int, size: tuple[int, int]) -> Iterator[Frame]:
        av = _import_av()
        if av is None:  # av vanished since open_media (tests monkeypatch it): decode with OpenCV instead
            it = self._iter_cv2(start, stop, step)
            yield from (it if size == (self.info.width, self.info.height) else _resized(it, size))
            return
        w, h = size
        if int(round(self._rotation / 90.0)) % 2:
            w, h = h, w  # size before rotation
        try:
            container = av.open(str(self.path))
        except av.FFmpegError as e:
            raise DataError(f"{self.path} is not a readable video ({_one_line(e)})") from e
        index = -1
        try:
            stream = container.streams.video[0]
            stream.thread_type = "AUTO"
            frames = container.decode(stream)
            while True:
                try:
                    frame = next(frames, None)
                except av.FFmpegError as e:
                    self._stopped_early(index + 1, f"decoding failed: {_one_line(e)}")
                    return
                if frame is None:
                    break
                index += 1
                if stop is not None and index >= stop:
                    return
                if index < start or (index - start) % step:
                    continue
                arr = frame.to_ndarray(format="rgb24", width=w, height=h)
                yield _rotate(arr, self._rotation)
        finally:
            container.close()
        expected = self.info.num_frames if stop is None else min(stop, self.info.num_frames)
        if index < 0:
            raise DataError(f"{self.path} has no decodable video frames")
        if self._frames_exact and index + 1 < expected:
            self._stopped_early(index + 1, f"the stream ended before its {self.info.num_frames} frames")

    def _iter_cv2(self, start: int, stop: int | None, step: int) -> Iterator[Frame]:
        cv2 = _import_cv2()
        if cv2 is None:
            raise DataError(f"cannot decode {self.path}: neither PyAV nor OpenCV is installed")
        cap = cv2.VideoCapture(str(self.path))
        if not cap.isOpened():
            raise DataError(f"{self.path} is not a readable video (OpenCV cannot open it)")
        index = -1
        try:
            while stop is None or index + 1 < stop:
                if not cap.grab():
                    break
                index += 1
                if index < start or (index - start) % step:
                    continue
                ok, bgr = cap.retrieve()
                if not ok:
                    self._stopped_early(index, "OpenCV could not decode the next frame")
                    return
                yield np.ascontiguousarray(bgr[:, :, ::-1])
        finally:
            cap.release()
        if index < 0:
            raise DataError(f"{self.path} has no decodable video frames")

    def _stopped_early(self, decoded: int, why: str) -> None:
        if decoded == 0:
            raise DataError(f"{self.path} is not a readable video ({why})")
        _data_warning(
            f"{self.path}: decoding stopped after {decoded} frames ({why}); using the frames decoded",
            self.notes,
            stacklevel=4,
        )


def open_media(path: str | os.PathLike | Media, max_frames: int | None = None) -> Media:
    """Open a video file, a frame folder or an image for lazy reading, checking it is usable.

    Args:
        path: a video (``VIDEO_EXTS``), an image (``IMAGE_EXTS``) or a folder of png/jpg frames (sorted
            by natural order of their names). A :class:`Media` is returned as is (a re-capped copy when
            ``max_frames`` is given).
        max_frames: read at most this many frames; giving it also lifts the :data:`MAX_FRAMES` limit.

    Returns:
        A :class:`Media`; nothing is kept open.

    Raises:
        DataError: missing file, unsupported extension, not decodable or truncated, no frames, a side over
            :data:`MAX_SIDE`, or over :data:`MAX_FRAMES` frames without ``max_frames``. One line naming
            the file.
    """
    if isinstance(path, Media):
        if max_frames is None:
            return path
        capped = copy.copy(path)
        capped.max_frames = max_frames if path.max_frames is None else min(max_frames, path.max_frames)
        return capped
    if max_frames is not None and max_frames < 1:
        raise ValueError(f"max_frames must be >= 1, got {max_frames}")
    p = Path(path).expanduser()
    if not p.exists():
        raise DataError(f"{p} does not exist")
    kind = media_kind(p)
    if kind is None:
        allowed = " ".join(VIDEO_EXTS + IMAGE_EXTS)
        raise DataError(
            f"{p} is not a video or image (extension '{p.suffix}'; supported: {allowed} or a folder of frames)"
        )
    if kind == "image":
        w, h, fmt = _image_size(p)
        _check_side(p, w, h)
        return Media(p, "image", MediaInfo(w, h, 1, 0.0, False, fmt), max_frames=max_frames)
    if kind == "frames":
        files = _folder_frames(p)
        if not files:
            raise DataError(f"{p} is a folder without png/jpg frames")
        _check_frames(p, len(files), max_frames)
        w, h, fmt = _image_size(files[0])
        _check_side(p, w, h)
        info = MediaInfo(w, h, len(files), DEFAULT_FOLDER_FPS, False, fmt)
        return Media(p, "frames", info, max_frames=max_frames, frame_files=tuple(files))
    if p.is_file() and p.stat().st_size == 0:
        raise DataError(f"{p} is an empty file")
    backend = _video_backend(p)
    notes: list[str] = []
    if backend == "av":
        info, exact, rotation = _probe_av(p, notes)
    else:
        info, exact, rotation = _probe_cv2(p), False, 0.0
    _check_frames(p, info.num_frames, max_frames)
    return Media(p, "video", info, max_frames=max_frames, backend=backend, frames_exact=exact, rotation=rotation,
                 notes=notes)


def iter_frames(
    path: str | os.PathLike | Media,
    start: int = 0,
    stop: int | None = None,
    step: int = 1,
    max_frames: int | None = None,
) -> Iterator[Frame]:
    """Lazily yield ``(H, W, 3)`` uint8 RGB frames of a video, frame folder or image.

    The file is opened and checked (:func:`open_media`) before the first frame is requested, so a
    bad file raises :class:`DataError` here, not at the first ``next()``.
    """
    return open_media(path, max_frames=max_frames).iter_frames(start, stop, step)


def read_frames(path: str | os.PathLike | Media, max_frames: int | None = None) -> np.ndarray:
    """Decode a whole (or the first ``max_frames`` of a) video, frame folder or image.

    Returns:
        ``(N, H, W, 3)`` uint8 RGB (N = 1 for an image).
    """
    return open_media(path, max_frames=max_frames).read()
