"""A live call: the conference path (:mod:`lab.conference.call`, the paper's Figure 1) one camera frame at a time.

:func:`lab.conference.call.run_conference` codes a recorded clip as a batch. A live call gets one frame at a time
from a camera that does not wait: when a frame takes longer to process than the camera's frame interval,
the frames that arrive meanwhile cannot all be shown. :class:`LiveSession` keeps the display live by
**dropping** them, never by queueing them without bound:

* frames wait in a :class:`~lab.conference.realtime.FrameQueue` of at most ``queue_size`` frames (default 1: only
  the newest waits); a frame offered to a full queue pushes out the oldest, which is counted as dropped;
* a client that itself skips frames while the server is busy (the app's webcam stream sends a frame every
  ``camera_interval`` seconds unless a result is pending) delivers frames further apart than the interval:
  the camera ticks in between are counted as dropped too.

Per processed frame, the same pieces as the batch path, in order (each timed:
:data:`lab.conference.measure.STAGES`):

1. **sender** (:mod:`lab.conference.sender`): ``crop`` (:func:`datasets.crop.crop_frame` with the session's box,
   fixed at the first frame), ``encoder`` (:meth:`~lab.core.animator.Animator.extract_motion`), ``gate``
   (:class:`~lab.conference.sender.SenderGate`: landmark or keypoint features, or off; the landmark gate
   detects the face every ``gate_redetect_every`` frames and tracks it in between), ``bitstream``
   (:class:`~lab.conference.sender.PacketSender`: the frame's packet, closed-loop against the previous
   reconstruction, and the server's decoding of it, :class:`~lab.conference.server.PacketReceiver`);
2. **server** (:mod:`lab.conference.server`): ``decoder`` (:meth:`~lab.core.animator.Animator.render` with the
   reference's features computed once; a frame the gate rejected renders the last accepted motion, ``hold``) and
   ``composition`` (:func:`~lab.conference.server.compose_head` into the full-resolution reference frame).

The session is set up from a **reference** frame: the first camera frame, or an uploaded image (then the
camera's motion is applied relative to its first sent frame, FOMM's animation mode, since the uploaded face
is not the camera's). Set-up (face box, intra-coded reference, the decoder's source features) happens once
and is timed apart from the frames.

Rates are measured in wall-clock time (:class:`lab.conference.measure.LiveMeter`): ``uplink_motion_kbps`` = motion
packet bits / 1000 / seconds from the first frame's arrival to the last output (frames dropped or rejected send
nothing), plus the reference frame's bits, once. Frames/s achieved = frames output / the same seconds.

:func:`lab.conference.realtime.run_realtime` plays a recorded clip as such a camera (frames offered at the clip's
frame rate by the wall clock, frames dropped when late) and reports the achieved rate and where the time goes.

No UI here; no file I/O.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np
import torch

from lab.conference.measure import LiveMeter
from lab.conference.realtime import FrameQueue
from lab.conference.sender import check_settings
from lab.deploy.runtimes import RuntimeUnavailable, available_runtimes, supported_precisions, wrap_animator

__all__ = ["LiveConfig", "LiveOutput", "LiveSession", "runtime_choices", "precision_choices", "prepare_animator"]


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
    # landmark gate: the face detected every this many frames, followed by the landmark predictor alone in
    # between (lab.codec.quality_gate.LandmarkTracker; benchmarks/bench_gate_tracking.py); 1: every frame
    gate_redetect_every: int = 5
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
        from lab.codec.quality_gate import GATE_POLICIES

        check_settings(self.gate, self.composition, self.quant_factor)
        if self.gate_policy not in GATE_POLICIES:
            raise ValueError(f"gate_policy must be one of {', '.join(GATE_POLICIES)}, got '{self.gate_policy}'")
        if int(self.gate_redetect_every) != self.gate_redetect_every or self.gate_redetect_every < 1:
            raise ValueError(f"gate_redetect_every must be an integer >= 1, got {self.gate_redetect_every}")
        if self.detector not in CROP_DETECTORS:
            raise ValueError(f"detector must be one of {', '.join(CROP_DETECTORS)}, got '{self.detector}'")
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
        loaded: the :class:`lab.core.animate.LoadedAnimator` that animates (the caller resolves ``config.model``
            with :func:`lab.core.animate.load_animator`; the app reuses its own).
        animator: the animator already prepared for ``config.runtime`` (:func:`prepare_animator`), to reuse
            across sessions; else prepared from ``loaded``.
        clock: seconds, monotonic (default :func:`time.perf_counter`); frame times are on this clock.

    Raises:
        ValueError: bad settings, an unusable runtime, a keypoint gate for a model without keypoints.
    """

    def __init__(self, config: LiveConfig | None = None, loaded=None, animator=None,
                 clock: Callable[[], float] = time.perf_counter) -> None:
        self.config = config or LiveConfig()
        if loaded is None:
            raise TypeError("LiveSession takes a loaded animator: loaded=lab.core.animate.load_animator(name)")
        self.loaded = loaded
        self.loaded.require()
        self.model = animator if animator is not None else prepare_animator(
            self.loaded.model, self.config.runtime, self.config.precision, self.config.threads)
        self.size = int(self.loaded.model.input_size[0])
        self.clock = clock
        self.queue = FrameQueue(self.config.queue_size)
        self.started = False
        self.relative = False
        self.setup_s: dict[str, float] = {}
        self.meter = LiveMeter(self.config.window)

    # ------------------------------------------------------------------ set-up
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
        from datasets.crop import crop_frame
        from lab.codec.h26x import encode_reference
        from lab.conference.sender import PacketSender, SenderGate, crop_box
        from lab.conference.server import PacketReceiver, head_compositor
        from lab.core.animate import to_tensor

        cfg = self.config
        t0 = self.clock()
        what = "reference image" if camera_frame is not None else "first camera frame"
        reference = _check_frame(reference, what)
        camera = reference if camera_frame is None else _check_frame(camera_frame, "first camera frame")
        self.box = crop_box(reference, self.size, cfg.crop, cfg.detector, what)
        self.camera_box = (self.box if camera_frame is None
                           else crop_box(camera, self.size, cfg.crop, cfg.detector, "first camera frame"))
        self.camera_shape = camera.shape
        self.setup_s["face_box"] = self.clock() - t0

        t0 = self.clock()
        self.reference_bits, self.reference_full = encode_reference(reference, codec=cfg.reference_codec,
                                                                    crf=cfg.reference_crf)
        self.setup_s["reference_coding"] = self.clock() - t0

        t0 = self.clock()
        src = to_tensor(crop_frame(self.reference_full, self.box, self.size))
        self.ref_motion = self.model.extract_motion(src)  # both sides compute it from the decoded reference
        self.state = self.model.encode_source(src)
        self.setup_s["source_features"] = self.clock() - t0
        t0 = self.clock()
        self.model.render(self.state, self.ref_motion, self.ref_motion)  # warm-up: first calls are slower
        self.setup_s["warmup"] = self.clock() - t0

        if cfg.gate == "keypoints" and "value" not in self.ref_motion:
            raise ValueError(f"the keypoint gate needs a model with keypoints; {cfg.model} sends "
                             f"{', '.join(sorted(self.ref_motion)) or 'none'}: choose the landmark gate or off")
        self.gate = SenderGate(cfg.gate, self.ref_motion, crop_frame(camera, self.camera_box, self.size),
                               redetect_every=cfg.gate_redetect_every)
        self._uplink = PacketSender(cfg.quant_factor, self.ref_motion)
        self.header = self._uplink.header
        self.relative = camera_frame is not None
        self._downlink = PacketReceiver(self.header, self.ref_motion, relative=self.relative)
        self._compose = head_compositor(self.reference_full, self.box, cfg.composition, cfg.feather)
        self.started = True
        self.meter = LiveMeter(cfg.window)

    @property
    def _sender_prediction(self):
        """The sender's reconstruction of the last sent motion (what the next packet is coded against)."""
        return self._uplink.prediction

    @property
    def _server_prediction(self):
        """The server's reconstruction of the last received motion (equal to the sender's: closed loop)."""
        return self._downlink.prediction

    # ------------------------------------------------------------------ frames
    def offer(self, frame: np.ndarray, t: float | None = None, index: int | None = None) -> bool:
        """A camera frame arrived (at time ``t``, default now): queue it. True when a waiting frame was dropped."""
        t = self.clock() if t is None else float(t)
        self.meter.arrived(t, self.config.camera_interval)
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
        from lab.conference.server import render_heads
        from lab.core.animate import to_tensor

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
        decision = self.gate.decide(crop[None], motion)[0]
        t1 = clock()
        ms["gate"] = t1 - t0

        bits = 0
        if decision.accept:  # sender codes the packet; the server decodes it (closed loop on both sides)
            packets, bits = self._uplink.send(motion)
            self._downlink.receive(packets)
        elif cfg.gate_policy == "reference":
            self._downlink.release()
        t0 = clock()
        ms["bitstream"] = t0 - t1

        head = render_heads(self.model, self.state, self.ref_motion, self._downlink.driving(self.model))[0]
        t1 = clock()
        ms["decoder"] = t1 - t0

        out = self._compose(head)
        t_out = clock()
        ms["composition"] = t_out - t1

        self.meter.record(t_out, t_arrival, decision.accept, bits, ms)
        return LiveOutput(frame=out, head=head, index=index, sent=decision.accept, reasons=decision.reasons,
                          bits=bits, latency_ms=1000 * (t_out - t_arrival), stats=self.stats())

    # ------------------------------------------------------------------ measurements
    @property
    def dropped(self) -> int:
        """Camera frames not processed: pushed out of the queue, or skipped by the client (camera_interval)."""
        return self.queue.dropped + self.meter.late

    def stats(self) -> dict:
        """Counts, rates and per-stage times so far (``*_recent``: over the last ``config.window`` frames).

        Keys: ``frames_offered`` ``frames_processed`` ``frames_dropped`` ``frames_waiting`` ``frames_sent``
        ``frames_rejected_by_gate``, ``seconds``, ``fps`` ``fps_recent``, ``uplink_motion_kbps``
        ``uplink_motion_kbps_recent`` ``uplink_reference_kbit`` ``uplink_header_bits``, ``latency_ms_recent``,
        ``ms_<stage>`` (mean per processed frame) and ``ms_<stage>_recent``, ``ms_total_recent``,
        ``slowest_stage``, plus the model, weights, runtime, precision, crop box and camera size.
        """
        return {
            "model": self.config.model,
            "weights": self.loaded.weights,
            "runtime": self.config.runtime,
            "precision": self.config.precision,
            "gate": self.config.gate,
            "gate_redetect_every": self.config.gate_redetect_every if self.config.gate == "landmarks" else None,
            "gate_detections": (self.gate.tracker.detections
                                if self.started and self.gate.tracker is not None else None),
            "composition": self.config.composition,
            "relative_motion": self.relative,
            "camera_size": f"{self.camera_shape[1]}x{self.camera_shape[0]}" if self.started else None,
            "crop_box": list(self.camera_box) if self.started else None,
            **self.meter.counts(self.queue),
            "uplink_reference_kbit": self.reference_bits / 1000 if self.started else float("nan"),
            "uplink_header_bits": 8 * len(self.header) if self.started else 0,
            **self.meter.timings(),
            **{f"setup_s_{k}": v for k, v in self.setup_s.items()},
        }
