"""Evaluation metrics as the field computes them: L1, AKD, AED, LPIPS, PSNR, SSIM, with provenance.

* :mod:`metrics.functional` -- pure per-frame functions (``l1``, ``psnr``, ``ssim``, ``lpips``, ``akd``,
  ``aed``) on ``(N, H, W, 3)`` uint8 numpy or ``(N, 3, H, W)`` float [0, 1] torch frames;
* :mod:`metrics.aggregate` -- stateful shells keeping per-frame values (pooled and per-video means, skipped
  frame counts); :mod:`metrics.collection` -- :class:`MetricCollection` / :class:`MetricsReport`;
* :mod:`metrics.backends` -- landmark/identity backends by name: ``face-alignment`` and ``openface`` (the
  pose-evaluation protocol; weights placed by hand) and ``dlib`` (offline, always available, **not** the
  protocol convention);
* :mod:`metrics.provenance` -- backend, weight files and sha256, sizes, frames, versions, for every number.

Conventions (AliaksandrSiarohin/pose-evaluation, FOMM): AKD = mean absolute difference of the 68x2 landmark
pixel coordinates, frames without a face in the generated image skipped; AED = squared L2 distance of
identity embeddings; both pooled over all frames of all videos.
"""

from metrics.aggregate import (
    AED,
    AKD,
    DEFAULT_METRICS,
    L1,
    LPIPS,
    METRICS,
    PSNR,
    SSIM,
    PerFrameMetric,
)
from metrics.backends import clear_backend_cache, get_identity_backend, get_landmark_backend
from metrics.collection import MetricCollection, MetricsReport, evaluate_frames
from metrics.functional import aed, akd, l1, lpips, psnr, ssim

__all__ = [
    "l1",
    "psnr",
    "ssim",
    "lpips",
    "akd",
    "aed",
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
    "get_landmark_backend",
    "get_identity_backend",
    "clear_backend_cache",
]
