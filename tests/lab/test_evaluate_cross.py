"""Cross-identity evaluation: metric properties on real faces, resumable runs, the shared set's pairs."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest

from datasets.demo import demo_driving, demo_source
from lab.codec.pose import pose_of_frames
from lab.core.animate import load_animator
from lab.evaluation.cross_identity import cross_identity_metrics, evaluate_cross_identity, iter_cross_pairs


@pytest.fixture(scope="module")
def faces():
    return demo_source(), demo_driving(6)


def test_metric_properties(faces):
    src, drv = faces
    still = cross_identity_metrics(np.repeat(src[None], len(drv), 0), src, drv)
    assert all(r["status"] == "ok" for r in still)
    assert all(r["id_source"] == 0 for r in still)  # the output is the source itself
    # the still output's pose error is the driving head's deviation from the source pose
    ps, pd_ = pose_of_frames(src[None])[0], pose_of_frames(drv)
    for r, p in zip(still, pd_):
        want = np.mean([abs(ps.yaw - p.yaw), abs(ps.pitch - p.pitch), abs(ps.roll - p.roll)])
        assert r["pose_error"] == pytest.approx(want, abs=1e-6)
    assert max(r["pose_error"] for r in still) > 2  # the demo head rolls by up to 8 degrees
    # an output equal to the driving frames transfers all motion and takes the driver's identity
    copy = cross_identity_metrics(drv, src, drv)
    assert all(r["pose_error"] == 0 and r["mouth_error"] == 0 and r["id_driving"] == 0 for r in copy)


def test_no_face_output_is_counted_not_scored(faces):
    src, drv = faces
    grey = np.full_like(drv, 128)
    rows = cross_identity_metrics(grey, src, drv)
    assert all(r["status"] == "no_face_output" for r in rows)
    assert all(math.isnan(r["id_source"]) and math.isnan(r["pose_error"]) for r in rows)


def test_evaluate_is_resumable(faces, tmp_path):
    src, drv = faces
    pairs = [("demo <- demo", src, drv[:4])]
    s1 = evaluate_cross_identity([load_animator("static")], pairs, out_dir=tmp_path, progress=False)
    first = (tmp_path / "per_frame_cross.csv").read_text()
    s2 = evaluate_cross_identity([load_animator("static")], pairs, out_dir=tmp_path, progress=False)
    assert (tmp_path / "per_frame_cross.csv").read_text() == first
    assert s1 == s2 and s1[0]["frames"] == 4 and s1[0]["no_face"] == 0
    df = pd.read_csv(tmp_path / "per_frame_cross.csv")
    assert s1[0]["pose_error"] == pytest.approx(df.pose_error.mean())
    assert "| static |" in (tmp_path / "table_cross.md").read_text()
    # the report reads the run: a cross-identity section with the pooled numbers
    from lab.reports import write_report

    rep = write_report(tmp_path, tmp_path / "report", png=False)
    t = pd.read_csv(rep.tables["cross_identity"])
    assert t.iloc[0]["pair"] == "(all)" and t.iloc[0]["pose_error"] == pytest.approx(df.pose_error.mean())
    assert "Cross-identity reenactment" in rep.html.read_text()


@pytest.mark.data
def test_shared_cross_identity_pairs_and_cli(data_root, tmp_path, capsys):
    pairs = list(iter_cross_pairs(data_root, "test", max_frames=2))
    assert len(pairs) == 4  # pairs.csv: four cross_identity pairs in the test split
    for name, src, drv in pairs:
        assert " <- " in name and src.shape == (256, 256, 3) and drv.shape == (2, 256, 256, 3)
    from lab.cli import main

    assert main(["evaluate", "--protocol", "cross-identity", "--models", "static", "--data", str(data_root),
                 "--max-frames", "2", "--out", str(tmp_path / "x")]) == 0
    out = capsys.readouterr().out
    assert "ID dist. to source" in out and "| static | 0.0000 |" in out


def test_rows_record_weights_and_resume_refuses_others(faces, tmp_path):
    src, drv = faces
    pairs = [("demo <- demo", src, drv[:2])]
    evaluate_cross_identity([load_animator("static")], pairs, out_dir=tmp_path, progress=False)
    df = pd.read_csv(tmp_path / "per_frame_cross.csv")
    assert set(df.weights_id) == {"none needed"}
    df.assign(weights_id="sha256:0123456789abcdef").to_csv(tmp_path / "per_frame_cross.csv", index=False)
    with pytest.raises(ValueError, match="static rows were made with weights sha256:0123456789abcdef, this run's "
                                         "static weights are none needed"):
        evaluate_cross_identity([load_animator("static")], pairs, out_dir=tmp_path, progress=False)
