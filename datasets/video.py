"""Video and image I/O: lazy decoding of clips, frame folders and images; H.264/H.265 encoding with stats.

Every frame that leaves this module is a ``(H, W, 3)`` ``uint8`` RGB ``np.ndarray``. Clips are decoded
lazily, one frame at a time, so a long clip never has to fit in memory.

Backends, imported lazily (never at module import, so ``lab.train`` can import this module on a bare
GPU machine):

* videos are decoded with PyAV (``av``, the ``video`` extra); when ``import av`` fails they are
  decoded with OpenCV (``cv2``, e.g. opencv-python-headless), converted BGR→RGB. OpenCV cannot see
  audio streams (``has_audio`` is then False) and its frame count is the container's estimate;
* images and frame folders are read with Pillow (always installed); EXIF orientation is applied;
* writing video needs PyAV.

Frame counts (:attr:`MediaInfo.num_frames`): with PyAV, the number of video packets, counted by
demuxing the file without decoding it (what ffprobe ``-count_packets`` and the shared set's MANIFEST
report; it equals the decoded count for well-formed files, whereas header counts are absent in webm/mkv
and can be wrong: an mp4 with an edit list in the shared set claims 157 frames and holds 110). With
OpenCV, ``CAP_PROP_FRAME_COUNT`` (the container's estimate). Frame folders: the number of png/jpg files;
images: 1.

Rotation: a display rotation stored in a video (phone clips filmed upright) is applied, so a 1280×720
stream tagged -90° yields 720×1280 frames and ``info`` reports 720×1280.

Decoding errors (choice): :func:`open_media` decodes the first frame, so a file that is not a video, is
truncated before its index (an mp4 cut before its ``moov`` atom, the usual case) or has no frame raises
:class:`~datasets.errors.DataError` at once. A file whose index is intact but whose data is cut (an mp4
written with ``+faststart``, then cut: its index points past the end of the file) or that holds clearly
fewer frames than its header's frame count or duration promise (a cut webm/mkv) opens with one
:class:`DataWarning` ("<file> is truncated: ...", saying how many frames are there and how many were
listed) and yields the frames it holds; ``num_frames`` counts those. A decoding error *after* at least one frame has
been yielded stops the iteration with a :class:`DataWarning` naming the file and how many frames were
decoded; the frames decoded so far are kept (a phone upload with a broken tail stays usable). The same
warning is given when a stream ends before its packet count. Code that must not accept a short clip
(evaluation) turns the warnings into errors with ``warnings.simplefilter("error", DataWarning)``.
Note: the shared set's ``clips/jixinya+EAMM/sad.mp4`` is such a cut file in its source repository (157
frames indexed, 110 present; its MANIFEST row says 110), so opening it warns.
"""

from __future__ import annotations

import copy
import itertools
import os
import re
import warnings
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path

import numpy as np
from PIL import Image, ImageOps, UnidentifiedImageError

from datasets.errors import DataError

__all__ = [
    "VIDEO_EXTS",
    "IMAGE_EXTS",
    "FRAME_EXTS",
    "MAX_SIDE",
    "MAX_FRAMES",
    "DEFAULT_FOLDER_FPS",
    "DataWarning",
    "MediaInfo",
    "Media",
    "EncodeStats",
    "open_media",
    "iter_frames",
    "read_frames",
    "write_video",
    "write_frames",
    "natural_key",
    "media_kind",
]

VIDEO_EXTS = (".mp4", ".mov", ".m4v", ".webm", ".avi", ".mkv")
IMAGE_EXTS = (".png", ".jpg", ".jpeg", ".webp", ".bmp")
FRAME_EXTS = (".png", ".jpg", ".jpeg")  # files making up a frame folder
MAX_SIDE = 4096  # px; larger frames are refused (no talking-head input needs more)
MAX_FRAMES = 20_000  # refused unless the caller caps the frames read with max_frames
DEFAULT_FOLDER_FPS = 25.0  # frame folders store no rate; VoxCeleb/PC-AVS folders are 25 fps
MAX_READ_BYTES = 4 * 1024**3  # Media.read() refuses to stack more than this; iterate instead
# a header's frame count / duration may exceed the packets found by rounding; beyond this the file is cut
TRUNCATED_SLACK = 2  # frames
TRUNCATED_SLACK_FRACTION = 0.02
# The x265 in PyAV 18's FFmpeg corrupts the heap for frames <= 48 px wide (glibc's malloc check aborts;
# widths >= 50 pass): write_video refuses narrower frames for libx265.
X265_MIN_REORDER_FRAMES = 3  # libx265 clips shorter than this are coded without B-frames
MIN_X265_WIDTH = 64

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
        num_frames: frame count (see the module docstring for how it is obtained; 1 for an image).
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


def _rotate(arr: np.ndarray, rotation: float) -> np.ndarray:
    """Apply a display rotation (degrees counter-clockwise, PyAV's ``VideoFrame.rotation``)."""
    k = int(round(rotation / 90.0)) % 4
    return np.ascontiguousarray(np.rot90(arr, k)) if k else arr


def _probe_av(path: Path, notes: list[str] | None = None) -> tuple[MediaInfo, bool, float]:
    """Info from PyAV, whether the frame count is exact, and the display rotation of the first frame (the
    DataWarnings given are also appended to ``notes``)."""
    av = _import_av()
    try:
        container = av.open(str(path))
    except av.FFmpegError as e:
        raise DataError(f"{path} is not a readable video (truncated or not a video file: {_one_line(e)})") from e
    try:
        if not container.streams.video:
            raise DataError(f"{path} has no video stream")
        stream = container.streams.video[0]
        cc = stream.codec_context
        width, height = int(cc.width or 0), int(cc.height or 0)
        rate = stream.average_rate or stream.guessed_rate or stream.base_rate
        fps = float(rate) if rate else 0.0
        has_audio = len(container.streams.audio) > 0
        codec = cc.name or "?"
        if width <= 0 or height <= 0:
            raise DataError(f"{path} is not a readable video (no frame size in its header)")
        _check_side(path, width, height)
        # first frame: proves the file decodes and gives the display rotation
        rotation = 0.0
        try:
            first = next(container.decode(stream), None)
        except av.FFmpegError as e:
            raise DataError(f"{path} is not a readable video (cannot decode its first frame: {_one_line(e)})") from e
        if first is None:
            raise DataError(f"{path} has no video frames")
        rotation = float(first.rotation or 0.0)
        # count the packets without decoding (the header's count is absent in webm/mkv and can be wrong:
        # an mp4 with an edit list in the shared set says 157 frames and holds 110)
        container.seek(0)
        n = sum(1 for pkt in container.demux(stream) if pkt.size)
        exact = True
        if fps <= 0:
            fps = 25.0
            _data_warning(f"{path}: no frame rate in the file, assuming 25 fps", notes, stacklevel=3)
        _warn_if_truncated(path, container, stream, n, fps, notes)
    except av.FFmpegError as e:
        raise DataError(f"{path} is not a readable video (truncated or corrupt: {_one_line(e)})") from e
    finally:
        container.close()
    if int(round(rotation / 90.0)) % 2:
        width, height = height, width
    return MediaInfo(width, height, n, fps, has_audio, codec), exact, rotation


def _listed_frames(container, stream, fps: float) -> tuple[int, float]:
    """Frames the container's header promises, and over how many seconds: the header's frame count, else the
    stream's or the container's duration × ``fps`` (webm/mkv store a duration, no count); ``(0, 0.0)`` when
    the file says neither."""
    seconds = 0.0
    if stream.duration and stream.time_base:
        seconds = float(stream.duration * stream.time_base)
    elif container.duration:
        seconds = container.duration / 1e6  # AV_TIME_BASE
    listed = int(stream.frames or 0)
    if listed <= 0 and seconds > 0 and fps > 0:
        listed = int(round(seconds * fps))
    return listed, seconds


def _warn_if_truncated(path: Path, container, stream, readable: int, fps: float,
                       notes: list[str] | None = None) -> None:
    """Warn (once) when the file holds fewer frames than its container lists.

    Two checks: the index (mp4/mov sample table) points past the end of the file (an mp4 written with
    ``+faststart``, then cut); or the header's frame count / duration promises clearly more frames than the
    packets found (``TRUNCATED_SLACK`` absorbs rounding of a duration to frames). Either way the frames that
    are there are used and counted.
    """
    listed, seconds = _listed_frames(container, stream, fps)
    of = f" of the {listed} its index lists" if listed > readable else ""
    size = path.stat().st_size
    try:
        end = max((e.pos + e.size for e in stream.index_entries if e.pos >= 0), default=0)
    except (AttributeError, TypeError):  # no index support in this PyAV
        end = 0
    if end > size:
        _data_warning(
            f"{path} is truncated: the file ends before the data its index lists; {readable} frames{of} are "
            "readable and used",
            notes,
            stacklevel=4,
        )
        return
    if listed > readable + max(TRUNCATED_SLACK, TRUNCATED_SLACK_FRACTION * listed):
        length = f" ({seconds:.1f} s)" if seconds > 0 else ""
        _data_warning(
            f"{path} is truncated: its header lists {listed} frames{length} but the file holds {readable}; "
            f"those {readable} frames are used",
            notes,
            stacklevel=4,
        )


def _probe_cv2(path: Path) -> MediaInfo:
    cv2 = _import_cv2()
    cap = cv2.VideoCapture(str(path))
    try:
        if not cap.isOpened():
            raise DataError(f"{path} is not a readable video (OpenCV cannot open it)")
        width = int(cap.get(cv2.CAP_PROP_FRAME_WIDTH))
        height = int(cap.get(cv2.CAP_PROP_FRAME_HEIGHT))
        n = int(cap.get(cv2.CAP_PROP_FRAME_COUNT))
        fps = float(cap.get(cv2.CAP_PROP_FPS) or 0.0)
        fourcc = int(cap.get(cv2.CAP_PROP_FOURCC))
        codec = "".join(chr((fourcc >> (8 * i)) & 0xFF) for i in range(4)).strip("\x00 ").lower() or "?"
        _check_side(path, width, height)
        ok, frame = cap.read()
        if not ok or frame is None:
            raise DataError(f"{path} has no decodable video frames")
        height, width = frame.shape[:2]  # after OpenCV's own orientation handling
    finally:
        cap.release()
    if n <= 0:
        n = 1
    return MediaInfo(width, height, n, fps if fps > 0 else 25.0, False, codec)


def _check_side(path: Path, width: int, height: int) -> None:
    if max(width, height) > MAX_SIDE:
        raise DataError(f"{path} is {width}x{height} px; the limit is {MAX_SIDE} px per side")


def _check_frames(path: Path, n: int, max_frames: int | None) -> None:
    if n <= 0:
        raise DataError(f"{path} has no frames")
    if max_frames is None and n > MAX_FRAMES:
        raise DataError(
            f"{path} has {n} frames; the limit is {MAX_FRAMES} (pass max_frames / --max-frames to read only "
            "the first frames)"
        )


def _image_size(path: Path) -> tuple[int, int, str]:
    """(width, height, format) of an image after EXIF orientation, without decoding its pixels."""
    try:
        with Image.open(path) as im:
            w, h = im.size
            fmt = (im.format or path.suffix.lstrip(".")).lower()
            orientation = im.getexif().get(0x0112, 1)
    except (UnidentifiedImageError, Image.DecompressionBombError) as e:
        raise DataError(f"{path} is not a readable image ({_one_line(e)})") from e
    except OSError as e:
        raise DataError(f"cannot read {path}: {_one_line(e)}") from e
    if orientation in (5, 6, 7, 8):
        w, h = h, w
    return w, h, fmt


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


def _folder_frames(path: Path) -> list[Path]:
    try:
        files = [p for p in path.iterdir() if p.is_file() and p.suffix.lower() in FRAME_EXTS]
    except OSError as e:
        raise DataError(f"cannot read folder {path}: {_one_line(e)}") from e
    return sorted(files, key=lambda p: natural_key(p.name))


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


# ---------------------------------------------------------------------------------------------- writing


@dataclass(frozen=True)
class EncodeStats:
    """What :func:`write_video` wrote.

    Attributes:
        path: the output file.
        codec: encoder name (``libx264``).
        width: encoded width (the input width rounded up to even for 4:2:0).
        height: encoded height (likewise).
        padded: whether the frames were padded to even sizes (by repeating the last column/row).
        fps: frame rate.
        num_frames: frames encoded.
        crf: the CRF used (None when rate-controlled by ``bit_rate``).
        bit_rate: the target bit rate in bit/s (None with CRF).
        packet_sizes: bytes of each video packet, in decode order.
        packet_pts: presentation timestamp (frame index) of each packet, same order.
        total_bytes: sum of ``packet_sizes`` (the coded video, without container overhead).
        file_bytes: size of the written file (container, audio and headers included).
        kbps: video bit rate, ``total_bytes * 8 / 1000 / (num_frames / fps)``.
        has_audio: whether an audio stream was copied in.
    """

    path: Path
    codec: str
    width: int
    height: int
    padded: bool
    fps: float
    num_frames: int
    crf: float | None
    bit_rate: int | None
    packet_sizes: tuple[int, ...]
    packet_pts: tuple[int, ...]
    total_bytes: int
    file_bytes: int
    kbps: float
    has_audio: bool

    @property
    def frame_bytes(self) -> tuple[int, ...]:
        """Packet sizes in display (frame) order: bytes spent on each frame."""
        return tuple(s for _, s in sorted(zip(self.packet_pts, self.packet_sizes)))


# Audio codecs each output container accepts for a stream copy; others are re-encoded (to aac or opus).
_AUDIO_COPY_OK = {
    ".mp4": {"aac", "mp3", "opus", "alac", "ac3", "eac3", "flac"},
    ".m4v": {"aac", "mp3", "ac3", "eac3", "alac"},
    ".mov": {"aac", "mp3", "alac", "ac3", "eac3", "pcm_s16le", "pcm_s24le", "opus", "flac"},
    ".webm": {"opus", "vorbis"},
    ".mkv": None,  # anything
    ".avi": {"mp3", "pcm_s16le", "ac3", "aac"},
}


def write_video(
    path: str | os.PathLike,
    frames: Iterable[Frame],
    fps: float,
    codec: str = "libx264",
    crf: float | None = None,
    bit_rate: int | None = None,
    audio_from: str | os.PathLike | None = None,
    preset: str | None = None,
    options: dict[str, str] | None = None,
    container_options: dict[str, str] | None = None,
) -> EncodeStats:
    """Encode frames to a video file with PyAV and count the bytes of every packet.

    ``libx264``/``libx265`` are the anchors for rate–distortion comparisons; any PyAV encoder works
    (``libvpx-vp9`` for webm, ``mpeg4``/``mjpeg`` for avi). Frames are converted to ``yuv420p``
    (``yuvj420p`` for mjpeg); odd sizes are padded to even by repeating the last column/row
    (``EncodeStats.padded``).

    Args:
        path: output file; its extension picks the container. Parent folders are created.
        frames: iterable of ``(H, W, 3)`` uint8 RGB arrays, all the same size (consumed lazily).
        fps: frame rate.
        codec: encoder name.
        crf: constant rate factor (x264/x265/vpx); default 23 for x264, 28 for x265 when neither ``crf``
            nor ``bit_rate`` is given.
        bit_rate: target bit rate in bit/s (instead of ``crf``).
        audio_from: copy the first audio stream of this file into the output (re-encoded to aac/opus when
            the container cannot hold its codec), trimmed to the video's duration.
        preset: encoder preset (``"medium"``, ``"veryslow"``, ``"ultrafast"``...).
        options: extra encoder options, passed to FFmpeg.
        container_options: muxer options, e.g. ``{"movflags": "+faststart"}`` (the mp4 index first, for
            streaming).

    Returns:
        :class:`EncodeStats`.

    Raises:
        ValueError: bad arguments or frames of the wrong shape/dtype.
        DataError: ``audio_from`` is not readable.
        ImportError: PyAV is not installed.
    """
    av = _import_av()
    if av is None:
        raise ImportError("writing video needs PyAV: pip install 'facelab[video]' (or pip install av)")
    if fps <= 0:
        raise ValueError(f"fps must be > 0, got {fps}")
    if crf is not None and bit_rate is not None:
        raise ValueError("give crf or bit_rate, not both")
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    rate = Fraction(fps).limit_denominator(1001)
    it = iter(frames)
    first = next(it, None)
    if first is None:
        raise ValueError("write_video needs at least one frame")
    first = _check_frame(first, 0)
    h0, w0 = first.shape[:2]
    width, height = w0 + (w0 % 2), h0 + (h0 % 2)
    padded = (width, height) != (w0, h0)
    if codec == "libx265" and width < MIN_X265_WIDTH:
        raise ValueError(
            f"libx265 needs frames at least {MIN_X265_WIDTH} px wide, got {w0} (narrower frames corrupt memory "
            "in the x265 bundled with PyAV)"
        )

    if crf is None and bit_rate is None and codec in ("libx264", "libx265"):
        crf = 23 if codec == "libx264" else 28
    opts = dict(options or {})
    if crf is not None:
        opts["crf"] = f"{crf:g}"
    if preset:
        opts["preset"] = preset
    if codec == "libx265":
        opts.setdefault("x265-params", "log-level=error")
        head = [first, *itertools.islice(it, X265_MIN_REORDER_FRAMES - 1)]
        if len(head) < X265_MIN_REORDER_FRAMES and "bframes" not in opts["x265-params"]:
            # FFmpeg's libx265 wrapper gives clips of 1-2 frames with B-frames on uninitialised decoding
            # timestamps (measured: dts = -9.4e13), which the mp4 muxer refuses ("pts/dts pair unsupported")
            # depending on the garbage; with so few frames there is no B-frame to lose
            opts["x265-params"] += ":bframes=0"
        it = itertools.chain(head[1:], it)
    if codec.startswith("libvpx") and crf is not None and bit_rate is None:
        opts.setdefault("b", "0")  # vpx: constant quality needs b=0

    audio_in = None
    try:
        out = av.open(str(path), "w", options=dict(container_options or {}))
    except av.FFmpegError as e:
        raise ValueError(f"cannot write {path}: {_one_line(e)}") from e
    try:
        stream = out.add_stream(codec, rate=rate)
        stream.width, stream.height = width, height
        stream.pix_fmt = "yuvj420p" if codec == "mjpeg" else "yuv420p"
        if bit_rate is not None:
            stream.bit_rate = int(bit_rate)
        stream.options = opts
        audio_pair = None
        if audio_from is not None:
            audio_in, audio_pair = _open_audio(av, Path(audio_from), out, path.suffix.lower())

        sizes: list[int] = []
        pts: list[int] = []

        def mux(packets):
            for pkt in packets:
                sizes.append(pkt.size)
                if pkt.pts is None:
                    pts.append(len(pts))
                else:  # frame index, from the packet's own time base
                    tb = pkt.time_base or (Fraction(1) / rate)
                    pts.append(int(round(pkt.pts * tb * rate)))
                out.mux(pkt)

        n = 0
        for i, arr in enumerate(_chain(first, it)):
            arr = _check_frame(arr, i)
            if arr.shape[:2] != (h0, w0):
                raise ValueError(f"frame {i} is {arr.shape[1]}x{arr.shape[0]}, the first frame is {w0}x{h0}")
            if padded:
                arr = np.pad(arr, ((0, height - h0), (0, width - w0), (0, 0)), mode="edge")
            frame = av.VideoFrame.from_ndarray(arr, format="rgb24")
            frame.pts = i
            frame.time_base = Fraction(1) / rate
            mux(stream.encode(frame))
            n += 1
        mux(stream.encode(None))
        if audio_pair is not None:
            _mux_audio(av, audio_in, audio_pair, out, n / float(rate))
    finally:
        out.close()
        if audio_in is not None:
            audio_in.close()
    total = sum(sizes)
    return EncodeStats(
        path=path, codec=codec, width=width, height=height, padded=padded, fps=float(rate), num_frames=n,
        crf=crf, bit_rate=int(bit_rate) if bit_rate is not None else None, packet_sizes=tuple(sizes),
        packet_pts=tuple(pts), total_bytes=total, file_bytes=path.stat().st_size,
        kbps=total * 8 / 1000 / (n / float(rate)), has_audio=audio_pair is not None,
    )


def _chain(first, rest):
    yield first
    yield from rest


def _check_frame(arr, i: int) -> np.ndarray:
    arr = np.asarray(arr)
    if arr.dtype != np.uint8 or arr.ndim != 3 or arr.shape[2] != 3:
        raise ValueError(f"frame {i} must be (H, W, 3) uint8 RGB, got {arr.shape} {arr.dtype}")
    return np.ascontiguousarray(arr)


def _open_audio(av, src: Path, out, ext: str):
    """Open ``src``'s first audio stream and add the matching output stream (copy or re-encode)."""
    try:
        inp = av.open(str(src))
    except (av.FFmpegError, OSError) as e:
        raise DataError(f"cannot read audio from {src}: {_one_line(e)}") from e
    if not inp.streams.audio:
        inp.close()
        raise DataError(f"{src} has no audio stream to copy")
    a = inp.streams.audio[0]
    name = a.codec_context.name
    ok = _AUDIO_COPY_OK.get(ext, set())
    if ok is None or name in ok:
        return inp, ("copy", a, out.add_stream_from_template(a))
    target = "libopus" if ext == ".webm" else "aac"
    rate = 48000 if target == "libopus" else (a.codec_context.sample_rate or 44100)
    stereo = a.codec_context.layout is not None and a.codec_context.layout.nb_channels > 1
    o = out.add_stream(target, rate=rate, layout="stereo" if stereo else "mono")
    return inp, ("encode", a, o)


def _mux_audio(av, inp, pair, out, duration_s: float) -> None:
    """Copy (or re-encode) audio packets up to ``duration_s``."""
    mode, a, o = pair
    if mode == "copy":
        for pkt in inp.demux(a):
            if pkt.dts is None:
                continue
            if pkt.pts is not None and pkt.time_base and float(pkt.pts * pkt.time_base) >= duration_s:
                break
            pkt.stream = o
            out.mux(pkt)
        return
    cc = o.codec_context
    resampler = av.AudioResampler(format=cc.format.name, layout=cc.layout.name, rate=cc.sample_rate)
    for frame in inp.decode(a):
        if frame.time is not None and frame.time >= duration_s:
            break
        frame.pts = None
        for rf in resampler.resample(frame):
            out.mux(o.encode(rf))
    for rf in resampler.resample(None):
        out.mux(o.encode(rf))
    out.mux(o.encode(None))


def write_frames(folder: str | os.PathLike, frames: Iterable[Frame], start_index: int = 0) -> int:
    """Write frames as lossless PNGs ``folder/000000.png, 000001.png, ...`` (for evaluation).

    Args:
        folder: output folder (created).
        frames: iterable of ``(H, W, 3)`` uint8 RGB arrays (consumed lazily).
        start_index: number of the first file.

    Returns:
        The number of frames written.
    """
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    n = 0
    for i, arr in enumerate(frames):
        arr = _check_frame(arr, i)
        Image.fromarray(arr).save(folder / f"{start_index + i:06d}.png", compress_level=1)
        n += 1
    return n
