"""The live call (lab.conference.live): bounded queue, drop counting, wall-clock rates, the codec's closed loop frame by
frame, bad input; and the Live tab's handler (lab.ui.live) without a browser.

Time is a fake clock wherever a count depends on it, so no assertion depends on how fast this machine is."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from datasets.demo import demo_fps, demo_source, demo_upper_body
from datasets.errors import DataError
from lab.conference.live import LiveConfig, LiveSession
from lab.conference.measure import STAGES
from lab.conference.realtime import FrameQueue, run_realtime
from lab.core.animate import load_animator
from lab.models.static import StaticAnimator


class FakeClock:
    def __init__(self, t: float = 100.0) -> None:
        self.t = t

    def __call__(self) -> float:
        return self.t

    def sleep(self, dt: float) -> None:
        assert dt >= 0
        self.t += dt


class SlowStatic(StaticAnimator):
    """``static`` whose decoder takes ``seconds`` of the fake clock per call."""

    def __init__(self, clock: FakeClock, seconds: float) -> None:
        super().__init__()
        self.clock, self.seconds = clock, seconds

    def render(self, state, motion_source, motion_driving):
        self.clock.t += self.seconds
        return super().render(state, motion_source, motion_driving)


@pytest.fixture(scope="module")
def camera():
    return demo_upper_body(8)


# ---------------------------------------------------------------------------------------------- the queue
def test_frame_queue_keeps_the_newest_and_counts_the_rest():
    q = FrameQueue(1)
    assert [q.put(f"f{i}", i * 0.04, i) for i in range(4)] == [False, True, True, True]
    assert len(q) == 1 and q.dropped == 3 and q.dropped_indices == [0, 1, 2] and q.offered == 4
    assert q.get()[::2] == ("f3", 3) and q.get() is None
    q2 = FrameQueue(2)
    for i in range(5):
        q2.put(i, float(i))
    assert len(q2) == 2 and q2.dropped == 3  # never more than maxlen waiting, oldest out first
    assert [q2.get()[0], q2.get()[0]] == [3, 4]
    with pytest.raises(ValueError, match="maxlen"):
        FrameQueue(0)


def _expected_processed(n: int, fps: float, seconds: float) -> list[int]:
    """Independent model of the replay: frame i >= 1 arrives at (i - 1) / fps; whenever the processor is free
    it takes the newest frame that has arrived and is newer than the last it took, else waits for the next."""
    arrivals = {i: (i - 1) / fps for i in range(1, n)}
    done, t, last = [], 0.0, 0
    while last < n - 1:
        arrived = [i for i, a in arrivals.items() if a <= t + 1e-9 and i > last]
        if arrived:
            last = arrived[-1]
            done.append(last)
            t += seconds
        else:
            t = arrivals[last + 1]
    return done


def test_realtime_replay_drops_late_frames_and_counts_them(camera):
    clock = FakeClock()
    n, fps, decode = 8, 25.0, 0.11  # the decoder takes 2.75 camera frame intervals
    frames = np.concatenate([camera, camera])[:n]
    session = LiveSession(LiveConfig(model="static", crop=False, gate="off"), loaded=load_animator("static"),
                          animator=SlowStatic(clock, decode), clock=clock)
    rep = run_realtime(frames, fps, session, keep_outputs=True, sleep=clock.sleep)
    processed = [r["frame"] for r in rep.per_frame if r["processed"]]
    assert processed == _expected_processed(n, fps, decode)
    s = rep.summary
    assert len(rep.per_frame) == n - 1 and len(rep.outputs) == len(processed)
    assert s["frames_processed"] == len(processed) and s["frames_dropped"] == n - 1 - len(processed)
    assert s["frames_offered"] == n - 1 and s["frames_waiting"] == 0
    assert sorted(session.queue.dropped_indices + processed) == list(range(1, n))
    # wall-clock rate on the fake clock: outputs / (last output - first arrival)
    assert s["seconds"] == pytest.approx(len(processed) * decode)
    assert s["fps"] == pytest.approx(1 / decode)
    assert s["ms_decoder"] == pytest.approx(1000 * decode) and s["slowest_stage"] == "decoder"
    assert "decoder" in s["bottleneck"] and "cannot keep up" in s["bottleneck"]
    assert s["camera_fps"] == fps and s["clip_frames"] == n


def test_a_fast_session_keeps_up_and_drops_nothing(camera):
    clock = FakeClock()
    session = LiveSession(LiveConfig(model="static", crop=False, gate="off"), loaded=load_animator("static"),
                          animator=SlowStatic(clock, 0.01), clock=clock)
    rep = run_realtime(camera, 25.0, session, sleep=clock.sleep)
    assert rep.summary["frames_dropped"] == 0 and rep.summary["frames_processed"] == len(camera) - 1
    assert "keeps up" in rep.summary["bottleneck"]


def test_camera_interval_counts_the_frames_a_client_skipped(camera):
    clock = FakeClock(0.0)
    session = LiveSession(LiveConfig(model="static", crop=False, gate="off", camera_interval=0.1),
                          loaded=load_animator("static"), clock=clock)
    for t in (0.0, 0.1, 0.5, 0.6):  # 0.2, 0.3 and 0.4 never came: the client was waiting for a result
        clock.t = t
        session.feed(camera[0], t)
    s = session.stats()
    assert s["frames_processed"] == 4 and s["frames_dropped"] == 3 and s["frames_offered"] == 7
    assert s["seconds"] == pytest.approx(0.6) and s["fps"] == pytest.approx(4 / 0.6)


# ---------------------------------------------------------------------------------------------- the codec path
@pytest.mark.slow
def test_ultralight_frames_are_coded_closed_loop_and_rated_on_the_clock(camera):
    la = load_animator("ultralight")  # randomly initialised in the test suite: plumbing, not quality
    clock = FakeClock(0.0)
    cfg = LiveConfig(model="ultralight", gate="off", quant_factor=64)
    session = LiveSession(cfg, loaded=la, clock=clock)
    outs = []
    for i, frame in enumerate(camera[:4]):
        clock.t = i / demo_fps()
        outs.append(session.feed(frame, clock.t))
        # both sides hold the same reconstruction, within half a quantisation step of the encoder's motion
        from datasets.crop import crop_frame
        from lab.core.animate import to_tensor

        with torch.no_grad():
            motion = la.model.extract_motion(to_tensor(crop_frame(frame, session.camera_box, 256)))
        for k in motion:
            assert torch.equal(session._server_prediction[k], session._sender_prediction[k])
            assert (session._server_prediction[k] - motion[k]).abs().max() <= 0.5 / 64 + 1e-5
    assert all(o.sent and o.bits > 0 and o.bits % 8 == 0 for o in outs)
    s = session.stats()
    assert s["motion_bits"] == sum(o.bits for o in outs)
    assert s["seconds"] == pytest.approx(3 / demo_fps())
    assert s["uplink_motion_kbps"] == pytest.approx(sum(o.bits for o in outs) / 1000 / (3 / demo_fps()))
    assert s["uplink_reference_kbit"] > 0 and s["uplink_header_bits"] > 0
    assert all(np.isfinite(s[f"ms_{st}"]) for st in STAGES)
    # the head is composed into the full-resolution reference; outside the box every frame is the reference
    x0, y0, x1, y1 = session.box
    assert outs[0].frame.shape == camera[0].shape and (x1 - x0) < camera.shape[2]
    outside = np.ones(camera.shape[1:3], bool)
    outside[y0:y1, x0:x1] = False
    assert all(np.array_equal(o.frame[outside], session.reference_full[outside]) for o in outs)


@pytest.mark.slow
def test_live_matches_the_batch_conference_path(camera, tmp_path):
    from lab.conference.call import ConferenceConfig, run_conference

    la = load_animator("ultralight")
    res = run_conference(camera[:4], demo_fps(), ConferenceConfig(model="ultralight", crop=False, gate="off",
                                                                  anchor=False), loaded=la, work_dir=tmp_path)
    session = LiveSession(LiveConfig(model="ultralight", crop=False, gate="off"), loaded=la)
    live = [session.feed(f) for f in camera[:4]]
    assert session.box == res.box
    assert [o.bits for o in live] == [r["motion_bits"] for r in res.per_frame]
    for o, head in zip(live, res.heads):  # same pieces; batch-of-one vs batch rendering: at most 1 level apart
        assert np.abs(o.head.astype(int) - head.astype(int)).max() <= 1


def test_gate_rejected_frame_sends_nothing_and_the_server_holds(camera):
    from PIL import Image, ImageFilter

    la = load_animator("ultralight")
    session = LiveSession(LiveConfig(model="ultralight", gate="landmarks"), loaded=la)
    first = session.feed(camera[0])
    blurred = np.asarray(Image.fromarray(camera[1]).filter(ImageFilter.GaussianBlur(6)))
    held = session.feed(blurred)
    assert first.sent and not held.sent and held.bits == 0 and "blur" in held.reasons
    assert np.array_equal(held.head, first.head)  # the last accepted motion, rendered again
    s = session.stats()
    assert s["frames_rejected_by_gate"] == 1 and s["frames_sent"] == 1


def test_uploaded_reference_is_animated_relative_to_the_first_camera_frame(camera):
    la = load_animator("ultralight")
    session = LiveSession(LiveConfig(model="ultralight", gate="off"), loaded=la)
    reference = demo_source()  # a 256x256 face crop: the frame is the crop
    session.start(reference, camera_frame=camera[0])
    assert session.relative and session.camera_box != session.box
    out = session.feed(camera[0])
    assert out.frame.shape == reference.shape
    # relative motion of the first sent frame to itself is no motion: the reference rendered with its own motion
    with torch.no_grad():
        still = la.model.render(session.state, session.ref_motion, session.ref_motion)
    from lab.core.animate import to_uint8

    assert np.abs(out.head.astype(int) - to_uint8(still)[0].astype(int)).max() <= 1


# ---------------------------------------------------------------------------------------------- bad input
def test_bad_input_is_a_clear_error(camera):
    session = LiveSession(LiveConfig(model="static", gate="off"), loaded=load_animator("static"))
    with pytest.raises(DataError, match="no face found in the first camera frame"):
        session.start(np.full((240, 320, 3), 128, np.uint8))
    with pytest.raises(ValueError, match="uint8 RGB"):
        session.start(np.zeros((240, 320, 3), np.float32))
    with pytest.raises(ValueError, match="too small"):
        session.start(np.zeros((8, 8, 3), np.uint8))
    session.start(camera[0])
    with pytest.raises(ValueError, match="start a new session"):
        session.feed(camera[0][:200])
    rgba = np.concatenate([camera[1], np.full(camera.shape[1:3] + (1,), 255, np.uint8)], axis=2)
    assert session.feed(rgba).frame.shape == camera[0].shape  # a browser's RGBA frame: alpha not sent
    with pytest.raises(ValueError, match="keypoint gate needs a model with keypoints"):
        LiveSession(LiveConfig(model="static", gate="keypoints"), loaded=load_animator("static")).start(camera[0])
    with pytest.raises(ValueError, match="runtime must be one of"):
        LiveSession(LiveConfig(model="static", runtime="tensorrt"), loaded=load_animator("static"))
    with pytest.raises(TypeError, match="loaded animator"):
        LiveSession(LiveConfig(model="static"))
    for bad in ({"gate": "maybe"}, {"composition": "glue"}, {"queue_size": 0}, {"camera_interval": 0.0}):
        with pytest.raises(ValueError):
            LiveConfig(**bad)
    with pytest.raises(ValueError, match="N >= 2"):
        run_realtime(camera[:1], 25.0, session)


# ---------------------------------------------------------------------------------------------- the tab's handler
def test_live_tab_handler_starts_streams_and_reports(camera):
    from lab.ui import live as ui

    key = "test-handler"
    ui.new_reference(key)
    html, stats, stages, status = ui.live_frame(None, None, "static", "torch", "fp32", "off", "feather", key)
    assert html is None and "Start the webcam" in status
    html, stats, stages, status = ui.live_frame(np.full((240, 320, 3), 90, np.uint8), None, "static", "torch",
                                                "fp32", "off", "feather", key)
    assert html is None and "Cannot start the call" in status and "no face found" in status
    assert "Trying again" in status
    for frame in camera[:3]:
        html, stats, stages, status = ui.live_frame(frame, None, "static", "torch", "fp32", "off", "feather", key)
    assert html.startswith('<img src="data:image/jpeg;base64,') and 'data-frame="2"' in html
    assert "frames/s" in stats and "kbps" in stats and "dropped" in stats
    assert [r[0] for r in stages] == [*STAGES, "total"]
    assert "Call running: static" in status and "first webcam frame" in status
    # a setting that cannot run is a status line, not a crash
    _, _, _, status = ui.live_frame(camera[3], None, "static", "torch", "fp32", "keypoints", "feather", key)
    assert "Cannot start the call" in status and "keypoint gate" in status
    ui.new_reference(key)
