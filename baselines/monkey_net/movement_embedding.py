"""Monkey-Net movement embedding: keypoint heatmaps, keypoint shifts and roughly shifted source copies.

Own re-implementation of ``MovementEmbeddingModule`` from Siarohin et al., "Animating Arbitrary Objects via
Deep Motion Transfer", CVPR 2019 (https://arxiv.org/abs/1812.08861), checked against the official code
AliaksandrSiarohin/monkey-net@0c8aa4ea458a79717d9016a36a3d86d10a166aea (``modules/movement_embedding.py``).
Parameter-free; the dense motion module, the generator and the discriminator each use one.

The 4-D ``grid_sample`` uses ``align_corners=True``: the official code pins torch 0.4.1, whose grid_sample
behaved that way.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from baselines.monkey_net.blocks import make_coordinate_grid
from baselines.monkey_net.keypoint_detector import KpVariance, kp2gaussian

__all__ = ["MovementEmbeddingModule"]


class MovementEmbeddingModule(nn.Module):
    """Per-keypoint features describing the motion from the source to each driving frame.

    For each keypoint ``k`` (plus a leading all-zero background entry when ``add_bg_feature_map``) it stacks,
    in this order: the driving heatmap (minus the source heatmap when ``heatmap_type='difference'``), the
    shift ``kp_source - kp_driving`` broadcast over the grid (``use_difference``), and the source image
    translated by that shift (``use_deformed_source_image``).

    Args:
        num_kp: number of keypoints ``K``.
        kp_variance: keypoint representation (see :mod:`baselines.monkey_net.keypoint_detector`).
        num_channels: image channels ``C``.
        use_deformed_source_image: add the shifted source copies (``C`` channels per entry).
        use_difference: add the keypoint shifts (2 channels per entry).
        use_heatmap: add the heatmaps (1 channel per entry).
        add_bg_feature_map: prepend a background entry (zero heatmap, zero shift).
        heatmap_type: ``'gaussian'`` or ``'difference'``.
        norm_const: heatmaps are divided by this number, or normalised to sum 1 with ``'sum'``.
        scale_factor: the source image is first resized by this (nearest).
    """

    def __init__(
        self,
        num_kp: int,
        kp_variance: KpVariance,
        num_channels: int,
        use_deformed_source_image: bool = False,
        use_difference: bool = False,
        use_heatmap: bool = True,
        add_bg_feature_map: bool = False,
        heatmap_type: str = "gaussian",
        norm_const: float | str = "sum",
        scale_factor: float = 1,
    ) -> None:
        super().__init__()
        if heatmap_type not in ("gaussian", "difference"):
            raise ValueError(f"heatmap_type must be 'gaussian' or 'difference', got {heatmap_type!r}")
        if not (use_heatmap or use_deformed_source_image or use_difference):
            raise ValueError("enable at least one of use_heatmap, use_deformed_source_image, use_difference")
        per_entry = int(use_heatmap) + 2 * int(use_difference) + num_channels * int(use_deformed_source_image)
        self.out_channels = per_entry * (num_kp + int(add_bg_feature_map))
        self.kp_variance = kp_variance
        self.heatmap_type = heatmap_type
        self.use_difference = use_difference
        self.use_deformed_source_image = use_deformed_source_image
        self.use_heatmap = use_heatmap
        self.add_bg_feature_map = add_bg_feature_map
        self.norm_const = norm_const
        self.scale_factor = scale_factor

    def normalize_heatmap(self, heatmap: Tensor) -> Tensor:
        """``(B, D, K, h, w)`` heatmaps divided by ``norm_const`` (or by their spatial sum for ``'sum'``)."""
        if self.norm_const == "sum":
            total = heatmap.flatten(3).sum(dim=3).view(*heatmap.shape[:3], 1, 1)
            return heatmap / total
        return heatmap / self.norm_const

    def forward(self, source_image: Tensor, kp_driving: dict[str, Tensor], kp_source: dict[str, Tensor]) -> Tensor:
        """Embed the motion.

        Args:
            source_image: ``(B, C, 1, H, W)``.
            kp_driving: ``{'mean': (B, D, K, 2), 'var': ...}``.
            kp_source: ``{'mean': (B, 1, K, 2), 'var': ...}`` (broadcast over the ``D`` driving frames).

        Returns:
            ``(B, out_channels, D, h, w)`` with ``(h, w)`` the (rescaled) source size.
        """
        if self.scale_factor != 1:
            source_image = F.interpolate(source_image, scale_factor=(1, self.scale_factor, self.scale_factor))
        bs, _, _, h, w = source_image.shape
        d, num_kp = kp_driving["mean"].shape[1:3]
        dtype, device = source_image.dtype, source_image.device

        inputs = []
        if self.use_heatmap:
            heatmap = self.normalize_heatmap(kp2gaussian(kp_driving, (h, w), self.kp_variance))
            if self.heatmap_type == "difference":
                heatmap = heatmap - self.normalize_heatmap(kp2gaussian(kp_source, (h, w), self.kp_variance))
            if self.add_bg_feature_map:
                zeros = torch.zeros(bs, d, 1, h, w, dtype=heatmap.dtype, device=device)
                heatmap = torch.cat([zeros, heatmap], dim=2)
            inputs.append(heatmap.unsqueeze(3))  # (B, D, K', 1, h, w)

        num_entries = num_kp + int(self.add_bg_feature_map)
        if self.use_difference or self.use_deformed_source_image:
            kp_diff = kp_source["mean"] - kp_driving["mean"]  # (B, D, K, 2)
            if self.add_bg_feature_map:
                kp_diff = torch.cat([torch.zeros(bs, d, 1, 2, dtype=kp_diff.dtype, device=device), kp_diff], dim=2)

        if self.use_difference:
            inputs.append(kp_diff.view(bs, d, num_entries, 2, 1, 1).expand(-1, -1, -1, -1, h, w))

        if self.use_deformed_source_image:
            if source_image.shape[2] != 1:
                raise ValueError(f"the source must be one frame (B, C, 1, H, W), got {tuple(source_image.shape)}")
            n = bs * d * num_entries
            appearance = source_image[:, None, None, :, 0].expand(bs, d, num_entries, -1, h, w).reshape(n, -1, h, w)
            grid = make_coordinate_grid((h, w), dtype, device).view(1, h, w, 2) + kp_diff.reshape(n, 1, 1, 2)
            deformed = F.grid_sample(appearance, grid, align_corners=True)
            inputs.append(deformed.view(bs, d, num_entries, -1, h, w))

        encoding = torch.cat(inputs, dim=3).view(bs, d, -1, h, w)
        return encoding.permute(0, 2, 1, 3, 4)
