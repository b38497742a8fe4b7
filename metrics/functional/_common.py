"""Pieces shared by the functional metrics: reduction, and the per-frame status codes of skipped frames."""

from __future__ import annotations

import warnings
from collections.abc import Callable, Sequence
from typing import Literal

import numpy as np

__all__ = ["Reduction", "OK", "NO_FACE_PRED", "NO_FACE_GT", "STATUSES", "_reduce", "_nanmean", "_check_reduction",
           "_paired_update"]

Reduction = Literal["mean", "none"]

#: the frame was scored
OK = "ok"
#: no face detected in the generated (predicted) frame: skipped, as pose-evaluation does
NO_FACE_PRED = "no_face_pred"
#: no face detected in the ground-truth frame: skipped and counted apart (pose-evaluation would crash)
NO_FACE_GT = "no_face_gt"
STATUSES = (OK, NO_FACE_PRED, NO_FACE_GT)


def _check_reduction(reduction: str) -> None:
    if reduction not in ("mean", "none"):
        raise ValueError(f"Argument `reduction` must be one of ('mean', 'none'), but got {reduction!r}")


def _nanmean(values: np.ndarray) -> float:
    """Mean over the scored frames (NaN marks a skipped frame); NaN when no frame was scored."""
    v = np.asarray(values, dtype=np.float64)
    if v.size == 0 or np.all(np.isnan(v)):
        return float("nan")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # inf - inf in PSNR of identical frames
        return float(np.nanmean(v))


def _reduce(values: np.ndarray, reduction: Reduction) -> float | np.ndarray:
    """``"mean"``: :func:`_nanmean` (pooled over frames); ``"none"``: the per-frame ``(N,)`` float64 array."""
    _check_reduction(reduction)
    return _nanmean(values) if reduction == "mean" else np.asarray(values, dtype=np.float64)


def _paired_update(preds: Sequence[np.ndarray | None], target: Sequence[np.ndarray | None],
                   distance: Callable[[np.ndarray, np.ndarray], float], what: str) -> tuple[np.ndarray, np.ndarray]:
    """Per-frame ``distance(pred, gt)`` of face features (landmarks, embeddings), with the skip rules.

    Args:
        preds: per generated frame a float array, or ``None`` (no face).
        target: per ground-truth frame the same.
        distance: of two float64 arrays; raises ValueError on mismatched shapes.
        what: the features' name, for the length-mismatch error.

    Returns:
        ``(values, status)``: ``(N,)`` float64 with NaN for skipped frames, and ``(N,)`` str status
        (:data:`OK`, :data:`NO_FACE_PRED`, :data:`NO_FACE_GT`; no face in either counts as ``no_face_gt``).
    """
    if len(preds) != len(target):
        raise ValueError(f"got {what} for {len(preds)} generated but {len(target)} ground-truth frames")
    values = np.full(len(preds), np.nan)
    status = np.empty(len(preds), dtype=object)
    for i, (p, g) in enumerate(zip(preds, target)):
        if g is None:
            status[i] = NO_FACE_GT
        elif p is None:
            status[i] = NO_FACE_PRED
        else:
            values[i] = distance(np.asarray(p, np.float64), np.asarray(g, np.float64))
            status[i] = OK
    return values, status.astype(str)


def _face_metric(preds, target, backend, reduction: Reduction, resolve: Callable, features: str,
                 update: Callable) -> float | np.ndarray:
    """What AKD and AED share: check the frames, resolve a backend name with ``resolve``, measure the face
    ``features`` (``"landmarks"`` / ``"embeddings"``) of both sides, pair them with ``update``, reduce."""
    from metrics.validate import _validate_pair, to_uint8_nhwc

    _check_reduction(reduction)
    _validate_pair(preds, target)
    if isinstance(backend, str):
        backend = resolve(backend)
    measure = getattr(backend, features)
    values, _ = update(measure(to_uint8_nhwc(preds)), measure(to_uint8_nhwc(target)))
    return _reduce(values, reduction)
