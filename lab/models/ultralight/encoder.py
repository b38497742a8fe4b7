"""The sender-side motion encoder: a MobileNetV2-style keypoint detector in FOMM's motion representation.

Like FOMM's detector it looks at a downscaled frame (64×64 for a 256×256 input), predicts one heatmap per
keypoint, and reads the keypoint as the heatmap-weighted mean of a coordinate grid (soft-argmax) and its
2×2 local affine Jacobian as a heatmap-weighted sum of a 4-channel map — so the output plugs into FOMM's
dense-motion machinery, codec and metrics unchanged. Unlike FOMM's 14.2 M-parameter hourglass it is an
inverted-residual backbone (stride 8) with a two-level top-down path back to a 32×32 heatmap.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from baselines.fomm.blocks import make_coordinate_grid
from lab.models.ultralight.blocks import ConvBNAct, DepthwiseSeparable, InvertedResidual

__all__ = ["UltralightKPDetector"]


# MobileNetV2's table: (channels, stride of the first block, expansion, repeats); the stem halves first.
DEFAULT_STAGES: tuple[tuple[int, int, int, int], ...] = (
    (16, 1, 1, 1),  # 32x32 (for a 64x64 input)
    (24, 2, 4, 2),  # 16x16
    (48, 2, 4, 2),  # 8x8
    (96, 2, 4, 2),  # 4x4
)


class UltralightKPDetector(nn.Module):
    """MobileNetV2-style keypoint detector with a top-down path to 32×32 heatmaps.

    Args:
        num_kp: keypoints K.
        num_channels: image channels.
        temperature: softmax temperature of the heatmaps (FOMM: 0.1).
        estimate_jacobian: also predict 2×2 Jacobians.
        scale_factor: input downscale before the network (FOMM: 0.25 → 64×64), antialiased bilinear.
        stem_channels: channels of the stride-2 stem conv.
        stages: MobileNetV2 table rows ``(channels, stride, expansion, repeats)``.
        fpn_channels: channels of the top-down path and of the heatmap features.
    """

    def __init__(self, num_kp: int = 10, num_channels: int = 3, temperature: float = 0.1,
                 estimate_jacobian: bool = True, scale_factor: float = 0.25, stem_channels: int = 16,
                 stages: tuple = DEFAULT_STAGES, fpn_channels: int = 30) -> None:
        super().__init__()
        self.num_kp = num_kp
        self.temperature = temperature
        self.scale_factor = scale_factor
        self.estimate_jacobian = estimate_jacobian
        self.stem = ConvBNAct(num_channels, stem_channels, 3, 2)
        blocks, cin = [], stem_channels
        for cout, stride, t, n in stages:
            layers = [InvertedResidual(cin if i == 0 else cout, cout, stride if i == 0 else 1, t) for i in range(n)]
            blocks.append(nn.Sequential(*layers))
            cin = cout
        self.stages = nn.ModuleList(blocks)
        # lateral 1x1 convs from every stage output that ends a resolution (the last one feeds the top)
        self.laterals = nn.ModuleList(nn.Conv2d(c, fpn_channels, 1) for c, *_ in stages)
        n_up = sum(1 for _, s, _, _ in stages[1:] if s == 2)
        self.fuse = nn.ModuleList(DepthwiseSeparable(fpn_channels, fpn_channels) for _ in range(n_up))
        self.kp = nn.Conv2d(fpn_channels, num_kp, 3, padding=1)
        if estimate_jacobian:
            self.jacobian = nn.Conv2d(fpn_channels, 4 * num_kp, 1)
            nn.init.zeros_(self.jacobian.weight)
            self.jacobian.bias.data.copy_(torch.tensor([1.0, 0.0, 0.0, 1.0] * num_kp))
        else:
            self.jacobian = None

    def forward(self, x: Tensor) -> dict[str, Tensor]:
        """``x``: ``(B, 3, H, W)`` float in [0, 1] → ``{"value": (B,K,2), "jacobian": (B,K,2,2)}``."""
        if self.scale_factor != 1:
            x = F.interpolate(x, scale_factor=self.scale_factor, mode="bilinear", align_corners=False, antialias=True)
        return self.keypoints(self.features(x))

    def features(self, x: Tensor) -> Tensor:
        """The heatmap features ``(B, fpn_channels, h/2, w/2)`` of the (already downscaled) frame ``x``."""
        x = self.stem(x)
        feats = []
        for stage in self.stages:
            x = stage(x)
            feats.append(x)
        # top-down: start at the coarsest map, upsample, add the lateral of each finer resolution
        p = self.laterals[-1](feats[-1])
        fuse = iter(self.fuse)
        for i in range(len(feats) - 2, -1, -1):
            lat = self.laterals[i](feats[i])
            if lat.shape[-1] != p.shape[-1]:
                p = next(fuse)(F.interpolate(p, size=lat.shape[-2:], mode="nearest") + lat)
            else:
                p = p + lat
        return p

    def keypoints(self, p: Tensor) -> dict[str, Tensor]:
        """Keypoints (soft-argmax of the heatmaps) and Jacobians from the features ``p`` of :meth:`features`."""
        heat = self.kp(p)
        b, k, h, w = heat.shape
        logits = heat.flatten(2)
        logits = logits.float() if logits.dtype in (torch.bfloat16, torch.float16) else logits  # >= fp32
        heat = F.softmax(logits / self.temperature, dim=2).view(b, k, h, w, 1)
        grid = make_coordinate_grid((h, w), dtype=heat.dtype, device=heat.device).view(1, 1, h, w, 2)
        out = {"value": (heat * grid).sum(dim=(2, 3))}
        if self.jacobian is not None:
            jac = self.jacobian(p).to(heat.dtype).view(b, k, 4, h, w).permute(0, 1, 3, 4, 2)
            out["jacobian"] = (heat * jac).sum(dim=(2, 3)).view(b, k, 2, 2)
        return out
