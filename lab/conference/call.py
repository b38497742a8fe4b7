"""The conference pipeline: the paper's whole codec path (Figure 1), sender → server → receiver.

1. **Sender** (the phone), per camera frame at full resolution:
   one face-crop box for the session (:mod:`datasets.crop`), the ``size``×``size`` crop, the model's
   **motion encoder** (:meth:`~lab.core.animator.Animator.extract_motion`), the **quality gate**
   (:mod:`lab.codec.quality_gate`: frames with extreme pose/expression are not sent), and the **motion
   bitstream** (:mod:`lab.codec.motion`: residual against the previous reconstructed features, quantised,
   exp-Golomb coded). Once per session it also sends the full-resolution **reference frame**, intra-coded
   with H.264/H.265 (:func:`lab.evaluation.rate_distortion.encode_reference`). Uplink = reference + motion packets.
2. **Server**: decodes the reference and the packets, renders each frame with the **decoder**
   (:meth:`~lab.core.animator.Animator.render`, absolute motion: same person, same session, FOMM's
   reconstruction mode) — a frame the gate dropped reuses the last accepted motion ("hold") — and
   **composes** the animated head into the full-resolution reference frame (:mod:`lab.codec.composition`).
3. **Downlink**: the composed full-resolution frames are H.264/H.265-coded (PyAV) for the receiver.

Everything is measured on the way: bits of each uplink packet, downlink kbps, the conventional anchor
(the camera video itself coded with the same codec and setting — what a normal call would send up),
quality of what the receiver decodes against the camera frames (PSNR/SSIM, full frame) and of the
animated head against the camera's crop (L1, Table 2's unit), gate decisions, and wall time per stage.

No UI here; files are written only to ``work_dir`` (the two coded videos the rates are read from).
"""

from __future__ import annotations

import os
import tempfile
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np
import torch

__all__ = ["GATE_MODES", "ConferenceConfig", "ConferenceResult", "run_conference", "load_camera_clip", "preview_grid"]

GATE_MODES = ("landmarks", "keypoints", "off")


@dataclass
class ConferenceConfig:
    """Settings of one conference run (every field is recorded in the result)."""

    model: str = "ultralight"  # registered animator name
    checkpoint: str | None = "default"  # weights: "default" (the model's own file), a path, or None
    crop: bool = True  # face-crop the camera frames (one box per session); False: the frame is the crop
    detector: str = "auto"  # face detector for the crop box (datasets.crop.CROP_DETECTORS)
    reference_codec: str = "libx264"  # intra coding of the full-resolution reference frame (uplink, once)
    reference_crf: float = 18.0
    quant_factor: float = 64.0  # motion features x factor, rounded (JVET GFVC convention)
    gate: str = "landmarks"  # quality gate features: "landmarks" (68-point), "keypoints" (the encoder's), "off"
    gate_policy: str = "hold"  # what the server renders for a dropped frame
    composition: str = "feather"  # lab.codec.composition method: feather, poisson, naive
    feather: float = 0.12  # blend band, in crop-box sides
    downlink_codec: str = "libx264"  # libx264 (H.264) or libx265 (H.265)
    downlink_crf: float | None = 23.0  # constant quality ...
    downlink_bit_rate: int | None = None  # ... or a target bit rate in bit/s (instead of the CRF)
    anchor: bool = True  # also code the camera video itself (the conventional call) for comparison
    batch_size: int = 8

    def __post_init__(self) -> None:
        from lab.codec.composition import COMPOSITION_METHODS

        if self.gate not in GATE_MODES:
            raise ValueError(f"gate must be one of {', '.join(GATE_MODES)}, got '{self.gate}'")
        if self.composition not in COMPOSITION_METHODS:
            raise ValueError(f"composition must be one of {', '.join(COMPOSITION_METHODS)}, got '{self.composition}'")
        if self.quant_factor <= 0:
            raise ValueError(f"quant_factor must be > 0, got {self.quant_factor}")


@dataclass
class ConferenceResult:
    """What a conference run produced and measured.

    Attributes:
        received: ``(N, H, W, 3)`` uint8, the frames the receiver decodes from the downlink.
        composed: ``(N, H, W, 3)`` uint8, the server's full-resolution output before downlink coding.
        heads: ``(N, S, S, 3)`` uint8, the animated face crops.
        crops: ``(N, S, S, 3)`` uint8, the camera's face crops (the sender's encoder input).
        box: the crop box ``(x0, y0, x1, y1)`` in camera pixels.
        per_frame: one dict per frame: gate decision and reasons, motion bits, the frame whose motion
            was rendered, PSNR/SSIM of the received frame, L1 of the head.
        summary: rates (kbps), gate counts, quality means and stage timings.
        config: the settings used.
        downlink_path: the coded downlink video; anchor_path: the coded camera video (or None).
        provenance: model weights and what the numbers mean.
    """

    received: np.ndarray
    composed: np.ndarray
    heads: np.ndarray
    crops: np.ndarray
    box: tuple[int, int, int, int]
    per_frame: list[dict]
    summary: dict
    config: ConferenceConfig
    downlink_path: Path
    anchor_path: Path | None = None
    provenance: dict = field(default_factory=dict)


def _check_frames(frames: np.ndarray) -> np.ndarray:
    a = np.asarray(frames)
    if a.ndim == 3:
        a = a[None]
    if a.ndim != 4 or a.shape[-1] != 3 or a.dtype != np.uint8:
        raise ValueError(f"camera frames must be (N, H, W, 3) uint8 RGB, got {a.shape} {a.dtype}")
    if len(a) == 0:
        raise ValueError("no camera frames")
    return a


def _batches(n: int, size: int):
    for i in range(0, n, size):
        yield slice(i, min(n, i + size))


@torch.no_grad()
def _extract(model, crops: np.ndarray, batch_size: int, progress=None, what: str = "") -> dict[str, torch.Tensor]:
    from lab.core.animate import to_tensor
    from lab.core.animator import cat_batches
    from lab.core.progress import report

    def motion():
        for s in _batches(len(crops), batch_size):
            if what:
                report(progress, what, s.start, len(crops))
            yield model.extract_motion(to_tensor(crops[s]))
        if what:
            report(progress, what, len(crops), len(crops))

    return cat_batches(motion())


def _gate(config: ConferenceConfig, crops: np.ndarray, motion, ref_motion) -> list:
    """Gate decisions per frame (the sender's): accept flags, reasons, features."""
    from lab.codec.quality_gate import GateDecision, QualityGate

    if config.gate == "off":
        return [GateDecision(accept=True, reasons=(), features={}) for _ in range(len(crops))]
    gate = QualityGate()
    if config.gate == "landmarks":
        return gate.assess(crops, reference=crops[0])
    return gate.assess_motion(motion, ref_motion)


def run_conference(
    frames: np.ndarray,
    fps: float,
    config: ConferenceConfig | None = None,
    loaded=None,
    work_dir: str | os.PathLike | None = None,
    progress=None,
) -> ConferenceResult:
    """Send camera frames through the whole codec path and measure it.

    Args:
        frames: ``(N, H, W, 3)`` uint8 RGB camera frames at full resolution (upper body); frame 0 is the
            session's reference frame.
        fps: frame rate (sets kbps).
        config: :class:`ConferenceConfig` (defaults: ultralight, landmark gate, feather, H.264 CRF 23).
        loaded: a :class:`lab.core.animate.LoadedAnimator` to reuse (else loaded from ``config``).
        work_dir: where the coded downlink (and anchor) videos are written (default: a new temp folder).
        progress: a :data:`lab.core.progress.ProgressFn`: each stage (crop, encoder, gate, decoder, composition,
            downlink) with the frames it has done.

    Returns:
        :class:`ConferenceResult`.

    Raises:
        ValueError: bad frames or settings. DataError: no face found for the crop box.
    """
    from datasets.crop import crop_array, crop_frame
    from datasets.video import read_frames, write_video
    from lab.codec.composition import compose, resize_rgb, seam_score
    from lab.codec.h26x import encode_reference
    from lab.codec.motion import MotionCodec
    from lab.codec.quality_gate import gate_sequence
    from lab.core.animate import load_animator, to_tensor, to_uint8
    from lab.core.animator import index_batch
    from lab.core.progress import report
    from metrics.functional import l1, psnr, ssim

    config = config or ConferenceConfig()
    frames = _check_frames(frames)
    if fps <= 0:
        raise ValueError(f"fps must be > 0, got {fps}")
    n, height, width = frames.shape[:3]
    la = loaded or load_animator(config.model, config.checkpoint)
    model = la.model.eval()
    size = int(model.input_size[0])
    work = Path(work_dir) if work_dir is not None else Path(tempfile.mkdtemp(prefix="facelab-conf-"))
    work.mkdir(parents=True, exist_ok=True)
    t: dict[str, float] = {}

    # ---------------------------------------------------------------- sender
    t0 = time.perf_counter()
    report(progress, "sender: face crop box", 0, n)
    if config.crop:
        box = tuple(int(v) for v in crop_array(frames, size=size, detector=config.detector).box)
    else:
        box = (0, 0, width, height)
    crops = np.stack([crop_frame(f, box, size) for f in frames])
    t["crop"] = time.perf_counter() - t0

    t0 = time.perf_counter()
    ref_bits, ref_full = encode_reference(frames[0], codec=config.reference_codec, crf=config.reference_crf)
    t["reference_coding"] = time.perf_counter() - t0
    ref_crop = crop_frame(ref_full, box, size)

    t0 = time.perf_counter()
    motion = _extract(model, crops, config.batch_size, progress, f"sender: {config.model} encoder")
    t["encoder"] = time.perf_counter() - t0
    ref_motion = _extract(model, ref_crop[None], 1)  # both sides compute it from the decoded reference

    t0 = time.perf_counter()
    report(progress, f"sender: quality gate ({config.gate})", 0, n)
    decisions = _gate(config, crops, motion, ref_motion)
    report(progress, f"sender: quality gate ({config.gate})", n, n)
    use = gate_sequence(decisions, policy=config.gate_policy)
    t["gate"] = time.perf_counter() - t0
    accepted = [i for i, d in enumerate(decisions) if d.accept]

    t0 = time.perf_counter()
    codec = MotionCodec(quant_factor=config.quant_factor)
    sent = {k: v[accepted] for k, v in motion.items()}
    stream = codec.encode(sent, reference=ref_motion)
    t["motion_coding"] = time.perf_counter() - t0

    # ---------------------------------------------------------------- server
    t0 = time.perf_counter()
    received_motion = codec.decode(stream, reference=ref_motion)
    slot = {frame: j for j, frame in enumerate(accepted)}
    rows = [slot[u] if u is not None and u >= 0 else -1 for u in use]
    table = {k: torch.cat([ref_motion[k], received_motion[k]]) for k in ref_motion}  # row 0 = reference
    driving = {k: v[torch.tensor(rows) + 1] for k, v in table.items()}
    state = model.encode_source(to_tensor(ref_crop))
    heads = []
    with torch.no_grad():
        for s in _batches(n, config.batch_size):
            report(progress, f"server: {config.model} decoder", s.start, n)
            heads.append(to_uint8(model.render(state, ref_motion, index_batch(driving, s)).clamp(0, 1)))
    report(progress, f"server: {config.model} decoder", n, n)
    heads = np.concatenate(heads)
    t["decoder"] = time.perf_counter() - t0

    t0 = time.perf_counter()
    report(progress, f"server: composition ({config.composition})", 0, n)
    if box == (0, 0, width, height):  # the camera frame is the crop: nothing around it to compose into
        composed = np.stack([resize_rgb(h, width, height) for h in heads])
    else:
        composed = np.stack([compose(ref_full, h, box, config.composition, config.feather) for h in heads])
    t["composition"] = time.perf_counter() - t0

    # ---------------------------------------------------------------- downlink
    rate = {"crf": config.downlink_crf} if config.downlink_bit_rate is None else {"bit_rate": config.downlink_bit_rate}
    t0 = time.perf_counter()
    report(progress, f"downlink: {config.downlink_codec}", 0, n)
    down = write_video(work / "downlink.mp4", composed, fps=fps, codec=config.downlink_codec, **rate)
    t["downlink_coding"] = time.perf_counter() - t0
    received = read_frames(work / "downlink.mp4")[:n, :height, :width]
    anchor = None
    if config.anchor:
        anchor = write_video(work / "anchor.mp4", frames, fps=fps, codec=config.downlink_codec, **rate)
        anchor_frames = read_frames(work / "anchor.mp4")[:n, :height, :width]

    # ---------------------------------------------------------------- measurements
    p_full = psnr(received, frames, reduction="none")
    s_full = ssim(received, frames, reduction="none")
    l1_head = l1(heads, crops, reduction="none")
    full_box = box == (0, 0, width, height)
    seams = [float("nan") if full_box else seam_score(c, box) for c in composed]
    per_frame = []
    for i, d in enumerate(decisions):
        j = slot.get(i)
        per_frame.append({
            "frame": i,
            "sent": d.accept,
            "gate_reasons": "; ".join(d.reasons),
            "motion_bits": int(stream.frame_bits[j]) if j is not None else 0,
            "rendered_motion_of": accepted[rows[i]] if rows[i] >= 0 else "reference",
            "psnr": float(p_full[i]),
            "ssim": float(s_full[i]),
            "l1_head": float(l1_head[i]),
            "seam": seams[i],
            **{f"gate_{k}": v for k, v in d.features.items()},
        })
    duration = n / fps
    motion_kbps = stream.total_bits / 1000 / duration
    summary = {
        "model": config.model,
        "weights": la.weights,
        "frames": n,
        "fps": fps,
        "camera_size": f"{width}x{height}",
        "crop_box": list(box),
        "frames_sent": len(accepted),
        "frames_dropped_by_gate": n - len(accepted),
        "motion_values_per_frame": int(sum(int(np.prod(v.shape[1:])) for v in motion.values())),
        "uplink_motion_kbps": motion_kbps,
        "uplink_reference_kbit": ref_bits / 1000,
        "uplink_header_bits": int(getattr(stream, "header_bits", 0)),
        "uplink_kbps_incl_reference": (stream.total_bits + ref_bits) / 1000 / duration,
        "downlink_codec": config.downlink_codec,
        "downlink_kbps": down.kbps,
        "anchor_kbps": anchor.kbps if anchor else None,
        "anchor_psnr": float(psnr(anchor_frames, frames)) if anchor else None,
        "uplink_saving_vs_anchor": (anchor.kbps / motion_kbps) if anchor and motion_kbps > 0 else None,
        "psnr": float(np.mean(p_full)),
        "ssim": float(np.mean(s_full)),
        "l1_head": float(np.mean(l1_head)),
        "seam": float(np.mean(seams)),
        "seam_camera": float("nan") if full_box else float(np.mean([seam_score(f, box) for f in frames])),
        **{f"ms_per_frame_{k}": 1000 * v / n for k, v in t.items()},
    }
    provenance = {
        "model": {"name": config.model, "weights": la.weights, "note": la.note},
        "config": asdict(config),
        "rates": "kbps = bits / 1000 / (frames / fps); motion packets and the reference intra frame are the "
                 "uplink, the coded composed video the downlink; the anchor is the camera video coded with the "
                 "downlink's codec and setting (a conventional call's uplink)",
        "quality": "psnr/ssim: received full frame vs camera frame; l1_head: animated crop vs camera crop; seam: "
                   "mean step across the crop box border of the composed frame, 8-bit levels (seam_camera: the "
                   "camera frame's own step there)",
    }
    return ConferenceResult(received=received, composed=composed, heads=heads, crops=crops, box=box,
                            per_frame=per_frame, summary=summary, config=config, downlink_path=down.path,
                            anchor_path=anchor.path if anchor else None, provenance=provenance)


def load_camera_clip(path: str | os.PathLike, max_frames: int | None = 100) -> tuple[np.ndarray, float]:
    """A camera clip for :func:`run_conference`: ``(frames (N, H, W, 3) uint8, fps)``.

    Args:
        path: a video or frame folder (anything :func:`datasets.video.open_media` reads), or ``"demo"``:
            the embedded 512×512 upper-body clip (:func:`datasets.demo.demo_upper_body`, 25 fps).
        max_frames: read at most this many frames (None: the whole clip).
    """
    from datasets.demo import demo_fps, demo_upper_body
    from datasets.video import open_media

    if str(path) == "demo":
        return demo_upper_body(max_frames or 50), demo_fps()
    media = open_media(path, max_frames=max_frames)
    return media.read(), float(media.info.fps or 25.0)


def preview_grid(camera: np.ndarray, received: np.ndarray, max_height: int = 360) -> np.ndarray:
    """``camera | received`` side by side with labels, scaled to at most ``max_height`` px: ``(N, h, w, 3)``."""
    from lab.codec.composition import resize_rgb
    from lab.core.animate import side_by_side

    h, w = camera.shape[1:3]
    scale = min(1.0, max_height / h)
    nw, nh = max(2, round(w * scale)), max(2, round(h * scale))
    cam = np.stack([resize_rgb(f, nw, nh) for f in camera])
    rec = np.stack([resize_rgb(f, nw, nh) for f in received])
    return side_by_side([("camera", cam), ("received", rec)])
