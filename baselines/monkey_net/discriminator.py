"""Monkey-Net discriminator: a Pix2Pix-style patch discriminator conditioned on keypoint heatmaps.

Own re-implementation of ``Discriminator`` from Siarohin et al., "Animating Arbitrary Objects via Deep Motion
Transfer", CVPR 2019 (https://arxiv.org/abs/1812.08861), checked against the official code
AliaksandrSiarohin/monkey-net@0c8aa4ea458a79717d9016a36a3d86d10a166aea (``modules/discriminator.py``).
Training only. Its intermediate feature maps also carry Monkey-Net's reconstruction (feature-matching) loss.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from baselines.monkey_net.keypoint_detector import KpVariance
from baselines.monkey_net.movement_embedding import MovementEmbeddingModule

__all__ = ["Discriminator", "DiscriminatorBlock3d"]


class DiscriminatorBlock3d(nn.Module):
    """Conv ``(1,k,k)`` without padding -> InstanceNorm3d (optional, affine) -> leaky ReLU(0.2) -> AvgPool ``(1,2,2)``.

    InstanceNorm3d normalises over ``(D, H, W)`` jointly, as the official module does.
    """

    def __init__(self, in_features: int, out_features: int, norm: bool = False, kernel_size: int = 4) -> None:
        super().__init__()
        self.conv = nn.Conv3d(in_features, out_features, kernel_size=(1, kernel_size, kernel_size))
        self.norm = nn.InstanceNorm3d(out_features, affine=True) if norm else None

    def forward(self, x: Tensor) -> Tensor:
        out = self.conv(x)
        if self.norm is not None:
            out = self.norm(out)
        return F.avg_pool3d(F.leaky_relu(out, 0.2), (1, 2, 2))


class Discriminator(nn.Module):
    """Scores ``(B, C, D, H, W)`` frames given the keypoints; returns all intermediate maps.

    Built as ``Discriminator(**common_params, **discriminator_params)`` from the official YAML.

    Args:
        num_channels: image channels.
        num_kp: number of keypoints.
        kp_variance: keypoint representation.
        scale_factor: frames are resized by this (nearest) before the blocks (the first returned map is the
            input as given).
        block_expansion: width multiplier.
        num_blocks: number of down blocks (the first has no normalisation).
        max_features: width cap.
        kp_embedding_params: kwargs of the :class:`MovementEmbeddingModule` concatenated to the input (vox:
            driving Gaussian heatmaps divided by 100).
    """

    def __init__(
        self,
        num_channels: int = 3,
        num_kp: int = 10,
        kp_variance: KpVariance = 0.01,
        scale_factor: float = 1,
        block_expansion: int = 64,
        num_blocks: int = 4,
        max_features: int = 512,
        kp_embedding_params: dict | None = None,
    ) -> None:
        super().__init__()
        self.kp_embedding: MovementEmbeddingModule | None = None
        embedding_channels = 0
        if kp_embedding_params is not None:
            self.kp_embedding = MovementEmbeddingModule(
                num_kp=num_kp, kp_variance=kp_variance, num_channels=num_channels, **kp_embedding_params
            )
            embedding_channels = self.kp_embedding.out_channels
        self.down_blocks = nn.ModuleList(
            DiscriminatorBlock3d(
                num_channels + embedding_channels if i == 0 else min(max_features, block_expansion * (2**i)),
                min(max_features, block_expansion * (2 ** (i + 1))),
                norm=i != 0,
                kernel_size=4,
            )
            for i in range(num_blocks)
        )
        self.conv = nn.Conv3d(self.down_blocks[-1].conv.out_channels, 1, kernel_size=1)
        self.scale_factor = scale_factor

    def forward(self, x: Tensor, kp_driving: dict[str, Tensor], kp_source: dict[str, Tensor]) -> list[Tensor]:
        """Feature maps of ``x``.

        Args:
            x: ``(B, C, D, H, W)`` frames (real or generated) in [0, 1].
            kp_driving: keypoints of ``x`` ``{'mean': (B, D, K, 2), ...}``.
            kp_source: keypoints of the source ``{'mean': (B, 1, K, 2), ...}`` (used by a ``'difference'``
                embedding only).

        Returns:
            ``[x, block_0, ..., block_{n-1}, scores]``: ``num_blocks + 2`` maps; ``scores`` is
            ``(B, 1, D, h, w)`` (LSGAN patch scores).
        """
        out_maps = [x]
        if self.scale_factor != 1:
            x = F.interpolate(x, scale_factor=(1, self.scale_factor, self.scale_factor))
        out = x
        if self.kp_embedding is not None:
            out = torch.cat([x, self.kp_embedding(x, kp_driving, kp_source)], dim=1)
        for block in self.down_blocks:
            out = block(out)
            out_maps.append(out)
        out_maps.append(self.conv(out))
        return out_maps
