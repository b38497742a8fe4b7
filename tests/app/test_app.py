"""The Gradio app end to end: in headless chromium (Playwright, Debian's /usr/bin/chromium) and through its
API with gradio_client. Uses the cheap ``static`` animator so the run is bounded; waits on DOM conditions."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

pytestmark = pytest.mark.browser

CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                 "--disable-background-networking", "--disable-component-update", "--disable-sync"]


@pytest.fixture(scope="module")
def app_url(tmp_path_factory, serve_app):
    with serve_app({"FACELAB_OUTPUTS": str(tmp_path_factory.mktemp("outputs"))}, fresh_models=False) as url:
        yield url


def test_api_animates_demo_and_reports_metrics(app_url):
    from gradio_client import Client, handle_file

    from lab.ui.animate import MODES
    from lab.ui.common import demo_files

    src, drv = demo_files()
    client = Client(app_url, verbose=False)
    video, table, status = client.predict(handle_file(src), handle_file(drv), ["static"], MODES[0], True, 12,
                                          api_name="/animate")
    path = video["video"] if isinstance(video, dict) else video
    assert Path(path).is_file() and Path(path).stat().st_size > 1000
    rows = table["data"]
    assert rows[0][0] == "static" and rows[0][1] == "none needed"
    assert 0 < rows[0][2] < 0.2  # static L1 against the demo's driving frames: small but not zero
    assert "12 frames" in status


def test_api_bad_upload_is_a_clear_error(app_url, tmp_path):
    from gradio_client import Client, handle_file

    from lab.ui.animate import MODES
    from lab.ui.common import demo_files

    bad = tmp_path / "broken.mp4"
    bad.write_bytes(b"\x00\x00\x00\x18ftypmp42" + b"not really a video" * 20)
    src, drv = demo_files()
    client = Client(app_url, verbose=False)
    with pytest.raises(Exception, match=r"broken\.mp4") as e:
        client.predict(handle_file(src), handle_file(str(bad)), ["static"], MODES[0], True, 5, api_name="/animate")
    # the upload's own name, not the path the app stored it under (<tmp>/gradio/<hash>/broken.mp4)
    assert str(e.value).lstrip("'\"").startswith("broken.mp4 is not a readable video") and "gradio" not in str(e.value)
    # the app is still up and answering
    _, table, _ = client.predict(handle_file(demo_files()[0]), handle_file(drv), ["static"], MODES[0],
                                 True, 3, api_name="/animate")
    assert table["data"][0][0] == "static"


def test_browser_click_animate_shows_video_and_table(app_url):
    if not Path(CHROMIUM).exists():
        pytest.skip("chromium not installed (CI installs it with apt-get)")
    from playwright.sync_api import expect, sync_playwright

    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        page = browser.new_page()
        page.goto(app_url)
        page.get_by_label("ultralight").uncheck()  # keep only the cheap static model
        page.get_by_label("Max driving frames").last.fill("8")
        page.get_by_role("button", name="Animate").click()
        table = page.locator("#metrics-table")
        expect(table).to_contain_text("none needed", timeout=120_000)
        expect(page.locator("#result-video video")).to_have_count(1, timeout=30_000)
        expect(page.locator("#status")).to_contain_text("8 frames")
        browser.close()


def test_browser_bad_upload_gives_one_toast_naming_the_file(app_url, tmp_path):
    if not Path(CHROMIUM).exists():
        pytest.skip("chromium not installed (CI installs it with apt-get)")
    from playwright.sync_api import expect, sync_playwright

    bad = tmp_path / "broken.mp4"
    bad.write_bytes(b"\x00\x00\x00\x18ftypmp42" + b"not really a video" * 20)
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        page = browser.new_page()
        page.goto(app_url)
        page.get_by_role("button", name="Clear").first.click()  # the driving demo clip
        page.locator("input[type=file]").nth(1).set_input_files(str(bad))
        # the browser cannot preview it: a note in the preview, not an error toast of its own
        # (in the upload's preview: an example thumbnail the browser cannot preview carries the same note)
        note = page.get_by_test_id("video").get_by_text("The browser cannot preview this file")
        expect(note).to_be_visible(timeout=30_000)
        page.get_by_label("ultralight").uncheck()
        page.get_by_role("button", name="Animate").click()
        messages = page.locator(".toast-message-text")
        expect(messages.first).to_contain_text("broken.mp4 is not a readable video", timeout=60_000)
        page.wait_for_timeout(1000)  # a second toast would arrive with the first
        texts = messages.all_inner_texts()
        assert len(texts) == 1 and "gradio" not in texts[0] and "Video not playable" not in texts[0], texts
        browser.close()


def test_api_conference_on_the_upper_body_demo(app_url):
    from gradio_client import Client, handle_file

    from lab.ui.conference import demo_camera_file

    client = Client(app_url, verbose=False)
    grid, downlink, summary, per_frame, status = client.predict(
        handle_file(demo_camera_file()), "static", "off", "feather", "libx264", 28, 64, 6, api_name="/conference")
    path = grid["video"] if isinstance(grid, dict) else grid
    assert Path(path).is_file() and Path(downlink).stat().st_size > 500
    rows = {r[0]: r[1] for r in summary["data"]}
    assert rows["frames sent / dropped by the gate"] == "6 / 0"
    assert float(rows["uplink: motion (kbps)"]) == 0  # static sends no motion
    assert float(rows["downlink (kbps)"]) > 0
    assert len(per_frame["data"]) == 6
    assert "512x512" in status


def test_api_failures_gallery_on_demo(app_url):
    from gradio_client import Client, handle_file

    from lab.ui.common import demo_files

    src, drv = demo_files()
    client = Client(app_url, verbose=False)
    gallery, rows, status, csv = client.predict(handle_file(src), handle_file(drv), "static", True, True, 8, 25, 20,
                                                api_name="/failures")
    assert len(rows["data"]) == 8
    assert "8 frames" in status
    assert Path(csv).is_file()
    # static in self-reenactment: the worst-L1 frames are in the gallery with captions
    assert gallery and all(Path(g["image"]["path"] if isinstance(g["image"], dict) else g["image"]).is_file()
                           for g in gallery)
    assert any("worst_l1" in (g.get("caption") or "") for g in gallery)


def test_api_batch_report_on_demo(app_url):
    from gradio_client import Client

    client = Client(app_url, verbose=False)
    table2, clips, _plot, _gallery, report, status = client.predict("demo", "test", ["static"], 1, 4, ["l1", "ssim"],
                                                                    api_name="/batch")
    assert table2["data"][0][0] == "static"
    assert len(clips["data"]) == 1
    assert Path(report).is_file() and "astronaut-demo" in Path(report).read_text()
    assert "1 clip(s)" in status
    with pytest.raises(Exception, match="not found"):
        client.predict("/nowhere/data", "test", ["static"], 1, 4, ["l1"], api_name="/batch")


def test_api_rate_distortion_on_demo(app_url):
    from gradio_client import Client, handle_file

    from lab.ui.common import demo_files

    _, drv = demo_files()
    client = Client(app_url, verbose=False)
    _plot, points, bd, status = client.predict(handle_file(drv), ["static"], ["libx264"], True, 6,
                                               api_name="/rate_distortion")
    rows = [dict(zip(points["headers"], r)) for r in points["data"]]
    assert {r["curve"] for r in rows} == {"libx264", "static+libx264"}

    def crf(r):
        return float(str(r["level"]).split("=")[1])

    for curve in ("libx264", "static+libx264"):  # both rates fall as the CRF rises
        pts = sorted((r for r in rows if r["curve"] == curve), key=crf)
        assert len(pts) >= 4 and all(a["kbps"] > b["kbps"] for a, b in zip(pts, pts[1:]))
    # static sends no motion: its rate is the reference frame's alone
    assert all(r["motion_kbps"] == 0 for r in rows if r["curve"] == "static+libx264")
    assert bd["data"] and bd["data"][0][:3] == ["static", "libx264", "libx264"]
    assert "6 frames" in status


def test_browser_failure_gallery(app_url):
    if not Path(CHROMIUM).exists():
        pytest.skip("chromium not installed (CI installs it with apt-get)")
    from playwright.sync_api import expect, sync_playwright

    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        page = browser.new_page(viewport={"width": 1280, "height": 1600})
        page.goto(app_url)
        page.get_by_role("tab", name="Failures").click()
        page.get_by_label("Max driving frames").last.fill("8")
        page.get_by_role("button", name="Flag failure cases").click()
        expect(page.locator("#failures-status")).to_contain_text("8 frames", timeout=120_000)
        expect(page.locator("#failures-gallery img").first).to_be_visible(timeout=30_000)
        page.screenshot(path=str(Path(app_url_shot_dir()) / "failures.png"))
        browser.close()


def app_url_shot_dir() -> str:
    import os
    import tempfile

    return os.environ.get("FACELAB_SCREENSHOTS") or tempfile.gettempdir()


def test_api_efficiency_with_latency(app_url):
    from gradio_client import Client

    client = Client(app_url, verbose=False)
    table = client.predict(["ultralight", "fomm"], True, api_name="/efficiency")
    rows = {(r[0], r[1]): r for r in table["data"]}
    enc = rows[("ultralight", "encoder")]
    assert enc[2] == 162_260 and 0.0131 < enc[3] < 0.0161  # the paper's budget: 0.16 M params, 14.6 M MACs
    assert enc[5] > 0 and enc[6] > 1  # measured, and faster than FOMM's detector
    assert rows[("fomm", "encoder")][6] == 1.0


@pytest.mark.data
def test_api_cross_identity_pairs(app_url, data_root):
    from gradio_client import Client

    client = Client(app_url, verbose=False)
    table, report, status = client.predict(str(data_root), "test", ["static"], 2, 2, api_name="/cross_identity")
    rows = [dict(zip(table["headers"], r)) for r in table["data"]]
    assert rows[0]["pair"] == "(all)" and rows[0]["id_source"] == 0  # static keeps the source exactly
    assert len(rows) == 3 and "2 pair(s)" in status
    assert Path(report).is_file()
    with pytest.raises(Exception, match="pairs.csv"):
        client.predict("demo", "test", ["static"], 2, 2, api_name="/cross_identity")


# ------------------------------------------------------------------ bad or hostile weights files
OFFICIAL_WEIGHTS = {"fomm": "vox-cpk.pth.tar", "x2face": "x2face_model.pth", "monkey_net": "monkey-net-vox.pth.tar"}


class _RunsCode:
    def __reduce__(self):
        import os

        return (os.system, ("echo this must never run",))


@pytest.fixture(scope="module", params=["text", "code"])
def bad_weights_app(request, tmp_path_factory, serve_app):
    """The app launched with a text file, or a pickle carrying code, under each official weights name in
    ``$FACELAB_WEIGHTS`` (and nothing in the torch hub folder)."""
    import torch

    kind = request.param
    folder = tmp_path_factory.mktemp(f"weights-{kind}")
    for name, fname in OFFICIAL_WEIGHTS.items():
        if kind == "text":
            (folder / fname).write_text(f"download the {name} weights and put them here\n")
        else:
            torch.save({"generator": _RunsCode(), "kp_detector": {}, "state_dict": {}}, folder / fname)
    env = {"FACELAB_WEIGHTS": str(folder), "TORCH_HOME": str(tmp_path_factory.mktemp("torch-home")),
           "FACELAB_OUTPUTS": str(tmp_path_factory.mktemp("outputs"))}
    with serve_app(env) as url:  # build_demo raised CheckpointError from the Models table before
        yield kind, url


def test_app_starts_and_serves_with_bad_weights_files(bad_weights_app):
    import json
    import re
    import urllib.request

    from gradio_client import Client, handle_file

    from lab.ui.animate import MODES
    from lab.ui.common import demo_files

    kind, url = bad_weights_app
    want = "not a checkpoint (a text file starting 'download the" if kind == "text" else "holds code (pickled"
    with urllib.request.urlopen(url, timeout=60) as r:
        assert r.status == 200
    with urllib.request.urlopen(url + "config", timeout=60) as r:
        config = json.dumps(json.load(r))
    # the Models table, as served: each model with a bad file is "unavailable: <file>: <reason>"
    for fname in OFFICIAL_WEIGHTS.values():
        assert f"unavailable: {fname}: {want}" in config
    assert "\\u001b" not in config and "Traceback" not in config
    client = Client(url, verbose=False)
    src, drv = demo_files()
    _, table, _ = client.predict(handle_file(src), handle_file(drv), ["static"], MODES[0], True, 3,
                                 api_name="/animate")
    assert table["data"][0][:2] == ["static", "none needed"]  # the other models serve as usual
    with pytest.raises(Exception, match=re.escape(f"x2face unavailable: x2face_model.pth: {want}")):
        client.predict(handle_file(src), handle_file(drv), ["static", "x2face"], MODES[0], True, 3,
                       api_name="/animate")
    _, table, _ = client.predict(handle_file(src), handle_file(drv), ["static"], MODES[0], True, 3,
                                 api_name="/animate")
    assert table["data"][0][0] == "static"  # and the app is still up after the refusal
