r"""Average keypoint distance (AKD) as pose-evaluation computes it for faces.

Per frame :math:`t` with 68 landmarks :math:`k \in \mathbb{R}^{68 \times 2}` in pixel coordinates of the frame
(256x256 in the protocol):

.. math::

    \mathrm{AKD}_t = \frac{1}{68 \cdot 2} \sum_{j=1}^{68} \sum_{d \in \{x, y\}}
    \lvert k^{gt}_{j,d} - k^{gen}_{j,d} \rvert

-- the mean **absolute coordinate** difference, not a Euclidean distance: a shift of :math:`s` pixels in x
only gives :math:`s/2`; a shift of :math:`s` in both x and y gives :math:`s`.

Skips: a frame whose *generated* image has no detected face is skipped (pose-evaluation's rule; counted as
``no_face_pred``). A frame whose *ground-truth* image has no face is skipped and counted apart
(``no_face_gt``); pose-evaluation has no rule for it (its script would fail), so this is a documented
deviation. When both are missing the frame counts as ``no_face_gt``. The paper number is the mean over all
scored frames of all videos (pooled).
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from metrics.functional._common import Reduction, _face_metric, _nanmean, _paired_update
from metrics.validate import Frames

__all__ = ["akd", "_akd_update", "_akd_compute"]


def _akd_update(kp_preds: Sequence[np.ndarray | None], kp_target: Sequence[np.ndarray | None]
                ) -> tuple[np.ndarray, np.ndarray]:
    """Per-frame AKD from landmarks.

    Args:
        kp_preds: per generated frame a ``(K, 2)`` array of pixel coordinates, or ``None`` (no face).
        kp_target: per ground-truth frame the same.

    Returns:
        ``(values, status)``: ``(N,)`` float64 with NaN for skipped frames, and ``(N,)`` str status
        (``"ok"``, ``"no_face_pred"``, ``"no_face_gt"``).
    """
    return _paired_update(kp_preds, kp_target, _landmark_distance, "landmarks")


def _landmark_distance(kp: np.ndarray, kg: np.ndarray) -> float:
    if kp.shape != kg.shape or kp.ndim != 2 or kp.shape[1] != 2:
        raise ValueError(f"landmarks must be two (K, 2) arrays of equal K, but got {kp.shape} and {kg.shape}")
    return float(np.abs(kg - kp).mean())


def _akd_compute(values: np.ndarray) -> float:
    """Mean over scored frames (NaN-skipping); NaN when none was scored."""
    return _nanmean(values)


def akd(preds: Frames, target: Frames, backend: str | object = "dlib", reduction: Reduction = "mean"
        ) -> float | np.ndarray:
    """Average keypoint distance in pixels (lower is better).

    Args:
        preds: generated frames, ``(N, H, W, 3)`` uint8 or ``(N, 3, H, W)`` float in [0, 1].
        target: ground-truth frames, same layout and shape.
        backend: a landmark backend name (``"dlib"``, ``"face-alignment"``) or an object with
            ``landmarks(frames) -> list[(68, 2) array | None]``.
        reduction: ``"mean"`` (over scored frames) or ``"none"`` (``(N,)``, NaN where skipped).

    Raises:
        FileNotFoundError: the backend's weights are missing.
    """
    from metrics.backends import get_landmark_backend

    return _face_metric(preds, target, backend, reduction, get_landmark_backend, "landmarks", _akd_update)
