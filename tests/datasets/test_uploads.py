"""datasets.uploads: validation of user files and their conversion to square frames."""

from __future__ import annotations

import importlib.util

import numpy as np
import pytest
from PIL import Image

from datasets.errors import DataError
from datasets.uploads import frames_used_note, prepare_upload, upload_frames, upload_image, validate_upload

needs_dlib = pytest.mark.skipif(importlib.util.find_spec("dlib") is None, reason="dlib (the face extra) is absent")


def test_validation_errors(tmp_path, media_dir):
    (tmp_path / "x.gif").write_bytes(b"GIF89a")
    (tmp_path / "e.mp4").write_bytes(b"")
    cases = {
        tmp_path / "x.gif": "not a supported upload",
        tmp_path / "e.mp4": "empty file",
        tmp_path / "none.png": "does not exist",
        tmp_path: "is a folder",
    }
    for path, words in cases.items():
        with pytest.raises(DataError, match=words) as e:
            validate_upload(path)
        assert "\n" not in str(e.value)
    with pytest.raises(DataError, match="uploads are limited to"):
        validate_upload(media_dir / "clip.mp4", max_bytes=100)
    m = validate_upload(media_dir / "clip.mp4", max_frames=10)
    assert m.kind == "video" and len(m) == 10
    assert validate_upload(media_dir / "frames", allow_folders=True).kind == "frames"


def test_without_face_crop_the_centre_square_is_used(media_dir):
    r = prepare_upload(media_dir / "clip.mp4", crop=False, max_frames=5)
    assert r.detector == "none" and r.box == (8, 0, 56, 48)
    frames = upload_frames(media_dir / "clip.mp4", size=64, crop=False, max_frames=5)
    assert frames.shape == (5, 64, 64, 3) and frames.dtype == np.uint8


@needs_dlib
def test_face_crop_of_an_uploaded_portrait(tmp_path):
    from skimage import data

    Image.fromarray(data.astronaut()).save(tmp_path / "me.JPG", quality=95)  # upper-case extension
    img = upload_image(tmp_path / "me.JPG")
    assert img.shape == (256, 256, 3) and img.dtype == np.uint8
    r = prepare_upload(tmp_path / "me.JPG")
    assert r.detector == "hog" and r.box[2] - r.box[0] < 512
    Image.new("RGB", (64, 64), (90, 90, 90)).save(tmp_path / "wall.png")
    with pytest.raises(DataError, match="no face found in .*wall.png"):
        upload_image(tmp_path / "wall.png")


def test_frames_used_note_says_what_the_frame_limit_cut(media_dir):
    # a clip longer than the limit: "used N of M frames"; the whole clip, or a limit above it: nothing to say
    cut = validate_upload(media_dir / "clip.mp4", max_frames=10)
    assert frames_used_note(cut) == "used 10 of 30 frames of clip.mp4"
    assert frames_used_note(validate_upload(media_dir / "clip.mp4", max_frames=10), used=8, name="a.mp4") == (
        "used 8 of 30 frames of a.mp4")
    assert frames_used_note(validate_upload(media_dir / "clip.mp4", max_frames=30)) is None
    assert frames_used_note(validate_upload(media_dir / "clip.mp4")) is None
    # an opened upload goes through validate_upload/prepare_upload as it is (capped), not opened again
    m = validate_upload(media_dir / "clip.mp4", max_frames=12)
    assert len(validate_upload(m, max_frames=5)) == 5 and len(prepare_upload(m, crop=False)) == 12
