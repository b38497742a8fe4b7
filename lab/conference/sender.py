"""The sender (the phone) of a call, the first stage of :mod:`lab.conference.call` and :mod:`lab.conference.live`.

Per camera frame at full resolution: the session's face-crop box (:func:`crop_box`), the ``size``×``size`` crop,
the model's **motion encoder** (:func:`extract_motion`), the **quality gate** (:class:`SenderGate`: frames with
extreme pose/expression are not sent) and the **motion bitstream** (:mod:`lab.codec.motion`): a whole clip at
once (:func:`send_clip`, the batch path) or one packet per frame (:class:`PacketSender`, the live path). Once per
session the full-resolution reference frame is intra-coded (:func:`lab.codec.h26x.encode_reference`).

No UI, no file I/O.
"""

from __future__ import annotations

import time
from dataclasses import dataclass

import numpy as np
import torch

__all__ = ["GATE_MODES", "check_settings", "crop_box", "batches", "extract_motion", "SenderGate", "Uplink",
           "send_clip", "PacketSender"]

GATE_MODES = ("landmarks", "keypoints", "off")


def check_settings(gate: str, composition: str, quant_factor: float) -> None:
    """The checks both paths' settings share: gate mode, composition method, quantisation factor.

    Raises:
        ValueError: naming the setting and its choices.
    """
    from lab.codec.composition import COMPOSITION_METHODS

    if gate not in GATE_MODES:
        raise ValueError(f"gate must be one of {', '.join(GATE_MODES)}, got '{gate}'")
    if composition not in COMPOSITION_METHODS:
        raise ValueError(f"composition must be one of {', '.join(COMPOSITION_METHODS)}, got '{composition}'")
    if quant_factor <= 0:
        raise ValueError(f"quant_factor must be > 0, got {quant_factor}")


def crop_box(frames: np.ndarray, size: int, crop: bool, detector: str, what: str | None = None
             ) -> tuple[int, int, int, int]:
    """The session's face-crop box ``(x0, y0, x1, y1)`` in camera pixels (:func:`datasets.crop.crop_array`),
    or the whole frame when not ``crop``.

    Args:
        frames: ``(N, H, W, 3)`` or one ``(H, W, 3)`` uint8 RGB.
        what: names the frame in the error when no face is found (None: the detector's own error).

    Raises:
        DataError: no face found.
    """
    from datasets.crop import crop_array
    from datasets.errors import DataError

    h, w = np.shape(frames)[-3:-1]
    if not crop:
        return (0, 0, w, h)
    try:
        return tuple(int(v) for v in crop_array(frames, size=size, detector=detector).box)
    except DataError as e:
        if what is None:
            raise
        raise DataError(f"no face found in the {what} ({detector} detector): the face must be in view, "
                        "upright and lit") from e


def batches(n: int, size: int):
    """Slices of ``range(n)`` of at most ``size``."""
    for i in range(0, n, size):
        yield slice(i, min(n, i + size))


@torch.no_grad()
def extract_motion(model, crops: np.ndarray, batch_size: int, progress=None, what: str = "") -> dict[str, torch.Tensor]:
    """The motion encoder over ``(N, S, S, 3)`` crops in batches; reports ``what`` (when given) to ``progress``."""
    from lab.core.animate import to_tensor
    from lab.core.animator import cat_batches
    from lab.core.progress import report

    def motion():
        for s in batches(len(crops), batch_size):
            if what:
                report(progress, what, s.start, len(crops))
            yield model.extract_motion(to_tensor(crops[s]))
        if what:
            report(progress, what, len(crops), len(crops))

    return cat_batches(motion())


class SenderGate:
    """The sender's quality gate in one of :data:`GATE_MODES` (:mod:`lab.codec.quality_gate`).

    Args:
        mode: ``"landmarks"`` (68-point features), ``"keypoints"`` (the encoder's), ``"off"`` (all sent).
        ref_motion: the reference's motion features (keypoint mode).
        first_crop: the camera's first crop; blur is judged against its face (landmark mode, as
            :meth:`~lab.codec.quality_gate.QualityGate.assess` does with its reference).
        redetect_every: landmark mode, crops of one camera given in order (a live call): the face is detected
            every ``redetect_every`` crops and followed by the landmark predictor alone in between
            (:class:`~lab.codec.quality_gate.LandmarkTracker`); None: detected in every crop (the batch path).
    """

    def __init__(self, mode: str, ref_motion, first_crop: np.ndarray, redetect_every: int | None = None) -> None:
        from lab.codec.pose import resolve_landmark_backend
        from lab.codec.quality_gate import LandmarkTracker, QualityGate, face_box, face_sharpness

        self.mode = mode
        self.ref_motion = ref_motion
        self.gate = QualityGate() if mode != "off" else None
        self.ref_sharpness = None
        self.tracker = None
        if mode == "landmarks" and redetect_every is not None:
            self.tracker = LandmarkTracker(self.gate.backend, redetect_every, self.gate.rotation_search)
        if mode == "landmarks":
            found = resolve_landmark_backend(self.gate.backend).landmarks(first_crop[None])[0]
            box = None if found is None else face_box(found, first_crop.shape[:2])
            self.ref_sharpness = face_sharpness(first_crop, box)

    def decide(self, crops: np.ndarray, motion) -> list:
        """One :class:`~lab.codec.quality_gate.GateDecision` per crop of ``(N, S, S, 3)`` (``motion``: theirs)."""
        from lab.codec.quality_gate import GateDecision, landmarks_with_rotation

        if self.gate is None:
            return [GateDecision(accept=True) for _ in range(len(crops))]
        if self.mode == "keypoints":
            return self.gate.assess_motion(motion, self.ref_motion)
        if self.tracker is not None:
            found = [self.tracker(c) for c in crops]
        else:
            found = landmarks_with_rotation(crops, self.gate.backend, self.gate.rotation_search)
        return [self.gate.decide(self.gate.features(c, lm, rot, self.ref_sharpness))
                for c, (lm, rot) in zip(crops, found)]


@dataclass
class Uplink:
    """What the sender of a recorded clip sends and knows (:func:`send_clip`).

    Attributes:
        box: the crop box; crops: ``(N, S, S, 3)`` the camera's face crops (the encoder's input).
        reference_bits: bits of the intra-coded reference; reference_full: its decoding ``(H, W, 3)``;
            reference_crop: the decoded reference's crop.
        motion: every frame's motion features; ref_motion: the decoded reference's (both sides compute it).
        decisions: the gate's, per frame; use: per frame, the frame whose motion the server renders
            (:func:`lab.codec.quality_gate.gate_sequence`); accepted: the frames sent.
        codec: the motion codec; stream: the motion packets of the accepted frames.
    """

    box: tuple[int, int, int, int]
    crops: np.ndarray
    reference_bits: int
    reference_full: np.ndarray
    reference_crop: np.ndarray
    motion: dict
    ref_motion: dict
    decisions: list
    use: list
    accepted: list[int]
    codec: object
    stream: object

    @property
    def slot(self) -> dict[int, int]:
        """``{frame: its packet's position}`` for the accepted frames."""
        return {frame: j for j, frame in enumerate(self.accepted)}


def send_clip(model, frames: np.ndarray, config, progress=None, timings: dict[str, float] | None = None) -> Uplink:
    """The sender over a whole clip: box, crops, reference coding, encoder, gate, motion bitstream.

    Args:
        model: the animator; frames: ``(N, H, W, 3)`` uint8 camera frames (frame 0 is the reference).
        config: a :class:`lab.conference.call.ConferenceConfig`.
        progress: a :data:`lab.core.progress.ProgressFn`.
        timings: filled with seconds per stage (``crop``, ``reference_coding``, ``encoder``, ``gate``,
            ``motion_coding``).
    """
    from datasets.crop import crop_frame
    from lab.codec.h26x import encode_reference
    from lab.codec.motion import MotionCodec
    from lab.codec.quality_gate import gate_sequence
    from lab.core.progress import report

    t = timings if timings is not None else {}
    n = len(frames)
    size = int(model.input_size[0])
    t0 = time.perf_counter()
    report(progress, "sender: face crop box", 0, n)
    box = crop_box(frames, size, config.crop, config.detector)
    crops = np.stack([crop_frame(f, box, size) for f in frames])
    t["crop"] = time.perf_counter() - t0

    t0 = time.perf_counter()
    ref_bits, ref_full = encode_reference(frames[0], codec=config.reference_codec, crf=config.reference_crf)
    t["reference_coding"] = time.perf_counter() - t0
    ref_crop = crop_frame(ref_full, box, size)

    t0 = time.perf_counter()
    motion = extract_motion(model, crops, config.batch_size, progress, f"sender: {config.model} encoder")
    t["encoder"] = time.perf_counter() - t0
    ref_motion = extract_motion(model, ref_crop[None], 1)  # both sides compute it from the decoded reference

    t0 = time.perf_counter()
    report(progress, f"sender: quality gate ({config.gate})", 0, n)
    decisions = SenderGate(config.gate, ref_motion, crops[0]).decide(crops, motion)
    report(progress, f"sender: quality gate ({config.gate})", n, n)
    use = gate_sequence(decisions, policy=config.gate_policy)
    t["gate"] = time.perf_counter() - t0
    accepted = [i for i, d in enumerate(decisions) if d.accept]

    t0 = time.perf_counter()
    codec = MotionCodec(quant_factor=config.quant_factor)
    stream = codec.encode({k: v[accepted] for k, v in motion.items()}, reference=ref_motion)
    t["motion_coding"] = time.perf_counter() - t0
    return Uplink(box=box, crops=crops, reference_bits=ref_bits, reference_full=ref_full, reference_crop=ref_crop,
                  motion=motion, ref_motion=ref_motion, decisions=decisions, use=use, accepted=accepted,
                  codec=codec, stream=stream)


class PacketSender:
    """The sender's end of a live call's motion link: one packet per sent frame, closed loop (each coded against
    the previous reconstruction, which the server holds too: :class:`lab.conference.server.PacketReceiver`).

    Args:
        quant_factor: motion quantisation factor (:class:`lab.codec.motion.MotionCodec`).
        ref_motion: the decoded reference's motion features, the first prediction.
    """

    def __init__(self, quant_factor: float, ref_motion) -> None:
        from lab.codec.motion import MotionCodec

        self.codec = MotionCodec(quant_factor=quant_factor)
        self.header = self.codec.encode(ref_motion, reference=ref_motion).header  # once per session
        self.prediction = ref_motion

    def send(self, motion) -> tuple[list[bytes], int]:
        """``(packets, bits)`` of one frame's ``motion`` (batch 1)."""
        stream = self.codec.encode(motion, reference=self.prediction)
        self.prediction = self.codec.quantize(motion, reference=self.prediction)
        return stream.packets, stream.frame_bits[0]
