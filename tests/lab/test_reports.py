"""Batch metric reports (mirrors lab/reports/) and ``facelab report`` (lab/cli/report.py).

One real evaluation run (``static`` vs randomly initialised ``ultralight`` on two demo clips of 4 and 2
frames; L1, PSNR, SSIM and the dlib AKD/AED) is built once; every number the report shows is checked against
what pandas computes from that run's own ``per_frame.csv`` / ``per_video.csv``.
"""

from __future__ import annotations

import argparse
import base64
import json
import math
import os
import shutil
from html.parser import HTMLParser
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from lab.reports import (
    PAPER_NOTE,
    PAPER_TABLE2,
    breakdown_table,
    claim_check,
    failure_counts,
    load_run,
    load_runs,
    match_manifest,
    metric_cell,
    per_clip_table,
    rd_summary_table,
    table2_table,
    table2_text,
    write_report,
)

MODELS = ("static", "ultralight")
CLIPS = ("demo-clip-1", "demo-clip-2")
METRICS = ("l1", "psnr", "ssim", "akd", "aed")
FRAMES = (4, 2)  # per clip: unequal, so pooling over frames differs from averaging clip means
PNG_MAGIC = b"\x89PNG\r\n\x1a\n"
_VOID = {"meta", "img", "br", "hr", "input", "link", "col", "area", "base", "wbr", "source", "track", "embed"}


@pytest.fixture(scope="module")
def eval_run(tmp_path_factory) -> Path:
    """A real ``evaluate_reconstruction`` run folder: 2 models × 2 demo clips of 4 and 2 frames, 256 px (~10 s)."""
    from datasets.demo import demo_driving
    from lab.core.animate import load_animator
    from lab.evaluation.reconstruction import evaluate_reconstruction

    frames = demo_driving(sum(FRAMES))
    out = tmp_path_factory.mktemp("eval")
    clips = [(CLIPS[0], frames[: FRAMES[0]]), (CLIPS[1], frames[FRAMES[0] :])]
    evaluate_reconstruction([load_animator(m) for m in MODELS], clips, out_dir=out, metrics=METRICS, progress=False)
    return out


def _rd_rows() -> list[dict]:
    """Per-clip RD rows as lab/evaluation/rate_distortion.py writes them: animation curves ``model+codec``,
    anchors ``codec``."""
    rows = []
    for model, kind, codec, k in (("fomm", "animation", "libx264", 2.0), ("libx264", "anchor", "libx264", 8.0)):
        curve = f"{model}+{codec}" if kind == "animation" else codec
        for lvl in range(3):
            for i, v in enumerate(CLIPS):
                rows.append({"model": model, "kind": kind, "weights": "random init" if kind == "animation" else "",
                             "codec": codec, "curve": curve, "level": lvl, "crf": 40 - 5 * lvl, "video": v,
                             "kbps": k * (lvl + 1) + i, "ref_kbps": 1.0 + lvl, "motion_kbps": 0.5,
                             "psnr": 20.0 + lvl + i, "ssim": 0.5 + 0.1 * lvl})
    return rows


@pytest.fixture
def extra_run(tmp_path) -> Path:
    """Hand-written rate–distortion and failure files in the formats of lab/evaluation/rate_distortion.py,
    lab/evaluation/failures.py."""
    from PIL import Image

    d = tmp_path / "rd_fail"
    d.mkdir()
    pd.DataFrame(_rd_rows()).to_csv(d / "rd.csv", index=False)  # no rd_summary.csv: the report averages
    head = {"model": "fomm", "codec": "libx264", "anchor": "libx264", "quality": "psnr"}
    pd.DataFrame([
        {**head, "video": CLIPS[0], "bd_rate": -80.0, "bd_quality": 4.0, "videos": 1, "status": "ok"},
        {**head, "video": CLIPS[1], "bd_rate": -94.5, "bd_quality": 5.0, "videos": 1, "status": "ok"},
        {**head, "video": "mean", "bd_rate": -87.25, "bd_quality": 4.5, "videos": 2, "status": "ok"},
    ]).to_csv(d / "bd_rate.csv", index=False)
    flags = ("large_pose", "weak_correlation", "no_face", "no_face_prediction", "gate_rejected")
    pd.DataFrame([
        {"video": v, "frame": f, "failed": any(on), **dict(zip(flags, on)), "reasons": r, "yaw": y, "pitch": 0.0,
         "roll": 0.0, "weak_score": 0.1, "l1": 0.05, "gate_reasons": ""}
        for v, f, on, r, y in (
            (CLIPS[0], 0, (False, False, False, False, False), "", 1.0),
            (CLIPS[0], 1, (True, False, False, False, True), "large pose (yaw 48°); gate rejected", 48.0),
            (CLIPS[1], 0, (True, True, False, False, False), "large pose (yaw 52°); weak correlation", 52.0),
        )
    ]).to_csv(d / "failures.csv", index=False)
    Image.fromarray(np.full((8, 8, 3), 200, np.uint8)).save(d / "000_large_pose_f000001.png")
    (d / "gallery.json").write_text(json.dumps([
        {"file": "000_large_pose_f000001.png", "caption": "yaw 48 deg", "reason": "large_pose", "video": CLIPS[0],
         "frame": 1, "score": 48.0},
    ]))
    (d / "summary.json").write_text(json.dumps({"backend": "dlib", "thresholds": {"max_yaw": 25.0}}))
    return d


class _Page(HTMLParser):
    """Tag balance, text, and every ``<table id=...>`` as rows of cell texts."""

    def __init__(self) -> None:
        super().__init__()
        self.stack: list[str] = []
        self.errors: list[str] = []
        self.tables: dict[str, list[list[str]]] = {}
        self.ids: set[str] = set()
        self.text: list[str] = []
        self.imgs: list[str] = []
        self._table: str | None = None
        self._cell: list[str] | None = None

    def handle_starttag(self, tag, attrs):
        a = dict(attrs)
        if "id" in a:
            self.ids.add(a["id"])
        if tag == "img":
            self.imgs.append(a.get("src", ""))
        if tag not in _VOID:
            self.stack.append(tag)
        if tag == "table":
            self._table = a.get("id", f"table-{len(self.tables)}")
            self.tables[self._table] = []
        elif tag == "tr" and self._table:
            self.tables[self._table].append([])
        elif tag in ("td", "th"):
            self._cell = []

    def handle_endtag(self, tag):
        if tag in _VOID:
            return
        if not self.stack or self.stack[-1] != tag:
            self.errors.append(f"</{tag}> closes <{self.stack[-1] if self.stack else None}>")
            return
        self.stack.pop()
        if tag in ("td", "th") and self._table and self._cell is not None:
            self.tables[self._table][-1].append("".join(self._cell).strip())
            self._cell = None
        elif tag == "table":
            self._table = None

    def handle_data(self, data):
        if self.stack and self.stack[-1] in ("script", "style"):
            return
        self.text.append(data)
        if self._cell is not None:
            self._cell.append(data)


def _parse(path: Path) -> _Page:
    page = _Page()
    page.feed(path.read_text(encoding="utf-8"))
    page.close()
    assert page.errors == [] and page.stack == [], (page.errors[:3], page.stack)
    return page


class _Digest(_Page):
    """What a report page says, markup aside: section titles, captions, paragraphs (not the dated ``meta`` line),
    every table's body rows (in page order), figure ids, gallery captions and the provenance blocks."""

    def __init__(self) -> None:
        super().__init__()
        self.out: dict[str, list] = {"h2": [], "caption": [], "p": [], "tbody": [], "figures": [], "figcaption": [],
                                     "pre": []}
        self._grab: tuple[str, list[str]] | None = None
        self._rows: list[list[str]] | None = None

    def handle_starttag(self, tag, attrs):
        super().handle_starttag(tag, attrs)
        a = dict(attrs)
        if tag in ("h2", "caption", "pre", "figcaption") or (tag == "p" and a.get("class") != "meta"):
            self._grab = (tag, [])
        elif tag == "tbody":
            self._rows = []
        elif tag == "tr" and self._rows is not None:
            self._rows.append([])
        if a.get("id", "").startswith("fig-"):
            self.out["figures"].append(a["id"])

    def handle_endtag(self, tag):
        if tag in ("td", "th") and self._rows is not None and self._cell is not None:
            self._rows[-1].append(" ".join("".join(self._cell).split()))
        super().handle_endtag(tag)
        if self._grab and tag == self._grab[0]:
            self.out[tag].append(" ".join("".join(self._grab[1]).split()))
            self._grab = None
        elif tag == "tbody" and self._rows is not None:
            self.out["tbody"].append(self._rows)
            self._rows = None

    def handle_data(self, data):
        super().handle_data(data)
        if self._grab:
            self._grab[1].append(data)


def html_digest(path: Path) -> dict[str, list]:
    """:class:`_Digest` of a report page, plus its images (data URLs shortened to their hash)."""
    import hashlib

    page = _Digest()
    page.feed(path.read_text(encoding="utf-8"))
    page.close()
    assert page.errors == [] and page.stack == [], (page.errors[:3], page.stack)
    return {**page.out, "img": [hashlib.sha256(src.encode()).hexdigest()[:16] for src in page.imgs]}


OLD_RUN = Path(__file__).parent / "data" / "old_run"
OLD_REPORT = Path(__file__).parent / "data" / "old_run_report"


def test_an_old_run_folder_reports_as_it_did(tmp_path):
    """Run folders in the formats facelab wrote before lab/reports.py became the package lab/reports/ (an
    evaluation of static and random-init ultralight on two demo clips, hand-made RD and failure files as in
    ``extra_run``, a cross-identity table), and what that lab/reports.py (commit 890dd6b) made of them: the same
    CSV tables and ``table2.md`` byte for byte, and a page that says the same (report_html.json: sections,
    captions, notes, every table's body cells, figures, images; the markup itself may differ)."""
    runs = [OLD_RUN / "eval", OLD_RUN / "rd_fail", OLD_RUN / "cross"]
    files = write_report(runs, tmp_path / "rep", title="old run", png=False, data_root=tmp_path / "no-data")
    want = sorted(p.name for p in OLD_REPORT.glob("*.csv"))
    assert sorted(p.name for p in files.tables.values()) == want
    for name in [*want, "table2.md"]:
        assert (tmp_path / "rep" / name).read_text() == (OLD_REPORT / name).read_text(), name
    old = json.loads((OLD_REPORT / "report_html.json").read_text())
    new = html_digest(files.html)
    for key in old:  # table2's two header rows changed (Styler column groups): its body rows are compared
        assert new[key] == old[key], key
    assert old["tbody"][0][0][2].startswith("∞ (exact copy in 2 of 5 frames") and old["img"] and old["figures"]


def _pooled_reference(per_frame: pd.DataFrame) -> pd.DataFrame:
    """What pandas computes: the mean of every metric over all frames of a model (NaN = skipped)."""
    return per_frame.groupby("model")[list(METRICS)].mean()


# ------------------------------------------------------------------------------------------------- tables


def test_table2_equals_pooled_means_of_per_frame(eval_run):
    pf = pd.read_csv(eval_run / "per_frame.csv")
    ref = _pooled_reference(pf)
    run = load_run(eval_run)
    t = table2_table(run).set_index("model")
    assert list(t.index) == list(MODELS) and run.metrics == list(METRICS)
    for m in MODELS:
        assert t.loc[m, "frames"] == sum(FRAMES) and t.loc[m, "videos"] == 2
        for k in METRICS:
            want, got = ref.loc[m, k], t.loc[m, k]
            assert (math.isnan(want) and math.isnan(got)) or got == pytest.approx(want, rel=1e-12), (m, k)
        for k in ("akd", "aed"):
            assert t.loc[m, f"{k}_skipped"] == int((pf[pf.model == m][f"{k}_status"] != "ok").sum())
    clip_means = pf.groupby(["model", "video"]).l1.mean().groupby("model").mean()
    assert abs(t.loc["static", "l1"] - clip_means["static"]) > 1e-4  # pooled, not a mean of clip means
    assert math.isinf(t.loc["static", "psnr"])  # frame 0 is the ground truth: the pooled PSNR is infinite
    # ratios against the floor, and the paper's numbers beside the models it reports
    assert t.loc["ultralight", "l1_vs_static"] == pytest.approx(ref.loc["ultralight", "l1"] / ref.loc["static", "l1"])
    assert t.loc["ultralight", "paper_akd"] == PAPER_TABLE2["Ours"]["akd"] and math.isnan(t.loc["static", "paper_l1"])
    assert "l1_vs_fomm" not in t  # no fomm in the run: no reference ratio
    # the paper's layout, exactly as lab.evaluation.reconstruction writes it
    assert table2_text(run) == (eval_run / "table2.md").read_text()
    assert table2_table(run, reference_model="ultralight").loc[0, "l1_vs_ultralight"] == pytest.approx(
        ref.loc["static", "l1"] / ref.loc["ultralight", "l1"])
    with pytest.raises(ValueError, match="fomm.*static, ultralight"):
        table2_table(run, reference_model="fomm")


def test_per_clip_table_matches_per_video_csv(eval_run):
    pv = pd.read_csv(eval_run / "per_video.csv").astype({"video": str})
    got = per_clip_table(load_run(eval_run))
    assert len(got) == len(pv) == len(MODELS) * len(CLIPS)
    both = pv.merge(got, on=["model", "video"], suffixes=("_csv", "_report"), validate="one_to_one")
    assert len(both) == len(pv)
    assert (both.frames_csv == both.frames_report).all()
    for k in METRICS:
        np.testing.assert_allclose(both[f"{k}_report"], both[f"{k}_csv"], rtol=1e-12, equal_nan=True)


def test_runs_on_disjoint_clips_pool_and_same_clips_stay_apart(eval_run, tmp_path):
    pf = pd.read_csv(eval_run / "per_frame.csv")
    for i, clip in enumerate(CLIPS):  # a split evaluation: one folder per clip
        (tmp_path / f"part{i}").mkdir()
        pf[pf.video == clip].to_csv(tmp_path / f"part{i}" / "per_frame.csv", index=False)
        shutil.copy(eval_run / "provenance.json", tmp_path / f"part{i}")
    pooled = table2_table(load_runs([tmp_path / "part0", tmp_path / "part1"])).set_index("model")
    whole = table2_table(load_run(eval_run)).set_index("model")
    pd.testing.assert_frame_equal(pooled[list(METRICS)], whole[list(METRICS)])
    shutil.copytree(eval_run, tmp_path / "again")
    both = load_runs([eval_run, tmp_path / "again"])
    assert both.models == [f"{m} [{p.name}]" for p in (eval_run, tmp_path / "again") for m in MODELS]
    assert both.weights[f"ultralight [{eval_run.name}]"] == "random init"


def test_fomm_is_the_default_reference_and_the_paper_claim_is_checked(eval_run, tmp_path):
    pf = pd.read_csv(eval_run / "per_frame.csv")
    pf["model"] = pf.model.map({"static": "fomm", "ultralight": "ultralight"})  # stand-in numbers, names matter
    ul = pf.model == "ultralight"
    pf.loc[ul, "l1"] *= 1.5  # a model 50 % above its reference, and one with no face found in its frames
    pf.loc[ul, "akd"] = float("nan")
    pf.loc[ul, "akd_status"] = "no_face_pred"
    (tmp_path / "run").mkdir()
    pf.to_csv(tmp_path / "run" / "per_frame.csv", index=False)
    t = table2_table(load_run(tmp_path / "run")).set_index("model")
    ratio = pf[pf.model == "ultralight"].l1.mean() / pf[pf.model == "fomm"].l1.mean()
    assert t.loc["ultralight", "l1_vs_fomm"] == pytest.approx(ratio) and ratio > 1.05
    assert "l1_vs_static" not in t and t.loc["fomm", "paper_l1"] == PAPER_TABLE2["FOMM"]["l1"]
    note = claim_check(t.reset_index())
    assert note.startswith("The paper's claim, ultralight ÷ fomm: L1") and "(claim ≤ 1.05: not met)" in note
    assert "AKD" not in note  # ultralight has no AKD (no face found in its frames): no ratio to judge
    files = write_report(tmp_path / "run", tmp_path / "rep", png=False)
    assert note in " ".join(_parse(files.html).text)


def test_summary_only_folder_still_gives_table2(eval_run, tmp_path):
    for f in ("summary.csv", "provenance.json"):
        shutil.copy(eval_run / f, tmp_path)
    run = load_run(tmp_path)
    assert run.per_frame is None and table2_text(run) == (eval_run / "table2.md").read_text()
    files = write_report(run, tmp_path / "rep", png=False)
    assert set(files.tables) == {"table2"} and "Per clip" not in " ".join(_parse(files.html).text)


def test_missing_or_empty_folder_is_a_clear_error(tmp_path):
    (tmp_path / "empty").mkdir()
    (tmp_path / "empty" / "notes.txt").write_text("not a run")
    with pytest.raises(FileNotFoundError, match=f"{tmp_path / 'empty'} holds none of the files.*per_frame.csv"):
        load_run(tmp_path / "empty")
    with pytest.raises(FileNotFoundError, match=f"run folder {tmp_path / 'nope'} does not exist"):
        write_report(tmp_path / "nope", tmp_path / "out", png=False)
    (tmp_path / "bad").mkdir()
    pd.DataFrame({"model": ["static"], "l1": [0.1]}).to_csv(tmp_path / "bad" / "per_frame.csv", index=False)
    with pytest.raises(ValueError, match="per_frame.csv lacks the column.*video"):
        load_run(tmp_path / "bad")
    assert not (tmp_path / "out").exists()


# --------------------------------------------------------------------------------------------------- HTML


def test_write_report_html_and_csv(eval_run, tmp_path):
    from lab import __version__

    files = write_report(eval_run, tmp_path / "rep", title="tiny run", png=False)
    assert set(files.tables) == {"table2", "per_clip"}  # demo clips are not in the manifest: no pose breakdown
    t2 = pd.read_csv(files.tables["table2"]).set_index("model")
    ref = _pooled_reference(pd.read_csv(eval_run / "per_frame.csv"))
    np.testing.assert_allclose(t2.loc[list(MODELS), list(METRICS)], ref.loc[list(MODELS), list(METRICS)],
                               rtol=1e-12, equal_nan=True)
    pd.testing.assert_frame_equal(pd.read_csv(files.tables["per_clip"]), per_clip_table(load_run(eval_run)),
                                  check_dtype=False)
    page = _parse(files.html)
    text = " ".join(page.text)
    assert all(name in text for name in (*MODELS, *CLIPS)), "every model and clip is named"
    assert PAPER_NOTE in text and f"facelab {__version__}" in text and "tiny run" in text
    assert "dlib (offline; not the FOMM/pose-evaluation convention)" in text  # each number's backend
    assert "Rate–distortion" not in text and "Failure cases" not in text
    assert "PNG export turned off" in text and files.pngs == {} and files.png_error is None
    # Table 2 cells: table2.md's numbers, where a cell has none the reason (metric_cell), then the ratio and
    # paper columns
    md = [[c.strip() for c in line.strip("|").split(" | ")] for line in (eval_run / "table2.md").read_text()
          .strip().splitlines()[2:]]
    t = table2_table(load_run(eval_run))
    want = [[r["model"], *(metric_cell(r, m) for m in METRICS), str(r["frames"]), r["weights"]]
            for _, r in t.iterrows()]
    rows = page.tables["table2"][2:]
    assert [r[: len(md[0])] for r in rows] == want
    for got, line in zip(want, md):  # the same numbers as table2.md where it has one
        for cell, md_cell in zip(got, line):
            assert cell == md_cell or md_cell in ("inf", "–") or md_cell.startswith("– (") or cell.startswith(md_cell)
    assert rows[0][2].startswith("∞ (exact copy in 2 of 6 frames; ")  # static's PSNR: frame 0 of each clip
    assert rows[1][len(md[0])] == f"{ref.loc['ultralight', 'l1'] / ref.loc['static', 'l1']:.3f}"
    for m in METRICS:  # one figure per metric and view, plotly.js inlined once
        assert {f"fig-per_clip_{m}", f"fig-distribution_{m}", f"fig-temporal_{m}"} <= page.ids
    src = files.html.read_text()
    assert src.count("<details>") == 1 and '"render_seconds_this_run"' in text  # provenance, collapsed
    assert src.count("<script type=\"text/javascript\">") == 1 and "Plotly.newPlot" in src


def test_rd_and_failure_sections_appear_with_their_files(eval_run, extra_run, tmp_path):
    files = write_report([eval_run, extra_run], tmp_path / "rep", png=False)
    assert {"rd_summary", "bd_rate", "failure_counts"} <= set(files.tables)
    rd = pd.read_csv(extra_run / "rd.csv")
    want = rd.groupby(["curve", "level"])[["kbps", "ref_kbps", "psnr", "ssim"]].mean()
    got = rd_summary_table(load_run(extra_run)).set_index(["curve", "level"])
    np.testing.assert_allclose(got.loc[want.index, want.columns], want)
    assert (got.videos == 2).all()
    fc = failure_counts(load_run(extra_run)).set_index("video")
    assert fc.loc["all", "frames"] == 3 and fc.loc["all", "large_pose"] == 2 and fc.loc["all", "gate_rejected"] == 1
    assert fc.loc[CLIPS[0], "large_pose"] == 1 and fc.loc[CLIPS[1], "weak_correlation"] == 1
    assert fc.loc["all", "no_face"] == 0 and fc.loc["all", "failed"] == 2
    page = _parse(files.html)
    text = " ".join(page.text)
    assert "Rate–distortion" in text and "Failure cases" in text
    assert "-87.250" in text and "-80.000" not in text  # the mean BD row; per-clip rows stay in the CSV
    assert {"fig-rd_psnr", "fig-rd_ssim", "fig-failures", "table2"} <= page.ids
    png = base64.b64encode((extra_run / "000_large_pose_f000001.png").read_bytes()).decode()
    assert page.imgs == [f"data:image/png;base64,{png}"] and "yaw 48 deg" in text
    assert '"max_yaw": 25.0' in text  # the failure run's summary.json, with the provenance
    assert load_runs([eval_run, extra_run]).weights == {"static": "none needed", "ultralight": "random init"}
    # a folder with only these files: its sections, no Table 2
    only = write_report(extra_run, tmp_path / "only", png=False)
    assert "table2" not in only.tables and not (tmp_path / "only" / "table2.md").exists()
    page = _parse(only.html)
    assert "table2" not in page.ids and "fig-rd_psnr" in page.ids


def test_rd_without_curve_column(tmp_path):
    from lab.reports import fig_rd

    rows = [{k: r[k] for k in ("model", "codec", "level", "video", "kbps", "psnr")} for r in _rd_rows()]
    pd.DataFrame(rows).to_csv(tmp_path / "rd.csv", index=False)
    fig = fig_rd(load_run(tmp_path), "psnr")
    assert sorted(tr.name for tr in fig.data) == ["fomm · libx264", "libx264"]
    fomm = next(tr for tr in fig.data if tr.name.startswith("fomm"))
    assert list(fomm.x) == [2.5, 4.5, 6.5] and list(fomm.y) == [20.5, 21.5, 22.5]  # means over the two clips
    with pytest.raises(ValueError, match="no rate–distortion points with ssim"):
        fig_rd(load_run(tmp_path), "ssim")


def test_png_failure_keeps_tables_and_html(eval_run, tmp_path, monkeypatch):
    import plotly.io as pio

    def broken(*args, **kwargs):
        raise RuntimeError("chromium could not start\nsecond line")

    monkeypatch.setattr(pio, "write_images", broken)
    files = write_report(eval_run, tmp_path / "rep", png=True)
    assert files.png_error == "RuntimeError: chromium could not start" and files.pngs == {}
    assert files.tables["table2"].is_file() and files.tables["per_clip"].is_file()
    assert "PNG figures are missing: RuntimeError: chromium could not start" in " ".join(_parse(files.html).text)


def _chromium_or_skip() -> None:
    if shutil.which("chromium") or Path("/usr/bin/chromium").is_file():
        return
    msg = "chromium is not installed (kaleido needs it for PNG export; .ci/run installs Debian's chromium)"
    if os.environ.get("CI", "").lower() in ("1", "true", "yes"):
        pytest.fail(msg + " -- required under CI=true")
    pytest.skip(msg)


def test_png_export_writes_valid_pngs(eval_run, tmp_path):
    from PIL import Image

    _chromium_or_skip()
    files = write_report(eval_run, tmp_path / "rep", png=True)
    assert files.png_error is None, files.png_error
    assert len(files.pngs) == 3 * len(METRICS)
    for name, p in files.pngs.items():
        assert p.read_bytes()[:8] == PNG_MAGIC, name
        with Image.open(p) as im:
            assert im.width == 1000 and im.height >= 400, (name, im.size)
            assert len(np.unique(np.asarray(im.convert("L")))) > 8, f"{name} is blank"
    assert f"{len(files.pngs)} figures written as PNG" in " ".join(_parse(files.html).text)


# ---------------------------------------------------------------------------------------------------- CLI


def _parse_args(argv: list[str]) -> argparse.Namespace:
    from lab.cli import report

    parser = argparse.ArgumentParser(prog="facelab")
    report.register(parser.add_subparsers(dest="command"))
    return parser.parse_args(argv)


def test_report_cli(eval_run, tmp_path, capsys):
    args = _parse_args(["report", str(eval_run), "--out", str(tmp_path / "rep"), "--no-png", "--title", "T1"])
    assert args.func(args) == 0
    out = capsys.readouterr().out
    assert (eval_run / "table2.md").read_text() in out and f"written to {tmp_path / 'rep' / 'report.html'}" in out
    assert "<title>T1</title>" in (tmp_path / "rep" / "report.html").read_text()
    args = _parse_args(["report", str(eval_run), "--out", str(tmp_path / "r2"), "--no-png", "--reference-model",
                        "fomm"])
    with pytest.raises(ValueError, match="reference model 'fomm' is not in the run"):
        args.func(args)  # lab.cli turns ValueError into one line and exit code 2
    args = _parse_args(["report", str(tmp_path / "missing"), "--out", str(tmp_path / "r3")])
    with pytest.raises(FileNotFoundError, match="missing does not exist"):
        args.func(args)


# --------------------------------------------------------------------------------------------------- data


@pytest.mark.data
def test_pose_class_breakdown_joins_the_manifest(data_root, tmp_path):
    from datasets.shared import SharedData
    from lab.core.animate import load_animator
    from lab.evaluation.reconstruction import evaluate_reconstruction, iter_eval_videos

    videos = []
    for name, frames in iter_eval_videos(data_root, "test", max_frames=2):
        videos.append((name, frames))
        if len(videos) == 2:
            break
    evaluate_reconstruction([load_animator("static")], videos, out_dir=tmp_path / "run", metrics=("l1",),
                            progress=False)
    run = load_run(tmp_path / "run")
    sd = SharedData(data_root)
    pose = {it.name: it.pose_class for it in sd.clips()}
    pf = pd.read_csv(tmp_path / "run" / "per_frame.csv")
    pf["pose_class"] = pf.video.map(pose)
    assert pf.pose_class.notna().all(), "run video names are SharedItem.name"
    want = pf.groupby("pose_class").l1.mean()
    got = breakdown_table(run, "pose_class", data_root=data_root).set_index("pose_class")
    np.testing.assert_allclose(got.loc[want.index, "l1"], want, rtol=1e-12)
    assert got.frames.sum() == 4
    files = write_report(run, tmp_path / "rep", png=False, data_root=data_root)
    assert {"by_pose_class", "by_split", "by_identity"} <= set(files.tables)
    assert set(pd.read_csv(files.tables["by_split"]).split) == {"test"}
    assert match_manifest(list(CLIPS), data_root) is None  # demo clips are not shared-set clips
    assert match_manifest([videos[0][0]], tmp_path / "no-data") is None


def test_every_blank_or_infinite_cell_says_why(tmp_path):
    # issue 12: a model whose predictions never hold a face has no AKD/AED (the CLI said "– (96 skipped)", the
    # report and the app showed an empty cell); static's PSNR is infinite (frame 0 is an exact copy)
    inf = float("inf")
    rows = []
    for i, (psnr, aed_status) in enumerate([(inf, "ok"), (30.0, "ok"), (32.0, "no_face_gt")]):
        rows.append({"model": "static", "video": "clip", "frame": i, "l1": 0.01 * i, "psnr": psnr,
                     "akd": float(i), "akd_status": "ok", "aed": 0.1 if aed_status == "ok" else math.nan,
                     "aed_status": aed_status})
        rows.append({"model": "ultralight", "video": "clip", "frame": i, "l1": 0.02, "psnr": 25.0,
                     "akd": math.nan, "akd_status": "no_face_pred", "aed": math.nan, "aed_status": "no_face_pred"})
    (tmp_path / "run").mkdir()
    pd.DataFrame(rows).to_csv(tmp_path / "run" / "per_frame.csv", index=False)
    run = load_run(tmp_path / "run")
    t = table2_table(run).set_index("model", drop=False)
    cell = {(m, k): metric_cell(t.loc[m], k) for m in ("static", "ultralight") for k in ("l1", "psnr", "akd", "aed")}
    assert cell["ultralight", "akd"] == cell["ultralight", "aed"] == "skipped: no face in 3 of 3 predictions"
    assert cell["static", "psnr"] == "∞ (exact copy in 1 of 3 frames; 31.000 over the other 2)"
    assert cell["static", "aed"] == "0.1000 (skipped: no face in 1 of 3 ground-truth frames)"
    assert cell["static", "akd"] == "1.000" and cell["ultralight", "psnr"] == "25.000"
    assert metric_cell({"frames": 3}, "akd") == "– (not measured)"
    assert metric_cell({"frames": 4, "akd": None, "akd_skipped": 4}, "akd") == "skipped: no face in 4 of 4 frames"
    # the app's tables (display_table) and the HTML report show the same cells, none of them empty
    from lab.reports import display_table

    shown = display_table(table2_table(run), run.metrics)
    assert list(shown.columns[:2]) == ["model", "weights"] and not any(c.endswith("_skipped") for c in shown)
    assert (shown != "").all().all() and shown.set_index("model").loc["ultralight", "akd"] == cell["ultralight", "akd"]
    clips = display_table(per_clip_table(run), run.metrics).set_index("model")
    assert clips.loc["static", "psnr"].startswith("∞ (exact copy in 1 of 3 frames")
    files = write_report(run, tmp_path / "rep", png=False)
    page = _parse(files.html)
    rows_html = page.tables["table2"][2:]
    assert [r[1:5] for r in rows_html] == [[cell[m, k] for k in ("l1", "psnr", "akd", "aed")]
                                           for m in ("static", "ultralight")]
    text = " ".join(page.text)
    assert "skipped: no face in 3 of 3 predictions" in text  # per clip too
    assert "∞: at least one frame equals its ground truth exactly" in text and "skipped: frames where" in text


def _training_run(folder: Path, model: str, points: list[tuple[int, float, float, float]]) -> Path:
    """A training run folder as ``facelab train --eval-every-minutes`` leaves it: config, curve, static line."""
    from lab.train.curves import COLUMNS, STATIC_FILE

    folder.mkdir(parents=True)
    (folder / "config.yaml").write_text(f"model: {model}\n")
    rows = [{"step": s, "samples": 4 * s, "train_hours": 2 * h, "cpu_hours": h, "l1": l1, "akd": akd,
             "akd_skipped": 1, "frames": 20, "eval_seconds": 1.0, "wall_time": "2026-12-02T12:00:00"}
            for s, h, l1, akd in points]
    pd.DataFrame(rows, columns=list(COLUMNS)).to_csv(folder / "curve.csv", index=False)
    subset = {"data": "d.npz", "split": "test", "clips": 2, "frames": 40, "stride": 4, "size": 128,
              "akd_backend": "dlib", "driving_frames": 20}
    (folder / STATIC_FILE).write_text(json.dumps({"static": {"l1": 0.064, "akd": 4.0, "akd_skipped": 0, "frames": 20},
                                                  "subset": subset}))
    return folder


def test_report_shows_the_learning_curves_of_training_runs(eval_run, tmp_path):
    """``--training-runs``: every curve point in a CSV, each run's latest point against ``static`` in a table on
    the page, and the curves figure (issue 11: the learning curves belong in the report)."""
    ul = _training_run(tmp_path / "ul", "ultralight", [(0, 0.1, 0.053, 2.0), (900, 0.5, 0.048, 1.6)])
    fomm = _training_run(tmp_path / "fomm", "fomm", [(0, 0.0, 0.226, float("nan")), (400, 0.5, 0.080, 3.0)])
    files = write_report(eval_run, tmp_path / "rep", png=False, training_runs=[ul, fomm])
    assert len(pd.read_csv(files.tables["learning_curves"])) == 4
    summary = pd.read_csv(files.tables["learning_curves_summary"], dtype=str).set_index("model")
    assert summary.loc["ultralight", "L1 / static"] == f"{0.048 / 0.064:.3f}" and summary.loc["fomm", "steps"] == "400"
    page = html_digest(files.html)
    assert "Learning curves" in page["h2"] and "fig-learning_curves" in page["figures"]
    table = next(rows for rows in page["tbody"] if rows and rows[-1][0] == "static")
    assert [r[0] for r in table] == ["fomm", "ultralight", "static"]
    assert table[1][6:8] == ["0.0480", f"{0.048 / 0.064:.3f}"]
    assert any("2 clips of the test split" in p for p in page["p"])
    plain = write_report(eval_run, tmp_path / "plain", png=False)  # without training runs: no such section
    assert "learning_curves" not in plain.tables and "Learning curves" not in html_digest(plain.html)["h2"]
