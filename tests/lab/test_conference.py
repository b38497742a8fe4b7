"""The conference pipeline end to end on the embedded upper-body clip (real portrait, known head motion)."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch
from PIL import Image, ImageFilter

from datasets.demo import demo_fps, demo_upper_body
from lab.conference.call import ConferenceConfig, load_camera_clip, preview_grid, run_conference
from lab.core.animate import load_animator

N = 10


@pytest.fixture(scope="module")
def camera():
    return demo_upper_body(N)


@pytest.fixture(scope="module")
def static_run(camera, tmp_path_factory):
    cfg = ConferenceConfig(model="static", gate="off")
    return run_conference(camera, demo_fps(), cfg, loaded=load_animator("static"),
                          work_dir=tmp_path_factory.mktemp("static"))


def test_static_run_shapes_rates_and_composition(static_run, camera):
    r = static_run
    assert r.received.shape == camera.shape and r.composed.shape == camera.shape
    assert r.heads.shape == (N, 256, 256, 3) and r.crops.shape == (N, 256, 256, 3)
    x0, y0, x1, y1 = r.box
    assert 0 <= x0 < x1 <= 512 and (x1 - x0) == (y1 - y0)
    s = r.summary
    # static sends nothing after the reference: zero motion bits, every frame "sent" (gate off)
    assert s["motion_values_per_frame"] == 0 and s["uplink_motion_kbps"] == 0
    assert s["frames_sent"] == N and s["frames_dropped_by_gate"] == 0
    assert s["uplink_reference_kbit"] > 0
    assert s["uplink_kbps_incl_reference"] == pytest.approx(s["uplink_reference_kbit"] / (N / demo_fps()))
    # the downlink's rate is what the coded file holds
    assert r.downlink_path.is_file() and s["downlink_kbps"] > 0 and s["anchor_kbps"] > 0
    # outside the crop box every composed frame is the (decoded) reference frame: the body is frame 0's
    outside = np.ones(camera.shape[1:3], bool)
    outside[y0:y1, x0:x1] = False
    assert all(np.array_equal(c[outside], r.composed[0][outside]) for c in r.composed)
    # the head of a static codec does not move, so quality falls as the camera's head moves away from frame 0
    assert r.per_frame[0]["l1_head"] < r.per_frame[N // 2]["l1_head"]
    assert s["psnr"] > 20


def test_ultralight_motion_bits_add_up(camera, tmp_path):
    la = load_animator("ultralight")  # randomly initialised here: plumbing, not quality
    cfg = ConferenceConfig(model="ultralight", gate="off", anchor=False, quant_factor=64)
    r = run_conference(camera[:6], demo_fps(), cfg, loaded=la, work_dir=tmp_path)
    bits = [row["motion_bits"] for row in r.per_frame]
    assert all(b > 0 for b in bits)
    assert r.summary["motion_values_per_frame"] == 60  # 10 keypoints x (2 + 4): FOMM's representation
    assert r.summary["uplink_motion_kbps"] == pytest.approx(sum(bits) / 1000 / (6 / demo_fps()))
    assert r.summary["anchor_kbps"] is None
    # a finer quantiser costs more bits
    fine = run_conference(camera[:6], demo_fps(), ConferenceConfig(model="ultralight", gate="off", anchor=False,
                                                                   quant_factor=1024), loaded=la, work_dir=tmp_path)
    assert fine.summary["uplink_motion_kbps"] > r.summary["uplink_motion_kbps"]


def test_gate_drops_blurred_frames_and_server_holds(camera, tmp_path):
    frames = camera.copy()
    blurred = (4, 5)
    for i in blurred:
        frames[i] = np.asarray(Image.fromarray(frames[i]).filter(ImageFilter.GaussianBlur(6)))
    cfg = ConferenceConfig(model="static", gate="landmarks", anchor=False)
    r = run_conference(frames, demo_fps(), cfg, loaded=load_animator("static"), work_dir=tmp_path)
    sent = [row["sent"] for row in r.per_frame]
    assert [i for i, s in enumerate(sent) if not s] == list(blurred)
    assert r.summary["frames_dropped_by_gate"] == len(blurred)
    for i in blurred:
        assert r.per_frame[i]["gate_reasons"]
        assert r.per_frame[i]["motion_bits"] == 0
        assert r.per_frame[i]["rendered_motion_of"] == blurred[0] - 1  # hold: the last accepted frame


def test_composition_methods_and_their_seam(camera, tmp_path):
    """A head unlike the reference frame (an untrained ultralight with FOMM's synthesis output renders a flat
    grey head): pasted naively it leaves a step at the crop box that feathering removes (the border pixels are the
    reference frame's, so the step is the camera's own)."""
    from lab.core.animate import LoadedAnimator
    from lab.models.ultralight.model import UltralightAnimator

    torch.manual_seed(0)
    la = LoadedAnimator(UltralightAnimator(generator_params={"output": "synthesis"}).eval(), "random init")
    seams = {}
    for method in ("naive", "feather"):
        cfg = ConferenceConfig(model="ultralight", gate="off", anchor=False, composition=method)
        r = run_conference(camera[:3], demo_fps(), cfg, loaded=la, work_dir=tmp_path / method)
        seams[method] = r.summary["seam"]
        camera_seam = r.summary["seam_camera"]
    assert seams["naive"] > camera_seam + 10
    assert seams["feather"] < camera_seam + 3


def test_downlink_rate_control(camera, tmp_path):
    low = run_conference(camera[:6], demo_fps(), ConferenceConfig(model="static", gate="off", downlink_crf=40),
                         loaded=load_animator("static"), work_dir=tmp_path / "low")
    high = run_conference(camera[:6], demo_fps(), ConferenceConfig(model="static", gate="off", downlink_crf=18),
                          loaded=load_animator("static"), work_dir=tmp_path / "high")
    assert low.summary["downlink_kbps"] < high.summary["downlink_kbps"]
    assert low.summary["anchor_kbps"] < high.summary["anchor_kbps"]
    assert low.summary["psnr"] < high.summary["psnr"]


def test_bad_inputs():
    with pytest.raises(ValueError, match="gate"):
        ConferenceConfig(gate="maybe")
    with pytest.raises(ValueError, match="composition"):
        ConferenceConfig(composition="glue")
    with pytest.raises(ValueError, match="uint8"):
        run_conference(np.zeros((2, 64, 64, 3), np.float32), 25.0, ConferenceConfig(model="static"),
                       loaded=load_animator("static"))
    with pytest.raises(ValueError, match="fps"):
        run_conference(np.zeros((2, 64, 64, 3), np.uint8), 0.0, ConferenceConfig(model="static"),
                       loaded=load_animator("static"))
    with pytest.raises(TypeError, match="loaded animator"):
        run_conference(np.zeros((2, 64, 64, 3), np.uint8), 25.0, ConferenceConfig(model="static"))


def test_load_camera_clip_and_preview(camera):
    frames, fps = load_camera_clip("demo", max_frames=3)
    assert frames.shape == (3, 512, 512, 3) and fps == demo_fps()
    grid = preview_grid(camera[:2], camera[:2], max_height=128)
    assert grid.shape[0] == 2 and grid.shape[2] == 256  # two 128-px columns


def test_cli_writes_the_run(tmp_path, capsys):
    from lab.cli import main

    out = tmp_path / "conf"
    assert main(["conference", "demo", "--out", str(out), "--model", "static", "--gate", "off",
                 "--max-frames", "6", "--crf", "30"]) == 0
    for f in ("downlink.mp4", "anchor.mp4", "side_by_side.mp4", "per_frame.csv", "summary.json"):
        assert (out / f).is_file(), f
    summary = json.loads((out / "summary.json").read_text())["summary"]
    assert summary["frames"] == 6 and summary["downlink_kbps"] > 0
    assert "downlink" in capsys.readouterr().out
    assert main(["conference", str(tmp_path / "missing.mp4"), "--out", str(out)]) == 2
