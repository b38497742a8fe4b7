"""Stateful metrics: thin shells around :mod:`metrics.functional` that keep **per-frame** values.

Every class has ``update(preds, target, video=...)``, ``compute()``, ``reset()`` and the class attributes
``higher_is_better`` and ``is_differentiable`` (torchmetrics' shape). They keep the value, the status
(``"ok"`` or why the frame was skipped) and the video of every frame, like ``all_scores`` in torchmetrics'
LPIPS, so both conventions can be reported:

* **pooled** over all frames of all videos -- :meth:`PerFrameMetric.compute`, the FOMM/pose-evaluation way;
* **per-video** means and their mean -- :meth:`PerFrameMetric.compute_per_video`, the JVET/report way.

:class:`metrics.collection.MetricCollection` runs several of them on the same frames with shared backends and
builds a report (per-frame rows, summary, provenance) for the CLI, JSON and CSV.

>>> import numpy as np
>>> m = L1()
>>> _ = m.update(np.zeros((1, 8, 8, 3), np.uint8), np.full((1, 8, 8, 3), 255, np.uint8), video="a")
>>> _ = m.update(np.zeros((3, 8, 8, 3), np.uint8), np.zeros((3, 8, 8, 3), np.uint8), video="b")
>>> m.compute(), m.compute_per_video()
(0.25, {'a': 1.0, 'b': 0.0})
"""

from __future__ import annotations

import math
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
