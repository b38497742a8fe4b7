"""Shared building blocks of Monkey-Net: per-frame 3-D conv blocks, the hourglass, 2x2 matrix helpers.

Re-implemented (own code) from the facts of Siarohin et al., "Animating Arbitrary Objects via Deep Motion
Transfer", CVPR 2019 (https://arxiv.org/abs/1812.08861); checked against the official code
AliaksandrSiarohin/monkey-net@0c8aa4ea458a79717d9016a36a3d86d10a166aea (``modules/util.py``).

Every video tensor is 5-D ``(B, C, D, H, W)`` with ``D`` frames. All convolutions use ``(1, k, k)`` kernels,
so every block works frame by frame; only BatchNorm in training mode mixes frames (its statistics are taken
over ``B, D, H, W``). Sub-module attribute names follow the official ones, so state_dict keys match.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor, nn

__all__ = [
    "make_coordinate_grid",
    "DownBlock3d",
    "UpBlock3d",
    "SameBlock3d",
    "ResBlock3d",
    "Encoder",
    "Decoder",
    "Hourglass",
    "matrix_inverse",
    "smallest_singular",
]

_KERNEL = (1, 3, 3)
_PADDING = (0, 1, 1)


def make_coordinate_grid(
    spatial_size: tuple[int, int], dtype: torch.dtype = torch.float32, device: torch.device | None = None
) -> Tensor:
    """A ``(H, W, 2)`` grid over ``[-1, 1]^2``; ``[..., 0]`` is x (column), ``[..., 1]`` is y (row).

    Coordinates are ``2 * i / (n - 1) - 1``, so the corners are exactly -1 and 1 (the ``align_corners=True``
    convention of the grid_sample calls that consume it).
    """
    h, w = int(spatial_size[0]), int(spatial_size[1])
    x = torch.arange(w, dtype=dtype, device=device)
    y = torch.arange(h, dtype=dtype, device=device)
    x = 2 * (x / (w - 1)) - 1
    y = 2 * (y / (h - 1)) - 1
    xx = x.view(1, w).expand(h, w)
    yy = y.view(h, 1).expand(h, w)
    return torch.stack([xx, yy], dim=2)


class DownBlock3d(nn.Module):
    """Conv ``(1,3,3)`` -> BatchNorm3d -> ReLU -> AvgPool ``(1,2,2)``: ``(B,Cin,D,H,W) -> (B,Cout,D,H/2,W/2)``."""

    def __init__(self, in_features: int, out_features: int) -> None:
        super().__init__()
        self.conv = nn.Conv3d(in_features, out_features, kernel_size=_KERNEL, padding=_PADDING)
        self.norm = nn.BatchNorm3d(out_features, affine=True)
        self.pool = nn.AvgPool3d(kernel_size=(1, 2, 2))

    def forward(self, x: Tensor) -> Tensor:
        return self.pool(F.relu(self.norm(self.conv(x))))


class UpBlock3d(nn.Module):
    """Nearest x2 (spatial) -> Conv ``(1,3,3)`` -> BatchNorm3d -> ReLU: ``(B,Cin,D,H,W) -> (B,Cout,D,2H,2W)``."""

    def __init__(self, in_features: int, out_features: int) -> None:
        super().__init__()
        self.conv = nn.Conv3d(in_features, out_features, kernel_size=_KERNEL, padding=_PADDING)
        self.norm = nn.BatchNorm3d(out_features, affine=True)

    def forward(self, x: Tensor) -> Tensor:
        out = F.interpolate(x, scale_factor=(1, 2, 2))  # mode='nearest', the default
        return F.relu(self.norm(self.conv(out)))


class SameBlock3d(nn.Module):
    """(Grouped) conv -> BatchNorm3d -> ReLU, resolution kept. Monkey-Net uses it with 1x1x1 kernels."""

    def __init__(
        self,
        in_features: int,
        out_features: int,
        groups: int = 1,
        kernel_size: tuple[int, int, int] = (1, 1, 1),
        padding: tuple[int, int, int] = (0, 0, 0),
    ) -> None:
        super().__init__()
        self.conv = nn.Conv3d(in_features, out_features, kernel_size=kernel_size, padding=padding, groups=groups)
        self.norm = nn.BatchNorm3d(out_features, affine=True)

    def forward(self, x: Tensor) -> Tensor:
        return F.relu(self.norm(self.conv(x)))


class ResBlock3d(nn.Module):
    """Pre-activation residual block: ``x + conv2(relu(norm2(conv1(relu(norm1(x))))))``, shape kept."""

    def __init__(self, in_features: int) -> None:
        super().__init__()
        self.conv1 = nn.Conv3d(in_features, in_features, kernel_size=_KERNEL, padding=_PADDING)
        self.conv2 = nn.Conv3d(in_features, in_features, kernel_size=_KERNEL, padding=_PADDING)
        self.norm1 = nn.BatchNorm3d(in_features, affine=True)
        self.norm2 = nn.BatchNorm3d(in_features, affine=True)

    def forward(self, x: Tensor) -> Tensor:
        out = self.conv1(F.relu(self.norm1(x)))
        out = self.conv2(F.relu(self.norm2(out)))
        return out + x


def _width(block_expansion: int, max_features: int, i: int) -> int:
    return min(max_features, block_expansion * (2**i))


class Encoder(nn.Module):
    """Hourglass encoder: ``num_blocks`` DownBlock3d; block ``i`` outputs ``min(max_features, be * 2^(i+1))``.

    ``forward`` returns the list of skips ``[x, down_0(x), down_1(...), ...]`` (``num_blocks + 1`` tensors).
    """

    def __init__(self, block_expansion: int, in_features: int, num_blocks: int = 3, max_features: int = 256) -> None:
        super().__init__()
        self.down_blocks = nn.ModuleList(
            DownBlock3d(
                in_features if i == 0 else _width(block_expansion, max_features, i),
                _width(block_expansion, max_features, i + 1),
            )
            for i in range(num_blocks)
        )

    def forward(self, x: Tensor) -> list[Tensor]:
        outs = [x]
        for block in self.down_blocks:
            outs.append(block(outs[-1]))
        return outs


class Decoder(nn.Module):
    """Hourglass decoder: UpBlock3d per level, each followed by concatenation with the matching skip.

    Args:
        block_expansion: width multiplier.
        in_features: channels of the first skip (the encoder input).
        out_features: channels of the final conv (when ``use_last_conv``).
        num_blocks: number of levels.
        max_features: width cap.
        additional_features_for_block: extra channels every skip carries (Monkey-Net's generator concatenates a
            keypoint embedding to each deformed appearance skip).
        use_last_conv: end with a ``(1,3,3)`` conv to ``out_features``; without it the decoder returns the last
            concatenation, ``block_expansion + in_features + additional_features_for_block`` channels.
    """

    def __init__(
        self,
        block_expansion: int,
        in_features: int,
        out_features: int,
        num_blocks: int = 3,
        max_features: int = 256,
        additional_features_for_block: int = 0,
        use_last_conv: bool = True,
    ) -> None:
        super().__init__()
        extra = additional_features_for_block
        self.up_blocks = nn.ModuleList(
            UpBlock3d(
                (1 if i == num_blocks - 1 else 2) * _width(block_expansion, max_features, i + 1) + extra,
                _width(block_expansion, max_features, i),
            )
            for i in reversed(range(num_blocks))
        )
        self.conv: nn.Conv3d | None = None
        if use_last_conv:
            self.conv = nn.Conv3d(
                block_expansion + in_features + extra, out_features, kernel_size=_KERNEL, padding=_PADDING
            )

    def forward(self, skips: list[Tensor]) -> Tensor:
        """``skips``: the encoder's list (not modified), deepest last."""
        out = skips[-1]
        for block, skip in zip(self.up_blocks, reversed(skips[:-1])):
            out = torch.cat([block(out), skip], dim=1)
        return self.conv(out) if self.conv is not None else out


class Hourglass(nn.Module):
    """U-Net style encoder/decoder: ``(B, in_features, D, H, W) -> (B, out_features, D, H, W)``.

    ``H`` and ``W`` must be divisible by ``2 ** num_blocks``.
    """

    def __init__(
        self, block_expansion: int, in_features: int, out_features: int, num_blocks: int = 3, max_features: int = 256
    ) -> None:
        super().__init__()
        self.encoder = Encoder(block_expansion, in_features, num_blocks, max_features)
        self.decoder = Decoder(block_expansion, in_features, out_features, num_blocks, max_features)

    def forward(self, x: Tensor) -> Tensor:
        return self.decoder(self.encoder(x))


def matrix_inverse(matrix: Tensor) -> Tensor:
    """Inverse of a batch of square matrices ``(..., n, n)`` by solving ``matrix @ X = I``.

    The official code uses ``torch.gesv(eye, matrix)`` (torch 0.4.1), i.e. the same LU solve.
    """
    eye = torch.eye(matrix.shape[-1], dtype=matrix.dtype, device=matrix.device).expand_as(matrix)
    return torch.linalg.solve(matrix, eye)


def smallest_singular(matrix: Tensor) -> Tensor:
    """Smallest singular value of a batch of 2x2 matrices ``(..., 2, 2)`` in closed form; returns ``(..., 1)``."""
    a = matrix[..., 0, 0].unsqueeze(-1)
    b = matrix[..., 0, 1].unsqueeze(-1)
    c = matrix[..., 1, 0].unsqueeze(-1)
    d = matrix[..., 1, 1].unsqueeze(-1)
    s1 = a**2 + b**2 + c**2 + d**2
    s2 = torch.sqrt((a**2 + b**2 - c**2 - d**2) ** 2 + 4 * (a * c + b * d) ** 2)
    return torch.sqrt((s1 - s2) / 2)
