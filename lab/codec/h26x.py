"""H.264/H.265 through PyAV: encode frames with libx264/libx265, decode them back, count the bits a decoder needs.

The conventional codec of the rate–distortion protocol (:mod:`lab.evaluation.rate_distortion`: the animation
codec's intra-coded reference and the anchors) and of the conference path's reference frame
(:mod:`lab.conference.call`, :mod:`lab.conference.live`).

* **Bits** of an H.264/H.265 stream (:func:`encode_video`) are those a decoder needs: the parameter sets
  (SPS/PPS, and VPS for HEVC, which an mp4 keeps in its header) plus every slice NAL unit, each with a 4-byte
  length/start code (the units as FFmpeg's bitstream filters ``h264_mp4toannexb``/``hevc_mp4toannexb`` and
  ``filter_units`` give them: :func:`access_units`); **SEI NAL units are left out**. Reason, measured with PyAV 18
  (FFmpeg 8) on 256×256 frames: x264 puts a ~681-byte SEI holding its version and options into the first packet
  (5.4 kbit: two thirds of the packet of a CRF-51 intra frame, 6.8 kbps over a 0.8 s clip), and x265 puts its
  own SEI and the parameter sets into the mp4 header, where :attr:`datasets.video.EncodeStats.total_bytes` does
  not see them. The packet bytes of :class:`~datasets.video.EncodeStats` stay available in
  :attr:`CodedVideo.stats`.
* **Threads.** Encoders run single-threaded (x264 ``threads=1``, x265 ``frame-threads=1``:
  :data:`ENCODER_OPTIONS`): x264 cuts every frame into one slice per thread, so its bits would otherwise depend on
  the machine's core count.

:func:`encode_video` uses a temporary folder because PyAV encodes to files; nothing else touches the disk.
"""

from __future__ import annotations

import tempfile
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from datasets.video import EncodeStats

__all__ = [
    "CODECS",
    "ENCODER_OPTIONS",
    "CodedVideo",
    "check_codec",
    "check_frames",
    "access_units",
    "annexb_bits",
    "stream_bits",
    "encode_video",
    "encode_reference",
]

CODECS = ("libx264", "libx265")
#: encoder options that make the bitstream independent of the machine's core count
ENCODER_OPTIONS: dict[str, dict[str, str]] = {
    "libx264": {"threads": "1"},
    "libx265": {"x265-params": "log-level=error:frame-threads=1"},
}
#: FFmpeg bitstream filters that turn an mp4 (avcC/hvcC) stream into Annex B, header parameter sets in front
_MP4_TO_ANNEXB = {"h264": "h264_mp4toannexb", "hevc": "hevc_mp4toannexb"}
#: ``filter_units`` options per codec: the NAL units a decoder needs (all but SEI, access unit delimiters and
#: filler), the parameter sets (SPS/PPS, and VPS for HEVC) and the units left out
_UNITS = {
    "decodable": {"h264": "remove_types=6|9|12", "hevc": "remove_types=35|38-40"},
    "parameter_sets": {"h264": "pass_types=7|8", "hevc": "pass_types=32-34"},
    "excluded": {"h264": "pass_types=6|9|12", "hevc": "pass_types=35|38-40"},
}


@dataclass(frozen=True)
class CodedVideo:
    """Frames through a conventional codec, and what it cost.

    Attributes:
        bits: bits a decoder needs: parameter sets + slice NAL units, 4 framing bytes each, no SEI.
        decoded: ``(N, H, W, 3)`` uint8, the decoded frames (cropped back if the encoder padded them).
        stats: :class:`datasets.video.EncodeStats` of the encode (packet bytes, as muxed).
        parameter_set_bits: part of ``bits`` spent on SPS/PPS/VPS.
        excluded_bits: SEI/AUD/filler NAL units (with framing) left out of ``bits``.
    """

    bits: int
    decoded: np.ndarray
    stats: EncodeStats
    parameter_set_bits: int
    excluded_bits: int

    @property
    def num_frames(self) -> int:
        """Frames coded."""
        return int(self.decoded.shape[0])

    def kbps(self, fps: float) -> float:
        """``bits / 1000 / (frames / fps)``."""
        return self.bits / 1000 / (self.num_frames / fps)


def check_codec(codec: str) -> None:
    """Raise :class:`ValueError` unless ``codec`` is one of :data:`CODECS`."""
    if codec not in CODECS:
        raise ValueError(f"codec must be one of {CODECS}, got {codec!r}")


def check_frames(frames: np.ndarray, what: str = "frames") -> np.ndarray:
    """``frames`` as an array when it is ``(N, H, W, 3)`` uint8 RGB with ``N >= 1``, else :class:`ValueError`."""
    a = np.asarray(frames)
    if a.ndim != 4 or a.shape[-1] != 3 or a.dtype != np.uint8 or a.shape[0] < 1:
        raise ValueError(f"{what} must be (N, H, W, 3) uint8 RGB with N >= 1, got {a.shape} {a.dtype}")
    return a


def access_units(path: Path, units: str = "decodable") -> tuple[str, list[bytes]]:
    """``(codec name, access units)`` of an mp4's first video stream as Annex B, only the NAL units ``units`` names.

    FFmpeg's bitstream filters do the parsing: the first packet goes through ``h264_mp4toannexb`` /
    ``hevc_mp4toannexb`` (which puts the mp4 header's parameter sets, and for x265 its SEI, in front of it) and
    ``filter_units``; later packets through ``filter_units`` alone, which writes Annex B too. (``*_mp4toannexb``
    would repeat the header's parameter sets before every later IDR/IRAP picture: a decoder reading the stream
    from the start does not need them, and x264/x265 do not repeat them in their own Annex-B output.)

    Args:
        path: the mp4.
        units: ``"decodable"``, ``"parameter_sets"`` or ``"excluded"`` (:data:`_UNITS`).
    """
    import av
    from av.bitstream import BitStreamFilterContext

    with av.open(str(path)) as container:
        stream = container.streams.video[0]
        name = stream.codec_context.name
        if name not in _MP4_TO_ANNEXB:
            raise ValueError(f"{path}: cannot count NAL units of codec '{name}' (h264/hevc only)")
        keep = f"filter_units={_UNITS[units][name]}"
        first = BitStreamFilterContext(f"{_MP4_TO_ANNEXB[name]},{keep}", stream)
        rest = BitStreamFilterContext(keep, stream)
        out, bsf = [], first
        for pkt in container.demux(stream):
            if pkt.size:  # (the demuxer ends with an empty packet)
                out += [bytes(p) for p in bsf.filter(pkt)]
                bsf = rest
        out += [bytes(p) for b in (first, rest) for p in b.filter(None)]
    return name, out


def annexb_bits(units: Sequence[bytes]) -> int:
    """Bits of Annex-B data with a 4-byte start code before every NAL unit (module docstring).

    FFmpeg writes ``00 00 00 01`` before parameter sets and a packet's first unit, ``00 00 01`` before the others;
    emulation prevention keeps ``00 00 01`` out of the units, and no unit ends in a zero byte.
    """
    data = b"".join(units)
    return 8 * (len(data) + data.count(b"\x00\x00\x01") - data.count(b"\x00\x00\x00\x01"))


def stream_bits(path: Path) -> tuple[int, int, int]:
    """``(bits, parameter_set_bits, excluded_bits)`` of the first video stream of an mp4 (module docstring)."""
    return tuple(annexb_bits(access_units(path, u)[1]) for u in ("decodable", "parameter_sets", "excluded"))


def encode_video(
    frames: np.ndarray,
    fps: float = 25.0,
    codec: str = "libx264",
    crf: float | None = None,
    bit_rate: int | None = None,
    preset: str | None = None,
) -> CodedVideo:
    """Encode frames with libx264/libx265 (single-threaded), decode them back and count the decodable bits.

    Args:
        frames: ``(N, H, W, 3)`` uint8 RGB (libx265 needs ``W >= 64``).
        fps: frame rate.
        codec: ``"libx264"`` or ``"libx265"``.
        crf: constant rate factor (default: the encoder's, 23 / 28) — or give ``bit_rate``.
        bit_rate: target bit rate in bit/s.
        preset: encoder preset (default: the encoder's, ``medium``).

    Returns:
        :class:`CodedVideo`.

    Note:
        libx265 clips of fewer than 3 frames (the intra reference) are coded with ``bframes=0`` by
        :func:`datasets.video.write_video` (FFmpeg's wrapper gives them garbage decoding timestamps otherwise).
    """
    from datasets.video import read_frames, write_video

    check_codec(codec)
    frames = check_frames(frames)
    n, h, w = frames.shape[:3]
    options = dict(ENCODER_OPTIONS[codec])
    with tempfile.TemporaryDirectory(prefix="facelab-rd-") as tmp:
        path = Path(tmp) / "coded.mp4"
        stats = write_video(path, frames, fps, codec=codec, crf=crf, bit_rate=bit_rate, preset=preset,
                            options=options)
        bits, ps, excluded = stream_bits(path)
        decoded = read_frames(path)[:, :h, :w]
    if decoded.shape[0] != n:
        raise RuntimeError(f"{codec} decoded {decoded.shape[0]} frames of the {n} encoded")
    return CodedVideo(bits, np.ascontiguousarray(decoded), stats, ps, excluded)


def encode_reference(
    frame: np.ndarray, codec: str = "libx264", crf: float = 32, preset: str | None = None
) -> tuple[int, np.ndarray]:
    """Intra-code one reference frame.

    Args:
        frame: ``(H, W, 3)`` uint8 RGB.
        codec: ``"libx264"`` or ``"libx265"``.
        crf: constant rate factor (the quality level).
        preset: encoder preset.

    Returns:
        ``(bits, decoded)``: bits as :func:`encode_video` counts them and the decoded ``(H, W, 3)`` uint8 frame.
    """
    frame = np.asarray(frame)
    if frame.ndim != 3:
        raise ValueError(f"frame must be (H, W, 3) uint8, got {frame.shape}")
    coded = encode_video(frame[None], 25.0, codec=codec, crf=crf, preset=preset)
    return coded.bits, coded.decoded[0]
