"""Metrics on real frames of the shared data set (dlib backend): identity gives 0, a known shift its AKD."""

from __future__ import annotations

import numpy as np
import pytest

from metrics import AKD, MetricCollection, aed, akd, l1

pytestmark = pytest.mark.data


def test_identical_frames_score_zero(obama_frames):
    frames = obama_frames[:3]
    col = MetricCollection(["l1", "akd", "aed"], backend="dlib", aed_backend="dlib")
    col.update(frames, frames.copy(), video="obama")
    s = col.report().summary
    assert s["l1"]["value"] == 0.0
    assert s["akd"]["value"] == 0.0 and s["akd"]["frames_used"] == 3
    assert s["aed"]["value"] == 0.0 and s["aed"]["frames_used"] == 3


def test_shift_by_4px_in_x_and_y_gives_akd_4(obama_frames):
    """AKD is the mean over the 68x2 coordinates: 4 px in x *and* y gives 4; 4 px in x only gives 2."""
    gt = obama_frames[:3]
    both = np.roll(gt, (4, 4), axis=(1, 2))
    x_only = np.roll(gt, 4, axis=2)
    assert akd(both, gt, backend="dlib") == pytest.approx(4.0, abs=1.0)
    assert akd(x_only, gt, backend="dlib") == pytest.approx(2.0, abs=1.0)
    assert l1(both, gt) > 0.01
    assert 0 < aed(both, gt, backend="dlib") < 0.05  # same person, 4 px apart: a small identity distance


def test_frame_without_face_is_skipped_and_counted(obama_frames):
    gt = obama_frames[:2]
    pred = gt.copy()
    pred[1] = 127  # flat grey: no face generated
    m = AKD("dlib")
    values = m.update(pred, gt)
    assert values[0] == 0.0 and np.isnan(values[1])
    assert m.counts()["skipped_no_face_pred"] == 1 and m.compute() == 0.0
