"""The app's Live tab: the browser's webcam through a live call (:class:`lab.conference.live.LiveSession`),
frame by frame.

Gradio wiring and its one handler; the call itself is :mod:`lab.conference.live` (no Gradio there). Gradio's webcam
stream sends a frame every :data:`STREAM_EVERY` seconds while no result is pending, so frames never pile up
on the way; the session counts the camera ticks that passed while it was busy as dropped frames
(``LiveConfig.camera_interval``). One call per browser session (keyed by Gradio's session hash), at most
:data:`MAX_CALLS` kept; bad input (no face, not an image, a model that cannot run) is a status line, the
stream and the app go on.
"""

from __future__ import annotations

import threading
import time
from collections import OrderedDict
from dataclasses import dataclass
from pathlib import Path

import gradio as gr
import numpy as np

from lab.codec.composition import COMPOSITION_METHODS
from lab.conference.live import LiveConfig, LiveSession, precision_choices, prepare_animator, runtime_choices
from lab.conference.measure import STAGES
from lab.conference.sender import GATE_MODES
from lab.ui import common
from lab.ui.conference import default_conference_model

__all__ = ["STREAM_EVERY", "live_frame", "frame_html", "new_reference", "stats_markdown", "stage_rows", "live_tab"]

STREAM_EVERY = 0.1  # seconds between the webcam frames the page sends: a 10 frames/s camera
TIME_LIMIT = 600  # seconds of processing per stream start (then the page stops streaming)
MAX_CALLS = 4  # calls kept (one per browser session); the oldest is closed beyond
RETRY_S = 1.0  # after a failed start (no face), try again with a frame this much later
STAGE_HEADERS = ["stage", "ms per frame (recent)", "share"]


@dataclass
class _Call:
    settings: tuple
    session: LiveSession | None = None
    error: str | None = None
    failed_at: float = 0.0


_CALLS: OrderedDict[str, _Call] = OrderedDict()
_PREPARED: dict[tuple[str, str, str], object] = {}
_LOCK = threading.Lock()


def intro() -> str:
    return Path(__file__).with_name("live.md").read_text()


def usable_runtimes() -> tuple[list[str], str]:
    """The runtimes that can run here and a line naming the others with why not."""
    choices = runtime_choices()
    usable = [n for n, why in choices.items() if why is None]
    others = "; ".join(f"{n}: {why}" for n, why in choices.items() if why)
    return usable, (f"not usable here: {others}" if others else "")


def _fmt(v: float, spec: str) -> str:
    return "–" if v is None or not np.isfinite(v) else format(v, spec)


def stats_markdown(s: dict) -> str:
    """The headline numbers of :meth:`lab.conference.live.LiveSession.stats` as one markdown paragraph."""
    kbps, recent = _fmt(s["uplink_motion_kbps"], ".2f"), _fmt(s["uplink_motion_kbps_recent"], ".2f")
    return (f"**{_fmt(s['fps'], '.1f')} frames/s** achieved (recent {_fmt(s['fps_recent'], '.1f')}) · uplink "
            f"**{kbps} kbps** motion (recent {recent}; + {_fmt(s['uplink_reference_kbit'], '.0f')} kbit reference "
            f"once) · **{s['frames_dropped']} dropped** of {s['frames_offered']} camera frames · "
            f"{s['frames_rejected_by_gate']} rejected by the gate · latency {_fmt(s['latency_ms_recent'], '.0f')} ms "
            f"· slowest stage: {s['slowest_stage'] or '–'}")


def stage_rows(s: dict) -> list[list]:
    """``[stage, ms per frame over the recent window, share of the frame's time]`` per stage, sender first."""
    total = s["ms_total_recent"]
    rows = []
    for st in STAGES:
        ms = s[f"ms_{st}_recent"]
        share = f"{100 * ms / total:.0f} %" if np.isfinite(ms) and np.isfinite(total) and total > 0 else "–"
        rows.append([st, round(ms, 1) if np.isfinite(ms) else None, share])
    rows.append(["total", round(total, 1) if np.isfinite(total) else None, ""])
    return rows


def frame_html(frame: np.ndarray, index: int, quality: int = 85) -> str:
    """A received frame as an ``<img>`` with a JPEG data URL: no file per frame (an image output would leave one
    in Gradio's cache for every frame of the call)."""
    import base64
    import io

    from PIL import Image

    buf = io.BytesIO()
    Image.fromarray(frame).save(buf, format="JPEG", quality=quality)
    data = base64.b64encode(buf.getvalue()).decode("ascii")
    return (f'<img src="data:image/jpeg;base64,{data}" alt="received frame {index}" data-frame="{index}" '
            'style="max-width:100%;max-height:360px;display:block;margin:auto">')


def _prepared(model: str, runtime: str, precision: str):
    """The model on ``runtime`` at ``precision``, prepared once per app process (an export takes seconds)."""
    key = (model, runtime, precision)
    if key not in _PREPARED:
        _PREPARED[key] = prepare_animator(common.loaded_model(model).model, runtime, precision)
    return _PREPARED[key]


def _read_reference(path: str) -> np.ndarray:
    from datasets.errors import DataError
    from datasets.uploads import validate_upload

    try:
        return validate_upload(path, max_frames=1).read()[0]
    except DataError as e:
        raise common.UserInputError(common.user_message(e, [path])) from e


def _start(frame: np.ndarray, reference_path: str | None, settings: tuple) -> LiveSession:
    model, runtime, precision, gate, composition = settings[:5]
    config = LiveConfig(model=model, runtime=runtime, precision=precision, gate=gate, composition=composition,
                        camera_interval=STREAM_EVERY)
    session = LiveSession(config, loaded=common.loaded_model(model), animator=_prepared(model, runtime, precision))
    if reference_path:
        session.start(_read_reference(reference_path), camera_frame=frame)
    else:
        session.start(frame)
    return session


def _status(session: LiveSession, reference_path: str | None) -> str:
    s = session.stats()
    ref = f"the uploaded {Path(reference_path).name} (camera motion applied relative to its first frame)" \
        if reference_path else "the first webcam frame"
    text = (f"Call running: {s['model']} ({s['weights']}), runtime {s['runtime']} {s['precision']}, {s['gate']} "
            f"gate, {s['composition']} composition; camera {s['camera_size']}, crop box {s['crop_box']}; "
            f"reference: {ref}.")
    if session.loaded.weights.startswith("random"):
        text += f"\n\n**{s['model']} is randomly initialised** (its output is not meaningful): {session.loaded.note}"
    return text


def live_frame(frame: np.ndarray | None, reference_path: str | None, model: str, runtime: str, precision: str,
               gate: str, composition: str, key: str = "default"):
    """One webcam frame through the call of browser session ``key`` (started on its first frame, and again when
    a setting, the reference upload or the camera's frame size changes).

    Returns:
        (the received frame as ``<img>`` html or None, stats markdown, stage rows, status markdown)
    """
    from datasets.errors import DataError
    from lab.core.checkpoint import CheckpointError

    empty = stage_rows({f"ms_{s}_recent": float("nan") for s in STAGES} | {"ms_total_recent": float("nan")})
    if frame is None:
        return None, "", empty, "Start the webcam: its first frame becomes the reference."
    if not model:
        return None, "", empty, "**Cannot start the call:** choose a model."
    frame = np.asarray(frame)
    settings = (model, runtime, precision or "fp32", gate, composition, reference_path or "", frame.shape)
    with _LOCK:
        call = _CALLS.get(key)
        if call is None or call.settings != settings:
            call = _CALLS[key] = _Call(settings)
        _CALLS.move_to_end(key)
        while len(_CALLS) > MAX_CALLS:
            _CALLS.popitem(last=False)
    if call.session is None:
        if call.error and time.monotonic() - call.failed_at < RETRY_S:
            return None, "", empty, call.error
        try:
            call.session = _start(frame, reference_path, settings)
            call.error = None
        except (DataError, CheckpointError, ValueError) as e:
            call.error = f"**Cannot start the call:** {common.user_message(e, [reference_path])}"
            call.failed_at = time.monotonic()
            if not reference_path:
                call.error += " Trying again with the next webcam frame."
            return None, "", empty, call.error
    try:
        out = call.session.feed(frame)
    except ValueError as e:  # a frame the session cannot take: say so, keep the last output; the next may do
        return gr.skip(), gr.skip(), gr.skip(), f"**Frame skipped:** {common.user_message(e)}"
    return (frame_html(out.frame, out.index), stats_markdown(out.stats), stage_rows(out.stats),
            _status(call.session, reference_path))


def new_reference(key: str = "default") -> str:
    """Forget the call of browser session ``key``: the next webcam frame starts a new one (a new reference)."""
    with _LOCK:
        _CALLS.pop(key, None)
    return "The next webcam frame becomes the new reference."


def _key(request: gr.Request | None) -> str:
    return getattr(request, "session_hash", None) or "default"


def live_tab(names: list[str]) -> None:
    """Build the Live tab inside the current ``gr.Tab``."""
    gr.Markdown(intro())
    runtimes, unusable = usable_runtimes()
    with gr.Row():
        camera = gr.Image(sources=["webcam"], streaming=True, type="numpy", label="Webcam (what you send)",
                          elem_id="live-camera", height=360)
        with gr.Column():
            gr.Markdown("Received (the animated reference, as the server composes it)")
            received = gr.HTML(elem_id="live-output")
    with gr.Row():
        model = gr.Dropdown(names, value=default_conference_model(names), label="Model", elem_id="live-model")
        runtime = gr.Dropdown(runtimes, value="torch", label="Runtime", info=unusable or None)
        precision = gr.Dropdown(list(precision_choices("torch")), value="fp32", label="Precision",
                                info="what the runtime does not run here is said when the call starts")
        gate = gr.Radio(list(GATE_MODES), value="landmarks", label="Quality gate features", elem_id="live-gate")
        composition = gr.Radio(list(COMPOSITION_METHODS), value="feather", label="Composition",
                               elem_id="live-composition")
    with gr.Row():
        reference = gr.Image(type="filepath", sources=["upload"], label="Reference image (optional; default: the "
                             "first webcam frame)", height=160)
        restart = gr.Button("New reference: the next webcam frame")
    stats = gr.Markdown(elem_id="live-stats")
    stages = gr.Dataframe(headers=STAGE_HEADERS, label="Where each frame's time goes", elem_id="live-stages")
    status = gr.Markdown(elem_id="live-status")

    def on_frame(frame, reference_path, model_name, runtime_name, precision_name, gate_mode, method,
                 request: gr.Request):
        return live_frame(frame, reference_path, model_name, runtime_name, precision_name, gate_mode, method,
                          _key(request))

    def on_restart(request: gr.Request):
        return new_reference(_key(request))

    camera.stream(on_frame, [camera, reference, model, runtime, precision, gate, composition],
                  [received, stats, stages, status],
                  stream_every=STREAM_EVERY, time_limit=TIME_LIMIT, concurrency_limit=1, show_progress="hidden",
                  api_name="live_frame")
    restart.click(on_restart, None, [status], api_name="live_new_reference")
