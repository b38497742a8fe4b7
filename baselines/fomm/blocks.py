"""Building blocks of the First Order Motion Model, shared with other keypoint models of the lab.

Siarohin, Lathuilière, Tulyakov, Ricci, Sebe: *First Order Motion Model for Image Animation*, NeurIPS 2019.
Re-implemented (not copied) to match the official code, AliaksandrSiarohin/first-order-model@c0274845 (CC BY-NC),
``modules/util.py``: same constructor arguments, same ``state_dict`` keys, same forward semantics.

Public, documented and reused by other models (Monkey-Net-style and the lab's proposed model):

* :func:`make_coordinate_grid` -- the ``[-1, 1]`` (x, y) grid every keypoint lives in;
* :func:`kp2gaussian` -- keypoints to Gaussian heatmaps;
* :class:`AntiAliasInterpolation2d` -- Gaussian-blurred strided downsampling (persistent ``weight`` buffer);
* :class:`ResBlock2d`, :class:`UpBlock2d`, :class:`DownBlock2d`, :class:`SameBlock2d`;
* :class:`Encoder`, :class:`Decoder`, :class:`Hourglass` -- the U-Net-like hourglass with skip concatenation.

BatchNorm is plain :class:`torch.nn.BatchNorm2d` with affine parameters: its ``state_dict`` keys equal those of
the official ``SynchronizedBatchNorm2d`` and its eval-mode behaviour is identical (use
``torch.nn.SyncBatchNorm.convert_sync_batchnorm`` for multi-GPU training).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import torch
import torch.nn.functional as F
from torch import Tensor, nn

# The lab's losses share these two with FOMM; they live one floor down, in lab.nn.blocks (same code, same keys).
from lab.nn.blocks import AntiAliasInterpolation2d, make_coordinate_grid

__all__ = [
    "make_coordinate_grid",
    "kp2gaussian",
    "ResBlock2d",
    "UpBlock2d",
    "DownBlock2d",
    "SameBlock2d",
    "Encoder",
    "Decoder",
    "Hourglass",
    "AntiAliasInterpolation2d",
]

_IntPair = int | tuple[int, int]


def kp2gaussian(kp: Mapping[str, Tensor] | Tensor, spatial_size: Sequence[int], kp_variance: float) -> Tensor:
    """Isotropic Gaussian heatmaps centred on keypoints (FOMM Eq. 6's ``exp(-(z - p)^2 / (2 var))``).

    Args:
        kp: a keypoint dict with ``"value"`` ``(..., K, 2)`` in [-1, 1] (x, y), or that tensor itself.
        spatial_size: ``(H, W)`` of the heatmaps.
        kp_variance: the Gaussian's variance in normalised coordinates (FOMM: 0.01).

    Returns:
        ``(..., K, H, W)`` heatmaps with peak value 1 (not normalised to sum 1).
    """
    mean = kp["value"] if isinstance(kp, Mapping) else kp
    grid = make_coordinate_grid(spatial_size, dtype=mean.dtype, device=mean.device)  # (H, W, 2)
    mean_sub = grid - mean[..., None, None, :]  # (..., K, H, W, 2)
    return torch.exp(-0.5 * (mean_sub**2).sum(-1) / kp_variance)


class ResBlock2d(nn.Module):
    """Pre-activation residual block that keeps the resolution: ``x + conv2(relu(bn2(conv1(relu(bn1(x))))))``.

    Args:
        in_features: channels in and out.
        kernel_size: convolution kernel.
        padding: convolution padding (``kernel_size // 2`` keeps the size).
    """

    def __init__(self, in_features: int, kernel_size: _IntPair, padding: _IntPair) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(in_features, in_features, kernel_size=kernel_size, padding=padding)
        self.conv2 = nn.Conv2d(in_features, in_features, kernel_size=kernel_size, padding=padding)
        self.norm1 = nn.BatchNorm2d(in_features, affine=True)
        self.norm2 = nn.BatchNorm2d(in_features, affine=True)

    def forward(self, x: Tensor) -> Tensor:
        """``(B, C, H, W)`` -> ``(B, C, H, W)``."""
        out = self.conv1(F.relu(self.norm1(x)))
        out = self.conv2(F.relu(self.norm2(out)))
        return out + x


class UpBlock2d(nn.Module):
    """Nearest-neighbour x2 upsampling, then conv -> BatchNorm -> ReLU.

    Args:
        in_features: input channels.
        out_features: output channels.
        kernel_size: convolution kernel.
        padding: convolution padding.
        groups: convolution groups.
    """

    def __init__(
        self, in_features: int, out_features: int, kernel_size: _IntPair = 3, padding: _IntPair = 1, groups: int = 1
    ) -> None:
        super().__init__()
        self.conv = nn.Conv2d(in_features, out_features, kernel_size=kernel_size, padding=padding, groups=groups)
        self.norm = nn.BatchNorm2d(out_features, affine=True)

    def forward(self, x: Tensor) -> Tensor:
        """``(B, C_in, H, W)`` -> ``(B, C_out, 2H, 2W)``."""
        out = F.interpolate(x, scale_factor=2, mode="nearest")
        return F.relu(self.norm(self.conv(out)))


class DownBlock2d(nn.Module):
    """conv -> BatchNorm -> ReLU -> 2x2 average pooling.

    Args:
        in_features: input channels.
        out_features: output channels.
        kernel_size: convolution kernel.
        padding: convolution padding.
        groups: convolution groups.
    """

    def __init__(
        self, in_features: int, out_features: int, kernel_size: _IntPair = 3, padding: _IntPair = 1, groups: int = 1
    ) -> None:
        super().__init__()
        self.conv = nn.Conv2d(in_features, out_features, kernel_size=kernel_size, padding=padding, groups=groups)
        self.norm = nn.BatchNorm2d(out_features, affine=True)
        self.pool = nn.AvgPool2d(kernel_size=(2, 2))

    def forward(self, x: Tensor) -> Tensor:
        """``(B, C_in, H, W)`` -> ``(B, C_out, H/2, W/2)``."""
        return self.pool(F.relu(self.norm(self.conv(x))))


class SameBlock2d(nn.Module):
    """conv -> BatchNorm -> ReLU, keeping the resolution.

    Args:
        in_features: input channels.
        out_features: output channels.
        groups: convolution groups.
        kernel_size: convolution kernel.
        padding: convolution padding.
    """

    def __init__(
        self, in_features: int, out_features: int, groups: int = 1, kernel_size: _IntPair = 3, padding: _IntPair = 1
    ) -> None:
        super().__init__()
        self.conv = nn.Conv2d(in_features, out_features, kernel_size=kernel_size, padding=padding, groups=groups)
        self.norm = nn.BatchNorm2d(out_features, affine=True)

    def forward(self, x: Tensor) -> Tensor:
        """``(B, C_in, H, W)`` -> ``(B, C_out, H, W)``."""
        return F.relu(self.norm(self.conv(x)))


class Encoder(nn.Module):
    """Hourglass encoder: ``num_blocks`` :class:`DownBlock2d` s with ``min(max_features, block_expansion * 2^(i+1))``
    output channels.

    Args:
        block_expansion: channels of the first block divided by 2.
        in_features: input channels.
        num_blocks: number of down blocks (each halves the resolution).
        max_features: channel cap.
    """

    def __init__(self, block_expansion: int, in_features: int, num_blocks: int = 3, max_features: int = 256) -> None:
        super().__init__()
        self.down_blocks = nn.ModuleList(
            DownBlock2d(
                in_features if i == 0 else min(max_features, block_expansion * (2**i)),
                min(max_features, block_expansion * (2 ** (i + 1))),
                kernel_size=3,
                padding=1,
            )
            for i in range(num_blocks)
        )

    def forward(self, x: Tensor) -> list[Tensor]:
        """``(B, C, H, W)`` -> ``[x, f_1, ..., f_n]``, ``f_i`` at ``H / 2^i``."""
        outs = [x]
        for down_block in self.down_blocks:
            outs.append(down_block(outs[-1]))
        return outs


class Decoder(nn.Module):
    """Hourglass decoder: :class:`UpBlock2d` s, each followed by concatenation of the encoder's skip feature.

    Args:
        block_expansion: as in :class:`Encoder`.
        in_features: channels of the hourglass input (the last skip).
        num_blocks: number of up blocks.
        max_features: channel cap.

    Attributes:
        out_filters: channels of the output, ``block_expansion + in_features``.
    """

    def __init__(self, block_expansion: int, in_features: int, num_blocks: int = 3, max_features: int = 256) -> None:
        super().__init__()
        up_blocks = []
        for i in reversed(range(num_blocks)):
            in_filters = (1 if i == num_blocks - 1 else 2) * min(max_features, block_expansion * (2 ** (i + 1)))
            out_filters = min(max_features, block_expansion * (2**i))
            up_blocks.append(UpBlock2d(in_filters, out_filters, kernel_size=3, padding=1))
        self.up_blocks = nn.ModuleList(up_blocks)
        self.out_filters = block_expansion + in_features

    def forward(self, x: Sequence[Tensor]) -> Tensor:
        """Encoder outputs ``[x, f_1, ..., f_n]`` (not modified) -> ``(B, out_filters, H, W)``."""
        out = x[-1]
        for i, up_block in enumerate(self.up_blocks):
            out = torch.cat([up_block(out), x[-2 - i]], dim=1)
        return out


class Hourglass(nn.Module):
    """U-Net-like hourglass: :class:`Encoder` then :class:`Decoder` with skip concatenation.

    Args:
        block_expansion: channel multiplier.
        in_features: input channels.
        num_blocks: down/up blocks (the input size must be divisible by ``2^num_blocks``).
        max_features: channel cap.

    Attributes:
        out_filters: output channels, ``block_expansion + in_features``.
    """

    def __init__(self, block_expansion: int, in_features: int, num_blocks: int = 3, max_features: int = 256) -> None:
        super().__init__()
        self.encoder = Encoder(block_expansion, in_features, num_blocks, max_features)
        self.decoder = Decoder(block_expansion, in_features, num_blocks, max_features)
        self.out_filters = self.decoder.out_filters

    def forward(self, x: Tensor) -> Tensor:
        """``(B, in_features, H, W)`` -> ``(B, out_filters, H, W)``."""
        return self.decoder(self.encoder(x))
