"""AKD and AED on known landmarks/embeddings (mocked backend) and the skip rules."""

from __future__ import annotations

import math

import numpy as np
import pytest

from metrics import AED, AKD, aed, akd
from metrics.functional.akd import _akd_compute, _akd_update

KP = np.stack([np.arange(68.0), np.arange(68.0) * 2], axis=1)  # (68, 2) known landmarks


def test_akd_is_mean_absolute_coordinate_difference(mock_backend, make_frames):
    shift_xy = KP + np.array([4.0, 4.0])  # 4 px in x and y -> AKD 4
    shift_x = KP + np.array([4.0, 0.0])  # 4 px in x only -> AKD 2 (mean over the 68x2 coordinates)
    rng = np.random.default_rng(0)
    noisy = KP + rng.normal(size=KP.shape)
    backend = mock_backend({0: KP, 1: shift_xy, 2: shift_x, 3: noisy})
    gt = make_frames([0, 0, 0, 0])
    pred = make_frames([0, 1, 2, 3])
    values = akd(pred, gt, backend=backend, reduction="none")
    np.testing.assert_allclose(values[:3], [0.0, 4.0, 2.0])
    assert values[3] == pytest.approx(np.abs(noisy - KP).sum() / 136)
    assert akd(pred, gt, backend=backend) == pytest.approx(values.mean())


def test_akd_skips_frames_without_face_and_counts_them(mock_backend, make_frames):
    backend = mock_backend({0: KP, 1: KP + 3.0, 9: None})
    gt = make_frames([0, 0, 9, 0, 9])
    pred = make_frames([1, 9, 1, 1, 9])  # frame 1: no face generated; 2 and 4: no face in GT
    m = AKD(backend)
    vals = m.update(pred, gt)
    assert np.isnan(vals[[1, 2, 4]]).all()
    assert m.status.tolist() == ["ok", "no_face_pred", "no_face_gt", "ok", "no_face_gt"]
    assert m.compute() == pytest.approx(3.0)  # mean over the two scored frames only
    c = m.counts()
    assert c == {"frames": 5, "frames_used": 2, "skipped_no_face_pred": 1, "skipped_no_face_gt": 2}
    s = m.summary()
    assert s["skipped_no_face_pred"] == 1 and s["skipped_no_face_gt"] == 2
    assert s["backend"] == "mock backend (tests)"


def test_akd_all_skipped_is_nan(mock_backend, make_frames):
    backend = mock_backend({0: KP, 9: None})
    assert math.isnan(akd(make_frames([9]), make_frames([0]), backend=backend))
    values, status = _akd_update([None], [KP])
    assert math.isnan(_akd_compute(values)) and status.tolist() == ["no_face_pred"]


def test_akd_rejects_mismatched_landmarks():
    with pytest.raises(ValueError, match=r"\(K, 2\)"):
        _akd_update([KP[:10]], [KP])


def test_aed_is_squared_l2(mock_backend, make_frames):
    e0 = np.zeros(128)
    e0[0] = 1.0
    e1 = np.zeros(128)
    e1[1] = 1.0  # |e0 - e1|^2 = 2 (not sqrt 2)
    e2 = e0 * 0.5  # |e0 - e2|^2 = 0.25
    backend = mock_backend({0: e0, 1: e1, 2: e2, 9: None})
    pred, gt = make_frames([1, 2, 0, 9]), make_frames([0, 0, 0, 0])
    np.testing.assert_allclose(aed(pred, gt, backend=backend, reduction="none")[:3], [2.0, 0.25, 0.0])
    m = AED(backend)
    m.update(pred, gt)
    assert m.compute() == pytest.approx(2.25 / 3)
    assert m.counts()["skipped_no_face_pred"] == 1
