"""The server of a call, the second stage of :mod:`lab.conference.call` and :mod:`lab.conference.live`.

It decodes the motion packets, renders each frame with the model's **decoder**
(:meth:`~lab.core.animator.Animator.render`, absolute motion: same person, same session, FOMM's reconstruction
mode; a frame the gate dropped reuses the last accepted motion, "hold"), **composes** the animated head into the
full-resolution reference frame (:func:`compose_head`, :mod:`lab.codec.composition`) and codes the composed
frames for the receiver (the **downlink**, :func:`code_downlink`). A whole clip at once (:func:`serve_clip`, the
batch path) or one packet per frame (:class:`PacketReceiver`, the live path).

Files are written only by :func:`code_downlink` (into the folder it is given).
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from lab.conference.sender import Uplink, batches

__all__ = ["render_heads", "compose_head", "head_compositor", "Served", "serve_clip", "downlink_rate", "code_downlink",
           "PacketReceiver"]


def render_heads(model, state, ref_motion, driving) -> np.ndarray:
    """The decoder: ``(B, S, S, 3)`` uint8 heads of the source ``state`` driven by ``driving`` (batch B)."""
    from lab.core.animate import to_uint8

    return to_uint8(model.render(state, ref_motion, driving).clamp(0, 1))


def compose_head(reference_full: np.ndarray, head: np.ndarray, box: tuple[int, int, int, int], method: str,
                 feather: float) -> np.ndarray:
    """One head composed into the full-resolution reference frame at ``box`` (``(H, W, 3)`` uint8); when the box
    is the whole frame there is nothing around it to compose into: the head is resized to the frame."""
    from lab.codec.composition import compose, resize_rgb

    if _whole_frame(reference_full, box):
        h, w = reference_full.shape[:2]
        return resize_rgb(head, w, h)
    return compose(reference_full, head, box, method, feather)


def _whole_frame(reference_full: np.ndarray, box) -> bool:
    """Whether ``box`` is the whole frame (then a head is resized to it, with nothing around it to compose into)."""
    h, w = reference_full.shape[:2]
    return tuple(box) == (0, 0, w, h)


def head_compositor(reference_full: np.ndarray, box: tuple[int, int, int, int], method: str, feather: float):
    """:func:`compose_head` with the reference frame and box fixed (a live call): a function ``head -> frame``
    whose frames equal :func:`compose_head`'s, the per-session share computed once
    (:class:`lab.codec.composition.Compositor`)."""
    from lab.codec.composition import Compositor, resize_rgb

    if _whole_frame(reference_full, box):
        h, w = reference_full.shape[:2]
        return lambda head: resize_rgb(head, w, h)
    return Compositor(reference_full, box, method, feather)


@dataclass
class Served:
    """What the server made of a clip (:func:`serve_clip`).

    Attributes:
        heads: ``(N, S, S, 3)`` uint8, the animated face crops.
        composed: ``(N, H, W, 3)`` uint8, the full-resolution frames before downlink coding.
        rows: per frame, the received packet whose motion was rendered (-1: the reference's).
    """

    heads: np.ndarray
    composed: np.ndarray
    rows: list[int]


def serve_clip(model, uplink: Uplink, config, progress=None, timings: dict[str, float] | None = None) -> Served:
    """The server over a whole clip: motion decoding and the decoder (``decoder``), then ``composition``
    (seconds into ``timings``). ``config``: a :class:`lab.conference.call.ConferenceConfig`."""
    from lab.core.animate import to_tensor
    from lab.core.animator import index_batch
    from lab.core.progress import report

    t = timings if timings is not None else {}
    n = len(uplink.crops)
    ref_motion = uplink.ref_motion
    t0 = time.perf_counter()
    received_motion = uplink.codec.decode(uplink.stream, reference=ref_motion)
    slot = uplink.slot
    rows = [slot[u] if u is not None and u >= 0 else -1 for u in uplink.use]
    table = {k: torch.cat([ref_motion[k], received_motion[k]]) for k in ref_motion}  # row 0 = reference
    driving = {k: v[torch.tensor(rows) + 1] for k, v in table.items()}
    state = model.encode_source(to_tensor(uplink.reference_crop))
    heads = []
    with torch.no_grad():
        for s in batches(n, config.batch_size):
            report(progress, f"server: {config.model} decoder", s.start, n)
            heads.append(render_heads(model, state, ref_motion, index_batch(driving, s)))
    report(progress, f"server: {config.model} decoder", n, n)
    heads = np.concatenate(heads)
    t["decoder"] = time.perf_counter() - t0

    t0 = time.perf_counter()
    report(progress, f"server: composition ({config.composition})", 0, n)
    composed = np.stack([compose_head(uplink.reference_full, h, uplink.box, config.composition, config.feather)
                         for h in heads])
    t["composition"] = time.perf_counter() - t0
    return Served(heads=heads, composed=composed, rows=rows)


def downlink_rate(config) -> dict:
    """The downlink coder's rate setting: ``{"crf": ...}`` or ``{"bit_rate": ...}`` (bit/s)."""
    return {"crf": config.downlink_crf} if config.downlink_bit_rate is None else {"bit_rate": config.downlink_bit_rate}


def code_downlink(work: Path, composed: np.ndarray, fps: float, config, progress=None,
                  timings: dict[str, float] | None = None):
    """Code the composed frames into ``work/downlink.mp4`` (``downlink_coding`` seconds into ``timings``) and
    decode them as the receiver does: ``(EncodeStats, received (N, H, W, 3) uint8)``."""
    from datasets.video import read_frames, write_video
    from lab.core.progress import report

    t = timings if timings is not None else {}
    n, height, width = composed.shape[:3]
    t0 = time.perf_counter()
    report(progress, f"downlink: {config.downlink_codec}", 0, n)
    down = write_video(work / "downlink.mp4", composed, fps=fps, codec=config.downlink_codec, **downlink_rate(config))
    t["downlink_coding"] = time.perf_counter() - t0
    return down, read_frames(work / "downlink.mp4")[:n, :height, :width]


class PacketReceiver:
    """The server's end of a live call's motion link (:class:`lab.conference.sender.PacketSender`): decodes each
    packet against its previous reconstruction and holds the motion it renders while nothing new arrives.

    Args:
        header: the session's motion header.
        ref_motion: the decoded reference's motion features, the first prediction.
        relative: apply the camera's motion relative to its first received frame (FOMM's animation mode, for a
            reference that is not the camera's face).
    """

    def __init__(self, header: bytes, ref_motion, relative: bool = False) -> None:
        self.header = header
        self.ref_motion = ref_motion
        self.prediction = ref_motion
        self.relative = relative
        self.held = None  # the motion rendered while nothing new arrives (None: the reference's)
        self.first = None  # relative mode: the first received camera motion

    def receive(self, packets: list[bytes]) -> None:
        """Decode one frame's packets; their motion is held from now on."""
        from lab.codec.motion import MotionCodec

        received = MotionCodec.decode_packets(self.header, packets, reference=self.prediction)
        self.prediction = received
        self.held = received
        if self.relative and self.first is None:
            self.first = received

    def release(self) -> None:
        """Render the reference's own motion until the next packet (the gate's ``reference`` policy)."""
        self.held = None

    def driving(self, model):
        """The motion to render now (``model`` transfers it in relative mode)."""
        if self.held is None:
            return self.ref_motion  # nothing received yet (or the reference policy): the reference as it is
        if self.relative:
            return model.transfer_motion(self.ref_motion, self.held, self.first)
        return self.held
