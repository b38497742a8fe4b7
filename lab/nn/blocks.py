"""Blocks shared by the lab's losses and the keypoint models (FOMM's ``modules/util.py`` conventions).

Re-implemented (not copied) to match the official code, AliaksandrSiarohin/first-order-model@c0274845 (CC BY-NC):
:func:`make_coordinate_grid` (the ``[-1, 1]`` (x, y) grid every keypoint lives in) and
:class:`AntiAliasInterpolation2d` (Gaussian-blurred strided downsampling, persistent ``weight`` buffer). They sit
here, below ``baselines/``, because the image pyramid of the perceptual loss needs them too;
``baselines.fomm.blocks`` re-exports both under their official names.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
import torch.nn.functional as F
from torch import Tensor, nn

__all__ = ["make_coordinate_grid", "AntiAliasInterpolation2d"]


def make_coordinate_grid(
    spatial_size: Sequence[int], dtype: torch.dtype = torch.float32, device: torch.device | str | None = None
) -> Tensor:
    """A meshgrid over ``[-1, 1] x [-1, 1]`` in FOMM's coordinate convention.

    Args:
        spatial_size: ``(H, W)``.
        dtype: floating dtype of the grid.
        device: device of the grid.

    Returns:
        ``(H, W, 2)`` with ``[..., 0] = x = 2 * j / (W - 1) - 1`` (column) and ``[..., 1] = y = 2 * i / (H - 1) - 1``
        (row): the corners are exactly -1 and 1, and ``grid[i, j]`` is the (x, y) of pixel ``(i, j)``.
    """
    h, w = int(spatial_size[0]), int(spatial_size[1])
    x = torch.arange(w, device=device).to(dtype)
    y = torch.arange(h, device=device).to(dtype)
    x = 2 * (x / (w - 1)) - 1
    y = 2 * (y / (h - 1)) - 1
    xx = x.view(1, w).expand(h, w)
    yy = y.view(h, 1).expand(h, w)
    return torch.stack([xx, yy], dim=2)



class AntiAliasInterpolation2d(nn.Module):
    """Band-limited downsampling: depthwise Gaussian blur, then keep every ``1/scale``-th pixel.

    ``sigma = (1/scale - 1) / 2``, kernel size ``2 * round(4 * sigma) + 1`` (13 at scale 0.25), zero padding that
    keeps the size before the strided slice. The kernel is a **persistent** buffer ``weight`` ``(C, 1, k, k)`` (it is
    in official checkpoints as ``down.weight``). At ``scale == 1`` the module is the identity.

    Args:
        channels: channels of the input (one kernel per channel).
        scale: output/input size ratio, ``1 / int`` (1, 0.5, 0.25, 0.125, ...).
    """

    #: buffers that are a function of ``scale`` alone (the Gaussian kernel): a checkpoint trained at another
    #: resolution (another scale) carries another kernel, and loading keeps this module's own
    #: (:func:`lab.core.checkpoint.load_state_dict_strict`).
    derived_buffers = ("weight",)

    def __init__(self, channels: int, scale: float) -> None:
        super().__init__()
        sigma = (1 / scale - 1) / 2
        kernel_size = 2 * round(sigma * 4) + 1
        self.ka = kernel_size // 2
        self.kb = self.ka - 1 if kernel_size % 2 == 0 else self.ka
        if sigma > 0:
            coords = torch.arange(kernel_size, dtype=torch.float32)
            g = torch.exp(-((coords - (kernel_size - 1) / 2) ** 2) / (2 * sigma**2))
            kernel = g.view(-1, 1) * g.view(1, -1)  # separable Gaussian, the product of the per-axis ones
            kernel = kernel / kernel.sum()
        else:  # scale 1: never used by forward (identity); a delta instead of the 0/0 a Gaussian would give
            kernel = torch.ones(1, 1)
        self.register_buffer("weight", kernel.view(1, 1, kernel_size, kernel_size).repeat(channels, 1, 1, 1))
        self.groups = channels
        self.scale = scale
        self.int_inv_scale = int(1 / scale)

    def forward(self, x: Tensor) -> Tensor:
        """``(B, C, H, W)`` -> ``(B, C, ceil(H * scale), ceil(W * scale))``."""
        if self.scale == 1.0:
            return x
        out = F.pad(x, (self.ka, self.kb, self.ka, self.kb))
        out = F.conv2d(out, weight=self.weight, groups=self.groups)
        return out[:, :, :: self.int_inv_scale, :: self.int_inv_scale]
