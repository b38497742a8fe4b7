"""FOMM's relative motion transfer (the *animate* mode), batched.

Siarohin et al., *First Order Motion Model for Image Animation*, NeurIPS 2019, Sec. 3.4 (Eq. 8): to animate a
source with a driving video of another identity, move the source keypoints by the driving keypoints' displacement
from the first driving frame, and compose the Jacobians likewise:

    p_new = p_s + scale * (p_d - p_d,1),        J_new = (J_d @ inverse(J_d,1)) @ J_s

``scale`` (``adapt_movement_scale``) is ``sqrt(area(hull(p_s))) / sqrt(area(hull(p_d,1)))``, the convex hulls
computed with :class:`scipy.spatial.ConvexHull` as the official code does. Semantics match ``normalize_kp`` in
AliaksandrSiarohin/first-order-model@c0274845 ``animate.py`` (used by its ``demo.py``); the official code takes
the hull of batch element 0 only, this version computes one scale per batch element (identical at batch 1).
"""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np
import torch
from torch import Tensor

__all__ = ["normalize_kp", "movement_scale"]


def _hull_area(points: np.ndarray) -> float:
    from scipy.spatial import ConvexHull

    try:
        return float(ConvexHull(points).volume)  # in 2-D, "volume" is the area
    except Exception as e:  # scipy.spatial.QhullError: fewer than 3 points, or all collinear
        raise ValueError(
            f"adapt_movement_scale needs keypoints spanning an area (got {len(points)} points): {e}".splitlines()[0]
        ) from e


def movement_scale(kp_source_value: Tensor, kp_driving_initial_value: Tensor) -> Tensor:
    """FOMM's movement scale ``sqrt(hull area of source kp) / sqrt(hull area of initial driving kp)``.

    Not differentiable (scipy on CPU copies).

    Args:
        kp_source_value: ``(B or 1, K, 2)`` source keypoints.
        kp_driving_initial_value: ``(B or 1, K, 2)`` keypoints of the first driving frame.

    Returns:
        ``(B, 1, 1)`` scale, on the inputs' device and dtype (``B`` the broadcast batch).

    Raises:
        ValueError: fewer than 3 keypoints, or collinear ones (no hull).
    """
    src, ini = torch.broadcast_tensors(kp_source_value.detach(), kp_driving_initial_value.detach())
    src_np = src.to("cpu", torch.float64).numpy()
    ini_np = ini.to("cpu", torch.float64).numpy()
    scales = [np.sqrt(_hull_area(s)) / np.sqrt(_hull_area(d)) for s, d in zip(src_np, ini_np)]
    return torch.tensor(scales, dtype=kp_source_value.dtype, device=kp_source_value.device).view(-1, 1, 1)


def normalize_kp(
    kp_source: Mapping[str, Tensor],
    kp_driving: Mapping[str, Tensor],
    kp_driving_initial: Mapping[str, Tensor],
    adapt_movement_scale: bool = False,
    use_relative_movement: bool = False,
    use_relative_jacobian: bool = False,
) -> dict[str, Tensor]:
    """Driving keypoints re-expressed relative to the source (FOMM's ``normalize_kp``).

    Args:
        kp_source: ``{"value": (1 or N, K, 2), "jacobian": (1 or N, K, 2, 2)}`` of the source frame.
        kp_driving: the same layout for ``N`` driving frames.
        kp_driving_initial: the same layout for the first driving frame (batch 1 or ``N``).
        adapt_movement_scale: scale displacements by :func:`movement_scale` (only with relative movement).
        use_relative_movement: ``value = kp_source + scale * (kp_driving - kp_driving_initial)``.
        use_relative_jacobian: ``jacobian = kp_driving @ inverse(kp_driving_initial) @ kp_source`` (only with
            relative movement and when the dicts carry Jacobians).

    Returns:
        A new dict (inputs are not modified) with the keys of ``kp_driving``; without relative movement the
        driving keypoints unchanged.
    """
    kp_new = dict(kp_driving)
    if not use_relative_movement:
        return kp_new
    diff = kp_driving["value"] - kp_driving_initial["value"]
    if adapt_movement_scale:
        diff = diff * movement_scale(kp_source["value"], kp_driving_initial["value"])
    kp_new["value"] = diff + kp_source["value"]
    if use_relative_jacobian and "jacobian" in kp_driving:
        jacobian_diff = torch.matmul(kp_driving["jacobian"], torch.inverse(kp_driving_initial["jacobian"]))
        kp_new["jacobian"] = torch.matmul(jacobian_diff, kp_source["jacobian"])
    return kp_new
