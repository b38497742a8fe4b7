"""The one number formatter and the one markdown-table writer of facelab's tables (reports, RD, learning curves).

Dependency-free on purpose (no pandas, no numpy import of its own), so any module can use it.

>>> fmt(0.04127, column="l1"), fmt(31.25, column="psnr"), fmt(None), fmt(3.0, ".2f"), fmt(float("inf"))
('0.0413', '31.250', '–', '3.00', 'inf')
>>> print(markdown_table(["a", "b"], [[1, "x"]], align="lr"))
| a | b |
|---|---:|
| 1 | x |
"""

from __future__ import annotations

import math
import numbers
from collections.abc import Iterable, Sequence

__all__ = ["MISSING", "FOUR_DECIMALS", "number_spec", "fmt", "markdown_table"]

MISSING = "–"
#: metrics shown with 4 decimals (values around 0.01-1); the others get 3
FOUR_DECIMALS = ("l1", "aed", "ssim", "lpips", "dists")


def number_spec(column: str, value: float) -> str:
    """The format spec of a float in a report column (ratios, percent and dB: 3 decimals; small metrics: 4).

    ``paper_<metric>`` and ``<metric> · <model>`` columns format as ``<metric>``.
    """
    name = column.removeprefix("paper_").split(" · ")[0]
    if "_vs_" in column or column.endswith("percent") or column.endswith("_db"):
        return ".3f"
    if name in FOUR_DECIMALS:
        return ".4f"
    return ".3f" if abs(value) < 1e4 else ".0f"


def fmt(v: object, spec: str | None = None, *, column: str = "", missing: str = MISSING,
        inf: str | None = None) -> str:
    """A cell's text.

    Args:
        v: the value: None and NaN give ``missing``; booleans ``True``/``False``; other non-numbers ``str(v)``.
        spec: a format spec for numbers (``".2f"``); None: integers as digits, floats by :func:`number_spec`
            of ``column``.
        column: the column's name (used when ``spec`` is None).
        missing: the text of a missing value.
        inf: the text of an infinite value (None: ``inf`` / ``-inf``).
    """
    if v is None:
        return missing
    if isinstance(v, bool) or not isinstance(v, numbers.Real):  # (numpy.bool_ is no numbers.Real)
        return str(v)
    if isinstance(v, numbers.Integral) and spec is None:
        return str(int(v))
    x = float(v)
    if math.isnan(x):
        return missing
    if math.isinf(x):
        return inf if inf is not None else ("inf" if x > 0 else "-inf")
    return format(v if isinstance(v, numbers.Integral) else x, spec or number_spec(column, x))


def markdown_table(header: Sequence[str], rows: Iterable[Sequence[object]], align: str | None = None) -> str:
    """A GitHub-flavoured markdown table (no trailing newline); cells are ``str()`` of what is given.

    Args:
        header: column titles.
        rows: one sequence of cells per row (format numbers with :func:`fmt` first).
        align: one letter per column, ``l`` (``---``) or ``r`` (``---:``); None: all ``---``.
    """
    align = align or "l" * len(header)
    if len(align) != len(header):
        raise ValueError(f"align has {len(align)} letters for {len(header)} columns")
    lines = ["| " + " | ".join(map(str, header)) + " |",
             "|" + "".join("---:|" if a == "r" else "---|" for a in align)]
    lines += ["| " + " | ".join(map(str, r)) + " |" for r in rows]
    return "\n".join(lines)
