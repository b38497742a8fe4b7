"""What a call measures: rates (kbps), quality, gate counts and the time each stage takes.

* A recorded clip (:func:`measure_clip`, for :func:`lab.conference.call.run_conference`): bits of each uplink
  packet, downlink kbps, the conventional anchor (the camera video itself coded with the same codec and setting:
  :func:`code_anchor`, what a normal call would send up), quality of what the receiver decodes against the camera
  frames (PSNR/SSIM, full frame) and of the animated head against the camera's crop (L1, Table 2's unit), the seam
  at the crop box border, gate decisions and wall time per stage.
* A live call (:class:`LiveMeter`, for :class:`lab.conference.live.LiveSession`): arrivals, drops, bits and
  stage times (:data:`STAGES`) by the session's clock, over the whole call and over a recent window.

Files are written only by :func:`code_anchor` (into the folder it is given).
"""

from __future__ import annotations

from collections import deque
from dataclasses import asdict
from pathlib import Path

import numpy as np

from lab.conference.sender import Uplink
from lab.conference.server import Served, downlink_rate

__all__ = ["STAGES", "code_anchor", "measure_clip", "LiveMeter"]

STAGES = ("crop", "encoder", "gate", "bitstream", "decoder", "composition")
"""The timed stages of one live frame, sender first (:mod:`lab.conference.live`)."""


# ---------------------------------------------------------------------------------------------- a recorded clip
def code_anchor(work: Path, frames: np.ndarray, fps: float, config):
    """The camera video coded into ``work/anchor.mp4`` with the downlink's codec and setting, and decoded:
    ``(EncodeStats, decoded frames)``, or ``(None, None)`` when ``config.anchor`` is off."""
    from datasets.video import read_frames, write_video

    if not config.anchor:
        return None, None
    n, height, width = frames.shape[:3]
    anchor = write_video(work / "anchor.mp4", frames, fps=fps, codec=config.downlink_codec, **downlink_rate(config))
    return anchor, read_frames(work / "anchor.mp4")[:n, :height, :width]


def _frame_rows(up: Uplink, served: Served, quality: dict[str, np.ndarray]) -> list[dict]:
    slot = up.slot
    rows = served.rows
    out = []
    for i, d in enumerate(up.decisions):
        j = slot.get(i)
        out.append({
            "frame": i,
            "sent": d.accept,
            "gate_reasons": "; ".join(d.reasons),
            "motion_bits": int(up.stream.frame_bits[j]) if j is not None else 0,
            "rendered_motion_of": up.accepted[rows[i]] if rows[i] >= 0 else "reference",
            "psnr": float(quality["psnr"][i]),
            "ssim": float(quality["ssim"][i]),
            "l1_head": float(quality["l1_head"][i]),
            "seam": quality["seam"][i],
            **{f"gate_{k}": v for k, v in d.features.items()},
        })
    return out


def _summary(frames, fps, config, loaded, up: Uplink, quality, down, anchor, anchor_frames, timings) -> dict:
    from metrics.functional import psnr

    n, height, width = frames.shape[:3]
    box, stream = up.box, up.stream
    duration = n / fps
    motion_kbps = stream.total_bits / 1000 / duration
    return {
        "model": config.model,
        "weights": loaded.weights,
        "frames": n,
        "fps": fps,
        "camera_size": f"{width}x{height}",
        "crop_box": list(box),
        "frames_sent": len(up.accepted),
        "frames_dropped_by_gate": n - len(up.accepted),
        "motion_values_per_frame": int(sum(int(np.prod(v.shape[1:])) for v in up.motion.values())),
        "uplink_motion_kbps": motion_kbps,
        "uplink_reference_kbit": up.reference_bits / 1000,
        "uplink_header_bits": int(getattr(stream, "header_bits", 0)),
        "uplink_kbps_incl_reference": (stream.total_bits + up.reference_bits) / 1000 / duration,
        "downlink_codec": config.downlink_codec,
        "downlink_kbps": down.kbps,
        "anchor_kbps": anchor.kbps if anchor else None,
        "anchor_psnr": float(psnr(anchor_frames, frames)) if anchor else None,
        "uplink_saving_vs_anchor": (anchor.kbps / motion_kbps) if anchor and motion_kbps > 0 else None,
        "psnr": float(np.mean(quality["psnr"])),
        "ssim": float(np.mean(quality["ssim"])),
        "l1_head": float(np.mean(quality["l1_head"])),
        "seam": float(np.mean(quality["seam"])),
        "seam_camera": quality["seam_camera"],
        **{f"ms_per_frame_{k}": 1000 * v / n for k, v in timings.items()},
    }


def _provenance(config, loaded) -> dict:
    return {
        "model": {"name": config.model, "weights": loaded.weights, "note": loaded.note},
        "config": asdict(config),
        "rates": "kbps = bits / 1000 / (frames / fps); motion packets and the reference intra frame are the "
                 "uplink, the coded composed video the downlink; the anchor is the camera video coded with the "
                 "downlink's codec and setting (a conventional call's uplink)",
        "quality": "psnr/ssim: received full frame vs camera frame; l1_head: animated crop vs camera crop; seam: "
                   "mean step across the crop box border of the composed frame, 8-bit levels (seam_camera: the "
                   "camera frame's own step there)",
    }


def measure_clip(frames: np.ndarray, fps: float, config, loaded, up: Uplink, served: Served, received: np.ndarray,
                 down, anchor, anchor_frames, timings: dict[str, float]) -> tuple[list[dict], dict, dict]:
    """``(per_frame, summary, provenance)`` of a conference run (:class:`lab.conference.call.ConferenceResult`).

    Args:
        frames: the camera frames; fps: their rate; config: the run's ConferenceConfig; loaded: its
            LoadedAnimator; up, served: the sender's and server's output; received: the decoded downlink;
        down, anchor, anchor_frames: the coded downlink and anchor (:func:`code_anchor`); timings: seconds per
            stage.
    """
    from lab.codec.composition import seam_score
    from metrics.functional import l1, psnr, ssim

    height, width = frames.shape[1:3]
    box = up.box
    full_box = box == (0, 0, width, height)
    quality = {
        "psnr": psnr(received, frames, reduction="none"),
        "ssim": ssim(received, frames, reduction="none"),
        "l1_head": l1(served.heads, up.crops, reduction="none"),
        "seam": [float("nan") if full_box else seam_score(c, box) for c in served.composed],
        "seam_camera": float("nan") if full_box else float(np.mean([seam_score(f, box) for f in frames])),
    }
    per_frame = _frame_rows(up, served, quality)
    summary = _summary(frames, fps, config, loaded, up, quality, down, anchor, anchor_frames, timings)
    return per_frame, summary, _provenance(config, loaded)


# ---------------------------------------------------------------------------------------------- a live call
class LiveMeter:
    """Counts and times of a live call, by its clock: arrivals (and the camera ticks a client skipped), frames
    processed and sent, motion bits, stage seconds, over the whole call and the last ``window`` frames."""

    def __init__(self, window: int) -> None:
        self.processed = 0
        self.sent = 0
        self.late = 0  # camera ticks a client skipped (camera_interval)
        self.motion_bits = 0
        self.first_arrival: float | None = None
        self.last_arrival: float | None = None
        self.last_output: float | None = None
        self.stage_total = {s: 0.0 for s in STAGES}
        self.recent = deque(maxlen=window)  # (output time, bits, latency s, {stage: s})

    def arrived(self, t: float, interval: float | None) -> None:
        """A camera frame arrived at ``t``; with the camera's ``interval``, the ticks since the last are counted
        as skipped."""
        if self.first_arrival is None:
            self.first_arrival = t
        if interval is not None and self.last_arrival is not None:
            self.late += max(0, int(round((t - self.last_arrival) / interval)) - 1)
        self.last_arrival = t

    def record(self, t_out: float, t_arrival: float, sent: bool, bits: int, seconds: dict[str, float]) -> None:
        """A frame that arrived at ``t_arrival`` was output at ``t_out``: ``seconds`` per stage."""
        self.processed += 1
        self.sent += int(sent)
        self.motion_bits += bits
        self.last_output = t_out
        for s in STAGES:
            self.stage_total[s] += seconds[s]
        self.recent.append((t_out, bits, t_out - t_arrival, seconds))

    def last_stages(self) -> dict[str, float]:
        """Seconds per stage of the last frame output."""
        return self.recent[-1][3]

    def seconds(self) -> float:
        """From the first arrival to the last output (0 before)."""
        if self.last_output is None or self.first_arrival is None:
            return 0.0
        return self.last_output - self.first_arrival

    def counts(self, queue) -> dict:
        """Frame counts, rates and bits (``queue``: the session's :class:`~lab.conference.realtime.FrameQueue`)."""
        nan = float("nan")
        seconds = self.seconds()
        recent = list(self.recent)
        if len(recent) >= 2 and recent[-1][0] > recent[0][0]:
            span = recent[-1][0] - recent[0][0]
            fps_recent = (len(recent) - 1) / span
            kbps_recent = sum(r[1] for r in recent[1:]) / 1000 / span
        else:
            fps_recent = kbps_recent = nan
        return {
            "frames_offered": queue.offered + self.late,
            "frames_processed": self.processed,
            "frames_dropped": queue.dropped + self.late,
            "frames_waiting": len(queue),
            "frames_sent": self.sent,
            "frames_rejected_by_gate": self.processed - self.sent,
            "seconds": seconds,
            "fps": self.processed / seconds if seconds > 0 else nan,
            "fps_recent": fps_recent,
            "uplink_motion_kbps": self.motion_bits / 1000 / seconds if seconds > 0 else nan,
            "uplink_motion_kbps_recent": kbps_recent,
            "motion_bits": self.motion_bits,
        }

    def timings(self) -> dict:
        """``latency_ms_recent``, ``ms_<stage>`` (mean per processed frame), ``ms_<stage>_recent``,
        ``ms_total_recent`` and ``slowest_stage``."""
        nan = float("nan")
        recent = list(self.recent)
        stage_recent = {s: (1000 * float(np.mean([r[3][s] for r in recent])) if recent else nan) for s in STAGES}
        out = {"latency_ms_recent": 1000 * float(np.mean([r[2] for r in recent])) if recent else nan}
        for s in STAGES:
            out[f"ms_{s}"] = 1000 * self.stage_total[s] / self.processed if self.processed else nan
            out[f"ms_{s}_recent"] = stage_recent[s]
        out["ms_total_recent"] = float(sum(stage_recent.values())) if recent else nan
        out["slowest_stage"] = max(STAGES, key=lambda s: self.stage_total[s]) if self.processed else None
        return out
