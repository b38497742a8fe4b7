"""The animation pipeline the app and CLI share (mirrors lab/core/animate.py)."""

from __future__ import annotations

import numpy as np
import pytest

from lab.core.animate import animate_frames, load_animator, side_by_side, to_tensor, to_uint8
from lab.evaluation.compare import run_models


def test_uint8_tensor_roundtrip_and_shape_errors():
    rng = np.random.default_rng(0)
    a = (rng.random((3, 8, 10, 3)) * 255).astype(np.uint8)
    t = to_tensor(a)
    assert t.shape == (3, 3, 8, 10) and float(t.max()) <= 1.0
    assert np.array_equal(to_uint8(t), a)
    assert to_tensor(a[0]).shape == (1, 3, 8, 10)
    with pytest.raises(ValueError, match=r"\(N, H, W, 3\)"):
        to_tensor(np.zeros((8, 10)))


def test_side_by_side_tiles_with_labels():
    f = np.full((4, 32, 32, 3), 50, np.uint8)
    g = np.full((5, 32, 32, 3), 200, np.uint8)
    out = side_by_side([("a", f), ("b", g)], bar=10)
    assert out.shape == (4, 42, 64, 3)  # shortest clip, label bar on top
    assert (out[:, 10:, :32] == 50).all() and (out[:, 10:, 32:] == 200).all()
    with pytest.raises(ValueError, match="column 'c'"):
        side_by_side([("a", f), ("c", np.zeros((4, 16, 16, 3), np.uint8))])


def test_animate_frames_checks_size_and_load_animator_says_when_untrained(tmp_path, monkeypatch):
    monkeypatch.setenv("FACELAB_WEIGHTS", str(tmp_path))
    monkeypatch.setenv("TORCH_HOME", str(tmp_path))
    static = load_animator("static")
    assert static.weights == "none needed" and static.trained
    src = np.zeros((256, 256, 3), np.uint8)
    drv = np.stack([src + i for i in range(3)])
    assert np.array_equal(animate_frames(static.model, src, drv, batch_size=2), np.repeat(src[None], 3, 0))
    with pytest.raises(ValueError, match="expects 256x256"):
        animate_frames(static.model, np.zeros((64, 64, 3), np.uint8), drv)
    fomm = load_animator("fomm")  # official weights are never in the repo; the search folders are empty here
    assert fomm.weights == "random init" and not fomm.trained and "vox-cpk.pth.tar" in fomm.note
    res = run_models(["static"], src, drv, metrics=("l1",))
    assert res[0].model == "static" and res[0].metrics["l1"] == pytest.approx(np.mean([0, 1, 2]) / 255)
