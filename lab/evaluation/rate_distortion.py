"""Rate–distortion of face animation as a codec, against H.264/H.265 alone, with Bjøntegaard deltas.

The protocol is the JVET generative-face-video-coding (GFVC) common software's
(``../shared/spec/protocol.md``, "Rate–distortion"; ``FOMM_Encoder.py``/``FOMM_Decoder.py`` of
Berlin0610/Awesome-Generative-Face-Video-Coding, ``Software/``):

* **Animation codec** (:func:`animation_rd`). Frame 0 is the reference, intra-coded by a conventional codec
  (here libx264/libx265 through PyAV, at several CRFs = quality levels; GFVC uses VTM at several QPs) and
  shown as decoded. The sender extracts the motion of frames ``1..N-1`` from the *original* frames and codes
  it with :class:`lab.codec.motion.MotionCodec`, whose first predictor is the motion of the *decoded* reference
  (both ends can compute it). The server decodes the motion and renders frames ``1..N-1`` from the decoded
  reference with absolute motion (FOMM's reconstruction mode: ``render(encode_source(ref), motion(ref),
  decoded motion)``). Rate = reference bits + all feature packets; the feature stream's session header
  (layout and factor, sent once) is reported apart (``motion_header_bits``), not in the rate.
* **Anchors** (:func:`anchor_rd`). The conventional codec alone on the same frames (one GOP at these
  lengths: x264/x265 defaults, keyint 250) at low-rate CRFs or target bit rates.
* **Rate** ``kbps = bits / 1000 / (frames / fps)``. Bits of an H.264/H.265 stream (:func:`encode_video`) are
  those a decoder needs: the parameter sets (SPS/PPS, and VPS for HEVC, which an mp4 keeps in its header)
  plus every slice NAL unit, each with a 4-byte length/start code (the units as FFmpeg's bitstream filters
  ``h264_mp4toannexb``/``hevc_mp4toannexb`` and ``filter_units`` give them); **SEI NAL units are left out**. Reason,
  measured with PyAV 18 (FFmpeg 8) on 256×256 frames: x264 puts a ~681-byte SEI holding its version and
  options into the first packet (5.4 kbit: two thirds of the packet of a CRF-51 intra frame, 6.8 kbps
  over a 0.8 s clip), and x265 puts its own SEI and the parameter sets into the mp4 header, where
  :attr:`datasets.video.EncodeStats.total_bytes` does not see them. The packet-byte rate of
  :class:`~datasets.video.EncodeStats` is kept in the ``kbps_packets`` column. Encoders run single-threaded
  (x264 ``threads=1``, x265 ``frame-threads=1``): x264 cuts every frame into one slice per thread, so its
  bits would otherwise depend on the machine's core count.
* **Quality** per frame in RGB (PSNR, SSIM, optionally LPIPS: :mod:`metrics.functional`), averaged per
  sequence; :func:`rd_over_videos` then averages over sequences per quality level and computes
  Bjøntegaard deltas per sequence and their mean (the JVET common-test-conditions reading).
* **BD-rate** (:func:`bd_rate`, VCEG-M33): fit ``log10(rate)`` as a cubic polynomial of quality for each
  curve, integrate both over the overlapping quality interval; ``10**(mean difference) - 1`` in percent
  (negative: the test curve needs fewer bits for the same quality). :func:`bd_quality` is BD-PSNR (quality
  as a cubic of ``log10(rate)``). ``method="pchip"`` uses the piecewise-cubic Hermite interpolation of later
  JVET reporting templates instead.

LPIPS (``"lpips"`` in ``metrics``) needs the AlexNet weights; when they are absent the
:class:`FileNotFoundError` of :func:`metrics.backends.lpips_alex.get_lpips_alex` propagates (it names the file
and folder): no silent skip.

Model code stays pure: :func:`encode_video` uses a temporary folder because PyAV encodes to files; the only
other file I/O is :func:`write_rd_outputs`, called by :func:`rd_over_videos` with an ``out_dir``.
"""

from __future__ import annotations

import json
import os
import tempfile
import time
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch

from datasets.video import EncodeStats

__all__ = [
    "CODECS",
    "DEFAULT_ANCHOR_CRFS",
    "DEFAULT_REF_CRFS",
    "ENCODER_OPTIONS",
    "CodedVideo",
    "encode_video",
    "encode_reference",
    "animation_rd",
    "anchor_rd",
    "bd_rate",
    "bd_quality",
    "RDResult",
    "rd_over_videos",
    "summarise_rd",
    "bd_table",
    "rd_markdown",
    "write_rd_outputs",
]

CODECS = ("libx264", "libx265")
#: anchor CRFs: low rates for 256×256 at 25 fps
DEFAULT_ANCHOR_CRFS: dict[str, tuple[int, ...]] = {
    "libx264": (35, 39, 43, 47, 51),
    "libx265": (35, 39, 43, 47, 51),
}
#: reference (intra frame) CRFs of the animation codec: its quality levels
DEFAULT_REF_CRFS: dict[str, tuple[int, ...]] = {
    "libx264": (22, 28, 34, 40, 46, 51),
    "libx265": (22, 28, 34, 40, 46, 51),
}
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
_HIGHER_IS_BETTER = {"psnr": True, "ssim": True, "lpips": False}


# ---------------------------------------------------------------------------------------------- conventional codec


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


def _check_codec(codec: str) -> None:
    if codec not in CODECS:
        raise ValueError(f"codec must be one of {CODECS}, got {codec!r}")


def _check_frames(frames: np.ndarray, what: str = "frames") -> np.ndarray:
    a = np.asarray(frames)
    if a.ndim != 4 or a.shape[-1] != 3 or a.dtype != np.uint8 or a.shape[0] < 1:
        raise ValueError(f"{what} must be (N, H, W, 3) uint8 RGB with N >= 1, got {a.shape} {a.dtype}")
    return a


def _access_units(path: Path, units: str = "decodable") -> tuple[str, list[bytes]]:
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


def _annexb_bits(units: Sequence[bytes]) -> int:
    """Bits of Annex-B data with a 4-byte start code before every NAL unit (module docstring).

    FFmpeg writes ``00 00 00 01`` before parameter sets and a packet's first unit, ``00 00 01`` before the others;
    emulation prevention keeps ``00 00 01`` out of the units, and no unit ends in a zero byte.
    """
    data = b"".join(units)
    return 8 * (len(data) + data.count(b"\x00\x00\x01") - data.count(b"\x00\x00\x00\x01"))


def _stream_bits(path: Path) -> tuple[int, int, int]:
    """``(bits, parameter_set_bits, excluded_bits)`` of the first video stream of an mp4 (module docstring)."""
    return tuple(_annexb_bits(_access_units(path, u)[1]) for u in ("decodable", "parameter_sets", "excluded"))


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

    _check_codec(codec)
    frames = _check_frames(frames)
    n, h, w = frames.shape[:3]
    options = dict(ENCODER_OPTIONS[codec])
    with tempfile.TemporaryDirectory(prefix="facelab-rd-") as tmp:
        path = Path(tmp) / "coded.mp4"
        stats = write_video(path, frames, fps, codec=codec, crf=crf, bit_rate=bit_rate, preset=preset,
                            options=options)
        bits, ps, excluded = _stream_bits(path)
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


# ---------------------------------------------------------------------------------------------- quality


def _check_metrics(metrics: Sequence[str]) -> None:
    bad = [m for m in metrics if m not in _HIGHER_IS_BETTER]
    if bad or not metrics:
        raise ValueError(f"metrics must be among {tuple(_HIGHER_IS_BETTER)}, got {list(metrics)}")


def _lpips_net(metrics: Sequence[str]):
    _check_metrics(metrics)
    if "lpips" not in metrics:
        return None
    from metrics.backends.lpips_alex import get_lpips_alex

    return get_lpips_alex()[0]  # FileNotFoundError (names the file and folder) when the weights are absent


def _quality(preds: np.ndarray, target: np.ndarray, metrics: Sequence[str], lpips_net=None) -> dict[str, float]:
    """Per-sequence mean of per-frame quality."""
    from metrics import functional as mf

    out = {}
    for m in metrics:
        if m == "lpips":
            vals = mf.lpips(preds, target, net=lpips_net, reduction="none")
        else:
            vals = getattr(mf, m)(preds, target, reduction="none")
        out[m] = float(np.mean(vals))
    return out


# ---------------------------------------------------------------------------------------------- RD points


@torch.no_grad()
def _extract(model, frames: np.ndarray, batch_size: int) -> dict[str, torch.Tensor]:
    from lab.core.animate import to_tensor
    from lab.core.animator import cat_batches

    dev = model.device
    return cat_batches(model.extract_motion(to_tensor(frames[i : i + batch_size]).to(dev))
                       for i in range(0, len(frames), batch_size))


@torch.no_grad()
def _render(model, reference: np.ndarray, motion_ref, motion: dict[str, torch.Tensor], batch_size: int) -> np.ndarray:
    from lab.core.animate import to_tensor, to_uint8
    from lab.core.animator import index_batch

    dev = model.device
    state = model.encode_source(to_tensor(reference).to(dev))
    n = next(iter(motion.values())).shape[0]
    out = []
    for s in range(0, n, batch_size):
        chunk = {k: v.to(dev) for k, v in index_batch(motion, slice(s, s + batch_size)).items()}
        out.append(to_uint8(model.render(state, motion_ref, chunk).clamp(0, 1)))
    return np.concatenate(out)


def animation_rd(
    model,
    frames: np.ndarray,
    fps: float = 25.0,
    codec: str = "libx264",
    ref_crfs: Sequence[float] | None = None,
    quant_factor: float = 64.0,
    metrics: Sequence[str] = ("psnr", "ssim"),
    eg_order: int = 0,
    batch_size: int = 8,
    weights: str = "",
    preset: str | None = None,
) -> list[dict]:
    """Rate–distortion points of an animator used as a codec on one sequence (module docstring).

    Args:
        model: an :class:`lab.core.animator.Animator` on the device it should run on (put in eval mode here).
        frames: ``(N, H, W, 3)`` uint8 at ``model.input_size``; frame 0 is the reference.
        fps: frame rate (for kbps).
        codec: the reference frame's codec, ``"libx264"`` or ``"libx265"``.
        ref_crfs: the reference CRFs, one RD point each (default :data:`DEFAULT_REF_CRFS`).
        quant_factor: :class:`lab.codec.motion.MotionCodec` quantisation factor.
        metrics: among ``psnr``, ``ssim``, ``lpips``.
        eg_order: exp-Golomb order of the motion codes.
        batch_size: frames per forward pass.
        weights: what the model's weights are (``LoadedAnimator.weights``), copied into the rows.
        preset: encoder preset of the reference.

    Returns:
        One dict per CRF: ``model, kind ("animation"), weights, codec, curve ("model+codec"), level, crf, frames,
        fps, kbps, ref_kbps, motion_kbps, kbps_packets, ref_bits, motion_bits, motion_header_bits, quant_factor``
        and the metrics.
    """
    from lab.codec.motion import MotionCodec
    from lab.core.animate import to_tensor

    _check_codec(codec)
    frames = _check_frames(frames)
    if tuple(frames.shape[1:3]) != tuple(model.input_size):
        raise ValueError(f"{model.name} expects {model.input_size[1]}x{model.input_size[0]} frames, got "
                         f"{frames.shape[2]}x{frames.shape[1]}: crop or resize first")
    model.eval()
    n = len(frames)
    seconds = n / fps
    lpips_net = _lpips_net(metrics)
    mcodec = MotionCodec(quant_factor, eg_order)
    motion = _extract(model, frames[1:], batch_size) if n > 1 else None  # sender: original frames
    rows = []
    for crf in DEFAULT_REF_CRFS[codec] if ref_crfs is None else ref_crfs:
        ref = encode_video(frames[:1], fps, codec=codec, crf=crf, preset=preset)
        with torch.no_grad():  # both ends extract it from the decoded reference
            motion_ref = model.extract_motion(to_tensor(ref.decoded).to(model.device))
        motion_ref_cpu = {k: v.cpu() for k, v in motion_ref.items()}
        preds = [ref.decoded]
        motion_bits = header_bits = 0
        if motion is not None:
            stream = mcodec.encode({k: v.cpu() for k, v in motion.items()}, motion_ref_cpu)
            decoded = mcodec.decode(stream, motion_ref_cpu)  # what the server receives
            motion_bits, header_bits = stream.total_bits, stream.header_bits
            preds.append(_render(model, ref.decoded, motion_ref, decoded, batch_size))
        row = {
            "model": model.name, "kind": "animation", "weights": weights, "codec": codec,
            "curve": f"{model.name}+{codec}",
            "level": f"crf={crf:g}", "crf": float(crf), "frames": n, "fps": float(fps),
            "kbps": (ref.bits + motion_bits) / 1000 / seconds,
            "ref_kbps": ref.bits / 1000 / seconds,
            "motion_kbps": motion_bits / 1000 / seconds,
            "kbps_packets": (ref.stats.total_bytes * 8 + motion_bits) / 1000 / seconds,
            "ref_bits": int(ref.bits), "motion_bits": int(motion_bits), "motion_header_bits": int(header_bits),
            "quant_factor": float(quant_factor),
        }
        row.update(_quality(np.concatenate(preds), frames, metrics, lpips_net))
        rows.append(row)
    return rows


def anchor_rd(
    frames: np.ndarray,
    fps: float = 25.0,
    codec: str = "libx264",
    crfs: Sequence[float] | None = None,
    bit_rates: Sequence[int] | None = None,
    metrics: Sequence[str] = ("psnr", "ssim"),
    preset: str | None = None,
) -> list[dict]:
    """Rate–distortion points of the conventional codec alone on the same frames.

    Args:
        frames: ``(N, H, W, 3)`` uint8.
        fps: frame rate.
        codec: ``"libx264"`` or ``"libx265"``.
        crfs: CRFs, one point each (default :data:`DEFAULT_ANCHOR_CRFS` when ``bit_rates`` is not given).
        bit_rates: target bit rates in bit/s instead of CRFs.
        metrics: among ``psnr``, ``ssim``, ``lpips``.
        preset: encoder preset.

    Returns:
        One dict per level: ``model`` (the codec), ``kind`` (``"anchor"``), ``weights`` (``""``), ``codec``,
        ``curve`` (the codec),
        ``level``, ``crf``, ``bit_rate``, ``frames``, ``fps``, ``kbps`` (decodable bits), ``kbps_packets``
        (:attr:`EncodeStats.kbps`) and the metrics.
    """
    _check_codec(codec)
    frames = _check_frames(frames)
    if crfs is not None and bit_rates is not None:
        raise ValueError("give crfs or bit_rates, not both")
    lpips_net = _lpips_net(metrics)
    if bit_rates is not None:
        levels = [(None, int(b)) for b in bit_rates]
    else:
        levels = [(c, None) for c in (DEFAULT_ANCHOR_CRFS[codec] if crfs is None else crfs)]
    rows = []
    for crf, rate in levels:
        coded = encode_video(frames, fps, codec=codec, crf=crf, bit_rate=rate, preset=preset)
        row = {
            "model": codec, "kind": "anchor", "weights": "", "codec": codec, "curve": codec,
            "level": f"crf={crf:g}" if crf is not None else f"bit_rate={rate}",
            "crf": float(crf) if crf is not None else None, "bit_rate": rate,
            "frames": len(frames), "fps": float(fps), "kbps": coded.kbps(fps), "kbps_packets": coded.stats.kbps,
        }
        row.update(_quality(coded.decoded, frames, metrics, lpips_net))
        rows.append(row)
    return rows


# ---------------------------------------------------------------------------------------------- Bjøntegaard


def _curve(rates: Sequence[float], quality: Sequence[float], what: str) -> tuple[np.ndarray, np.ndarray]:
    r = np.asarray(rates, dtype=np.float64).ravel()
    q = np.asarray(quality, dtype=np.float64).ravel()
    if r.shape != q.shape:
        raise ValueError(f"{what}: {r.size} rates but {q.size} quality values")
    if r.size < 4:
        raise ValueError(f"{what}: Bjøntegaard deltas need at least 4 RD points (cubic fit), got {r.size}")
    if not (np.all(np.isfinite(r)) and np.all(np.isfinite(q))) or np.any(r <= 0):
        raise ValueError(f"{what}: rates must be finite and > 0 and quality finite")
    return np.log10(r), q


def _mean_difference(x1: np.ndarray, y1: np.ndarray, x2: np.ndarray, y2: np.ndarray, method: str,
                     what: str) -> float:
    """Mean of ``f2 - f1`` over the overlap of the x ranges, ``f`` a cubic fit of ``y`` as a function of ``x``."""
    lo, hi = max(x1.min(), x2.min()), min(x1.max(), x2.max())
    if not hi > lo:
        raise ValueError(f"{what}: the two curves do not overlap ([{x1.min():g}, {x1.max():g}] vs "
                         f"[{x2.min():g}, {x2.max():g}])")
    if method == "polyfit":
        ints = []
        for x, y in ((x1, y1), (x2, y2)):
            p = np.polyint(np.polyfit(x, y, 3))
            ints.append(np.polyval(p, hi) - np.polyval(p, lo))
    elif method == "pchip":
        from scipy.interpolate import PchipInterpolator

        ints = []
        for x, y in ((x1, y1), (x2, y2)):
            order = np.argsort(x)
            if np.any(np.diff(x[order]) <= 0):
                raise ValueError(f"{what}: pchip needs distinct x values on each curve")
            ints.append(PchipInterpolator(x[order], y[order]).integrate(lo, hi))
    else:
        raise ValueError(f"method must be 'polyfit' (VCEG-M33) or 'pchip', got {method!r}")
    return float((ints[1] - ints[0]) / (hi - lo))


def bd_rate(
    anchor_rates: Sequence[float],
    anchor_quality: Sequence[float],
    test_rates: Sequence[float],
    test_quality: Sequence[float],
    method: str = "polyfit",
) -> float:
    """Bjøntegaard delta rate in percent (VCEG-M33): average rate difference at equal quality.

    Args:
        anchor_rates: rates of the anchor's RD points (any unit, > 0; at least 4 points).
        anchor_quality: their quality (PSNR in dB, or any higher-is-better measure).
        test_rates: rates of the tested curve (same unit).
        test_quality: its quality.
        method: ``"polyfit"`` (cubic fit of ``log10(rate)`` over quality, VCEG-M33) or ``"pchip"``.

    Returns:
        Percent; negative = the test curve saves bits.

    Raises:
        ValueError: fewer than 4 points, non-finite values or no overlapping quality interval.
    """
    ra, qa = _curve(anchor_rates, anchor_quality, "anchor")
    rt, qt = _curve(test_rates, test_quality, "test")
    diff = _mean_difference(qa, ra, qt, rt, method, "BD-rate")
    return float((10.0**diff - 1.0) * 100.0)


def bd_quality(
    anchor_rates: Sequence[float],
    anchor_quality: Sequence[float],
    test_rates: Sequence[float],
    test_quality: Sequence[float],
    method: str = "polyfit",
) -> float:
    """Bjøntegaard delta quality (BD-PSNR in dB when quality is PSNR): average gain at equal rate.

    Args:
        anchor_rates: rates of the anchor's RD points (> 0; at least 4).
        anchor_quality: their quality.
        test_rates: rates of the tested curve.
        test_quality: its quality.
        method: ``"polyfit"`` (cubic fit of quality over ``log10(rate)``) or ``"pchip"``.

    Returns:
        Quality units; positive = the test curve is better at equal rate.

    Raises:
        ValueError: fewer than 4 points, non-finite values or no overlapping rate interval.
    """
    ra, qa = _curve(anchor_rates, anchor_quality, "anchor")
    rt, qt = _curve(test_rates, test_quality, "test")
    return _mean_difference(ra, qa, rt, qt, method, "BD-quality")


# ---------------------------------------------------------------------------------------------- over videos


@dataclass
class RDResult:
    """The rows of an RD run.

    Attributes:
        rows: one per video, curve and level (``rd.csv``).
        summary: one per curve and level, averaged over videos (``rd_summary.csv``).
        bd: one per model curve, anchor and video, plus a ``"mean"`` row per pair (``bd_rate.csv``).
        provenance: settings, weights, versions (``provenance.json``).
        out_dir: where the files were written (None: in memory only).
    """

    rows: list[dict]
    summary: list[dict]
    bd: list[dict]
    provenance: dict = field(default_factory=dict)
    out_dir: Path | None = None


def summarise_rd(rows: Sequence[dict], metrics: Sequence[str] = ("psnr", "ssim")) -> list[dict]:
    """Average per-video rows over videos for each curve and level (rates and quality alike).

    Args:
        rows: :func:`animation_rd`/:func:`anchor_rd` rows with a ``video`` key.
        metrics: quality columns to average.

    Returns:
        One dict per (curve, level), in first-seen order, with ``videos`` (count) and the means.
    """
    groups: dict[tuple[str, str], list[dict]] = {}
    for r in rows:
        groups.setdefault((r["curve"], r["level"]), []).append(r)
    out = []
    for rs in groups.values():
        first = rs[0]
        s = {k: first.get(k) for k in ("model", "kind", "weights", "codec", "curve", "level", "crf", "bit_rate")}
        s["videos"] = len(rs)
        for k in ("kbps", "ref_kbps", "motion_kbps", "kbps_packets", *metrics):
            vals = [float(r[k]) for r in rs if r.get(k) is not None]
            s[k] = float(np.mean(vals)) if vals else None
        out.append(s)
    return out


def bd_table(rows: Sequence[dict], quality: str = "psnr", method: str = "polyfit") -> list[dict]:
    """BD-rate and BD-quality of every animation curve against every anchor curve, per video and their mean.

    Args:
        rows: per-video rows (``video``, ``kind``, ``curve``, ``model``, ``codec``, ``kbps`` and ``quality``).
        quality: the quality column (``psnr`` for BD-rate on PSNR as JVET reports it).
        method: see :func:`bd_rate`.

    Returns:
        Dicts ``model, codec`` (the tested curve: animator and its reference codec), ``anchor`` (the anchor
        codec), ``video, quality, bd_rate`` (percent), ``bd_quality, videos, status`` (``"ok"`` or why the delta
        could not be computed, e.g. no overlapping quality range). The ``video == "mean"`` row of each pair
        averages the per-video deltas that could be computed (``videos`` says how many).
    """
    by: dict[tuple[str, str], list[dict]] = {}
    curves: dict[str, dict] = {}
    for r in rows:
        by.setdefault((r["curve"], r["video"]), []).append(r)
        curves.setdefault(r["curve"], r)
    anchors = [c for c, r in curves.items() if r["kind"] == "anchor"]
    tests = [c for c, r in curves.items() if r["kind"] != "anchor"]
    videos = list(dict.fromkeys(r["video"] for r in rows))
    out = []
    for test in tests:
        for anchor in anchors:
            head = {"model": curves[test]["model"], "codec": curves[test]["codec"], "anchor": anchor}
            per = []
            for v in videos:
                a, t = by.get((anchor, v)), by.get((test, v))
                if not a or not t:
                    continue
                args = ([x["kbps"] for x in a], [x[quality] for x in a],
                        [x["kbps"] for x in t], [x[quality] for x in t])
                row = {**head, "video": v, "quality": quality, "videos": 1}
                try:
                    row.update(bd_rate=bd_rate(*args, method=method), bd_quality=bd_quality(*args, method=method),
                               status="ok")
                except ValueError as e:
                    row.update(bd_rate=None, bd_quality=None, status=str(e))
                per.append(row)
            ok = [r for r in per if r["status"] == "ok"]
            out.extend(per)
            out.append({**head, "video": "mean", "quality": quality, "videos": len(ok),
                        "bd_rate": float(np.mean([r["bd_rate"] for r in ok])) if ok else None,
                        "bd_quality": float(np.mean([r["bd_quality"] for r in ok])) if ok else None,
                        "status": "ok" if ok else f"no video with a computable delta (of {len(per)})"})
    return out


def rd_markdown(summary: Sequence[dict], bd: Sequence[dict], metrics: Sequence[str] = ("psnr", "ssim")) -> str:
    """Markdown tables: the RD points averaged over videos, and the mean BD deltas.

    Args:
        summary: :func:`summarise_rd` rows.
        bd: :func:`bd_table` rows (only the ``"mean"`` rows are shown).
        metrics: quality columns of the first table.

    Returns:
        Markdown text (no number, or an infinite one, shows as ``–``).
    """
    from lab.core.format import MISSING, fmt, markdown_table

    def num(v, spec: str) -> str:
        return fmt(v, spec, inf=MISSING)

    points = markdown_table(
        ["curve", "weights", "level", "kbps", "ref kbps", "motion kbps", *(m.upper() for m in metrics), "videos"],
        ([s["curve"], s.get("weights") or "", s["level"], num(s["kbps"], ".2f"), num(s.get("ref_kbps"), ".2f"),
          num(s.get("motion_kbps"), ".2f"), *(num(s.get(m), ".2f" if m == "psnr" else ".4f") for m in metrics),
          s["videos"]] for s in summary))
    deltas = markdown_table(
        ["model", "codec", "anchor", "quality", "BD-rate (%)", "BD-quality", "videos", "status"],
        ([b["model"], b["codec"], b["anchor"], b["quality"], num(b["bd_rate"], "+.1f"), num(b["bd_quality"], "+.3f"),
          b["videos"], b["status"]] for b in bd if b["video"] == "mean"))
    return (f"## Rate–distortion (averaged per sequence, then over sequences)\n\n{points}\n\n"
            f"## Bjøntegaard deltas (mean of per-sequence values; negative BD-rate = fewer bits)\n\n{deltas}\n")


def write_rd_outputs(result: RDResult, out_dir: str | os.PathLike, metrics: Sequence[str] = ("psnr", "ssim")) -> Path:
    """Write ``rd.csv``, ``rd_summary.csv``, ``bd_rate.csv``, ``rd.md`` and ``provenance.json`` to ``out_dir``.

    Args:
        result: the rows to write.
        out_dir: folder (created).
        metrics: quality columns of ``rd.md``.

    Returns:
        The folder.
    """
    import pandas as pd

    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    pd.DataFrame(result.rows).to_csv(out / "rd.csv", index=False)
    pd.DataFrame(result.summary).to_csv(out / "rd_summary.csv", index=False)
    pd.DataFrame(result.bd).to_csv(out / "bd_rate.csv", index=False)
    (out / "rd.md").write_text(rd_markdown(result.summary, result.bd, metrics))
    (out / "provenance.json").write_text(json.dumps(result.provenance, indent=2, default=str))
    result.out_dir = out
    return out


def _provenance(loaded: Mapping, codecs, fps, ref_crfs, anchor_crfs, quant_factor, eg_order, metrics, preset,
                data_description, seconds) -> dict:
    import av

    from metrics.provenance import facelab_version, package_versions

    return {
        "protocol": "JVET GFVC rate-distortion: frame 0 intra-coded and shown decoded; motion of frames 1..N-1 "
        "extracted from the original frames, closed-loop residual + exp-Golomb coded (predictor: motion of the "
        "decoded reference), rendered from the decoded reference with absolute motion; anchors: the codec alone; "
        "quality per frame in RGB, averaged per sequence then over sequences; BD deltas per sequence, then mean",
        "rate_accounting": "kbps = bits / 1000 / (frames / fps); H.264/H.265 bits = parameter sets + slice NAL "
        "units with 4 framing bytes each, SEI/AUD/filler excluded (kbps_packets: muxed packet bytes as "
        "EncodeStats counts them); motion bits = byte-aligned packets per frame; the motion session header "
        "(motion_header_bits) is sent once and not counted",
        "motion_codec": {"quant_factor": quant_factor, "exp_golomb_order": eg_order,
                         "key_order": "sorted keys, C order", "rounding": "round half to even"},
        "codecs": {c: {"options": ENCODER_OPTIONS[c], "preset": preset or "encoder default (medium)",
                       "ref_crfs": list(ref_crfs.get(c, DEFAULT_REF_CRFS[c])),
                       "anchor_crfs": list(anchor_crfs.get(c, DEFAULT_ANCHOR_CRFS[c]))} for c in codecs},
        "fps": fps,
        "metrics": list(metrics),
        "models": {m: {"weights": la.weights, "note": la.note,
                       "checkpoint_meta": getattr(la.model, "checkpoint_meta", {})} for m, la in loaded.items()},
        "data": dict(data_description or {}),
        "seconds": seconds,
        "facelab_version": facelab_version(),
        "packages": {**package_versions(("torch", "numpy", "scikit-image")), "av": av.__version__,
                     "ffmpeg_libraries": {k: ".".join(map(str, v)) for k, v in av.library_versions.items()}},
    }


def rd_over_videos(
    models: Sequence[str],
    videos: Iterable[tuple[str, np.ndarray]],
    out_dir: str | os.PathLike | None = None,
    codecs: Sequence[str] = CODECS,
    fps: float = 25.0,
    ref_crfs: Mapping[str, Sequence[float]] | None = None,
    anchor_crfs: Mapping[str, Sequence[float]] | None = None,
    quant_factor: float = 64.0,
    eg_order: int = 0,
    metrics: Sequence[str] = ("psnr", "ssim"),
    checkpoints: Mapping[str, str | None] | None = None,
    batch_size: int = 8,
    device: str | torch.device = "cpu",
    preset: str | None = None,
    data_description: dict | None = None,
    progress=True,
) -> RDResult:
    """Rate–distortion of every model and anchor codec over sequences, with BD deltas (module docstring).

    Args:
        models: registered animator names (loaded with :func:`lab.core.animate.load_animator`; a model whose weights
            are not found runs randomly initialised, and its rows say so in ``weights``).
        videos: ``(name, frames)`` pairs, frames ``(N, H, W, 3)`` uint8 at the models' input size (the shape of
            :func:`lab.evaluation.reconstruction.iter_eval_videos`).
        out_dir: where to write ``rd.csv``, ``rd_summary.csv``, ``bd_rate.csv``, ``rd.md``, ``provenance.json``
            (None: nothing written).
        codecs: conventional codecs: each is an anchor and the reference codec of each model.
        fps: frame rate of the sequences.
        ref_crfs: per codec, the reference CRFs (default :data:`DEFAULT_REF_CRFS`).
        anchor_crfs: per codec, the anchor CRFs (default :data:`DEFAULT_ANCHOR_CRFS`).
        quant_factor: motion quantisation factor.
        eg_order: exp-Golomb order of the motion codes.
        metrics: among ``psnr``, ``ssim``, ``lpips`` (BD deltas use ``psnr``, which must be included).
        checkpoints: per model a weights path, ``"default"`` (the model's own file) or None (random init).
        batch_size: frames per forward pass.
        device: where the models run.
        preset: encoder preset (anchors and references).
        data_description: recorded in the provenance.
        progress: True: a tqdm bar over videos; a :data:`lab.core.progress.ProgressFn`: called before every
            curve of every video (``what`` = ``"<video>: <model>+<codec>"`` or ``"<video>: anchor <codec>"``,
            counted in curves of that video); False/None: nothing.

    Returns:
        :class:`RDResult`.
    """
    from lab.core.animate import load_animator
    from lab.core.progress import report

    for c in codecs:
        _check_codec(c)
    _check_metrics(metrics)
    if "psnr" not in metrics:
        raise ValueError("metrics must include 'psnr' (BD-rate is computed on PSNR)")
    ref_crfs = dict(ref_crfs or {})
    anchor_crfs = dict(anchor_crfs or {})
    checkpoints = dict(checkpoints or {})
    loaded = {m: load_animator(m, checkpoints.get(m, "default")) for m in models}
    for la in loaded.values():
        la.model.to(device).eval()
    it = videos
    step = progress if callable(progress) else None
    if progress is True:
        from tqdm import tqdm

        it = tqdm(videos, desc="rd", unit="video")
    rows: list[dict] = []
    seconds: dict[str, float] = {}
    curves = len(codecs) * (1 + len(loaded))
    for name, frames in it:
        done = 0
        for c in codecs:
            report(step, f"{name}: anchor {c}", done, curves, "curve")
            done += 1
            t0 = time.perf_counter()
            for r in anchor_rd(frames, fps, c, crfs=anchor_crfs.get(c), metrics=metrics, preset=preset):
                rows.append({"video": name, **r})
            seconds[c] = seconds.get(c, 0.0) + time.perf_counter() - t0
            for m, la in loaded.items():
                report(step, f"{name}: {m}+{c}", done, curves, "curve")
                done += 1
                t0 = time.perf_counter()
                for r in animation_rd(la.model, frames, fps, c, ref_crfs=ref_crfs.get(c), quant_factor=quant_factor,
                                      metrics=metrics, eg_order=eg_order, batch_size=batch_size, weights=la.weights,
                                      preset=preset):
                    rows.append({"video": name, **r})
                seconds[f"{m}+{c}"] = seconds.get(f"{m}+{c}", 0.0) + time.perf_counter() - t0
    if not rows:
        raise ValueError("rd_over_videos got no videos")
    result = RDResult(rows=rows, summary=summarise_rd(rows, metrics), bd=bd_table(rows, "psnr"))
    result.provenance = _provenance(loaded, codecs, fps, ref_crfs, anchor_crfs, quant_factor, eg_order, metrics,
                                    preset, data_description, seconds)
    if out_dir is not None:
        write_rd_outputs(result, out_dir, metrics)
    return result
