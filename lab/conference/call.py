"""The conference pipeline: the paper's whole codec path (Figure 1), sender → server → receiver.

1. **Sender** (the phone, :mod:`lab.conference.sender`), per camera frame at full resolution:
   one face-crop box for the session (:mod:`datasets.crop`), the ``size``×``size`` crop, the model's
   **motion encoder** (:meth:`~lab.core.animator.Animator.extract_motion`), the **quality gate**
   (:mod:`lab.codec.quality_gate`: frames with extreme pose/expression are not sent), and the **motion
   bitstream** (:mod:`lab.codec.motion`: residual against the previous reconstructed features, quantised,
   exp-Golomb coded). Once per session it also sends the full-resolution **reference frame**, intra-coded
   with H.264/H.265 (:func:`lab.codec.h26x.encode_reference`). Uplink = reference + motion packets.
2. **Server** (:mod:`lab.conference.server`): decodes the reference and the packets, renders each frame with the
   **decoder** (:meth:`~lab.core.animator.Animator.render`, absolute motion: same person, same session, FOMM's
   reconstruction mode) — a frame the gate dropped reuses the last accepted motion ("hold") — and
   **composes** the animated head into the full-resolution reference frame (:mod:`lab.codec.composition`).
3. **Downlink** (:func:`lab.conference.server.code_downlink`): the composed full-resolution frames are
   H.264/H.265-coded (PyAV) for the receiver.

Everything is measured on the way (:mod:`lab.conference.measure`): bits of each uplink packet, downlink kbps, the
conventional anchor (the camera video itself coded with the same codec and setting — what a normal call would send
up), quality of what the receiver decodes against the camera frames (PSNR/SSIM, full frame) and of the
animated head against the camera's crop (L1, Table 2's unit), gate decisions, and wall time per stage.

No UI here; files are written only to ``work_dir`` (the two coded videos the rates are read from).
"""

from __future__ import annotations

import os
import tempfile
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from lab.conference.sender import check_settings

__all__ = ["ConferenceConfig", "ConferenceResult", "run_conference", "load_camera_clip", "preview_grid"]


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
        check_settings(self.gate, self.composition, self.quant_factor)


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
        loaded: the :class:`lab.core.animate.LoadedAnimator` that animates (the caller resolves ``config.model``
            and ``config.checkpoint`` with :func:`lab.core.animate.load_animator`; the app reuses its own).
        work_dir: where the coded downlink (and anchor) videos are written (default: a new temp folder).
        progress: a :data:`lab.core.progress.ProgressFn`: each stage (crop, encoder, gate, decoder, composition,
            downlink) with the frames it has done.

    Returns:
        :class:`ConferenceResult`.

    Raises:
        ValueError: bad frames or settings. DataError: no face found for the crop box.
    """
    from lab.conference.measure import code_anchor, measure_clip
    from lab.conference.sender import send_clip
    from lab.conference.server import code_downlink, serve_clip
    config = config or ConferenceConfig()
    if loaded is None:
        raise TypeError("run_conference takes a loaded animator: loaded=lab.core.animate.load_animator(name)")
    frames = _check_frames(frames)
    if fps <= 0:
        raise ValueError(f"fps must be > 0, got {fps}")
    la = loaded
    model = la.model.eval()
    work = Path(work_dir) if work_dir is not None else Path(tempfile.mkdtemp(prefix="facelab-conf-"))
    work.mkdir(parents=True, exist_ok=True)
    timings: dict[str, float] = {}  # seconds per stage, in the order they run

    up = send_clip(model, frames, config, progress, timings)
    served = serve_clip(model, up, config, progress, timings)
    down, received = code_downlink(work, served.composed, fps, config, progress, timings)
    anchor, anchor_frames = code_anchor(work, frames, fps, config)

    per_frame, summary, provenance = measure_clip(frames, fps, config, la, up, served, received, down, anchor,
                                                  anchor_frames, timings)
    return ConferenceResult(received=received, composed=served.composed, heads=served.heads, crops=up.crops,
                            box=up.box, per_frame=per_frame, summary=summary, config=config, downlink_path=down.path,
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
