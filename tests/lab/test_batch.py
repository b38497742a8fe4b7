"""Batch job: evaluation + failure flags + report in one call, on the embedded demo clip."""

from __future__ import annotations

import pandas as pd
import pytest

from lab.core.animate import load_animator
from lab.reports.batch import batch_videos, run_batch


def _loaded(*names):
    return [load_animator(n) for n in names]


@pytest.fixture(scope="module")
def batch(tmp_path_factory):
    out = tmp_path_factory.mktemp("batch")
    res = run_batch(_loaded("static", "ultralight"), batch_videos("demo", max_frames=5), out,
                    metrics=("l1", "ssim"), png=False, progress=False)
    return out, res


def test_batch_writes_evaluation_failures_and_report(batch):
    out, res = batch
    per_frame = pd.read_csv(out / "per_frame.csv")
    assert set(per_frame.model) == {"static", "ultralight"} and len(per_frame) == 10
    # the report's Table 2 is the pooled per-frame mean
    table2 = pd.read_csv(res.report.tables["table2"])
    for m in ("static", "ultralight"):
        want = per_frame[per_frame.model == m].l1.mean()
        assert table2.set_index("model").loc[m, "l1"] == pytest.approx(want)
    # failure analysis of the first model's predictions, one folder per clip, shown in the report
    assert [p.name for p in res.failure_dirs] == ["astronaut-demo"]
    failures = pd.read_csv(res.failure_dirs[0] / "failures.csv")
    assert len(failures) == 5 and "large_pose" in failures
    html = res.report.html.read_text()
    assert "astronaut-demo" in html and "ultralight" in html and "failure" in html.lower()


def test_batch_resumes_without_rendering_again(batch):
    out, res = batch
    before = (out / "per_frame.csv").read_text()
    again = run_batch(_loaded("static", "ultralight"), batch_videos("demo", max_frames=5), out,
                      metrics=("l1", "ssim"), png=False, progress=False)
    assert (out / "per_frame.csv").read_text() == before
    assert again.failure_dirs == []  # nothing re-rendered, the earlier failure folder is reused in the report
    assert "astronaut-demo" in again.report.html.read_text()


def test_batch_errors(tmp_path):
    with pytest.raises(ValueError, match="failures_model"):
        run_batch(_loaded("static"), batch_videos("demo", max_frames=2), tmp_path, failures_model="fomm")
    with pytest.raises(FileNotFoundError, match="not found"):
        list(batch_videos(tmp_path / "nowhere"))


def test_cli_batch_on_demo(tmp_path, capsys):
    from lab.cli import main

    assert main(["batch", "--data", "demo", "--models", "static", "--metrics", "l1", "--max-frames", "3",
                 "--out", str(tmp_path / "b"), "--no-png"]) == 0
    out = capsys.readouterr().out
    assert "| static |" in out and "report.html" in out
    assert (tmp_path / "b" / "report" / "report.html").is_file()
