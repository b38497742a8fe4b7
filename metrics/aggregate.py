"""Stateful metrics: thin shells around :mod:`metrics.functional` that keep **per-frame** values.

Every class has ``update(preds, target, video=...)``, ``compute()``, ``reset()`` and the class attributes
``higher_is_better`` and ``is_differentiable`` (torchmetrics' shape). They keep the value, the status
(``"ok"`` or why the frame was skipped) and the video of every frame, like ``all_scores`` in torchmetrics'
LPIPS, so both conventions can be reported:

* **pooled** over all frames of all videos -- :meth:`PerFrameMetric.compute`, the FOMM/pose-evaluation way;
* **per-video** means and their mean -- :meth:`PerFrameMetric.compute_per_video`, the JVET/report way.

:class:`MetricCollection` runs several metrics on the same frames with shared backends and builds a
:class:`MetricsReport` (per-frame rows, summary, provenance) for the CLI, JSON and CSV.

>>> import numpy as np
>>> m = L1()
>>> _ = m.update(np.zeros((1, 8, 8, 3), np.uint8), np.full((1, 8, 8, 3), 255, np.uint8), video="a")
>>> _ = m.update(np.zeros((3, 8, 8, 3), np.uint8), np.zeros((3, 8, 8, 3), np.uint8), video="b")
>>> m.compute(), m.compute_per_video()
(0.25, {'a': 1.0, 'b': 0.0})
"""

from __future__ import annotations

import json
import math
import os
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, ClassVar

import numpy as np

from metrics.functional._common import NO_FACE_GT, NO_FACE_PRED, OK, _nanmean
from metrics.functional.aed import _aed_compute, _aed_update
from metrics.functional.akd import _akd_compute, _akd_update
from metrics.functional.l1 import _l1_compute, _l1_update
from metrics.functional.lpips import _lpips_compute, _lpips_update
from metrics.functional.psnr_ssim import _psnr_compute, _psnr_update, _ssim_compute, _ssim_update
from metrics.validate import Frames, _validate_pair, to_uint8_nhwc

__all__ = [
    "PerFrameMetric",
    "L1",
    "PSNR",
    "SSIM",
    "LPIPS",
    "AKD",
    "AED",
    "METRICS",
    "DEFAULT_METRICS",
    "MetricCollection",
    "MetricsReport",
    "evaluate_frames",
]


class PerFrameMetric:
    """Base class: per-frame values, statuses and video ids, pooled and per-video means."""

    name: ClassVar[str] = ""
    higher_is_better: ClassVar[bool] = False
    is_differentiable: ClassVar[bool] = False  # evaluation metrics: computed without autograd
    full_state_update: ClassVar[bool] = False
    unit: ClassVar[str] = ""

    def __init__(self) -> None:
        self.reset()

    # ------------------------------------------------------------------ state
    def reset(self) -> None:
        """Forget every frame."""
        self._values: list[np.ndarray] = []
        self._status: list[np.ndarray] = []
        self._video: list[np.ndarray] = []
        self._frame: list[np.ndarray] = []
        self._next_frame: dict[str, int] = {}

    def _update(self, preds: Frames, target: Frames) -> tuple[np.ndarray, np.ndarray]:
        """Per-frame ``(values, status)`` of one batch; subclasses call their functional ``_x_update``."""
        raise NotImplementedError

    def update(self, preds: Frames, target: Frames, video: str = "video") -> np.ndarray:
        """Score a batch of frames of ``video`` (frames are numbered in the order they arrive per video).

        Args:
            preds: generated frames, ``(N, H, W, 3)`` uint8 or ``(N, 3, H, W)`` float in [0, 1].
            target: ground-truth frames, same layout and shape.
            video: the video these frames belong to (for per-video means).

        Returns:
            the batch's ``(N,)`` float64 values (NaN where skipped).
        """
        values, status = self._update(preds, target)
        return self._append(values, status, video)

    def _append(self, values: np.ndarray, status: np.ndarray, video: str) -> np.ndarray:
        n = len(values)
        start = self._next_frame.get(video, 0)
        self._next_frame[video] = start + n
        self._values.append(np.asarray(values, np.float64))
        self._status.append(np.asarray(status, dtype=str))
        self._video.append(np.full(n, video, dtype=object))
        self._frame.append(np.arange(start, start + n))
        return self._values[-1]

    # ------------------------------------------------------------------ views
    @property
    def values(self) -> np.ndarray:
        """``(M,)`` float64 per-frame values of every frame seen (NaN where skipped)."""
        return np.concatenate(self._values) if self._values else np.zeros(0)

    @property
    def status(self) -> np.ndarray:
        """``(M,)`` str statuses: ``"ok"``, ``"no_face_pred"``, ``"no_face_gt"``."""
        return np.concatenate(self._status) if self._status else np.zeros(0, dtype=str)

    @property
    def videos(self) -> np.ndarray:
        """``(M,)`` video id of every frame."""
        return np.concatenate(self._video) if self._video else np.zeros(0, dtype=object)

    @property
    def frame_index(self) -> np.ndarray:
        """``(M,)`` frame number of every frame within its video."""
        return np.concatenate(self._frame) if self._frame else np.zeros(0, dtype=int)

    def _compute(self, values: np.ndarray) -> float:
        return _nanmean(values)

    def compute(self) -> float:
        """Mean over all scored frames of all videos, pooled (the papers' convention); NaN if none."""
        return self._compute(self.values)

    def compute_per_video(self) -> dict[str, float]:
        """Mean over the scored frames of each video, in order of first appearance."""
        vals, vids = self.values, self.videos
        return {v: self._compute(vals[vids == v]) for v in dict.fromkeys(vids.tolist())}

    def counts(self) -> dict[str, int]:
        """``{"frames", "frames_used", "skipped_no_face_pred", "skipped_no_face_gt"}``."""
        st = self.status
        return {
            "frames": int(st.size),
            "frames_used": int(np.sum(st == OK)),
            "skipped_no_face_pred": int(np.sum(st == NO_FACE_PRED)),
            "skipped_no_face_gt": int(np.sum(st == NO_FACE_GT)),
        }

    def summary(self) -> dict[str, Any]:
        """Pooled value, mean of per-video means, counts, direction and label (JSON-ready except inf)."""
        per_video = self.compute_per_video()
        scored = [v for v in per_video.values() if not math.isnan(v)]
        return {
            "value": self.compute(),
            "per_video_mean": float(np.mean(scored)) if scored else float("nan"),
            "videos": len(per_video),
            **self.counts(),
            "higher_is_better": self.higher_is_better,
            "unit": self.unit,
            "backend": self.provenance().get("label", ""),
        }

    def provenance(self) -> dict[str, Any]:
        """How this metric's numbers are made (subclasses add backend and weights)."""
        return {"metric": self.name, **self.counts()}

    def __repr__(self) -> str:
        return f"{type(self).__name__}(frames={sum(len(v) for v in self._values)})"


def _all_ok(n: int) -> np.ndarray:
    return np.full(n, OK, dtype="<U16")


class L1(PerFrameMetric):
    """Mean absolute difference on the [0, 1] scale (:func:`metrics.functional.l1`)."""

    name = "l1"
    higher_is_better = False

    def _update(self, preds: Frames, target: Frames) -> tuple[np.ndarray, np.ndarray]:
        v = _l1_update(preds, target)
        return v, _all_ok(len(v))

    def _compute(self, values: np.ndarray) -> float:
        return _l1_compute(values)

    def provenance(self) -> dict[str, Any]:
        return {**super().provenance(), "label": "mean |pred - gt| over pixels and channels, [0, 1] scale"}


class PSNR(PerFrameMetric):
    """Per-frame PSNR in dB, RGB, ``data_range=1`` (scikit-image)."""

    name = "psnr"
    higher_is_better = True
    unit = "dB"

    def _update(self, preds: Frames, target: Frames) -> tuple[np.ndarray, np.ndarray]:
        v = _psnr_update(preds, target)
        return v, _all_ok(len(v))

    def _compute(self, values: np.ndarray) -> float:
        return _psnr_compute(values)

    def provenance(self) -> dict[str, Any]:
        return {**super().provenance(), "label": "skimage.metrics.peak_signal_noise_ratio, RGB, data_range=1"}


class SSIM(PerFrameMetric):
    """Per-frame SSIM, RGB, ``channel_axis=-1``, ``data_range=1`` (scikit-image defaults otherwise)."""

    name = "ssim"
    higher_is_better = True

    def _update(self, preds: Frames, target: Frames) -> tuple[np.ndarray, np.ndarray]:
        v = _ssim_update(preds, target)
        return v, _all_ok(len(v))

    def _compute(self, values: np.ndarray) -> float:
        return _ssim_compute(values)

    def provenance(self) -> dict[str, Any]:
        return {
            **super().provenance(),
            "label": "skimage.metrics.structural_similarity, channel_axis=-1, data_range=1, win_size=7",
        }


class LPIPS(PerFrameMetric):
    """LPIPS v0.1, AlexNet (:func:`metrics.functional.lpips`).

    Args:
        net: an ``lpips.LPIPS`` module; default: loaded from ``alexnet-owt-7be5be79.pth`` (raises
            :class:`FileNotFoundError` naming the file and folder when it is missing).
        batch_size: frames per forward pass.
    """

    name = "lpips"
    higher_is_better = False

    def __init__(self, net: Any = None, batch_size: int = 16) -> None:
        from metrics.backends.lpips_alex import get_lpips_alex, lpips_provenance

        if net is None:
            self.net, self._prov = get_lpips_alex()
        else:
            self.net, self._prov = net, lpips_provenance(net)
        self.batch_size = batch_size
        super().__init__()

    def _update(self, preds: Frames, target: Frames) -> tuple[np.ndarray, np.ndarray]:
        v = _lpips_update(preds, target, self.net, self.batch_size)
        return v, _all_ok(len(v))

    def _compute(self, values: np.ndarray) -> float:
        return _lpips_compute(values)

    def provenance(self) -> dict[str, Any]:
        return {**super().provenance(), **self._prov}


class AKD(PerFrameMetric):
    """Average keypoint distance in pixels with a landmark backend (:mod:`metrics.functional.akd`).

    Args:
        backend: ``"dlib"`` (offline default), ``"face-alignment"`` (protocol) or a backend object.
    """

    name = "akd"
    higher_is_better = False
    unit = "px"

    def __init__(self, backend: str | Any = "dlib") -> None:
        if isinstance(backend, str):
            from metrics.backends import get_landmark_backend

            backend = get_landmark_backend(backend)
        self.backend = backend
        super().__init__()

    def _update(self, preds: Frames, target: Frames) -> tuple[np.ndarray, np.ndarray]:
        _validate_pair(preds, target)
        p, t = to_uint8_nhwc(preds), to_uint8_nhwc(target)
        return _akd_update(self.backend.landmarks(p), self.backend.landmarks(t))

    def _compute(self, values: np.ndarray) -> float:
        return _akd_compute(values)

    def provenance(self) -> dict[str, Any]:
        return {**super().provenance(), **_backend_provenance(self.backend)}


class AED(PerFrameMetric):
    """Average squared embedding distance with an identity backend (:mod:`metrics.functional.aed`).

    Args:
        backend: ``"dlib"`` (offline default), ``"openface"`` (protocol) or a backend object.
    """

    name = "aed"
    higher_is_better = False

    def __init__(self, backend: str | Any = "dlib") -> None:
        if isinstance(backend, str):
            from metrics.backends import get_identity_backend

            backend = get_identity_backend(backend)
        self.backend = backend
        super().__init__()

    def _update(self, preds: Frames, target: Frames) -> tuple[np.ndarray, np.ndarray]:
        _validate_pair(preds, target)
        p, t = to_uint8_nhwc(preds), to_uint8_nhwc(target)
        return _aed_update(self.backend.embeddings(p), self.backend.embeddings(t))

    def _compute(self, values: np.ndarray) -> float:
        return _aed_compute(values)

    def provenance(self) -> dict[str, Any]:
        return {**super().provenance(), **_backend_provenance(self.backend)}


def _backend_provenance(backend: Any) -> dict[str, Any]:
    if hasattr(backend, "provenance"):
        return dict(backend.provenance())
    return {"backend": type(backend).__name__, "label": f"caller-supplied {type(backend).__name__}", "weights": []}


METRICS: dict[str, type[PerFrameMetric]] = {
    "l1": L1, "psnr": PSNR, "ssim": SSIM, "lpips": LPIPS, "akd": AKD, "aed": AED,
}
DEFAULT_METRICS = ("l1", "psnr", "ssim", "lpips", "akd", "aed")


# ---------------------------------------------------------------------- collection and report
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
