"""Probing a medium before decoding it (part of :mod:`datasets.video`, whose docstring says how frame counts,
rotation and truncated files are handled): a video's :class:`~datasets.video.common.MediaInfo` from PyAV or
OpenCV with the truncation warnings, an image's size, a frame folder's files, and the limits on size and length."""

from __future__ import annotations

from pathlib import Path

from PIL import Image, UnidentifiedImageError

from datasets.errors import DataError
from datasets.video.common import FRAME_EXTS, MediaInfo, _data_warning, _import_av, _import_cv2, _one_line, natural_key

MAX_SIDE = 4096  # px; larger frames are refused (no talking-head input needs more)
MAX_FRAMES = 20_000  # refused unless the caller caps the frames read with max_frames
# a header's frame count / duration may exceed the packets found by rounding; beyond this the file is cut
TRUNCATED_SLACK = 2  # frames
TRUNCATED_SLACK_FRACTION = 0.02


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


def _folder_frames(path: Path) -> list[Path]:
    try:
        files = [p for p in path.iterdir() if p.is_file() and p.suffix.lower() in FRAME_EXTS]
    except OSError as e:
        raise DataError(f"cannot read folder {path}: {_one_line(e)}") from e
    return sorted(files, key=lambda p: natural_key(p.name))
