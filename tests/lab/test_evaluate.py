"""The reconstruction evaluation runner (mirrors lab/evaluate.py) and ``facelab evaluate``."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from lab.evaluate import evaluate_reconstruction, iter_eval_videos, reconstruct, table2_markdown


def test_static_reconstruction_is_frame_zero_and_metrics_match(data_root, tmp_path):
    from lab import create_animator
    from metrics import l1

    videos = list(iter_eval_videos(data_root, "test", max_frames=4))[:2]
    assert len(videos) == 2 and all(f.shape == (4, 256, 256, 3) for _, f in videos)
    name, frames = videos[0]
    pred = reconstruct(create_animator("static"), frames)
    assert np.array_equal(pred, np.repeat(frames[:1], 4, axis=0))  # source = frame 0, absolute motion

    res = evaluate_reconstruction(["static"], videos, out_dir=tmp_path, metrics=("l1", "akd"), progress=False)
    row = res.summary[0]
    assert row["frames"] == 8 and row["videos"] == 2
    expected = np.mean([l1(np.repeat(f[:1], 4, axis=0), f, reduction="none") for _, f in videos])
    assert row["l1"] == pytest.approx(expected, rel=1e-6)  # pooled over all frames of all videos
    df = pd.read_csv(tmp_path / "per_frame.csv")
    assert set(df.columns) >= {"model", "video", "frame", "l1", "akd", "akd_status"}
    assert df[df.frame == 0].l1.max() == 0.0 and df[df.frame == 0].akd.max() == 0.0  # frame 0 is the source
    md = (tmp_path / "table2.md").read_text()
    assert md.startswith("| method | L1 | AKD |") and "| static |" in md
    assert (tmp_path / "provenance.json").is_file()


def test_resume_skips_finished_videos(tmp_path):
    rng = np.random.default_rng(0)
    videos = [(f"v{i}", (rng.random((3, 256, 256, 3)) * 255).astype(np.uint8)) for i in range(2)]
    a = evaluate_reconstruction(["static"], videos, out_dir=tmp_path, metrics=("l1", "psnr"), progress=False)
    b = evaluate_reconstruction(["static"], videos, out_dir=tmp_path, metrics=("l1", "psnr"), progress=False)
    assert b.provenance["render_seconds_this_run"]["static"] == 0.0  # nothing recomputed
    assert a.summary[0]["l1"] == b.summary[0]["l1"]
    assert len(pd.read_csv(tmp_path / "per_frame.csv")) == 6
    assert "| static |" in table2_markdown(b.summary, ("l1", "psnr"))
    # an interrupted attempt left v1 half-scored: the rerun scores v1 again, without duplicate rows
    df = pd.read_csv(tmp_path / "per_frame.csv")
    df.iloc[:-1].to_csv(tmp_path / "per_frame.csv", index=False)
    c = evaluate_reconstruction(["static"], videos, out_dir=tmp_path, metrics=("l1", "psnr"), progress=False)
    again = pd.read_csv(tmp_path / "per_frame.csv")
    assert len(again) == 6 and not again.duplicated(["model", "video", "frame"]).any()
    assert c.provenance["render_seconds_this_run"]["static"] > 0 and c.summary[0]["l1"] == a.summary[0]["l1"]


def test_evaluate_cli(data_root, tmp_path, capsys):
    from lab.cli import main

    rc = main(["evaluate", "--models", "static", "--data", str(data_root), "--out", str(tmp_path),
               "--max-frames", "2", "--metrics", "l1"])
    assert rc == 0
    out = capsys.readouterr().out
    assert "| static |" in out and "offline" in out
    assert main(["evaluate", "--models", "static", "--out", str(tmp_path), "--checkpoint", "static"]) == 2
