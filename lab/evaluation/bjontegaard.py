"""Bjøntegaard deltas: BD-rate and BD-quality (BD-PSNR) between two rate–distortion curves, and per sequence.

* **BD-rate** (:func:`bd_rate`, VCEG-M33): fit ``log10(rate)`` as a cubic polynomial of quality for each
  curve, integrate both over the overlapping quality interval; ``10**(mean difference) - 1`` in percent
  (negative: the test curve needs fewer bits for the same quality). :func:`bd_quality` is BD-PSNR (quality
  as a cubic of ``log10(rate)``). ``method="pchip"`` uses the piecewise-cubic Hermite interpolation of later
  JVET reporting templates instead.
* **Per sequence** (:func:`bd_table`): the deltas of every tested curve against every anchor on each sequence,
  and their mean (the JVET common-test-conditions reading), from the rows of
  :mod:`lab.evaluation.rate_distortion`.

The ``bjontegaard`` package (FAU-LMS) is the cross-check of the tests, not a dependency. Pure numpy/scipy.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

__all__ = ["bd_rate", "bd_quality", "bd_table"]


def _curve(rates: Sequence[float], quality: Sequence[float], what: str) -> tuple[np.ndarray, np.ndarray]:
    r = np.asarray(rates, dtype=np.float64).ravel()
    q = np.asarray(quality, dtype=np.float64).ravel()
    if r.shape != q.shape:
        raise ValueError(f"{what}: {r.size} rates but {q.size} quality values")
    if r.size < 4:
        raise ValueError(f"{what}: Bjøntegaard deltas need at least 4 RD points (cubic fit), got {r.size}")
    if not (np.all(np.isfinite(r)) and np.all(np.isfinite(q))) or np.any(r <= 0):
        raise ValueError(f"{what}: rates must be finite and > 0 and quality finite")
    return np.log10(r), q


def _mean_difference(x1: np.ndarray, y1: np.ndarray, x2: np.ndarray, y2: np.ndarray, method: str,
                     what: str) -> float:
    """Mean of ``f2 - f1`` over the overlap of the x ranges, ``f`` a cubic fit of ``y`` as a function of ``x``."""
    lo, hi = max(x1.min(), x2.min()), min(x1.max(), x2.max())
    if not hi > lo:
        raise ValueError(f"{what}: the two curves do not overlap ([{x1.min():g}, {x1.max():g}] vs "
                         f"[{x2.min():g}, {x2.max():g}])")
    if method == "polyfit":
        ints = []
        for x, y in ((x1, y1), (x2, y2)):
            p = np.polyint(np.polyfit(x, y, 3))
            ints.append(np.polyval(p, hi) - np.polyval(p, lo))
    elif method == "pchip":
        from scipy.interpolate import PchipInterpolator

        ints = []
        for x, y in ((x1, y1), (x2, y2)):
            order = np.argsort(x)
            if np.any(np.diff(x[order]) <= 0):
                raise ValueError(f"{what}: pchip needs distinct x values on each curve")
            ints.append(PchipInterpolator(x[order], y[order]).integrate(lo, hi))
    else:
        raise ValueError(f"method must be 'polyfit' (VCEG-M33) or 'pchip', got {method!r}")
    return float((ints[1] - ints[0]) / (hi - lo))


def bd_rate(
    anchor_rates: Sequence[float],
    anchor_quality: Sequence[float],
    test_rates: Sequence[float],
    test_quality: Sequence[float],
    method: str = "polyfit",
) -> float:
    """Bjøntegaard delta rate in percent (VCEG-M33): average rate difference at equal quality.

    Args:
        anchor_rates: rates of the anchor's RD points (any unit, > 0; at least 4 points).
        anchor_quality: their quality (PSNR in dB, or any higher-is-better measure).
        test_rates: rates of the tested curve (same unit).
        test_quality: its quality.
        method: ``"polyfit"`` (cubic fit of ``log10(rate)`` over quality, VCEG-M33) or ``"pchip"``.

    Returns:
        Percent; negative = the test curve saves bits.

    Raises:
        ValueError: fewer than 4 points, non-finite values or no overlapping quality interval.
    """
    ra, qa = _curve(anchor_rates, anchor_quality, "anchor")
    rt, qt = _curve(test_rates, test_quality, "test")
    diff = _mean_difference(qa, ra, qt, rt, method, "BD-rate")
    return float((10.0**diff - 1.0) * 100.0)


def bd_quality(
    anchor_rates: Sequence[float],
    anchor_quality: Sequence[float],
    test_rates: Sequence[float],
    test_quality: Sequence[float],
    method: str = "polyfit",
) -> float:
    """Bjøntegaard delta quality (BD-PSNR in dB when quality is PSNR): average gain at equal rate.

    Args:
        anchor_rates: rates of the anchor's RD points (> 0; at least 4).
        anchor_quality: their quality.
        test_rates: rates of the tested curve.
        test_quality: its quality.
        method: ``"polyfit"`` (cubic fit of quality over ``log10(rate)``) or ``"pchip"``.

    Returns:
        Quality units; positive = the test curve is better at equal rate.

    Raises:
        ValueError: fewer than 4 points, non-finite values or no overlapping rate interval.
    """
    ra, qa = _curve(anchor_rates, anchor_quality, "anchor")
    rt, qt = _curve(test_rates, test_quality, "test")
    return _mean_difference(ra, qa, rt, qt, method, "BD-quality")



def bd_table(rows: Sequence[dict], quality: str = "psnr", method: str = "polyfit") -> list[dict]:
    """BD-rate and BD-quality of every animation curve against every anchor curve, per video and their mean.

    Args:
        rows: per-video rows (``video``, ``kind``, ``curve``, ``model``, ``codec``, ``kbps`` and ``quality``).
        quality: the quality column (``psnr`` for BD-rate on PSNR as JVET reports it).
        method: see :func:`bd_rate`.

    Returns:
        Dicts ``model, codec`` (the tested curve: animator and its reference codec), ``anchor`` (the anchor
        codec), ``video, quality, bd_rate`` (percent), ``bd_quality, videos, status`` (``"ok"`` or why the delta
        could not be computed, e.g. no overlapping quality range). The ``video == "mean"`` row of each pair
        averages the per-video deltas that could be computed (``videos`` says how many).
    """
    by: dict[tuple[str, str], list[dict]] = {}
    curves: dict[str, dict] = {}
    for r in rows:
        by.setdefault((r["curve"], r["video"]), []).append(r)
        curves.setdefault(r["curve"], r)
    anchors = [c for c, r in curves.items() if r["kind"] == "anchor"]
    tests = [c for c, r in curves.items() if r["kind"] != "anchor"]
    videos = list(dict.fromkeys(r["video"] for r in rows))
    out = []
    for test in tests:
        for anchor in anchors:
            head = {"model": curves[test]["model"], "codec": curves[test]["codec"], "anchor": anchor}
            per = []
            for v in videos:
                a, t = by.get((anchor, v)), by.get((test, v))
                if not a or not t:
                    continue
                args = ([x["kbps"] for x in a], [x[quality] for x in a],
                        [x["kbps"] for x in t], [x[quality] for x in t])
                row = {**head, "video": v, "quality": quality, "videos": 1}
                try:
                    row.update(bd_rate=bd_rate(*args, method=method), bd_quality=bd_quality(*args, method=method),
                               status="ok")
                except ValueError as e:
                    row.update(bd_rate=None, bd_quality=None, status=str(e))
                per.append(row)
            ok = [r for r in per if r["status"] == "ok"]
            out.extend(per)
            out.append({**head, "video": "mean", "quality": quality, "videos": len(ok),
                        "bd_rate": float(np.mean([r["bd_rate"] for r in ok])) if ok else None,
                        "bd_quality": float(np.mean([r["bd_quality"] for r in ok])) if ok else None,
                        "status": "ok" if ok else f"no video with a computable delta (of {len(per)})"})
    return out
