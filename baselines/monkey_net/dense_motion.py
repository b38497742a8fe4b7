"""Monkey-Net dense motion: a per-pixel backward flow from keypoint shifts, part masks and a correction.

Own re-implementation of ``DenseMotionModule`` (and ``IdentityDeformation``) from Siarohin et al., "Animating
Arbitrary Objects via Deep Motion Transfer", CVPR 2019 (https://arxiv.org/abs/1812.08861), checked against the
official code AliaksandrSiarohin/monkey-net@0c8aa4ea458a79717d9016a36a3d86d10a166aea
(``modules/dense_motion_module.py``).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from baselines.monkey_net.blocks import Hourglass, SameBlock3d, make_coordinate_grid
from baselines.monkey_net.keypoint_detector import KpVariance
from baselines.monkey_net.movement_embedding import MovementEmbeddingModule

__all__ = ["DenseMotionModule", "IdentityDeformation"]


def _with_z(deformation: Tensor) -> Tensor:
    """Append a zero z coordinate: ``(..., 2) -> (..., 3)`` (a grid for a 5-D grid_sample of a 1-frame source)."""
    return torch.cat([deformation, torch.zeros_like(deformation[..., :1])], dim=-1)


class DenseMotionModule(nn.Module):
    """Predicts where each driving pixel comes from in the source.

    The hourglass sees the movement embedding (heatmap differences and keypoint-shifted source copies, after
    ``num_group_blocks`` grouped 1x1x1 blocks) and predicts ``K + 1`` part masks (softmax; entry 0 is the
    static background) and a 2-channel correction. The flow is the mask-weighted keypoint shift plus the
    correction, added to the identity grid.

    Args:
        block_expansion: hourglass width multiplier.
        num_blocks: hourglass depth.
        max_features: hourglass width cap.
        mask_embedding_params: kwargs of the input :class:`MovementEmbeddingModule` (vox: heatmap difference
            and deformed source, ``norm_const=100``); a background entry is always added.
        num_kp: number of keypoints ``K``.
        num_channels: image channels.
        kp_variance: keypoint representation.
        use_correction: predict the additive 2-channel correction.
        use_mask: predict part masks (otherwise the flow is the correction alone).
        bg_init: initial logit of the background mask (the last conv starts at zero weight and this bias).
        num_group_blocks: grouped (``K + 1`` groups) 1x1x1 SameBlock3d + leaky ReLU(0.2) before the hourglass.
        scale_factor: the source is first resized by this (nearest); vox: 0.25 (64x64 motion).
    """

    def __init__(
        self,
        block_expansion: int,
        num_blocks: int,
        max_features: int,
        mask_embedding_params: dict,
        num_kp: int,
        num_channels: int,
        kp_variance: KpVariance,
        use_correction: bool,
        use_mask: bool,
        bg_init: float = 2,
        num_group_blocks: int = 0,
        scale_factor: float = 1,
    ) -> None:
        super().__init__()
        self.mask_embedding = MovementEmbeddingModule(
            num_kp=num_kp, kp_variance=kp_variance, num_channels=num_channels, add_bg_feature_map=True,
            **mask_embedding_params,
        )
        self.difference_embedding = MovementEmbeddingModule(
            num_kp=num_kp, kp_variance=kp_variance, num_channels=num_channels, add_bg_feature_map=True,
            use_difference=True, use_heatmap=False, use_deformed_source_image=False,
        )
        channels = self.mask_embedding.out_channels
        self.group_blocks = nn.ModuleList(
            SameBlock3d(channels, channels, groups=num_kp + 1) for _ in range(num_group_blocks)
        )
        out_features = (num_kp + 1) * int(use_mask) + 2 * int(use_correction)
        self.hourglass = Hourglass(
            block_expansion=block_expansion, in_features=channels, out_features=out_features,
            max_features=max_features, num_blocks=num_blocks,
        )
        bias_init = ([bg_init] + [0] * num_kp) * int(use_mask) + [0, 0] * int(use_correction)
        with torch.no_grad():
            self.hourglass.decoder.conv.weight.zero_()
            self.hourglass.decoder.conv.bias.copy_(torch.tensor(bias_init, dtype=torch.float))
        self.num_kp = num_kp
        self.use_correction = use_correction
        self.use_mask = use_mask
        self.scale_factor = scale_factor

    def forward(self, source_image: Tensor, kp_driving: dict[str, Tensor], kp_source: dict[str, Tensor]) -> Tensor:
        """Dense motion.

        Args:
            source_image: ``(B, C, 1, H, W)``.
            kp_driving: ``{'mean': (B, D, K, 2), ...}``.
            kp_source: ``{'mean': (B, 1, K, 2), ...}``.

        Returns:
            ``(B, D, h, w, 3)`` absolute sampling grid (x, y in [-1, 1], z = 0) at the rescaled size ``(h, w)``.
        """
        if self.scale_factor != 1:
            source_image = F.interpolate(source_image, scale_factor=(1, self.scale_factor, self.scale_factor))

        prediction = self.mask_embedding(source_image, kp_driving, kp_source)
        for block in self.group_blocks:
            prediction = F.leaky_relu(block(prediction), 0.2)
        prediction = self.hourglass(prediction)  # (B, (K+1)*use_mask + 2*use_correction, D, h, w)

        bs, _, d, h, w = prediction.shape
        deformations_relative: Tensor | float = 0
        if self.use_mask:
            mask = F.softmax(prediction[:, : self.num_kp + 1], dim=1).unsqueeze(2)  # (B, K+1, 1, D, h, w)
            difference = self.difference_embedding(source_image, kp_driving, kp_source)
            difference = difference.view(bs, self.num_kp + 1, 2, d, h, w)
            deformations_relative = (difference * mask).sum(dim=1)  # (B, 2, D, h, w)
        if self.use_correction:
            deformations_relative = deformations_relative + prediction[:, -2:]
        if not isinstance(deformations_relative, Tensor):  # neither masks nor correction: the identity
            deformations_relative = prediction.new_zeros(bs, 2, d, h, w)

        deformation = deformations_relative.permute(0, 2, 3, 4, 1)
        grid = make_coordinate_grid((h, w), deformation.dtype, deformation.device).view(1, 1, h, w, 2)
        return _with_z(deformation + grid)


class IdentityDeformation(nn.Module):
    """The generator's motion when it has no dense motion module: the identity grid ``(B, D, H, W, 3)``."""

    def forward(self, source_image: Tensor, kp_driving: dict[str, Tensor], kp_source: dict[str, Tensor]) -> Tensor:
        bs, _, _, h, w = source_image.shape
        d = kp_driving["mean"].shape[1]
        grid = make_coordinate_grid((h, w), source_image.dtype, source_image.device)
        return _with_z(grid.view(1, 1, h, w, 2).expand(bs, d, h, w, 2))
