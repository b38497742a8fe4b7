"""``write_report``: a report folder of CSV tables, ``table2.md``, ``report.html`` and PNG figures."""

from __future__ import annotations

import os
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

from lab.reports.figures import report_figures
from lab.reports.html import render_html
from lab.reports.learning_curves import curves_figure, curves_summary, load_curves, subset_note
from lab.reports.runs import RunData, load_runs
from lab.reports.tables import report_tables, table2_text

if TYPE_CHECKING:
    import plotly.graph_objects as go

__all__ = ["ReportFiles", "write_report"]


@dataclass
class ReportFiles:
    """What :func:`write_report` wrote.

    Attributes:
        out_dir: the report folder.
        html: ``report.html``.
        tables: table name → CSV path (``table2``, ``per_clip``, ``by_pose_class``, ...).
        pngs: figure name → PNG path.
        png_error: why PNGs are missing (None when they were written or not asked for).
    """

    out_dir: Path
    html: Path
    tables: dict[str, Path] = field(default_factory=dict)
    pngs: dict[str, Path] = field(default_factory=dict)
    png_error: str | None = None



def _write_pngs(figs: dict[str, go.Figure], folder: Path) -> dict[str, Path]:
    """All figures as PNG in one kaleido (chromium) session; raises when any file is not a PNG."""
    import plotly.io as pio

    folder.mkdir(parents=True, exist_ok=True)
    paths = {n: folder / f"{n}.png" for n in figs}
    pio.write_images(list(figs.values()), list(paths.values()), format="png", width=1000)
    bad = [str(p) for p in paths.values() if not p.is_file() or p.read_bytes()[:8] != b"\x89PNG\r\n\x1a\n"]
    if bad:
        raise RuntimeError(f"kaleido wrote no valid PNG at {', '.join(bad)}")
    return paths


def write_report(
    runs: str | os.PathLike | Sequence[str | os.PathLike] | RunData,
    out_dir: str | os.PathLike,
    title: str = "facelab report",
    reference_model: str | None = None,
    png: bool = True,
    data_root: str | os.PathLike | None = None,
    training_runs: Sequence[str | os.PathLike] | None = None,
) -> ReportFiles:
    """Write the report folder: CSV tables, ``table2.md``, ``report.html`` and (optionally) PNG figures.

    The tables are written first; when the figures or their PNG export (kaleido, which drives chromium)
    fail, ``report.html`` is still written and says why they are missing.

    Args:
        runs: a run folder, several (see :func:`load_runs`), or loaded :class:`RunData`.
        out_dir: the report folder (created).
        title: the HTML page's title.
        reference_model: the ratios' reference model (None → ``fomm`` when present).
        png: also write ``figures/<name>.png``.
        data_root: the shared data folder for the pose-class / split / identity join (default: the data
            folder the run's provenance names when it holds a manifest, else ``$FACELAB_DATA``).
        training_runs: training run folders whose learning curves (:mod:`lab.reports.learning_curves`) the
            report adds: ``learning_curves.csv`` (every point), ``learning_curves_summary.csv`` (each run's
            latest point and ``static``) and the figure ``learning_curves``.

    Returns:
        The paths written.
    """
    if isinstance(runs, RunData):
        run = runs
    else:
        run = load_runs([runs] if isinstance(runs, (str, os.PathLike)) else list(runs))
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    tables = report_tables(run, reference_model, data_root)
    curves = None
    if training_runs:
        curves = load_curves(training_runs)
        tables["learning_curves"] = curves[0]
        tables["learning_curves_summary"] = curves_summary(*curves)
    files = ReportFiles(out_dir=out, html=out / "report.html")
    for name, t in tables.items():
        t.to_csv(out / f"{name}.csv", index=False)
        files.tables[name] = out / f"{name}.csv"
    if "table2" in tables:
        (out / "table2.md").write_text(table2_text(run))
    figure_note, figs = "", {}
    try:
        figs = report_figures(run)
        if curves is not None:
            figs["learning_curves"] = curves_figure(*curves)
    except Exception as e:  # noqa: BLE001 -- never lose the finished tables to a plotting failure
        figure_note = f"figures are missing: {type(e).__name__}: {e}"
    png_note = "PNG export turned off."
    if png and figs:
        try:
            files.pngs = _write_pngs(figs, out / "figures")
            png_note = f"{len(files.pngs)} figures written as PNG to {out / 'figures'} (kaleido, chromium)."
        except Exception as e:  # noqa: BLE001 -- kaleido/chromium failures are many and varied
            files.png_error = f"{type(e).__name__}: {str(e).strip().splitlines()[0] if str(e).strip() else ''}"
            png_note = f"PNG figures are missing: {files.png_error}"
    curves_note = subset_note(curves[1]) if curves else ""
    files.html.write_text(render_html(run, title, tables, figs, figure_note, png_note, curves_note),
                          encoding="utf-8")
    return files
