"""Monkey-Net keypoint detector: heatmaps -> keypoint means and covariances (moments of a softmax).

Own re-implementation of the keypoint detector of Siarohin et al., "Animating Arbitrary Objects via Deep
Motion Transfer", CVPR 2019 (https://arxiv.org/abs/1812.08861), checked against the official code
AliaksandrSiarohin/monkey-net@0c8aa4ea458a79717d9016a36a3d86d10a166aea (``modules/keypoint_detector.py``).

Keypoints are in the ``[-1, 1]`` (x, y) convention of :func:`~baselines.monkey_net.blocks.make_coordinate_grid`.
``kp_variance`` selects the keypoint representation: ``'matrix'`` (a full 2x2 covariance per keypoint, used by
every published config), ``'single'`` (one isotropic variance per keypoint) or a number (a fixed isotropic
variance; only means are estimated).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from baselines.monkey_net.blocks import Hourglass, make_coordinate_grid, matrix_inverse, smallest_singular

__all__ = ["KPDetector", "kp2gaussian", "gaussian2kp", "KpVariance"]

KpVariance = str | float
"""``'matrix'``, ``'single'`` or a fixed variance."""


def _check_kp_variance(kp_variance: KpVariance) -> None:
    if isinstance(kp_variance, str) and kp_variance not in ("matrix", "single"):
        raise ValueError(f"kp_variance must be 'matrix', 'single' or a number, got {kp_variance!r}")


def kp2gaussian(kp: dict[str, Tensor], spatial_size: tuple[int, int], kp_variance: KpVariance = "matrix") -> Tensor:
    """Draw each keypoint as an unnormalised Gaussian ``exp(-0.5 * d^T Sigma^-1 d)`` on a grid.

    Args:
        kp: ``{'mean': (..., K, 2)}`` plus ``'var'`` ``(..., K, 2, 2)`` for ``'matrix'`` or ``(..., K, 1, 1)``
            for ``'single'``.
        spatial_size: ``(h, w)`` of the grid.
        kp_variance: the keypoint representation (see module docstring).

    Returns:
        ``(..., K, h, w)`` values in ``(0, 1]``.
    """
    mean = _at_least_fp32(kp["mean"])
    lead = mean.shape[:-1]
    with _full_precision(mean):
        grid = make_coordinate_grid(spatial_size, mean.dtype, mean.device)
        grid = grid.view((1,) * len(lead) + grid.shape)
        mean_sub = grid - mean.view(*lead, 1, 1, 2)  # (..., K, h, w, 2)
        if kp_variance == "matrix":
            inv_var = matrix_inverse(_at_least_fp32(kp["var"])).view(*lead, 1, 1, 2, 2)
            under_exp = torch.matmul(torch.matmul(mean_sub.unsqueeze(-2), inv_var), mean_sub.unsqueeze(-1))
            return torch.exp(-0.5 * under_exp.squeeze(-1).squeeze(-1))
        if kp_variance == "single":
            return torch.exp(-0.5 * (mean_sub**2).sum(-1) / _at_least_fp32(kp["var"]))
        _check_kp_variance(kp_variance)
        return torch.exp(-0.5 * (mean_sub**2).sum(-1) / kp_variance)


def _at_least_fp32(t: Tensor) -> Tensor:
    """bf16/fp16 (autocast) -> fp32; fp32 and fp64 are kept as they are."""
    return t.float() if t.dtype in (torch.bfloat16, torch.float16) else t


def _full_precision(t: Tensor):
    """Autocast off: keypoint moments, covariance inverses and singular values stay float32 under AMP
    (bf16 would make ``smallest_singular`` cancel to 0 and the covariances NaN). A no-op without autocast."""
    return torch.autocast(device_type=t.device.type, enabled=False)


def gaussian2kp(
    heatmap: Tensor, kp_variance: KpVariance = "matrix", clip_variance: float | None = None
) -> dict[str, Tensor]:
    """Mean and covariance of normalised heatmaps.

    Args:
        heatmap: ``(B, K, D, h, w)``, each map summing to 1 (a softmax); ``1e-7`` is added to every value
            before the moments (as the official code does, against NaN variances).
        kp_variance: the keypoint representation (see module docstring).
        clip_variance: for ``'matrix'``, rescale each covariance so that its smallest singular value is at
            least this (None or 0: no clipping).

    Returns:
        ``{'mean': (B, D, K, 2)}`` plus ``'var'``: ``(B, D, K, 2, 2)`` (``'matrix'``) or ``(B, D, K, 1, 1)``
        (``'single'``).
    """
    h, w = heatmap.shape[3:]
    heatmap = _at_least_fp32(heatmap)
    with _full_precision(heatmap):
        heatmap = heatmap.unsqueeze(-1) + 1e-7  # (B, K, D, h, w, 1)
        grid = make_coordinate_grid((h, w), heatmap.dtype, heatmap.device).view(1, 1, 1, h, w, 2)
        mean = (heatmap * grid).sum(dim=(3, 4))  # (B, K, D, 2)
        kp = {"mean": mean.permute(0, 2, 1, 3)}
        if kp_variance == "matrix":
            mean_sub = grid - mean.unsqueeze(-2).unsqueeze(-2)  # (B, K, D, h, w, 2)
            var = torch.matmul(mean_sub.unsqueeze(-1), mean_sub.unsqueeze(-2))  # (B, K, D, h, w, 2, 2)
            var = (var * heatmap.unsqueeze(-1)).sum(dim=(3, 4)).permute(0, 2, 1, 3, 4)
            if clip_variance:
                sg = smallest_singular(var).unsqueeze(-1)  # (B, D, K, 1, 1)
                var = torch.clamp(sg, min=clip_variance) * var / sg
            kp["var"] = var
        elif kp_variance == "single":
            mean_sub = grid - mean.unsqueeze(-2).unsqueeze(-2)
            var = (mean_sub**2 * heatmap).sum(dim=(3, 4)).mean(dim=-1, keepdim=True)  # (B, K, D, 1)
            kp["var"] = var.unsqueeze(-1).permute(0, 2, 1, 3, 4)
        else:
            _check_kp_variance(kp_variance)
    return kp


class KPDetector(nn.Module):
    """Detects ``num_kp`` keypoints per frame: ``(B, C, D, H, W)`` in [0, 1] -> ``{'mean', 'var'}``.

    Built as ``KPDetector(**common_params, **kp_detector_params)`` from the official YAML.

    Args:
        block_expansion: hourglass width multiplier.
        num_kp: number of keypoints ``K``.
        num_channels: image channels.
        max_features: hourglass width cap.
        num_blocks: hourglass depth (``H * scale_factor`` must be divisible by ``2 ** num_blocks``).
        temperature: softmax temperature over each heatmap.
        kp_variance: ``'matrix'``, ``'single'`` or a fixed variance.
        scale_factor: the frames are first resized by this (nearest) for speed; vox: 0.25 (64x64 heatmaps).
        clip_variance: minimum smallest singular value of each covariance.
    """

    def __init__(
        self,
        block_expansion: int,
        num_kp: int,
        num_channels: int,
        max_features: int,
        num_blocks: int,
        temperature: float,
        kp_variance: KpVariance,
        scale_factor: float = 1,
        clip_variance: float | None = None,
    ) -> None:
        super().__init__()
        _check_kp_variance(kp_variance)
        self.predictor = Hourglass(
            block_expansion, in_features=num_channels, out_features=num_kp, max_features=max_features,
            num_blocks=num_blocks,
        )
        self.temperature = temperature
        self.kp_variance = kp_variance
        self.scale_factor = scale_factor
        self.clip_variance = clip_variance

    def forward(self, x: Tensor) -> dict[str, Tensor]:
        """``x``: ``(B, C, D, H, W)`` -> ``{'mean': (B, D, K, 2), 'var': (B, D, K, 2, 2)}`` (for ``'matrix'``)."""
        if self.scale_factor != 1:
            x = F.interpolate(x, scale_factor=(1, self.scale_factor, self.scale_factor))  # nearest
        heatmap = _at_least_fp32(self.predictor(x))  # (B, K, D, h, w); at least float32 from here on, also under AMP
        shape = heatmap.shape
        with _full_precision(heatmap):
            heatmap = F.softmax(heatmap.view(shape[0], shape[1], shape[2], -1) / self.temperature, dim=3).view(shape)
        return gaussian2kp(heatmap, self.kp_variance, self.clip_variance)
