"""Several metrics on the same frames: :class:`MetricCollection` (shared backends, one ``update`` for all) and the
:class:`MetricsReport` it builds (per-frame rows, summary, provenance) for the CLI, JSON and CSV."""

from __future__ import annotations

import json
import math
import os
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from metrics.aggregate import AED, AKD, DEFAULT_METRICS, LPIPS, METRICS, PerFrameMetric
from metrics.validate import Frames, _validate_pair, to_uint8_nhwc

__all__ = ["MetricCollection", "MetricsReport", "evaluate_frames"]


def _finite_or_none(x: Any) -> Any:
    """JSON-ready scalar: NaN → None, ±inf → "inf"/"-inf" (strict JSON has neither)."""
    if isinstance(x, (float, np.floating)):
        x = float(x)
        if math.isnan(x):
            return None
        if math.isinf(x):
            return "inf" if x > 0 else "-inf"
    elif isinstance(x, np.integer):
        return int(x)
    elif isinstance(x, np.bool_):
        return bool(x)
    return x


def _jsonable(obj: Any) -> Any:
    if isinstance(obj, Mapping):
        return {str(k): _jsonable(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [_jsonable(v) for v in obj]
    return _finite_or_none(obj)


@dataclass
class MetricsReport:
    """Per-frame rows, a summary per metric and the provenance of one evaluation.

    Attributes:
        frames: one dict per frame: ``{"video"?, "frame", "<metric>": value or None, "<metric>_status"?}``
            (``video`` only when several videos were evaluated; ``*_status`` for AKD/AED).
        summary: per metric, :meth:`PerFrameMetric.summary`.
        provenance: :func:`metrics.provenance.build_provenance`.
    """

    frames: list[dict[str, Any]]
    summary: dict[str, dict[str, Any]]
    provenance: dict[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        """``{"frames", "summary", "provenance"}`` with NaN → ``None`` and ``inf`` → ``"inf"`` (strict JSON)."""
        return _jsonable({"frames": self.frames, "summary": self.summary, "provenance": self.provenance})

    def to_json(self, indent: int | None = 2) -> str:
        """One strict JSON document."""
        return json.dumps(self.to_dict(), indent=indent, allow_nan=False)

    def to_dataframe(self, provenance_columns: bool = True) -> Any:
        """``pandas.DataFrame``, one row per frame; provenance flattened into ``prov.*`` columns."""
        import pandas as pd

        from metrics.provenance import provenance_columns as flatten

        df = pd.DataFrame(self.frames)
        if provenance_columns:
            for k, v in flatten(self.provenance).items():
                df[k] = v
        return df

    def to_csv(self, path: str | os.PathLike, sidecar: bool = True) -> Path:
        """Write the per-frame CSV (with ``prov.*`` columns) and, with ``sidecar``, ``<path>.provenance.json``."""
        from metrics.provenance import write_sidecar

        p = Path(path)
        p.parent.mkdir(parents=True, exist_ok=True)
        self.to_dataframe().to_csv(p, index=False)
        if sidecar:
            write_sidecar(_jsonable(self.provenance), p.with_name(p.name + ".provenance.json"))
        return p


class MetricCollection:
    """Several per-frame metrics on the same frames, sharing backends (torchmetrics' ``MetricCollection``).

    Args:
        metrics: names from :data:`METRICS` (``l1, psnr, ssim, lpips, akd, aed``).
        backend: landmark backend for AKD (``"dlib"`` or ``"face-alignment"``, or an object).
        aed_backend: identity backend for AED (``"dlib"`` or ``"openface"``, or an object).
        lpips_net: an ``lpips.LPIPS`` module to use instead of loading AlexNet LPIPS.

    Raises:
        ValueError: unknown metric or backend name.
        FileNotFoundError: a requested protocol network's weights are missing (raised here, before any frame
            is read).
    """

    def __init__(self, metrics: Sequence[str] = DEFAULT_METRICS, backend: str | Any = "dlib",
                 aed_backend: str | Any = "dlib", lpips_net: Any = None) -> None:
        unknown = [m for m in metrics if m not in METRICS]
        if unknown or not metrics:
            raise ValueError(f"metrics must be a non-empty subset of {tuple(METRICS)}, but got {list(metrics)}")
        self.metrics: dict[str, PerFrameMetric] = {}
        for name in dict.fromkeys(metrics):
            if name == "akd":
                self.metrics[name] = AKD(backend)
            elif name == "aed":
                self.metrics[name] = AED(aed_backend)
            elif name == "lpips":
                self.metrics[name] = LPIPS(lpips_net)
            else:
                self.metrics[name] = METRICS[name]()
        self.image_sizes: list[tuple[int, int]] = []

    def update(self, preds: Frames, target: Frames, video: str = "video") -> dict[str, np.ndarray]:
        """Score one batch with every metric; returns per metric the batch's ``(N,)`` values."""
        _validate_pair(preds, target)
        size = tuple(int(s) for s in (preds.shape[1:3] if isinstance(preds, np.ndarray) else preds.shape[-2:]))
        if size not in self.image_sizes:
            self.image_sizes.append(size)  # type: ignore[arg-type]
        face: tuple[np.ndarray, np.ndarray] | None = None
        out = {}
        for name, m in self.metrics.items():
            if name in ("akd", "aed"):  # uint8 frames for the face backends, converted once for both
                if face is None:
                    face = (to_uint8_nhwc(preds), to_uint8_nhwc(target))
                out[name] = m.update(*face, video=video)
            else:  # the others see the frames as given (no rounding of float frames)
                out[name] = m.update(preds, target, video=video)
        return out

    def compute(self) -> dict[str, float]:
        """Pooled value of every metric."""
        return {name: m.compute() for name, m in self.metrics.items()}

    def reset(self) -> None:
        for m in self.metrics.values():
            m.reset()
        self.image_sizes = []

    def frame_rows(self) -> list[dict[str, Any]]:
        """One dict per frame with every metric's value (None where skipped)."""
        if not self.metrics:
            return []
        first = next(iter(self.metrics.values()))
        vids, idx = first.videos, first.frame_index
        several = len(set(vids.tolist())) > 1
        cols = {n: (m.values, m.status) for n, m in self.metrics.items()}
        rows = []
        for i in range(len(idx)):
            row: dict[str, Any] = {"video": vids[i]} if several else {}
            row["frame"] = int(idx[i])
            for n, (vals, st) in cols.items():
                row[n] = None if math.isnan(vals[i]) else float(vals[i])
                if n in ("akd", "aed"):
                    row[f"{n}_status"] = str(st[i])
            rows.append(row)
        return rows

    def report(self, inputs: Mapping[str, str] | None = None) -> MetricsReport:
        """Per-frame rows, per-metric summary and provenance of everything seen so far."""
        from metrics.provenance import build_provenance

        first = next(iter(self.metrics.values()))
        size = self.image_sizes[0] if len(self.image_sizes) == 1 else None
        prov = build_provenance(
            {n: m.provenance() for n, m in self.metrics.items()},
            image_size=size,
            frames=len(first.values),
            inputs=inputs,
        )
        if len(self.image_sizes) > 1:
            prov["image_sizes"] = [list(s) for s in self.image_sizes]
        if any(n in self.metrics for n in ("akd", "aed")) and self.image_sizes != [(256, 256)]:
            sizes = ", ".join(f"{w}x{h}" for h, w in self.image_sizes)
            prov["notes"] = [f"AKD/AED are defined on 256x256 frames by pose-evaluation; these frames are {sizes} "
                             "(AKD is in pixels of these frames)"]
        return MetricsReport(
            frames=self.frame_rows(),
            summary={n: m.summary() for n, m in self.metrics.items()},
            provenance=prov,
        )


def evaluate_frames(preds: Iterable[Frames], target: Iterable[Frames], metrics: Sequence[str] = DEFAULT_METRICS,
                    backend: str | Any = "dlib", aed_backend: str | Any = "dlib", video: str = "video",
                    inputs: Mapping[str, str] | None = None) -> MetricsReport:
    """Score paired chunks of one video and return the report (a convenience over :class:`MetricCollection`)."""
    col = MetricCollection(metrics, backend=backend, aed_backend=aed_backend)
    for p, t in zip(preds, target):
        col.update(p, t, video=video)
    return col.report(inputs)
