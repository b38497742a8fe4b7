"""Writing video and frames (part of :mod:`datasets.video`): :func:`write_video` encodes with PyAV and counts the
bytes of every packet (:class:`EncodeStats`), copying audio in on request; :func:`write_frames` writes PNGs."""

from __future__ import annotations

import itertools
import os
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path

import numpy as np
from PIL import Image

from datasets.errors import DataError
from datasets.video.common import Frame, _import_av, _one_line

# The x265 in PyAV 18's FFmpeg corrupts the heap for frames <= 48 px wide (glibc's malloc check aborts;
# widths >= 50 pass): write_video refuses narrower frames for libx265.
X265_MIN_REORDER_FRAMES = 3  # libx265 clips shorter than this are coded without B-frames
MIN_X265_WIDTH = 64


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
    _check_write_args(fps, crf, bit_rate)
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    rate = Fraction(fps).limit_denominator(1001)
    first, rest = _first_frame(frames)
    width, height, padded = _coded_size(first, codec)
    crf, opts, rest = _encoder_options(codec, crf, bit_rate, preset, options, first, rest)

    audio_in = None
    out = _open_output(av, path, container_options)
    try:
        stream = _add_video_stream(out, codec, rate, width, height, bit_rate, opts)
        audio_pair = None
        if audio_from is not None:
            audio_in, audio_pair = _open_audio(av, Path(audio_from), out, path.suffix.lower())
        packets = _PacketLog(out, rate)
        n = _encode_frames(av, stream, packets, first, rest, width, height, rate)
        if audio_pair is not None:
            _mux_audio(av, audio_in, audio_pair, out, n / float(rate))
    finally:
        out.close()
        if audio_in is not None:
            audio_in.close()
    total = sum(packets.sizes)
    return EncodeStats(
        path=path, codec=codec, width=width, height=height, padded=padded, fps=float(rate), num_frames=n,
        crf=crf, bit_rate=int(bit_rate) if bit_rate is not None else None, packet_sizes=tuple(packets.sizes),
        packet_pts=tuple(packets.pts), total_bytes=total, file_bytes=path.stat().st_size,
        kbps=total * 8 / 1000 / (n / float(rate)), has_audio=audio_pair is not None,
    )


def _open_output(av, path: Path, container_options: dict[str, str] | None):
    """The output container, opened for writing (ValueError when FFmpeg cannot)."""
    try:
        return av.open(str(path), "w", options=dict(container_options or {}))
    except av.FFmpegError as e:
        raise ValueError(f"cannot write {path}: {_one_line(e)}") from e


def _check_write_args(fps: float, crf: float | None, bit_rate: int | None) -> None:
    """Refuse a rate of 0 or less, and ``crf`` given with ``bit_rate`` (ValueError)."""
    if fps <= 0:
        raise ValueError(f"fps must be > 0, got {fps}")
    if crf is not None and bit_rate is not None:
        raise ValueError("give crf or bit_rate, not both")


def _first_frame(frames: Iterable[Frame]) -> tuple[np.ndarray, Iterator[Frame]]:
    """The first frame, checked, and an iterator over the frames after it (ValueError when there is none)."""
    it = iter(frames)
    first = next(it, None)
    if first is None:
        raise ValueError("write_video needs at least one frame")
    return _check_frame(first, 0), it


def _coded_size(first: np.ndarray, codec: str) -> tuple[int, int, bool]:
    """``(width, height, padded)``: the first frame's size rounded up to even for 4:2:0, and whether that pads it;
    ValueError for frames too narrow for libx265 (:data:`MIN_X265_WIDTH`)."""
    h0, w0 = first.shape[:2]
    width, height = w0 + (w0 % 2), h0 + (h0 % 2)
    padded = (width, height) != (w0, h0)
    if codec == "libx265" and width < MIN_X265_WIDTH:
        raise ValueError(
            f"libx265 needs frames at least {MIN_X265_WIDTH} px wide, got {w0} (narrower frames corrupt memory "
            "in the x265 bundled with PyAV)"
        )
    return width, height, padded


def _encoder_options(
    codec: str,
    crf: float | None,
    bit_rate: int | None,
    preset: str | None,
    options: dict[str, str] | None,
    first: np.ndarray,
    rest: Iterator[Frame],
) -> tuple[float | None, dict[str, str], Iterator[Frame]]:
    """The CRF used (23 for x264, 28 for x265 when neither ``crf`` nor ``bit_rate`` is given), the encoder
    options, and the frames after ``first`` (libx265 looks ahead at them: see :func:`_x265_options`)."""
    if crf is None and bit_rate is None and codec in ("libx264", "libx265"):
        crf = 23 if codec == "libx264" else 28
    opts = dict(options or {})
    if crf is not None:
        opts["crf"] = f"{crf:g}"
    if preset:
        opts["preset"] = preset
    if codec == "libx265":
        rest = _x265_options(opts, first, rest)
    if codec.startswith("libvpx") and crf is not None and bit_rate is None:
        opts.setdefault("b", "0")  # vpx: constant quality needs b=0
    return crf, opts, rest


def _x265_options(opts: dict[str, str], first: np.ndarray, rest: Iterator[Frame]) -> Iterator[Frame]:
    """Quiet x265's log and turn B-frames off for clips shorter than :data:`X265_MIN_REORDER_FRAMES` (in
    ``opts``); returns the frames after ``first``, the ones read ahead to count them included."""
    opts.setdefault("x265-params", "log-level=error")
    head = [first, *itertools.islice(rest, X265_MIN_REORDER_FRAMES - 1)]
    if len(head) < X265_MIN_REORDER_FRAMES and "bframes" not in opts["x265-params"]:
        # FFmpeg's libx265 wrapper gives clips of 1-2 frames with B-frames on uninitialised decoding
        # timestamps (measured: dts = -9.4e13), which the mp4 muxer refuses ("pts/dts pair unsupported")
        # depending on the garbage; with so few frames there is no B-frame to lose
        opts["x265-params"] += ":bframes=0"
    return itertools.chain(head[1:], rest)


def _add_video_stream(out, codec: str, rate: Fraction, width: int, height: int, bit_rate: int | None,
                      opts: dict[str, str]):
    """Add the video stream to the output container: ``yuv420p`` (``yuvj420p`` for mjpeg), the options set."""
    stream = out.add_stream(codec, rate=rate)
    stream.width, stream.height = width, height
    stream.pix_fmt = "yuvj420p" if codec == "mjpeg" else "yuv420p"
    if bit_rate is not None:
        stream.bit_rate = int(bit_rate)
    stream.options = opts
    return stream


class _PacketLog:
    """Muxes video packets into ``out``, noting each one's size and presentation frame index, in decode order."""

    def __init__(self, out, rate: Fraction) -> None:
        self.out = out
        self.rate = rate
        self.sizes: list[int] = []
        self.pts: list[int] = []

    def mux(self, packets) -> None:
        for pkt in packets:
            self.sizes.append(pkt.size)
            if pkt.pts is None:
                self.pts.append(len(self.pts))
            else:  # frame index, from the packet's own time base
                tb = pkt.time_base or (Fraction(1) / self.rate)
                self.pts.append(int(round(pkt.pts * tb * self.rate)))
            self.out.mux(pkt)


def _encode_frames(av, stream, packets: _PacketLog, first: np.ndarray, rest: Iterator[Frame], width: int,
                   height: int, rate: Fraction) -> int:
    """Encode ``first`` and then ``rest`` (each checked, the same size as ``first``, padded to ``width`` x
    ``height`` by repeating the last column/row), flush the encoder; the number of frames encoded."""
    h0, w0 = first.shape[:2]
    padded = (width, height) != (w0, h0)
    n = 0
    for i, arr in enumerate(_chain(first, rest)):
        arr = _check_frame(arr, i)
        if arr.shape[:2] != (h0, w0):
            raise ValueError(f"frame {i} is {arr.shape[1]}x{arr.shape[0]}, the first frame is {w0}x{h0}")
        if padded:
            arr = np.pad(arr, ((0, height - h0), (0, width - w0), (0, 0)), mode="edge")
        frame = av.VideoFrame.from_ndarray(arr, format="rgb24")
        frame.pts = i
        frame.time_base = Fraction(1) / rate
        packets.mux(stream.encode(frame))
        n += 1
    packets.mux(stream.encode(None))
    return n


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
