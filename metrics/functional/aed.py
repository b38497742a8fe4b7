r"""Average Euclidean distance (AED) of identity embeddings, as pose-evaluation computes it for faces.

Per frame :math:`t` with embeddings :math:`e \in \mathbb{R}^{128}`:

.. math::

    \mathrm{AED}_t = \lVert e^{gt}_t - e^{gen}_t \rVert_2^2 = \sum_{i=1}^{128} (e^{gt}_{t,i} - e^{gen}_{t,i})^2

-- the **squared** L2 distance (what pose-evaluation's ``cmp.py`` sums), despite the name. With the protocol
backend (OpenFace, L2-normalised embeddings of the whole frame) no frame is ever skipped. With a backend that
detects faces (dlib), frames without a face are skipped as in :mod:`metrics.functional.akd`
(``no_face_pred``; ``no_face_gt`` counted apart). Final value: mean over all scored frames, pooled.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from metrics.functional._common import Reduction, _face_metric, _nanmean, _paired_update
from metrics.validate import Frames

__all__ = ["aed", "_aed_update", "_aed_compute"]


def _aed_update(emb_preds: Sequence[np.ndarray | None], emb_target: Sequence[np.ndarray | None]
                ) -> tuple[np.ndarray, np.ndarray]:
    """Per-frame squared L2 distance of embeddings.

    Args:
        emb_preds: per generated frame a ``(D,)`` embedding, or ``None`` (no face).
        emb_target: per ground-truth frame the same.

    Returns:
        ``(values, status)``: ``(N,)`` float64 with NaN for skipped frames, and ``(N,)`` str status.
    """
    return _paired_update(emb_preds, emb_target, _squared_l2, "embeddings")


def _squared_l2(ep: np.ndarray, eg: np.ndarray) -> float:
    ep, eg = ep.ravel(), eg.ravel()
    if ep.shape != eg.shape:
        raise ValueError(f"embeddings must have equal length, but got {ep.shape} and {eg.shape}")
    return float(np.sum((eg - ep) ** 2))


def _aed_compute(values: np.ndarray) -> float:
    """Mean over scored frames (NaN-skipping); NaN when none was scored."""
    return _nanmean(values)


def aed(preds: Frames, target: Frames, backend: str | object = "dlib", reduction: Reduction = "mean"
        ) -> float | np.ndarray:
    """Average squared embedding distance (lower is better).

    Args:
        preds: generated frames, ``(N, H, W, 3)`` uint8 or ``(N, 3, H, W)`` float in [0, 1].
        target: ground-truth frames, same layout and shape.
        backend: an identity backend name (``"dlib"``, ``"openface"``) or an object with
            ``embeddings(frames) -> list[(D,) array | None]``.
        reduction: ``"mean"`` (over scored frames) or ``"none"`` (``(N,)``, NaN where skipped).

    Raises:
        FileNotFoundError: the backend's weights are missing.
    """
    from metrics.backends import get_identity_backend

    return _face_metric(preds, target, backend, reduction, get_identity_backend, "embeddings", _aed_update)
