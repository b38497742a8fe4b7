"""Stateful metrics: per-frame state, pooled vs per-video means, reset, reports, provenance."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest

from metrics import AKD, L1, PSNR, SSIM, MetricCollection, l1
from metrics.provenance import provenance_columns


def _const(n, v, size=8):
    return np.full((n, size, size, 3), v, np.uint8)


def test_pooled_and_per_video_means_differ_on_unequal_lengths():
    m = L1()
    m.update(_const(1, 255), _const(1, 0), video="short")  # 1 frame, L1 = 1
    m.update(_const(2, 0), _const(2, 0), video="long")  # 3 frames, L1 = 0, in two batches
    m.update(_const(1, 0), _const(1, 0), video="long")
    assert m.compute() == pytest.approx(0.25)  # pooled over the 4 frames (papers)
    assert m.compute_per_video() == {"short": 1.0, "long": 0.0}
    s = m.summary()
    assert s["value"] == pytest.approx(0.25) and s["per_video_mean"] == pytest.approx(0.5)
    assert s["videos"] == 2 and s["frames"] == 4 and s["frames_used"] == 4
    assert m.frame_index.tolist() == [0, 0, 1, 2]
    m.reset()
    assert np.isnan(m.compute()) and m.values.size == 0


def test_class_attributes():
    assert L1.higher_is_better is False and PSNR.higher_is_better and SSIM.higher_is_better
    assert AKD.higher_is_better is False
    assert all(c.is_differentiable is False for c in (L1, PSNR, SSIM, AKD))


def test_collection_report_json_and_csv(tmp_path, mock_backend):
    kp = np.zeros((68, 2))
    backend = mock_backend({0: kp, 10: kp + 1, 20: None})
    pred = np.stack([np.full((8, 8, 3), v, np.uint8) for v in (10, 20, 0)])
    gt = np.zeros_like(pred)
    col = MetricCollection(["l1", "psnr", "akd"], backend=backend)
    col.update(pred, gt, video="clip")
    rep = col.report(inputs={"pred": "p", "gt": "g"})
    doc = json.loads(rep.to_json())  # strict JSON: inf -> "inf", NaN -> null
    assert [f["frame"] for f in doc["frames"]] == [0, 1, 2]
    assert doc["frames"][1]["akd"] is None and doc["frames"][1]["akd_status"] == "no_face_pred"
    assert doc["frames"][2]["psnr"] == "inf"
    assert doc["summary"]["l1"]["value"] == pytest.approx(l1(pred, gt))
    assert doc["summary"]["akd"]["value"] == pytest.approx(0.5)  # frames 0 (1 px) and 2 (0 px)
    assert doc["summary"]["akd"]["skipped_no_face_pred"] == 1
    prov = doc["provenance"]
    assert prov["image_size"] == [8, 8] and prov["frames"] == 3
    assert prov["metrics"]["akd"]["backend"] == "mock"
    assert set(prov["packages"]) >= {"dlib", "face_alignment", "lpips", "torch"}
    import lab

    assert prov["facelab_version"] == lab.__version__

    path = rep.to_csv(tmp_path / "out.csv")
    df = pd.read_csv(path)
    assert len(df) == 3 and "prov.metrics.akd.backend" in df.columns and "prov.facelab_version" in df.columns
    side = json.loads((tmp_path / "out.csv.provenance.json").read_text())
    assert side["metrics"]["akd"]["label"] == "mock backend (tests)"


def test_collection_rejects_unknown_metric():
    with pytest.raises(ValueError, match="subset of"):
        MetricCollection(["l1", "fid"])


def test_provenance_columns_flatten():
    cols = provenance_columns({"a": {"weights": [{"file": "x.pth", "sha256": "ab"}]}, "image_size": [256, 256],
                               "b": None})
    assert cols == {"prov.a.weights.0.file": "x.pth", "prov.a.weights.0.sha256": "ab",
                    "prov.image_size": "256x256", "prov.b": ""}


def test_collection_keeps_float_frames_for_pixel_metrics(mock_backend):
    """AKD/AED get uint8 frames; L1 still sees the float frames unrounded."""
    import torch

    pred = torch.full((2, 3, 8, 8), 0.001)  # rounds to 0 in uint8
    gt = torch.zeros(2, 3, 8, 8)
    col = MetricCollection(["l1", "akd"], backend=mock_backend({0: np.zeros((68, 2))}))
    col.update(pred, gt)
    assert col.compute()["l1"] == pytest.approx(0.001) and col.compute()["akd"] == 0.0
    assert "256x256" in col.report().provenance["notes"][0]


def test_evaluate_frames_chunks():
    from metrics.collection import evaluate_frames

    chunks_p = [_const(2, 255), _const(1, 0)]
    chunks_g = [_const(2, 0), _const(1, 0)]
    rep = evaluate_frames(chunks_p, chunks_g, metrics=["l1"], video="v")
    assert [r["frame"] for r in rep.frames] == [0, 1, 2]
    assert rep.summary["l1"]["value"] == pytest.approx(2 / 3)
