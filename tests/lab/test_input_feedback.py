"""What the app's handlers and the CLI tell the user about their inputs (issue 12): a truncated clip is named
and reported, a frame limit that cut a clip says "used N of M frames", errors name the uploaded file by its
own name (never the path Gradio stored it under), blank metric cells say why, long jobs report progress.

Small generated clips (64×64, at most 40 frames) and the ``static`` model keep every test to a few seconds.
"""

from __future__ import annotations

import numpy as np
import pytest
from PIL import Image

from datasets.video import write_video
from lab.cli import main
from lab.ui.animate import animate
from lab.ui.batch import batch
from lab.ui.common import UserInputError, user_message
from lab.ui.conference import conference, demo_camera_file
from lab.ui.failures import failures
from lab.ui.rd import rate_distortion

HASH = "0f3c9a7e5b21d4c86a0e9f1b7d3c5a2e4f6b8d0c"  # how Gradio names an upload's folder


def _noise(n: int, side: int = 64) -> list[np.ndarray]:
    return [np.random.default_rng(i).integers(0, 255, (side, side, 3), np.uint8) for i in range(n)]


@pytest.fixture()
def uploads(tmp_path, monkeypatch):
    """A Gradio-like upload folder: ``<GRADIO_TEMP_DIR>/<hash>/<original name>``; the app writes to tmp_path."""
    monkeypatch.setenv("GRADIO_TEMP_DIR", str(tmp_path / "gradio"))
    monkeypatch.setenv("FACELAB_OUTPUTS", str(tmp_path / "outputs"))
    d = tmp_path / "gradio" / HASH
    d.mkdir(parents=True)
    Image.fromarray(_noise(1, 256)[0]).save(d / "face.png")  # 256x256: taken as a face crop
    write_video(d / "long clip.mp4", _noise(40), fps=25, container_options={"movflags": "+faststart"})
    data = (d / "long clip.mp4").read_bytes()
    (d / "cut clip.mp4").write_bytes(data[: int(len(data) * 0.3)])
    (d / "broken.mp4").write_bytes(b"\x00\x00\x00\x18ftypmp42" + b"not really a video" * 20)
    return d


class Recorder:
    """Stands in for ``gr.Progress``: records ``progress((done, total), desc=..., unit=...)``."""

    def __init__(self):
        self.calls = []

    def __call__(self, progress, desc=None, unit=None):
        self.calls.append((progress, desc, unit))


@pytest.mark.filterwarnings("ignore::datasets.video.DataWarning")  # said in the status, checked here
def test_truncated_upload_is_reported_by_its_name(uploads):
    _, _, status = animate(str(uploads / "face.png"), str(uploads / "cut clip.mp4"), ["static"], crop=False,
                           max_frames=50)
    assert "**Warning:** cut clip.mp4 is truncated: the file ends before the data its index lists" in status
    assert "of the 40 its index lists" in status
    assert "gradio" not in status and HASH not in status


def test_a_frame_limit_says_used_n_of_m_frames(uploads):
    _, rows, status = animate(str(uploads / "face.png"), str(uploads / "long clip.mp4"), ["static"], crop=False,
                              max_frames=10)
    assert status.startswith("10 frames at 256x256.")
    assert "used 10 of 40 frames of long clip.mp4 (the *Max driving frames* limit is 10)" in status
    _, _, status = animate(str(uploads / "face.png"), str(uploads / "long clip.mp4"), ["static"], crop=False,
                           max_frames=40)
    assert "used" not in status  # the whole clip: nothing cut


def test_errors_name_the_uploaded_file_not_its_internal_path(uploads):
    for call in (
        lambda: animate(str(uploads / "face.png"), str(uploads / "broken.mp4"), ["static"], crop=False),
        lambda: animate(str(uploads / "broken.mp4"), str(uploads / "long clip.mp4"), ["static"], crop=False),
        lambda: rate_distortion(str(uploads / "broken.mp4"), ["static"], ["libx264"], False, 5),
        lambda: conference(str(uploads / "broken.mp4"), "static", "off", "feather", "libx264", 28, 64, 5),
        lambda: failures(None, str(uploads / "broken.mp4"), "static", True, False, 5, 25, 20),
    ):
        with pytest.raises(UserInputError) as e:
            call()
        msg = str(e.value)
        assert msg.startswith("broken.mp4 is not a readable video") and "\n" not in msg
        assert "gradio" not in msg and HASH not in msg and str(uploads) not in msg


def test_user_message_rewrites_paths(monkeypatch):
    monkeypatch.setenv("GRADIO_TEMP_DIR", "/srv/app-uploads")
    upload = f"/srv/app-uploads/{HASH}/My Clip.mov"
    got = user_message(ValueError(f"{upload} has no video stream\nmore"), [upload])
    assert got == "My Clip.mov has no video stream"
    # a path under Gradio's upload folder that is not one of the inputs is shortened too
    assert user_message(f"cannot read /srv/app-uploads/{HASH}/x.png: cut") == "cannot read x.png: cut"
    assert user_message(KeyError()) == "KeyError"


def test_progress_names_the_model_and_counts_frames(uploads):
    rec = Recorder()
    animate(str(uploads / "face.png"), str(uploads / "long clip.mp4"), ["static"], crop=False, max_frames=12,
            progress=rec)
    assert rec.calls[0] == ((0, 12), "static", "frames") and rec.calls[-1] == ((12, 12), "static", "frames")
    assert [c[0][0] for c in rec.calls] == sorted(c[0][0] for c in rec.calls)  # frames only go up
    rec = Recorder()
    failures(None, str(uploads / "long clip.mp4"), "static", True, False, 9, 25, 20, progress=rec)
    descs = [c[1] for c in rec.calls]
    assert "static" in descs and "face landmarks of the driving frames" in descs
    assert ((9, 9), "face landmarks of the predictions", "frames") in rec.calls


def test_batch_tab_cells_say_why(uploads):
    # the embedded demo with static: PSNR is infinite on frame 0 (the source itself); the cell says so
    rec = Recorder()
    t2, clips, _fig, _gallery, report, _status = batch("demo", "test", ["static"], 1, 3, ["l1", "psnr"],
                                                       progress=rec)
    row = t2.set_index("model").loc["static"]
    assert row["psnr"].startswith("∞ (exact copy in 1 of 3 frames; ") and row["l1"].replace(".", "").isdigit()
    assert clips.set_index("model").loc["static", "psnr"] == row["psnr"]
    assert "∞ (exact copy in 1 of 3 frames" in open(report, encoding="utf-8").read()
    assert rec.calls[0] == ((0, 1), "astronaut-demo: static", "clips") and rec.calls[-1][1] == "report"


def test_cli_says_used_n_of_m_frames_and_names_a_truncated_file(uploads, tmp_path, capsys):
    args = ["animate", str(uploads / "face.png"), str(uploads / "long clip.mp4"), "--models", "static", "--no-crop"]
    assert main([*args, "--max-frames", "10", "--out", str(tmp_path / "a")]) == 0
    assert "note: used 10 of 40 frames of long clip.mp4 (--max-frames 10)" in capsys.readouterr().out
    assert main(["animate", str(uploads / "face.png"), str(uploads / "cut clip.mp4"), "--models", "static",
                 "--no-crop", "--out", str(tmp_path / "b")]) == 0
    err = capsys.readouterr().err
    assert f"facelab animate: warning: {uploads / 'cut clip.mp4'} is truncated: " in err
    assert "DataWarning" not in err  # one plain line, not Python's warning format


def test_progress_of_the_conference_and_rate_distortion_jobs(uploads):
    rec = Recorder()
    conference(demo_camera_file(), "static", "off", "feather", "libx264", 30, 64, 3, progress=rec)
    descs = list(dict.fromkeys(c[1] for c in rec.calls))
    assert descs[:3] == ["sender: face crop box", "sender: static encoder", "sender: quality gate (off)"]
    assert {"server: static decoder", "server: composition (feather)", "downlink: libx264"} <= set(descs)
    assert ((3, 3), "server: static decoder", "frames") in rec.calls
    rec = Recorder()
    _, _, _, status = rate_distortion(str(uploads / "long clip.mp4"), ["static"], ["libx264"], False, 3,
                                      progress=rec)
    assert [c[:2] for c in rec.calls] == [((0, 2), "long clip: anchor libx264"), ((1, 2), "long clip: static+libx264")]
    assert "used 3 of 40 frames of long clip.mp4 (the *Max frames* limit is 3)" in status
