r"""L1 distance between generated and ground-truth frames, as FOMM's ``reconstruction.py`` reports it.

.. math::

    \mathrm{L1}_t = \frac{1}{3HW} \sum_{c,y,x} \lvert \hat I_t(c,y,x) - I_t(c,y,x) \rvert, \qquad I \in [0, 1]

The paper number is the mean of :math:`\mathrm{L1}_t` over all frames of all test videos (pooled).
"""

from __future__ import annotations

import numpy as np

from metrics.functional._common import Reduction, _check_reduction, _nanmean, _reduce
from metrics.validate import Frames, _validate_pair, to_float_nhwc

__all__ = ["l1", "_l1_update", "_l1_compute"]


def _l1_update(preds: Frames, target: Frames) -> np.ndarray:
    """Per-frame L1 on the [0, 1] scale.

    Args:
        preds: ``(N, H, W, 3)`` uint8 or ``(N, 3, H, W)`` float in [0, 1].
        target: same layout and shape as ``preds``.

    Returns:
        ``(N,)`` float64.
    """
    _validate_pair(preds, target)
    p, t = to_float_nhwc(preds), to_float_nhwc(target)
    return np.abs(p - t).mean(axis=(1, 2, 3))


def _l1_compute(values: np.ndarray) -> float:
    """Pooled mean of per-frame values."""
    return _nanmean(values)


def l1(preds: Frames, target: Frames, reduction: Reduction = "mean") -> float | np.ndarray:
    """Mean absolute difference over pixels and channels, values on the [0, 1] scale (lower is better).

    Args:
        preds: generated frames, ``(N, H, W, 3)`` uint8 or ``(N, 3, H, W)`` float in [0, 1].
        target: ground-truth frames, same layout and shape.
        reduction: ``"mean"`` (over frames) or ``"none"`` (``(N,)`` array).

    Example:
        >>> import numpy as np
        >>> a = np.zeros((1, 2, 2, 3), np.uint8); b = np.full((1, 2, 2, 3), 51, np.uint8)
        >>> round(l1(a, b), 6)
        0.2
    """
    _check_reduction(reduction)
    return _reduce(_l1_update(preds, target), reduction)
