"""``facelab crop``: output files, one-line errors, and acceptance on every clip of the shared set."""

from __future__ import annotations

import csv
import importlib.util
import json
import os
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from lab.cli import main

pytestmark = pytest.mark.skipif(
    importlib.util.find_spec("dlib") is None or importlib.util.find_spec("av") is None,
    reason="needs dlib and PyAV (the face and video extras)",
)

MAX_FRAMES = 8  # frames cropped per shared clip in the acceptance test


def _crop(capsys, *args) -> tuple[int, str, str]:
    rc = main(["crop", *map(str, args)])
    out = capsys.readouterr()
    return rc, out.out, out.err


def _face_centre(png: Path) -> tuple[float, float] | None:
    """Centre of the visible face: dlib's box, clipped to the image (it overshoots at the border)."""
    from datasets.face_detect import detect_faces

    img = np.asarray(Image.open(png).convert("RGB"))
    faces = detect_faces(img) or detect_faces(img, detector="cnn")
    if not faces:
        return None
    h, w = img.shape[:2]
    b = faces[0]
    return ((max(b.x0, 0) + min(b.x1, w)) / 2, (max(b.y0, 0) + min(b.y1, h)) / 2)


def _check_output(out_dir: Path, n: int, size: int = 256) -> dict:
    """Frames ``000000.png ...`` of ``size``², box.json consistent, a face in the middle 40 % of a frame."""
    pngs = sorted(out_dir.glob("*.png"))
    assert [p.name for p in pngs] == [f"{i:06d}.png" for i in range(n)]
    assert Image.open(pngs[0]).size == (size, size)
    meta = json.loads((out_dir / "box.json").read_text())
    assert meta["frames_written"] == n and meta["size"] == size
    x0, y0, x1, y1 = meta["box"]
    w, h = meta["source_size"]
    assert 0 <= x0 < x1 <= w and 0 <= y0 < y1 <= h and x1 - x0 == y1 - y0
    for png in pngs[:: max(1, n // 3)]:  # the detector may miss a frame: try a few
        c = _face_centre(png)
        if c is not None:
            assert 0.3 * size <= c[0] <= 0.7 * size and 0.3 * size <= c[1] <= 0.7 * size, (png, c)
            return meta
    raise AssertionError(f"no face found in the crops of {out_dir}")


@pytest.fixture(scope="module")
def portrait_clip(tmp_path_factory) -> Path:
    """The astronaut, small and off-centre on a 960x540 canvas, 6 frames of a slow pan."""
    from skimage import data

    from datasets.video import write_video

    img = Image.fromarray(data.astronaut()).resize((384, 384), Image.LANCZOS)  # face box ~66 px
    frames = []
    for i in range(6):
        canvas = Image.new("RGB", (960, 540), (70, 80, 90))
        canvas.paste(img, (520 + 4 * i, 60))
        frames.append(np.asarray(canvas))
    path = tmp_path_factory.mktemp("cli") / "talk.mp4"
    write_video(path, frames, 25)
    return path


def test_help(capsys):
    with pytest.raises(SystemExit) as e:
        main(["crop", "--help"])
    assert e.value.code == 0
    text = capsys.readouterr().out
    assert "box.json" in text and "--margin" in text and "--max-frames" in text


def test_crop_writes_frames_and_box(capsys, tmp_path, portrait_clip):
    rc, out, err = _crop(capsys, portrait_clip, tmp_path / "out", "--size", 128)
    assert rc == 0, err
    assert "wrote 6 frames 128x128" in out
    meta = _check_output(tmp_path / "out", 6, size=128)
    assert meta["detector"] == "hog" and meta["margin"] == pytest.approx(0.4) and meta["fps"] == pytest.approx(25)
    assert meta["source_size"] == [960, 540] and meta["box"][2] - meta["box"][0] < 300
    # a second run into the same folder needs --overwrite, which replaces the frames
    rc, _, err = _crop(capsys, portrait_clip, tmp_path / "out")
    assert rc == 2 and err.strip() == f"facelab crop: error: {tmp_path / 'out'} is not empty (pass --overwrite to " \
                                      "replace its frames)"
    rc, _, _ = _crop(capsys, portrait_clip, tmp_path / "out", "--overwrite", "--max-frames", 2)
    assert rc == 0 and len(list((tmp_path / "out").glob("*.png"))) == 2


def test_bad_inputs_exit_with_one_line(capsys, tmp_path):
    (tmp_path / "notes.txt").write_text("hi")
    (tmp_path / "cut.mp4").write_bytes(b"\x00\x00\x00\x18ftypmp42" + b"\x00" * 50)
    Image.new("RGB", (80, 80), (128, 128, 128)).save(tmp_path / "wall.png")
    for name, words in [("notes.txt", "is not a video or image"), ("cut.mp4", "is not a readable video"),
                        ("wall.png", "no face found in"), ("missing.mp4", "does not exist")]:
        rc, out, err = _crop(capsys, tmp_path / name, tmp_path / f"out_{name}")
        assert rc == 2 and out == ""
        lines = err.strip().splitlines()
        assert len(lines) == 1 and lines[0].startswith("facelab crop: error: ") and words in lines[0], err
        assert not (tmp_path / f"out_{name}").exists()
    rc, _, err = _crop(capsys, tmp_path / "wall.png", tmp_path / "o", "--max-frames", 0)
    assert rc == 2 and "--max-frames must be >= 1" in err


# ---------------------------------------------------------------------------------------------- acceptance
def _shared_clips() -> list[str]:
    root = Path(os.environ.get("FACELAB_DATA") or Path(__file__).resolve().parents[2].parent / "shared" / "data")
    if not (root / "MANIFEST.csv").is_file():
        return ["<no shared data>"]  # the data_root fixture skips (or fails under CI)
    with (root / "MANIFEST.csv").open(newline="") as f:
        return [r["file"] for r in csv.DictReader(f) if r["kind"] in ("clip", "frames")]


@pytest.mark.data
@pytest.mark.filterwarnings("ignore:.*sad.mp4 is truncated")  # true of the source file; tested in test_video
@pytest.mark.parametrize("file", _shared_clips())
def test_crop_every_shared_clip(capsys, tmp_path, data_root, file):
    """Every clip either gives 256x256 frames with the face in the middle, or a one-line reason."""
    rc, out, err = _crop(capsys, data_root / file, tmp_path / "out", "--max-frames", MAX_FRAMES)
    if rc != 0:
        lines = err.strip().splitlines()
        assert len(lines) == 1 and lines[0].startswith("facelab crop: error: "), err
        return
    _check_output(tmp_path / "out", MAX_FRAMES)


@pytest.mark.data
def test_uncropped_1080p_clip_is_cropped_around_the_face(capsys, tmp_path, data_root):
    from datasets.video import open_media

    src = data_root / "clips/jixinya+EAMM/M030_sad_3_001.mp4"
    rc, _, err = _crop(capsys, src, tmp_path / "out", "--max-frames", MAX_FRAMES)
    assert rc == 0, err
    meta = _check_output(tmp_path / "out", MAX_FRAMES)
    x0, y0, x1, y1 = meta["box"]
    assert meta["source_size"] == [1920, 1080]
    assert (x1 - x0) * (y1 - y0) < 0.4 * 1920 * 1080  # much smaller than the frame
    from datasets.face_detect import detect_faces

    face = detect_faces(open_media(src).frame(0))[0]  # the face, found independently on a full frame
    assert x0 <= face.x0 and y0 <= face.y0 and face.x1 <= x1 and face.y1 <= y1
    assert len(meta["detections"]) == MAX_FRAMES
