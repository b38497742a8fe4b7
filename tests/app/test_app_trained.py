"""The app with the ultralight weights shipped in the repository (a fresh clone's default), in headless chromium.

The rest of the suite runs with ``FACELAB_SHIPPED_WEIGHTS=0`` (tests/conftest.py); this module turns the shipped
file back on for its own app instance (``serve_app``: fresh models, environment restored afterwards).
"""

from __future__ import annotations

from pathlib import Path

import pytest

from lab.models.ultralight.model import WEIGHTS_FILE

pytestmark = pytest.mark.browser

REPO = Path(__file__).resolve().parents[2]
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                 "--disable-background-networking", "--disable-component-update", "--disable-sync"]

# Reads two frames of the result video (first and last) into a canvas and returns, for the driving column
# (x in [0, w)) and the model column (x in [w, 2w)), below the 22-px label bar: the pixel standard deviation of
# the model column's last frame, how much the model column changed from the first frame to the last, and how far
# the model column's first and last frames are from the driving column's last frame (mean absolute difference).
FRAME_STATS_JS = """
async (video) => {
  const seek = (t) => new Promise((ok) => {
    video.addEventListener('seeked', ok, {once: true}); video.currentTime = t;
  });
  if (video.readyState < 2) await new Promise((ok) => video.addEventListener('loadeddata', ok, {once: true}));
  const W = video.videoWidth, H = video.videoHeight, w = W / 2, bar = 22;
  const c = document.createElement('canvas'); c.width = W; c.height = H;
  const g = c.getContext('2d', {willReadFrequently: true});
  const grab = async (t) => { await seek(t); g.drawImage(video, 0, 0); return g.getImageData(0, 0, W, H).data; };
  const first = await grab(0), last = await grab(Math.max(0, video.duration - 0.05));
  const px = (d, x, y, k) => d[4 * (y * W + x) + k];
  let n = 0, s = 0, s2 = 0, moved = 0, d0 = 0, d1 = 0;
  for (let y = bar; y < H; y += 2) for (let x = 0; x < w; x += 2) for (let k = 0; k < 3; k++) {
    const a = px(first, x + w, y, k), b = px(last, x + w, y, k), drv = px(last, x, y, k);
    n++; s += b; s2 += b * b; moved += Math.abs(b - a); d0 += Math.abs(a - drv); d1 += Math.abs(b - drv);
  }
  return {width: W, height: H, std: Math.sqrt(s2 / n - (s / n) ** 2), moved: moved / n,
          first_to_driving: d0 / n, last_to_driving: d1 / n};
}
"""


@pytest.fixture(scope="module")
def trained_app_url(tmp_path_factory, serve_app):
    if not (REPO / WEIGHTS_FILE).is_file():
        pytest.skip(f"{WEIGHTS_FILE} is not in this checkout")
    env = {"FACELAB_SHIPPED_WEIGHTS": "1",
           "FACELAB_WEIGHTS": str(tmp_path_factory.mktemp("no-weights")),  # only the shipped file counts
           "FACELAB_OUTPUTS": str(tmp_path_factory.mktemp("outputs"))}
    with serve_app(env) as url:
        yield url


def test_browser_animate_tab_shows_trained_ultralight_following_the_driving_video(trained_app_url):
    """The Animate tab on the embedded demo with only ultralight ticked: its column of the result video is a
    picture (not a flat square), it moves (not the still source an untrained model renders), and its last frame
    is closer to the driving video's last frame than its first frame (≈ the source, i.e. ``static``) is."""
    import shutil

    chromium = shutil.which("chromium") or "/usr/bin/chromium"
    if not Path(chromium).exists():
        pytest.skip("chromium not installed (CI installs it with apt-get)")
    from playwright.sync_api import expect, sync_playwright

    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=chromium, args=CHROMIUM_ARGS)
        page = browser.new_page()
        page.goto(trained_app_url)
        page.get_by_label("static").uncheck()
        page.get_by_label("ultralight").check()
        page.get_by_label("Max driving frames").last.fill("8")
        page.get_by_role("button", name="Animate").click()
        table = page.locator("#metrics-table")
        expect(table).to_contain_text("trained", timeout=180_000)
        video = page.locator("#result-video video")
        expect(video).to_have_count(1, timeout=30_000)
        stats = video.evaluate(FRAME_STATS_JS)
        assert stats["width"] == 2 * (stats["height"] - 22), stats  # two columns: driving, ultralight
        assert stats["std"] > 10, stats  # a face, not a flat square
        assert stats["moved"] > 5, stats  # it follows the motion (a still source changes by codec noise only)
        assert stats["last_to_driving"] < stats["first_to_driving"], stats
        expect(page.locator("#status")).not_to_contain_text("randomly initialised")
        page.get_by_role("tab", name="Models").click()
        # the Models table (its body cells are not <tr>s): ultralight's weights cell names the shipped file
        cell = page.get_by_text(f"trained: {REPO / WEIGHTS_FILE}").filter(visible=True)
        expect(cell.first).to_be_visible(timeout=120_000)  # the table loads every registered model first
        browser.close()

