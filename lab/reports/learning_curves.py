"""Learning curves of training runs: held-out L1 and AKD against training CPU-hours, with the ``static`` line.

Reads the run folders the trainer writes (``curve.csv`` + ``curve_static.json``, :mod:`lab.train.curves`), so
runs trained side by side (``scripts/cpu_train.sh``) and their curriculum phases (a 128² run, then a 256²
run warm-started from it) are drawn on one time axis: a phase's hours continue from the run it started
from, as the trainer counts them. Output: an interactive plotly HTML, a PNG (kaleido), and a markdown table
of each run's latest point (steps, samples seen, hours, L1, AKD, and the ratio to ``static``).

    facelab curves ~/.cache/facelab/runs/cpu-128/* ~/.cache/facelab/runs/cpu-256/* --out runs/curves
"""

from __future__ import annotations

import json
import os
from collections.abc import Sequence
from pathlib import Path

__all__ = ["load_curves", "curves_figure", "curves_markdown", "curves_summary", "subset_note",
           "write_curves_report"]


def _model_of(run: Path) -> str:
    import yaml

    cfg = run / "config.yaml"
    if cfg.is_file():
        return str((yaml.safe_load(cfg.read_text()) or {}).get("model", run.name))
    return run.name


def load_curves(run_dirs: Sequence[str | os.PathLike]):
    """``(rows, statics)``: a DataFrame of every curve row (``model``, ``run``, ``size`` added) and one static
    row per evaluation size."""
    import pandas as pd

    from lab.train.curves import STATIC_FILE, read_curve

    frames, statics = [], {}
    for d in map(Path, run_dirs):
        rows = read_curve(d)
        if not rows:
            continue
        size = None
        if (d / STATIC_FILE).is_file():
            st = json.loads((d / STATIC_FILE).read_text())
            size = int(st["subset"]["size"])
            statics[size] = {**st["static"], "size": size, "subset": st["subset"]}
        df = pd.DataFrame(rows)
        df["model"], df["run"], df["size"] = _model_of(d), str(d), size
        frames.append(df)
    if not frames:
        raise FileNotFoundError(f"no curve.csv in {', '.join(map(str, run_dirs))}: train with --eval-every-minutes")
    df = pd.concat(frames, ignore_index=True).sort_values(["model", "cpu_hours", "step"])
    return df, statics


def curves_figure(df, statics: dict):
    """Two panels (L1, AKD) against training CPU-hours, one line per model, dashed ``static`` per size."""
    import plotly.graph_objects as go
    from plotly.subplots import make_subplots

    fig = make_subplots(rows=1, cols=2, subplot_titles=("held-out L1 (lower is better)",
                                                        "held-out AKD, dlib backend, px (lower is better)"))
    colours = {"ultralight": "#d62728", "fomm": "#1f77b4"}
    for col, metric in enumerate(("l1", "akd"), start=1):
        for model, g in df.groupby("model", sort=False):
            text = [f"step {int(s)}, {int(n)} samples, {sz}², no face in {int(k)} of {int(f)}"
                    for s, n, sz, k, f in zip(g["step"], g["samples"], g["size"], g["akd_skipped"], g["frames"])]
            fig.add_trace(go.Scatter(x=g["cpu_hours"], y=g[metric], mode="lines+markers", name=model,
                                     legendgroup=model, showlegend=col == 1, text=text,
                                     line={"color": colours.get(model)}), row=1, col=col)
        for size, st in sorted(statics.items()):
            fig.add_hline(y=st[metric], line_dash="dash", line_color="grey", row=1, col=col,
                          annotation_text=f"static ({size}²)", annotation_position="top left")
    fig.update_xaxes(title_text="training CPU-hours (process CPU time, evaluation excluded)")
    fig.update_layout(height=420, width=1100, margin={"t": 40, "b": 40}, template="plotly_white")
    return fig


SUMMARY_COLUMNS = ("model", "size", "steps", "samples", "train h", "CPU h", "L1", "L1 / static", "AKD",
                   "AKD / static", "no face")


def curves_summary(df, statics: dict):
    """The latest point of every run (steps, samples, hours, L1/AKD and their ratio to static at that size) and
    one ``static`` row per size, as a DataFrame of display strings (columns :data:`SUMMARY_COLUMNS`)."""
    import pandas as pd

    rows = []
    for _, g in df.groupby("run", sort=False):
        r = g.iloc[-1]
        st = statics.get(r["size"]) or {}
        l1r = f"{r['l1'] / st['l1']:.3f}" if st.get("l1") else "–"
        akr = f"{r['akd'] / st['akd']:.3f}" if st.get("akd") and r["akd"] == r["akd"] else "–"
        rows.append([r["model"], f"{r['size']}²", int(r["step"]), int(r["samples"]), f"{r['train_hours']:.2f}",
                     f"{r['cpu_hours']:.2f}", f"{r['l1']:.4f}", l1r, f"{r['akd']:.3f}", akr,
                     f"{int(r['akd_skipped'])} of {int(r['frames'])}"])
    for size, st in sorted(statics.items()):
        rows.append(["static", f"{size}²", "–", "–", "–", "–", f"{st['l1']:.4f}", "1", f"{st['akd']:.3f}", "1",
                     f"{st['akd_skipped']} of {st['frames']}"])
    return pd.DataFrame(rows, columns=list(SUMMARY_COLUMNS)).astype(str)


def subset_note(statics: dict) -> str:
    """What the curves' held-out subset is (empty without a static record)."""
    sub = next(iter(statics.values()))["subset"] if statics else None
    if not sub:
        return ""
    return (f"Held-out subset: {sub['clips']} clips of the {sub['split']} split × frames "
            f"{sub['stride']}, {2 * sub['stride']}, …, {sub['frames']} ({sub['driving_frames']} frames), "
            f"source = frame 0, absolute motion; AKD: {sub['akd_backend']} backend, pooled over the "
            "frames where a face is found in both the prediction and the ground truth (*no face*: the "
            "frames left out, which a blurred output raises: compare AKD only together with that count).")


def curves_markdown(df, statics: dict) -> str:
    """:func:`curves_summary` as a markdown table, with the subset it was scored on."""
    from lab.core.format import markdown_table

    summary = curves_summary(df, statics)
    lines = [markdown_table(list(SUMMARY_COLUMNS), summary.values.tolist(), align="l" + "r" * 10)]
    note = subset_note(statics)
    if note:
        lines += ["", note]
    return "\n".join(lines) + "\n"


def write_curves_report(run_dirs: Sequence[str | os.PathLike], out: str | os.PathLike, png: bool = True) -> dict:
    """Write ``curves.html``, ``curves.md`` and (with kaleido) ``curves.png`` into ``out``; returns their paths."""
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    df, statics = load_curves(run_dirs)
    fig = curves_figure(df, statics)
    paths = {"html": out / "curves.html", "md": out / "curves.md"}
    fig.write_html(paths["html"], include_plotlyjs="cdn")
    paths["md"].write_text(curves_markdown(df, statics))
    df.to_csv(out / "curves.csv", index=False)
    if png:
        import plotly.io as pio

        paths["png"] = out / "curves.png"
        pio.write_images([fig], [paths["png"]], format="png", width=1100)
    return paths
