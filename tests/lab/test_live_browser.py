"""The Live tab in headless chromium with a fake camera playing a shared clip (a .y4m file made here).

Chromium's fake capture device (``--use-fake-device-for-media-stream --use-file-for-fake-video-capture``)
plays the file in a loop as the webcam; the page streams it to the app, which sends it through the live call
with the trained ``ultralight`` (the shipped weights; an untrained model would not move) and streams the
received frames back. Waits are on page conditions, never on fixed sleeps.
"""

from __future__ import annotations

import re
import shutil
from pathlib import Path

import pytest

pytestmark = [pytest.mark.browser, pytest.mark.data, pytest.mark.slow]

CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
CLIP = Path("clips") / "filby89+spectre" / "M026_level_3_disgusted_018.mp4"  # 1920x1080, face in the centre
REPO = Path(__file__).resolve().parents[2]


def write_y4m(frames, path: Path, fps: int = 25) -> Path:
    """``(N, H, W, 3)`` uint8 RGB frames as a YUV4MPEG2 (4:2:0) file, the format Chromium's fake camera plays."""
    import av

    out = av.open(str(path), "w", format="yuv4mpegpipe")
    stream = out.add_stream("wrapped_avframe", rate=fps)
    stream.width, stream.height, stream.pix_fmt = frames.shape[2], frames.shape[1], "yuv420p"
    for f in frames:
        for packet in stream.encode(av.VideoFrame.from_ndarray(f, format="rgb24").reformat(format="yuv420p")):
            out.mux(packet)
    for packet in stream.encode():
        out.mux(packet)
    out.close()
    return path


@pytest.fixture(scope="module")
def fake_camera(data_root, tmp_path_factory) -> Path:
    from datasets.video import open_media
    from lab.codec.composition import resize_rgb

    frames = open_media(data_root / CLIP, max_frames=50).read()
    small = [resize_rgb(f, 640, 360) for f in frames]  # a webcam-sized upper-body view
    import numpy as np

    return write_y4m(np.stack(small), tmp_path_factory.mktemp("camera") / "camera.y4m")


@pytest.fixture(scope="module")
def live_app(tmp_path_factory, serve_app):
    from lab.models.ultralight.model import WEIGHTS_FILE

    if not (REPO / WEIGHTS_FILE).is_file():
        pytest.skip(f"{WEIGHTS_FILE} is not in this checkout")
    env = {"FACELAB_SHIPPED_WEIGHTS": "1", "FACELAB_WEIGHTS": "/nonexistent",
           "FACELAB_OUTPUTS": str(tmp_path_factory.mktemp("outputs"))}
    with serve_app(env) as url:  # ultralight loads afresh, with the shipped weights
        yield url


def test_live_tab_streams_the_fake_camera_through_the_call(live_app, fake_camera):
    if not Path(CHROMIUM).exists():
        pytest.skip("chromium not installed (CI installs it with apt-get)")
    from playwright.sync_api import expect, sync_playwright

    args = ["--headless", "--no-sandbox", "--disable-gpu", "--no-first-run", "--use-fake-ui-for-media-stream",
            "--use-fake-device-for-media-stream", f"--use-file-for-fake-video-capture={fake_camera}"]
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=args)
        context = browser.new_context(viewport={"width": 1280, "height": 1400}, permissions=["camera"])
        page = context.new_page()
        page.goto(live_app)
        page.get_by_role("tab", name="Live").click()
        expect(page.locator("#live-model input")).to_have_value("ultralight")  # trained: the default model
        page.locator("#live-gate").get_by_label("off").check()  # every frame's motion is sent: the head moves
        page.locator("#live-camera").get_by_text("Click to Access Webcam").click()
        page.locator("#live-camera").get_by_text("Record").click()
        expect(page.locator("#live-status")).to_contain_text("Call running: ultralight (trained", timeout=180_000)
        # a changing stream: three different received frames, each a new picture (not the same one re-sent)
        page.wait_for_function(
            """() => {
                const img = document.querySelector('#live-output img');
                if (!img) return false;
                window.facelabSeen = window.facelabSeen || new Set();
                window.facelabSeen.add(img.getAttribute('src'));
                return window.facelabSeen.size >= 3;
            }""", polling=200, timeout=240_000)
        frames = page.evaluate("() => [...document.querySelectorAll('#live-output img')].map(i => i.dataset.frame)")
        assert len(frames) == 1 and int(frames[0]) >= 2
        stats = page.locator("#live-stats").inner_text()
        fps = re.search(r"([\d.]+) frames/s", stats)
        kbps = re.search(r"uplink ([\d.]+) kbps", stats)
        dropped = re.search(r"(\d+) dropped of (\d+) camera frames", stats)
        assert fps and float(fps.group(1)) > 0, stats
        assert kbps and float(kbps.group(1)) > 0, stats  # motion packets went up
        assert dropped and int(dropped.group(1)) <= int(dropped.group(2)), stats
        expect(page.locator("#live-stages")).to_contain_text("decoder")
        status = page.locator("#live-status").inner_text()
        assert "camera 640x360" in status and "first webcam frame" in status
        browser.close()
