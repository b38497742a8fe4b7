"""A live call: the conference path (:mod:`lab.conference.call`, the paper's Figure 1) one camera frame at a time.

:func:`lab.conference.call.run_conference` codes a recorded clip as a batch. A live call gets one frame at a time
from a camera that does not wait: when a frame takes longer to process than the camera's frame interval,
the frames that arrive meanwhile cannot all be shown. :class:`LiveSession` keeps the display live by
**dropping** them, never by queueing them without bound:

* frames wait in a :class:`FrameQueue` of at most ``queue_size`` frames (default 1: only the newest waits);
  a frame offered to a full queue pushes out the oldest, which is counted as dropped;
* a client that itself skips frames while the server is busy (the app's webcam stream sends a frame every
  ``camera_interval`` seconds unless a result is pending) delivers frames further apart than the interval:
  the camera ticks in between are counted as dropped too.

Per processed frame, the same pieces as the batch path, in order (each timed: :data:`STAGES`):

1. **sender**: ``crop`` (:func:`datasets.crop.crop_frame` with the session's box, fixed at the first frame),
   ``encoder`` (:meth:`~lab.core.animator.Animator.extract_motion`), ``gate``
   (:class:`lab.codec.quality_gate.QualityGate`,
   landmark or keypoint features, or off), ``bitstream`` (:class:`lab.codec.motion.MotionCodec`: the frame's packet,
   closed-loop against the previous reconstruction, and the server's decoding of it);
2. **server**: ``decoder`` (:meth:`~lab.core.animator.Animator.render` with the reference's features computed
   once; a frame the gate rejected renders the last accepted motion, ``hold``) and ``composition``
   (:func:`lab.codec.composition.compose` into the full-resolution reference frame).

The session is set up from a **reference** frame: the first camera frame, or an uploaded image (then the
camera's motion is applied relative to its first sent frame, FOMM's animation mode, since the uploaded face
is not the camera's). Set-up (face box, intra-coded reference, the decoder's source features) happens once
and is timed apart from the frames.

Rates are measured in wall-clock time: ``uplink_motion_kbps`` = motion packet bits / 1000 / seconds from the
first frame's arrival to the last output (frames dropped or rejected send nothing), plus the reference
frame's bits, once. Frames/s achieved = frames output / the same seconds.

:func:`run_realtime` plays a recorded clip as such a camera (frames offered at the clip's frame rate by the
wall clock, frames dropped when late) and reports the achieved rate and where the time goes.

No UI here; no file I/O.
"""

from __future__ import annotations

import math
import threading
import time
from collections import deque
from collections.abc import Callable
from dataclasses import asdict, dataclass, field

import numpy as np
import torch

from lab.deploy.runtimes import RuntimeUnavailable, available_runtimes, supported_precisions, wrap_animator

__all__ = ["STAGES", "LiveConfig", "LiveOutput", "FrameQueue", "LiveSession", "RealtimeReport", "run_realtime",
           "runtime_choices", "precision_choices", "prepare_animator"]

STAGES = ("crop", "encoder", "gate", "bitstream", "decoder", "composition")
"""The timed stages of one frame, sender first (module docstring)."""


def runtime_choices() -> dict[str, str | None]:
    """Inference runtimes for the encoder and decoder: ``{name: None (usable) or why not}``
    (:func:`lab.deploy.runtimes.available_runtimes`)."""
    return dict(available_runtimes())


def prepare_animator(model, runtime: str = "torch", precision: str = "fp32", threads: int | None = None):
    """``model`` to run on ``runtime`` at ``precision`` (:func:`lab.deploy.runtimes.wrap_animator`).

    Raises:
        ValueError: an unknown runtime, or one not usable here (the message says why).
    """
    choices = runtime_choices()
    if runtime not in choices:
        raise ValueError(f"runtime must be one of {', '.join(choices)}, got '{runtime}'")
    if choices[runtime]:
        raise ValueError(f"runtime {runtime} is not usable here: {choices[runtime]}")
    try:
        return wrap_animator(model.eval(), runtime, precision=precision, threads=threads)
    except RuntimeUnavailable as e:  # its package is found but does not load
        raise ValueError(str(e)) from e


def precision_choices(runtime: str) -> dict[str, str | None]:
    """Precisions ``runtime`` offers: ``{name: None (usable) or why not}``
    (:func:`lab.deploy.runtimes.supported_precisions`)."""
    return dict(supported_precisions(runtime))


@dataclass
class LiveConfig:
    """Settings of one live session (recorded in its stats)."""

    model: str = "ultralight"  # registered animator name
    checkpoint: str | None = "default"  # weights: "default" (the model's own file), a path, or None
    runtime: str = "torch"  # inference runtime of encoder and decoder (runtime_choices())
    precision: str = "fp32"  # runtime precision (fp32; bf16/int8 where the runtime offers them)
    threads: int | None = None  # runtime threads (None: the runtime's default)
    crop: bool = True  # face-crop box from the reference frame; False: the frame is the crop
    detector: str = "hog"  # face detector for the box (datasets.crop.CROP_DETECTORS; hog fails fast)
    gate: str = "landmarks"  # quality gate features: "landmarks", "keypoints" (the encoder's), "off"
    gate_policy: str = "hold"  # what the server renders for a rejected frame (lab.codec.quality_gate.GATE_POLICIES)
    quant_factor: float = 64.0  # motion quantisation factor (lab.codec.motion)
    composition: str = "feather"  # lab.codec.composition method: feather, poisson, naive
    feather: float = 0.12  # blend band, in crop-box sides
    reference_codec: str = "libx264"  # intra coding of the reference frame (uplink, once)
    reference_crf: float = 18.0
    queue_size: int = 1  # frames that may wait; more arriving push out the oldest (dropped)
    camera_interval: float | None = None  # seconds between camera frames, to count frames a client skipped
    window: int = 30  # frames over which the "recent" rates are measured

    def __post_init__(self) -> None:
        from datasets.crop import CROP_DETECTORS
        from lab.codec.composition import COMPOSITION_METHODS
        from lab.codec.quality_gate import GATE_POLICIES
        from lab.conference.call import GATE_MODES

        if self.gate not in GATE_MODES:
            raise ValueError(f"gate must be one of {', '.join(GATE_MODES)}, got '{self.gate}'")
        if self.gate_policy not in GATE_POLICIES:
            raise ValueError(f"gate_policy must be one of {', '.join(GATE_POLICIES)}, got '{self.gate_policy}'")
        if self.composition not in COMPOSITION_METHODS:
            raise ValueError(f"composition must be one of {', '.join(COMPOSITION_METHODS)}, got '{self.composition}'")
        if self.detector not in CROP_DETECTORS:
            raise ValueError(f"detector must be one of {', '.join(CROP_DETECTORS)}, got '{self.detector}'")
        if self.quant_factor <= 0:
            raise ValueError(f"quant_factor must be > 0, got {self.quant_factor}")
        if int(self.queue_size) != self.queue_size or self.queue_size < 1:
            raise ValueError(f"queue_size must be an integer >= 1, got {self.queue_size}")
        if self.camera_interval is not None and not self.camera_interval > 0:
            raise ValueError(f"camera_interval must be > 0 seconds or None, got {self.camera_interval}")
        if self.window < 2:
            raise ValueError(f"window must be >= 2 frames, got {self.window}")
        runtimes = runtime_choices()
        if self.runtime not in runtimes:
            raise ValueError(f"runtime must be one of {', '.join(runtimes)}, got '{self.runtime}'")


@dataclass
class LiveOutput:
    """One processed camera frame.

    Attributes:
        frame: ``(H, W, 3)`` uint8, what the receiver sees: the animated head composed into the reference frame.
        head: ``(S, S, 3)`` uint8, the animated face crop.
        index: the camera frame's number (as offered).
        sent: whether the gate let the frame's motion through.
        reasons: why the gate rejected it (empty when sent).
        bits: bits of its motion packet (0 when not sent).
        latency_ms: from the frame's arrival to its output (time waiting in the queue included).
        stats: :meth:`LiveSession.stats` after this frame.
    """

    frame: np.ndarray
    head: np.ndarray
    index: int
    sent: bool
    reasons: tuple[str, ...]
    bits: int
    latency_ms: float
    stats: dict = field(default_factory=dict)


class FrameQueue:
    """Camera frames waiting to be processed, at most ``maxlen``: putting into a full queue pushes out the
    oldest frame, which is counted in :attr:`dropped`. Thread-safe (a camera thread may put).

    >>> q = FrameQueue(1)
    >>> q.put("a", 0.0), q.put("b", 0.04)
    (False, True)
    >>> q.get()[0], q.dropped, q.get()
    ('b', 1, None)
    """

    def __init__(self, maxlen: int = 1) -> None:
        if maxlen < 1:
            raise ValueError(f"maxlen must be >= 1, got {maxlen}")
        self.maxlen = int(maxlen)
        self._items: deque = deque()
        self._lock = threading.Lock()
        self.offered = 0
        self.dropped = 0
        self.dropped_indices: list[int] = []

    def __len__(self) -> int:
        return len(self._items)

    def put(self, frame, t: float, index: int | None = None) -> bool:
        """Queue ``frame`` (arrived at time ``t``); True when the queue was full and its oldest frame dropped."""
        with self._lock:
            index = self.offered if index is None else int(index)
            self.offered += 1
            full = len(self._items) >= self.maxlen
            if full:
                _, _, old = self._items.popleft()
                self.dropped += 1
                self.dropped_indices.append(old)
            self._items.append((frame, float(t), index))
            return full

    def get(self):
        """The oldest waiting ``(frame, t, index)``, or None when none waits."""
        with self._lock:
            return self._items.popleft() if self._items else None


def _check_frame(frame, what: str = "camera frame") -> np.ndarray:
    a = np.asarray(frame)
    if a.ndim == 3 and a.shape[-1] == 4:  # RGBA from a browser or a PNG: the alpha is not sent
        a = a[..., :3]
    if a.ndim != 3 or a.shape[-1] != 3 or a.dtype != np.uint8:
        raise ValueError(f"the {what} must be an (H, W, 3) uint8 RGB image, got {a.shape} {a.dtype}")
    if min(a.shape[:2]) < 32:
        raise ValueError(f"the {what} is {a.shape[1]}x{a.shape[0]} pixels: too small to hold a face")
    return np.ascontiguousarray(a)


class LiveSession:
    """One live call: reference set-up, then camera frames in, received frames out (module docstring).

    Args:
        config: :class:`LiveConfig` (defaults: ultralight, landmark gate, feather).
        loaded: a :class:`lab.core.animate.LoadedAnimator` to reuse (else loaded from ``config``).
        animator: the animator already prepared for ``config.runtime`` (:func:`prepare_animator`), to reuse
            across sessions; else prepared from ``loaded``.
        clock: seconds, monotonic (default :func:`time.perf_counter`); frame times are on this clock.

    Raises:
        ValueError: bad settings, an unusable runtime, a keypoint gate for a model without keypoints.
    """

    def __init__(self, config: LiveConfig | None = None, loaded=None, animator=None,
                 clock: Callable[[], float] = time.perf_counter) -> None:
        from lab.core.animate import load_animator

        self.config = config or LiveConfig()
        self.loaded = loaded or load_animator(self.config.model, self.config.checkpoint)
        self.loaded.require()
        self.model = animator if animator is not None else prepare_animator(
            self.loaded.model, self.config.runtime, self.config.precision, self.config.threads)
        self.size = int(self.loaded.model.input_size[0])
        self.clock = clock
        self.queue = FrameQueue(self.config.queue_size)
        self.started = False
        self.relative = False
        self.setup_s: dict[str, float] = {}
        self._reset_counters()

    # ------------------------------------------------------------------ set-up
    def _reset_counters(self) -> None:
        w = self.config.window
        self.processed = 0
        self.sent = 0
        self.late = 0  # camera ticks a client skipped (camera_interval)
        self.motion_bits = 0
        self.first_arrival: float | None = None
        self.last_arrival: float | None = None
        self.last_output: float | None = None
        self.stage_total = {s: 0.0 for s in STAGES}
        self._recent = deque(maxlen=w)  # (output time, bits, latency s, {stage: s})

    @torch.no_grad()
    def start(self, reference: np.ndarray, camera_frame: np.ndarray | None = None) -> None:
        """Set up the call: crop box, intra-coded reference, the decoder's source features, codec state.

        Args:
            reference: ``(H, W, 3)`` uint8 RGB, the frame the server animates: the first camera frame, or an
                uploaded image.
            camera_frame: when the reference is not a camera frame, the first camera frame (its face box crops
                the camera; the camera's motion is then applied relative to its first sent frame).

        Raises:
            ValueError: not an RGB image. DataError: no face found (``config.crop``).
        """
        from datasets.crop import crop_array, crop_frame
        from datasets.errors import DataError
        from lab.codec.h26x import encode_reference
        from lab.codec.motion import MotionCodec
        from lab.codec.pose import resolve_landmark_backend
        from lab.codec.quality_gate import QualityGate, face_box, face_sharpness
        from lab.core.animate import to_tensor

        cfg = self.config
        t0 = self.clock()
        reference = _check_frame(reference, "reference image" if camera_frame is not None else "first camera frame")
        camera = reference if camera_frame is None else _check_frame(camera_frame, "first camera frame")

        def box_of(frame: np.ndarray, what: str) -> tuple[int, int, int, int]:
            h, w = frame.shape[:2]
            if not cfg.crop:
                return (0, 0, w, h)
            try:
                return tuple(int(v) for v in crop_array(frame, size=self.size, detector=cfg.detector).box)
            except DataError as e:
                raise DataError(f"no face found in the {what} ({cfg.detector} detector): the face must be in view, "
                                "upright and lit") from e

        self.box = box_of(reference, "reference image" if camera_frame is not None else "first camera frame")
        self.camera_box = self.box if camera_frame is None else box_of(camera, "first camera frame")
        self.camera_shape = camera.shape
        self.setup_s["face_box"] = self.clock() - t0

        t0 = self.clock()
        self.reference_bits, self.reference_full = encode_reference(reference, codec=cfg.reference_codec,
                                                                    crf=cfg.reference_crf)
        self.setup_s["reference_coding"] = self.clock() - t0

        t0 = self.clock()
        ref_crop = crop_frame(self.reference_full, self.box, self.size)
        src = to_tensor(ref_crop)
        self.ref_motion = self.model.extract_motion(src)  # both sides compute it from the decoded reference
        self.state = self.model.encode_source(src)
        self.setup_s["source_features"] = self.clock() - t0
        t0 = self.clock()
        self.model.render(self.state, self.ref_motion, self.ref_motion)  # warm-up: first calls are slower
        self.setup_s["warmup"] = self.clock() - t0

        if cfg.gate == "keypoints" and "value" not in self.ref_motion:
            raise ValueError(f"the keypoint gate needs a model with keypoints; {cfg.model} sends "
                             f"{', '.join(sorted(self.ref_motion)) or 'none'}: choose the landmark gate or off")
        self.gate = QualityGate() if cfg.gate != "off" else None
        self.ref_sharpness = None
        if cfg.gate == "landmarks":  # blur is judged against the camera's first crop (as QualityGate.assess does)
            cam_crop = crop_frame(camera, self.camera_box, self.size)
            found = resolve_landmark_backend(self.gate.backend).landmarks(cam_crop[None])[0]
            box = None if found is None else face_box(found, cam_crop.shape[:2])
            self.ref_sharpness = face_sharpness(cam_crop, box)

        self.codec = MotionCodec(quant_factor=cfg.quant_factor)
        self.header = self.codec.encode(self.ref_motion, reference=self.ref_motion).header  # once per session
        self._sender_prediction = self.ref_motion
        self._server_prediction = self.ref_motion
        self._held = None  # the motion the server renders while nothing new arrives (None: the reference's)
        self.relative = camera_frame is not None
        self._first_driving = None  # relative mode: the first received camera motion
        self.started = True
        self._reset_counters()

    # ------------------------------------------------------------------ frames
    def offer(self, frame: np.ndarray, t: float | None = None, index: int | None = None) -> bool:
        """A camera frame arrived (at time ``t``, default now): queue it. True when a waiting frame was dropped."""
        t = self.clock() if t is None else float(t)
        if self.first_arrival is None:
            self.first_arrival = t
        interval = self.config.camera_interval
        if interval is not None and self.last_arrival is not None:
            self.late += max(0, int(round((t - self.last_arrival) / interval)) - 1)
        self.last_arrival = t
        return self.queue.put(frame, t, index)

    def step(self) -> LiveOutput | None:
        """Process the oldest waiting frame (None when none waits)."""
        item = self.queue.get()
        if item is None:
            return None
        frame, t, index = item
        return self._process(frame, t, index)

    def feed(self, frame: np.ndarray, t: float | None = None) -> LiveOutput:
        """Offer one frame and process it: the synchronous path of a client that waits for each result.

        The first frame of a session that is not started yet becomes its reference (:meth:`start`), then is
        processed like any other.
        """
        if not self.started:
            self.start(frame)
        self.offer(frame, t)
        out = self.step()
        assert out is not None  # noqa: S101 - offer just queued a frame
        return out

    @torch.no_grad()
    def _process(self, frame: np.ndarray, t_arrival: float, index: int) -> LiveOutput:
        from datasets.crop import crop_frame
        from lab.codec.composition import compose, resize_rgb
        from lab.codec.motion import MotionCodec
        from lab.core.animate import to_tensor, to_uint8

        if not self.started:
            raise RuntimeError("LiveSession.start(reference) first")
        cfg = self.config
        frame = _check_frame(frame)
        if frame.shape != self.camera_shape:
            raise ValueError(f"camera frame is {frame.shape[1]}x{frame.shape[0]}, the session started at "
                             f"{self.camera_shape[1]}x{self.camera_shape[0]}: start a new session")
        ms: dict[str, float] = {}
        clock = self.clock

        t0 = clock()
        crop = crop_frame(frame, self.camera_box, self.size)
        t1 = clock()
        ms["crop"] = t1 - t0
        motion = self.model.extract_motion(to_tensor(crop))
        t0 = clock()
        ms["encoder"] = t0 - t1
        decision = self._gate(crop, motion)
        t1 = clock()
        ms["gate"] = t1 - t0

        bits = 0
        if decision.accept:  # sender codes the packet; the server decodes it (closed loop on both sides)
            stream = self.codec.encode(motion, reference=self._sender_prediction)
            self._sender_prediction = self.codec.quantize(motion, reference=self._sender_prediction)
            bits = stream.frame_bits[0]
            received = MotionCodec.decode_packets(self.header, stream.packets, reference=self._server_prediction)
            self._server_prediction = received
            self._held = received
            if self.relative and self._first_driving is None:
                self._first_driving = received
        elif cfg.gate_policy == "reference":
            self._held = None
        t0 = clock()
        ms["bitstream"] = t0 - t1

        if self._held is None:
            driving = self.ref_motion  # nothing received yet (or the reference policy): the reference as it is
        elif self.relative:
            driving = self.model.transfer_motion(self.ref_motion, self._held, self._first_driving)
        else:
            driving = self._held
        head = to_uint8(self.model.render(self.state, self.ref_motion, driving).clamp(0, 1))[0]
        t1 = clock()
        ms["decoder"] = t1 - t0

        h, w = self.reference_full.shape[:2]
        if self.box == (0, 0, w, h):  # the frame is the crop: nothing around it to compose into
            out = resize_rgb(head, w, h)
        else:
            out = compose(self.reference_full, head, self.box, cfg.composition, cfg.feather)
        t_out = clock()
        ms["composition"] = t_out - t1

        self.processed += 1
        self.sent += int(decision.accept)
        self.motion_bits += bits
        self.last_output = t_out
        for s in STAGES:
            self.stage_total[s] += ms[s]
        self._recent.append((t_out, bits, t_out - t_arrival, ms))
        return LiveOutput(frame=out, head=head, index=index, sent=decision.accept, reasons=decision.reasons,
                          bits=bits, latency_ms=1000 * (t_out - t_arrival), stats=self.stats())

    def _gate(self, crop: np.ndarray, motion):
        from lab.codec.quality_gate import GateDecision, landmarks_with_rotation

        if self.gate is None:
            return GateDecision(accept=True)
        if self.config.gate == "keypoints":
            return self.gate.assess_motion(motion, self.ref_motion)[0]
        (lm, rot), = landmarks_with_rotation(crop[None], self.gate.backend, self.gate.rotation_search)
        return self.gate.decide(self.gate.features(crop, lm, rot, self.ref_sharpness))

    # ------------------------------------------------------------------ measurements
    @property
    def dropped(self) -> int:
        """Camera frames not processed: pushed out of the queue, or skipped by the client (camera_interval)."""
        return self.queue.dropped + self.late

    def stats(self) -> dict:
        """Counts, rates and per-stage times so far (``*_recent``: over the last ``config.window`` frames).

        Keys: ``frames_offered`` ``frames_processed`` ``frames_dropped`` ``frames_waiting`` ``frames_sent``
        ``frames_rejected_by_gate``, ``seconds``, ``fps`` ``fps_recent``, ``uplink_motion_kbps``
        ``uplink_motion_kbps_recent`` ``uplink_reference_kbit`` ``uplink_header_bits``, ``latency_ms_recent``,
        ``ms_<stage>`` (mean per processed frame) and ``ms_<stage>_recent``, ``ms_total_recent``,
        ``slowest_stage``, plus the model, weights, runtime, precision, crop box and camera size.
        """
        nan = float("nan")
        seconds = (self.last_output - self.first_arrival
                   if self.last_output is not None and self.first_arrival is not None else 0.0)
        recent = list(self._recent)
        if len(recent) >= 2 and recent[-1][0] > recent[0][0]:
            span = recent[-1][0] - recent[0][0]
            fps_recent = (len(recent) - 1) / span
            kbps_recent = sum(r[1] for r in recent[1:]) / 1000 / span
        else:
            fps_recent = kbps_recent = nan
        stage_recent = {s: (1000 * float(np.mean([r[3][s] for r in recent])) if recent else nan) for s in STAGES}
        out = {
            "model": self.config.model,
            "weights": self.loaded.weights,
            "runtime": self.config.runtime,
            "precision": self.config.precision,
            "gate": self.config.gate,
            "composition": self.config.composition,
            "relative_motion": self.relative,
            "camera_size": f"{self.camera_shape[1]}x{self.camera_shape[0]}" if self.started else None,
            "crop_box": list(self.camera_box) if self.started else None,
            "frames_offered": self.queue.offered + self.late,
            "frames_processed": self.processed,
            "frames_dropped": self.dropped,
            "frames_waiting": len(self.queue),
            "frames_sent": self.sent,
            "frames_rejected_by_gate": self.processed - self.sent,
            "seconds": seconds,
            "fps": self.processed / seconds if seconds > 0 else nan,
            "fps_recent": fps_recent,
            "uplink_motion_kbps": self.motion_bits / 1000 / seconds if seconds > 0 else nan,
            "uplink_motion_kbps_recent": kbps_recent,
            "motion_bits": self.motion_bits,
            "uplink_reference_kbit": self.reference_bits / 1000 if self.started else nan,
            "uplink_header_bits": 8 * len(self.header) if self.started else 0,
            "latency_ms_recent": 1000 * float(np.mean([r[2] for r in recent])) if recent else nan,
        }
        for s in STAGES:
            out[f"ms_{s}"] = 1000 * self.stage_total[s] / self.processed if self.processed else nan
            out[f"ms_{s}_recent"] = stage_recent[s]
        out["ms_total_recent"] = float(sum(stage_recent.values())) if recent else nan
        out["slowest_stage"] = max(STAGES, key=lambda s: self.stage_total[s]) if self.processed else None
        out.update({f"setup_s_{k}": v for k, v in self.setup_s.items()})
        return out


# ---------------------------------------------------------------------------------------------- realtime replay


@dataclass
class RealtimeReport:
    """What :func:`run_realtime` measured.

    Attributes:
        summary: :meth:`LiveSession.stats` at the end, plus the clip's ``camera_fps``, ``clip_frames`` and
            ``bottleneck`` (a sentence naming the stage that holds the rate back).
        per_frame: one dict per camera frame after the reference: ``frame``, ``processed``, and for processed
            frames ``sent``, ``gate_reasons``, ``motion_bits``, ``latency_ms``, ``ms_<stage>``.
        outputs: the received frames, in order (only with ``keep_outputs``).
        config: the session's settings.
    """

    summary: dict
    per_frame: list[dict]
    outputs: list[np.ndarray]
    config: LiveConfig


def _bottleneck(stats: dict, camera_fps: float) -> str:
    total = sum(stats[f"ms_{s}"] for s in STAGES)
    if not stats["frames_processed"] or not math.isfinite(total):
        return "no frame was processed"
    slow = stats["slowest_stage"]
    ms = stats[f"ms_{slow}"]
    budget = 1000 / camera_fps
    verdict = (f"keeps up with the camera ({camera_fps:g} frames/s: {budget:.0f} ms per frame)" if total <= budget
               else f"cannot keep up with the camera ({camera_fps:g} frames/s needs {budget:.0f} ms per frame)")
    return (f"{total:.0f} ms of processing per frame {verdict}; the slowest stage is {slow}: {ms:.0f} ms "
            f"({100 * ms / total:.0f} %); without it {1000 / max(total - ms, 1e-9):.1f} frames/s")


def run_realtime(
    frames: np.ndarray,
    fps: float,
    session: LiveSession,
    keep_outputs: bool = False,
    sleep: Callable[[float], None] = time.sleep,
    progress=None,
) -> RealtimeReport:
    """Play a recorded clip as a live camera through ``session``: frame 0 is the reference (set-up, untimed);
    frame ``i >= 1`` arrives at ``start + (i - 1) / fps`` by the session's clock and waits in its queue; a frame
    whose successor arrives before it is processed is dropped (queue size 1).

    Args:
        frames: ``(N, H, W, 3)`` uint8 RGB camera frames, ``N >= 2``.
        fps: the camera's frame rate.
        session: a :class:`LiveSession` (started here from ``frames[0]`` unless already started).
        keep_outputs: keep every received frame in :attr:`RealtimeReport.outputs`.
        sleep: waits for the next frame (tests pass a fake with a fake clock).
        progress: a :data:`lab.core.progress.ProgressFn` (camera frames arrived so far).

    Returns:
        :class:`RealtimeReport`.
    """
    from lab.core.progress import report

    frames = np.asarray(frames)
    if frames.ndim != 4 or len(frames) < 2:
        raise ValueError(f"a realtime run needs (N, H, W, 3) frames with N >= 2, got {frames.shape}")
    if not fps > 0:
        raise ValueError(f"fps must be > 0, got {fps}")
    if not session.started:
        session.start(frames[0])
    clock = session.clock
    n = len(frames)
    rows: dict[int, dict] = {}
    outputs: list[np.ndarray] = []
    start = clock()
    cpu0, wall0 = time.process_time(), time.perf_counter()
    nxt = 1
    def arrival(i: int) -> float:  # the same expression decides "has arrived" and how long to sleep
        return start + (i - 1) / fps

    while True:
        now = clock()
        while nxt < n and arrival(nxt) <= now:
            session.offer(frames[nxt], arrival(nxt), index=nxt)
            nxt += 1
        report(progress, f"realtime: {session.config.model} ({session.config.runtime})", nxt - 1, n - 1)
        out = session.step()
        if out is not None:
            recent = session._recent[-1][3]
            rows[out.index] = {"frame": out.index, "processed": True, "sent": out.sent,
                               "gate_reasons": "; ".join(out.reasons), "motion_bits": out.bits,
                               "latency_ms": out.latency_ms, **{f"ms_{s}": 1000 * recent[s] for s in STAGES}}
            if keep_outputs:
                outputs.append(out.frame)
            continue
        if nxt >= n:
            break
        sleep(max(0.0, arrival(nxt) - clock()))
    cpu, wall = time.process_time() - cpu0, time.perf_counter() - wall0
    per_frame = [rows.get(i, {"frame": i, "processed": False}) for i in range(1, n)]
    stats = session.stats()
    summary = {**stats, "camera_fps": float(fps), "clip_frames": n, "bottleneck": _bottleneck(stats, fps),
               # how much CPU this process got during the loop (its threads x wall when the machine was its own)
               "loop_cpu_seconds": cpu, "loop_wall_seconds": wall,
               "config": asdict(session.config)}
    return RealtimeReport(summary=summary, per_frame=per_frame, outputs=outputs, config=session.config)
