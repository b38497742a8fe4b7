"""datasets.face_detect and datasets.crop: box geometry, crop↔frame mapping, detection on real faces."""

from __future__ import annotations

import importlib.util
import json

import numpy as np
import pytest

from datasets.crop import (
    DEFAULT_MARGIN,
    DEFAULT_SHIFT_UP,
    center_square_box,
    crop_array,
    crop_frame,
    crop_frames,
    crop_media,
    crop_to_frame,
    face_crop_box,
    frame_to_crop,
    paste_back,
)
from datasets.errors import DataError
from datasets.face_detect import Box


def _box(cx, cy, s):
    return Box(cx - s / 2, cy - s / 2, cx + s / 2, cy + s / 2)


def _inside(inner, outer) -> bool:
    return outer[0] <= inner[0] and outer[1] <= inner[1] and inner[2] <= outer[2] and inner[3] <= outer[3]


# ---------------------------------------------------------------------------------------------- geometry
def test_box_is_square_with_margin_and_raised_centre():
    x0, y0, x1, y1 = face_crop_box([_box(500, 400, 100)] * 5, (1000, 800))
    assert x1 - x0 == y1 - y0 == round(100 * (1 + 2 * DEFAULT_MARGIN))
    assert (x0 + x1) / 2 == pytest.approx(500, abs=1)
    assert (y0 + y1) / 2 == pytest.approx(400 - DEFAULT_SHIFT_UP * 100, abs=1)


def test_box_is_shifted_inside_then_shrunk():
    assert face_crop_box([_box(30, 30, 40)], (400, 300)) == (0, 0, 72, 72)  # top-left corner: shifted
    x0, y0, x1, y1 = face_crop_box([_box(20, 150, 40)], (400, 300))  # against the left edge
    assert x0 == 0 and x1 - x0 == y1 - y0 == 52  # shrunk to margin 0.15 to stay nearly centred
    assert face_crop_box([_box(200, 30, 40)], (400, 300)) == (164, 0, 236, 72)  # at the top: shifted only
    assert face_crop_box([_box(112, 112, 140)], (224, 224)) == (0, 0, 224, 224)  # too big: the whole frame
    assert face_crop_box([_box(100, 120, 200)], (300, 160)) == (20, 0, 180, 160)  # shrunk to the height


def test_face_at_the_edge_of_a_tight_clip_stays_nearly_centred():
    face = _box(197, 120, 125)  # styletalk furious_talk1_clip2: face against the right edge of 256x256
    x0, y0, x1, y1 = face_crop_box([face], (256, 256))
    side = x1 - x0
    assert x1 == 256 and side >= 125 * 1.3 - 1  # never tighter than margin 0.15
    assert abs(197 - (x0 + x1) / 2) <= 0.15 * side
    assert face_crop_box([_box(128, 136, 150)], (256, 256)) == (0, 0, 256, 256)  # a centred tight clip: whole


def test_box_ignores_outliers_and_contains_the_moving_face():
    faces = [_box(500 + dx, 400, 100) for dx in (-30, -15, 0, 15, 30)] + [_box(100, 100, 30)]  # one false hit
    box = face_crop_box(faces, (1000, 800))
    for f in faces[:5]:
        assert _inside(f.as_tuple(), box)
    assert not _inside(faces[5].as_tuple(), box)
    with pytest.raises(ValueError):
        face_crop_box([], (10, 10))


def test_center_square_box():
    assert center_square_box(1920, 1080) == (420, 0, 1500, 1080)
    assert center_square_box(720, 1280) == (0, 280, 720, 1000)


def test_crop_and_paste_back_are_one_mapping():
    rng = np.random.default_rng(0)
    frame = rng.integers(0, 255, (320, 400, 3), dtype=np.uint8)
    box = (100, 50, 356, 306)  # 256 px: no resampling
    crop = crop_frame(frame, box, 256)
    assert crop.shape == (256, 256, 3) and np.array_equal(crop, frame[50:306, 100:356])
    assert np.array_equal(paste_back(frame, crop, box), frame)
    edited = paste_back(frame, np.zeros((64, 64, 3), np.uint8), box)  # any crop size is resized to the box
    assert edited[50:306, 100:356].max() == 0 and np.array_equal(edited[:50], frame[:50])
    assert frame[50:306, 100:356].max() > 0  # the input is not modified
    pts = np.array([[0.0, 0.0], [255.0, 255.0], [17.5, 99.0]])
    big = (10, 20, 522, 532)  # 512 px box (mapping only, no frame)
    assert np.allclose(frame_to_crop(crop_to_frame(pts, big, 256), big, 256), pts)
    assert np.allclose(crop_to_frame(np.array([0.0, 0.0]), big, 256), [10.5, 20.5])  # pixel centres
    with pytest.raises(ValueError, match="not inside"):
        crop_frame(frame, (350, 0, 450, 100))
    with pytest.raises(ValueError, match="square"):
        crop_frame(frame, box, (256, 128))


# ---------------------------------------------------------------------------------------------- detection
needs_dlib = pytest.mark.skipif(importlib.util.find_spec("dlib") is None, reason="dlib (the face extra) is absent")


@needs_dlib
def test_detect_faces_on_a_real_portrait():
    from skimage import data

    from datasets.face_detect import detect_faces

    faces = detect_faces(data.astronaut())
    assert len(faces) == 1
    assert faces[0].as_tuple() == pytest.approx((179, 83, 267, 171), abs=6)
    assert detect_faces(np.full((200, 200, 3), 128, np.uint8)) == []
    big = detect_faces(np.asarray(_upscale(data.astronaut(), 3)))  # 1536 px: downscaled to detect, mapped back
    assert _iou(big[0], faces[0].scaled(3)) > 0.6


def _iou(a: Box, b: Box) -> float:
    ix = max(0.0, min(a.x1, b.x1) - max(a.x0, b.x0))
    iy = max(0.0, min(a.y1, b.y1) - max(a.y0, b.y0))
    return ix * iy / (a.area + b.area - ix * iy)


def _upscale(img, k):
    from PIL import Image

    return Image.fromarray(img).resize((img.shape[1] * k, img.shape[0] * k), Image.BILINEAR)


@needs_dlib
def test_main_face_prefers_confident_detections():
    from datasets.face_detect import Box, main_face

    real, emblem = Box(179, 83, 267, 171, 1.5, "hog"), Box(123, 330, 228, 435, 0.02, "hog")
    assert main_face([emblem, real]) == real  # bigger but barely a detection
    near, far = Box(0, 0, 100, 100, 0.9, "hog"), Box(200, 0, 260, 60, 1.4, "hog")
    assert main_face([far, near]) == near  # two real faces: the larger one
    assert main_face([]) is None


def test_crop_of_the_coded_upper_body_demo_finds_the_face(tmp_path):
    """After H.264, dlib's HOG also fires (score ~0) on the suit's NASA patch, which is bigger than the face:
    the crop box must still be the face's (the conference demo's input)."""
    from datasets.demo import ASTRONAUT_BOX, demo_upper_body
    from datasets.video import write_video

    path = tmp_path / "camera.mp4"
    write_video(path, demo_upper_body(6), fps=25, crf=12)
    box = crop_media(path, size=256).box
    cx, cy = (box[0] + box[2]) / 2, (box[1] + box[3]) / 2
    fx, fy = (ASTRONAUT_BOX[0] + ASTRONAUT_BOX[2]) / 2, (ASTRONAUT_BOX[1] + ASTRONAUT_BOX[3]) / 2
    assert abs(cx - fx) < 20 and abs(cy - fy) < 20, box


def test_crop_array_and_crop_frames():
    from skimage import data

    img = data.astronaut()
    r = crop_array(img)
    assert r.detector == "hog" and len(r) == 1 and r.source_size == (512, 512)
    assert _inside(r.detections[0][1].as_tuple(), r.box)
    out = crop_frames(np.stack([img, img]), size=(128, 128))
    assert out.shape == (2, 128, 128, 3) and out.dtype == np.uint8
    json.dumps(r.to_dict())
    with pytest.raises(DataError, match="no face found in the frames"):
        crop_array(np.full((1, 96, 96, 3), 128, np.uint8), detector="hog")


@needs_dlib
@pytest.mark.parametrize(
    "size,face,center",
    [((1920, 1080), 110, (1400, 380)), ((720, 1280), 150, (360, 700)), ((224, 224), 90, (112, 100))],
    ids=["1080p-small-face", "portrait-720x1280", "tight-224"],
)
def test_crop_media_finds_the_face(tmp_path, make_clip, canvas, size, face, center):
    from datasets.face_detect import detect_faces

    w, h = size
    frames = [canvas(w, h, face, (center[0] + 3 * i, center[1])) for i in range(4)]  # a slowly moving head
    make_clip(tmp_path / "c.mp4", frames)
    r = crop_media(tmp_path / "c.mp4", size=256)
    x0, y0, x1, y1 = r.box
    assert 0 <= x0 < x1 <= w and 0 <= y0 < y1 <= h and x1 - x0 == y1 - y0
    assert len(r.detections) == 4 and r.fps == pytest.approx(25)
    for _, b in r.detections:
        assert _inside(b.as_tuple(), r.box)
    if size != (224, 224):
        assert x1 - x0 < 0.5 * min(w, h)  # cropped around the face, not the frame
    out = r.read()
    assert out.shape == (4, 256, 256, 3)
    found = detect_faces(out[0])
    assert found, "no face in the crop"
    cx, cy = found[0].center
    assert 0.3 * 256 < cx < 0.7 * 256 and 0.3 * 256 < cy < 0.7 * 256


@needs_dlib
def test_no_face_is_a_one_line_data_error(tmp_path, make_clip, gray):
    make_clip(tmp_path / "wall.mp4", gray(3, 64, 64))
    with pytest.raises(DataError, match=r"^no face found in .*wall\.mp4$"):
        crop_media(tmp_path / "wall.mp4")  # auto: HOG, then the CNN on a few frames
    r = crop_media(tmp_path / "wall.mp4", detector="none", size=32)
    assert r.box == (0, 0, 64, 64) and r.read().shape == (3, 32, 32, 3)
