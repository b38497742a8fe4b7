"""Rate–distortion of face animation as a codec, against H.264/H.265 alone: RD points, curves over videos.

The protocol is the JVET generative-face-video-coding (GFVC) common software's
(``../shared/spec/protocol.md``, "Rate–distortion"; ``FOMM_Encoder.py``/``FOMM_Decoder.py`` of
Berlin0610/Awesome-Generative-Face-Video-Coding, ``Software/``):

* **Animation codec** (:func:`animation_rd`). Frame 0 is the reference, intra-coded by a conventional codec
  (here libx264/libx265 through PyAV, :mod:`lab.codec.h26x`, at several CRFs = quality levels; GFVC uses VTM at
  several QPs) and shown as decoded. The sender extracts the motion of frames ``1..N-1`` from the *original*
  frames and codes it with :class:`lab.codec.motion.MotionCodec`, whose first predictor is the motion of the
  *decoded* reference (both ends can compute it). The server decodes the motion and renders frames ``1..N-1``
  from the decoded reference with absolute motion (FOMM's reconstruction mode: ``render(encode_source(ref),
  motion(ref), decoded motion)``). Rate = reference bits + all feature packets; the feature stream's session
  header (layout and factor, sent once) is reported apart (``motion_header_bits``), not in the rate.
* **Anchors** (:func:`anchor_rd`). The conventional codec alone on the same frames (one GOP at these
  lengths: x264/x265 defaults, keyint 250) at low-rate CRFs or target bit rates.
* **Rate** ``kbps = bits / 1000 / (frames / fps)``, H.264/H.265 bits as :func:`lab.codec.h26x.encode_video`
  counts them (parameter sets + slice NAL units with 4 framing bytes each, no SEI: why is said there). The
  packet-byte rate of :class:`~datasets.video.EncodeStats` is kept in the ``kbps_packets`` column.
* **Quality** per frame in RGB (PSNR, SSIM, optionally LPIPS: :mod:`metrics.functional`), averaged per
  sequence; :func:`rd_over_videos` then averages over sequences per quality level and computes
  Bjøntegaard deltas per sequence and their mean (:mod:`lab.evaluation.bjontegaard`).

LPIPS (``"lpips"`` in ``metrics``) needs the AlexNet weights; when they are absent the
:class:`FileNotFoundError` of :func:`metrics.backends.lpips_alex.get_lpips_alex` propagates (it names the file
and folder): no silent skip.

The jobs take loaded animators (:func:`lab.core.animate.load_animator` is called by the CLI and the UI). The only
file I/O is :func:`lab.evaluation.rd_tables.write_rd_outputs`, called by :func:`rd_over_videos` with an
``out_dir`` (and the temporary files of :func:`lab.codec.h26x.encode_video`).
"""

from __future__ import annotations

import os
import time
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np
import torch

from lab.codec.h26x import CODECS, check_codec, check_frames, encode_video
from lab.evaluation.bjontegaard import bd_table
from lab.evaluation.rd_tables import RDResult, rd_provenance, summarise_rd, write_rd_outputs

if TYPE_CHECKING:
    from lab.core.animate import LoadedAnimator

__all__ = [
    "DEFAULT_ANCHOR_CRFS",
    "DEFAULT_REF_CRFS",
    "animation_rd",
    "anchor_rd",
    "rd_over_videos",
]

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
_HIGHER_IS_BETTER = {"psnr": True, "ssim": True, "lpips": False}


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

    check_codec(codec)
    frames = check_frames(frames)
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
    check_codec(codec)
    frames = check_frames(frames)
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


# ---------------------------------------------------------------------------------------------- over videos


@dataclass(frozen=True)
class _Settings:
    """What :func:`rd_over_videos` does to every video (its arguments, the CRFs per codec with defaults filled in)."""

    codecs: Sequence[str]
    fps: float
    ref_crfs: dict[str, Sequence[float]]
    anchor_crfs: dict[str, Sequence[float]]
    quant_factor: float
    eg_order: int
    metrics: Sequence[str]
    batch_size: int
    preset: str | None


def _named(animators: Mapping[str, LoadedAnimator] | Iterable[LoadedAnimator]) -> dict[str, LoadedAnimator]:
    """``name -> LoadedAnimator``: a mapping as given, a sequence keyed by each model's name (the other jobs'
    :func:`~lab.evaluation.reconstruction.animator_names`); each one usable."""
    from lab.evaluation.reconstruction import animator_names

    loaded = dict(animators) if isinstance(animators, Mapping) else animator_names(animators)
    return {m: la.require() for m, la in loaded.items()}  # ModelUnavailable for a refused weights file


def _videos_and_step(videos: Iterable[tuple[str, np.ndarray]], progress):
    """``(videos to loop over, ProgressFn or None)``: a tqdm bar for ``progress=True``, a callable as given."""
    if progress is True:
        from tqdm import tqdm

        return tqdm(videos, desc="rd", unit="video"), None
    return videos, progress if callable(progress) else None


def _timed(seconds: dict[str, float], key: str, fn, *args, **kwargs) -> list[dict]:
    """``fn(*args, **kwargs)``, its wall time added to ``seconds[key]``."""
    t0 = time.perf_counter()
    out = list(fn(*args, **kwargs))
    seconds[key] = seconds.get(key, 0.0) + time.perf_counter() - t0
    return out


def _video_rows(name: str, frames: np.ndarray, loaded: Mapping[str, LoadedAnimator], s: _Settings, step,
                seconds: dict[str, float]) -> list[dict]:
    """The rows of one video: per codec, its anchor curve then every animator's curve with it as reference codec."""
    from lab.core.progress import report

    rows: list[dict] = []
    curves = len(s.codecs) * (1 + len(loaded))
    done = 0
    for c in s.codecs:
        report(step, f"{name}: anchor {c}", done, curves, "curve")
        done += 1
        rows += _timed(seconds, c, anchor_rd, frames, s.fps, c, crfs=s.anchor_crfs[c], metrics=s.metrics,
                       preset=s.preset)
        for m, la in loaded.items():
            report(step, f"{name}: {m}+{c}", done, curves, "curve")
            done += 1
            rows += _timed(seconds, f"{m}+{c}", animation_rd, la.model, frames, s.fps, c, ref_crfs=s.ref_crfs[c],
                           quant_factor=s.quant_factor, metrics=s.metrics, eg_order=s.eg_order,
                           batch_size=s.batch_size, weights=la.weights, preset=s.preset)
    return [{"video": name, **r} for r in rows]


def rd_over_videos(
    animators: Mapping[str, LoadedAnimator] | Sequence[LoadedAnimator],
    videos: Iterable[tuple[str, np.ndarray]],
    out_dir: str | os.PathLike | None = None,
    codecs: Sequence[str] = CODECS,
    fps: float = 25.0,
    ref_crfs: Mapping[str, Sequence[float]] | None = None,
    anchor_crfs: Mapping[str, Sequence[float]] | None = None,
    quant_factor: float = 64.0,
    eg_order: int = 0,
    metrics: Sequence[str] = ("psnr", "ssim"),
    batch_size: int = 8,
    device: str | torch.device = "cpu",
    preset: str | None = None,
    data_description: dict | None = None,
    progress=True,
) -> RDResult:
    """Rate–distortion of every animator and anchor codec over sequences, with BD deltas (module docstring).

    Args:
        animators: the animators, loaded (:func:`lab.core.animate.load_animator`, called by the CLI and the UI): a
            ``name -> LoadedAnimator`` mapping, or a sequence of them named by ``model.name``. A model without
            trained weights runs as loaded (its rows say so in ``weights``); an unavailable one raises
            :class:`lab.core.animate.ModelUnavailable`. They are moved to ``device``.
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
    for c in codecs:
        check_codec(c)
    _check_metrics(metrics)
    if "psnr" not in metrics:
        raise ValueError("metrics must include 'psnr' (BD-rate is computed on PSNR)")
    ref_crfs, anchor_crfs = dict(ref_crfs or {}), dict(anchor_crfs or {})
    s = _Settings(codecs, fps, {c: ref_crfs.get(c, DEFAULT_REF_CRFS[c]) for c in codecs},
                  {c: anchor_crfs.get(c, DEFAULT_ANCHOR_CRFS[c]) for c in codecs}, quant_factor, eg_order, metrics,
                  batch_size, preset)
    loaded = _named(animators)
    for la in loaded.values():
        la.model.to(device).eval()
    it, step = _videos_and_step(videos, progress)
    rows: list[dict] = []
    seconds: dict[str, float] = {}
    for name, frames in it:
        rows += _video_rows(name, frames, loaded, s, step, seconds)
    if not rows:
        raise ValueError("rd_over_videos got no videos")
    result = RDResult(rows=rows, summary=summarise_rd(rows, metrics), bd=bd_table(rows, "psnr"))
    result.provenance = rd_provenance(loaded, codecs, s.ref_crfs, s.anchor_crfs, fps=fps, quant_factor=quant_factor,
                                      eg_order=eg_order, metrics=metrics, preset=preset,
                                      data_description=data_description, seconds=seconds)
    if out_dir is not None:
        write_rd_outputs(result, out_dir, metrics)
    return result
