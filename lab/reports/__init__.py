"""Batch metric reports: Table 2, per-clip and per-pose-class tables, plots, CSV and one HTML file.

Reads the run folders that facelab's batch jobs write (evaluation, rate–distortion, failures, cross-identity)
and turns them into tables and plotly figures, for the CLI (``facelab report``), the app and
:func:`write_report`'s folder. One module per job:

* :mod:`~lab.reports.runs`: run folders → :class:`RunData` (:data:`RUN_FILES` names the files read);
* :mod:`~lab.reports.tables`: Table 2, per clip, per pose class / split / identity, RD, failures;
* :mod:`~lab.reports.cells`: a cell's text, which says why a cell has no number;
* :mod:`~lab.reports.figures`: plotly figures;
* :mod:`~lab.reports.paper`: the paper's Table 1 and Table 2 (reference only: another copy of VoxCeleb);
* :mod:`~lab.core.format`: the number formatter and the markdown-table writer;
* :mod:`~lab.reports.html`: ``report.html`` from ``templates/report.html.j2``, tables as pandas Stylers;
* :mod:`~lab.reports.write`: the report folder.

>>> run = load_run("runs/eval")                                          # doctest: +SKIP
>>> table2_table(run, reference_model="fomm")[["model", "l1", "l1_vs_fomm"]]   # doctest: +SKIP
>>> write_report(["runs/eval", "runs/rd"], "runs/report").html           # doctest: +SKIP
PosixPath('runs/report/report.html')
"""

from lab.reports.cells import display_table, metric_cell
from lab.reports.figures import fig_distribution, fig_failures, fig_per_clip, fig_rd, fig_temporal, report_figures
from lab.reports.paper import PAPER_CLAIM, PAPER_NAMES, PAPER_NOTE, PAPER_TABLE1, PAPER_TABLE2
from lab.reports.runs import FAILURE_FLAGS, RUN_FILES, GalleryItem, RunData, load_run, load_runs, read_gallery
from lab.reports.tables import (
    BREAKDOWNS,
    breakdown_table,
    claim_check,
    cross_identity_table,
    failure_counts,
    match_manifest,
    per_clip_table,
    rd_summary_table,
    report_tables,
    table2_table,
    table2_text,
)
from lab.reports.write import ReportFiles, write_report

__all__ = [
    "PAPER_TABLE1",
    "PAPER_TABLE2",
    "PAPER_NAMES",
    "PAPER_NOTE",
    "PAPER_CLAIM",
    "RUN_FILES",
    "FAILURE_FLAGS",
    "BREAKDOWNS",
    "RunData",
    "GalleryItem",
    "ReportFiles",
    "load_run",
    "load_runs",
    "read_gallery",
    "table2_table",
    "table2_text",
    "metric_cell",
    "display_table",
    "per_clip_table",
    "match_manifest",
    "breakdown_table",
    "rd_summary_table",
    "failure_counts",
    "cross_identity_table",
    "fig_per_clip",
    "fig_distribution",
    "fig_temporal",
    "fig_rd",
    "fig_failures",
    "claim_check",
    "report_tables",
    "report_figures",
    "write_report",
]
