"""Camera frames in real time: the bounded :class:`FrameQueue` a live call waits in, and :func:`run_realtime`,
which plays a recorded clip through a :class:`lab.conference.live.LiveSession` as a camera that does not wait
(frames offered at the clip's frame rate by the wall clock, frames dropped when late) and reports the achieved
rate and where the time goes.

No UI here; no file I/O.
"""

from __future__ import annotations

import math
import threading
import time
from collections import deque
from collections.abc import Callable
from dataclasses import asdict, dataclass
from typing import TYPE_CHECKING

import numpy as np

from lab.conference.measure import STAGES

if TYPE_CHECKING:
    from lab.conference.live import LiveConfig, LiveSession

__all__ = ["FrameQueue", "RealtimeReport", "run_realtime"]


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
            recent = session.meter.last_stages()
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
