r"""PSNR and SSIM per frame, with scikit-image as the implementation (the reference torchmetrics tests against).

Both are computed on RGB frames on the [0, 1] scale with ``data_range=1`` (uint8 frames are divided by 255;
both metrics are invariant to that common scaling, so this equals ``data_range=255`` on the uint8 frames).

.. math::

    \mathrm{PSNR}_t = 10 \log_{10} \frac{1}{\mathrm{MSE}_t}

PSNR of identical frames is ``inf``. SSIM uses scikit-image's defaults (7x7 uniform window, sample
covariance, ``K1=0.01``, ``K2=0.03``) with ``channel_axis=-1`` (mean over the three channels). The JVET
rate-distortion protocol averages per-frame values per sequence, then over sequences.
"""

from __future__ import annotations

import numpy as np

from metrics.functional._common import Reduction, _check_reduction, _nanmean, _reduce
from metrics.validate import Frames, _validate_pair, to_float_nhwc

__all__ = ["psnr", "ssim", "_psnr_update", "_psnr_compute", "_ssim_update", "_ssim_compute"]


def _psnr_update(preds: Frames, target: Frames) -> np.ndarray:
    """Per-frame PSNR in dB (``(N,)`` float64; ``inf`` for identical frames)."""
    from skimage.metrics import peak_signal_noise_ratio

    _validate_pair(preds, target)
    p, t = to_float_nhwc(preds), to_float_nhwc(target)
    with np.errstate(divide="ignore"):
        return np.array([peak_signal_noise_ratio(ti, pi, data_range=1.0) for pi, ti in zip(p, t)], np.float64)


def _psnr_compute(values: np.ndarray) -> float:
    """Mean of per-frame PSNR (``inf`` if any frame is identical to its ground truth)."""
    return _nanmean(values)


def psnr(preds: Frames, target: Frames, reduction: Reduction = "mean") -> float | np.ndarray:
    """Peak signal-to-noise ratio in dB per frame, RGB, ``data_range=1`` (higher is better).

    Args:
        preds: generated frames, ``(N, H, W, 3)`` uint8 or ``(N, 3, H, W)`` float in [0, 1].
        target: ground-truth frames, same layout and shape.
        reduction: ``"mean"`` (of per-frame values) or ``"none"``.
    """
    _check_reduction(reduction)
    return _reduce(_psnr_update(preds, target), reduction)


def _ssim_update(preds: Frames, target: Frames) -> np.ndarray:
    """Per-frame SSIM (``(N,)`` float64 in [-1, 1])."""
    from skimage.metrics import structural_similarity

    _validate_pair(preds, target)
    p, t = to_float_nhwc(preds), to_float_nhwc(target)
    return np.array(
        [structural_similarity(ti, pi, channel_axis=-1, data_range=1.0) for pi, ti in zip(p, t)], np.float64
    )


def _ssim_compute(values: np.ndarray) -> float:
    """Mean of per-frame SSIM."""
    return _nanmean(values)


def ssim(preds: Frames, target: Frames, reduction: Reduction = "mean") -> float | np.ndarray:
    """Structural similarity per frame (scikit-image, ``channel_axis=-1``, ``data_range=1``; higher is better).

    Args:
        preds: generated frames, ``(N, H, W, 3)`` uint8 or ``(N, 3, H, W)`` float in [0, 1]; at least 7x7.
        target: ground-truth frames, same layout and shape.
        reduction: ``"mean"`` (of per-frame values) or ``"none"``.
    """
    _check_reduction(reduction)
    return _reduce(_ssim_update(preds, target), reduction)
