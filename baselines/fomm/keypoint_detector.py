"""FOMM's keypoint detector: keypoints and local affine Jacobians from one frame (the codec's sender side).

Siarohin et al., *First Order Motion Model for Image Animation*, NeurIPS 2019, Sec. 3.1.
Re-implementation matching AliaksandrSiarohin/first-order-model@c0274845 ``modules/keypoint_detector.py``
(constructor = the YAML's ``common_params`` + ``kp_detector_params``; identical ``state_dict`` and outputs).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from baselines.fomm.blocks import AntiAliasInterpolation2d, Hourglass, make_coordinate_grid

__all__ = ["KPDetector"]


class KPDetector(nn.Module):
    """Detects ``num_kp`` keypoints (softmax-weighted heatmap means) and a 2x2 Jacobian near each.

    Args:
        block_expansion: hourglass channel multiplier.
        num_kp: number of keypoints K.
        num_channels: image channels.
        max_features: hourglass channel cap.
        num_blocks: hourglass depth.
        temperature: softmax temperature of the heatmaps.
        estimate_jacobian: also predict Jacobians (FOMM's first-order terms).
        scale_factor: the image is anti-alias downsampled by this factor first (0.25: 256 -> 64).
        single_jacobian_map: one shared 4-channel Jacobian map instead of one per keypoint.
        pad: padding of the 7x7 keypoint/Jacobian convolutions (0: a 64x64 input gives 58x58 heatmaps).
    """

    def __init__(
        self,
        block_expansion: int,
        num_kp: int,
        num_channels: int,
        max_features: int,
        num_blocks: int,
        temperature: float,
        estimate_jacobian: bool = False,
        scale_factor: float = 1,
        single_jacobian_map: bool = False,
        pad: int = 0,
    ) -> None:
        super().__init__()
        self.predictor = Hourglass(
            block_expansion, in_features=num_channels, max_features=max_features, num_blocks=num_blocks
        )
        self.kp = nn.Conv2d(self.predictor.out_filters, num_kp, kernel_size=(7, 7), padding=pad)
        self.num_kp = num_kp
        if estimate_jacobian:
            self.num_jacobian_maps = 1 if single_jacobian_map else num_kp
            self.jacobian: nn.Conv2d | None = nn.Conv2d(
                self.predictor.out_filters, 4 * self.num_jacobian_maps, kernel_size=(7, 7), padding=pad
            )
            with torch.no_grad():  # start from identity Jacobians
                self.jacobian.weight.zero_()
                self.jacobian.bias.copy_(torch.tensor([1.0, 0.0, 0.0, 1.0] * self.num_jacobian_maps))
        else:
            self.jacobian = None
        self.temperature = temperature
        self.scale_factor = scale_factor
        if scale_factor != 1:
            self.down = AntiAliasInterpolation2d(num_channels, scale_factor)

    def forward(self, x: Tensor) -> dict[str, Tensor]:
        """Keypoints of a batch of frames.

        Args:
            x: ``(B, C, H, W)`` float in [0, 1] (no normalisation).

        Returns:
            ``{"value": (B, K, 2)}`` (x, y) in [-1, 1], plus ``"jacobian"`` ``(B, K, 2, 2)`` when
            ``estimate_jacobian``.
        """
        if self.scale_factor != 1:
            x = self.down(x)
        feature_map = self.predictor(x)
        prediction = self.kp(feature_map)  # (B, K, h, w)
        b, k, h, w = prediction.shape
        # softmax and soft-argmax in at least fp32 (bf16/fp16 under autocast -> fp32; fp32/fp64 kept as they are)
        logits = prediction.reshape(b, k, h * w)
        logits = logits.float() if logits.dtype in (torch.bfloat16, torch.float16) else logits
        heatmap = F.softmax(logits / self.temperature, dim=2).reshape(b, k, h, w)

        grid = make_coordinate_grid((h, w), dtype=heatmap.dtype, device=heatmap.device)  # (h, w, 2)
        out = {"value": (heatmap.unsqueeze(-1) * grid).sum(dim=(2, 3))}

        if self.jacobian is not None:
            jacobian_map = self.jacobian(feature_map).reshape(b, self.num_jacobian_maps, 4, h, w)
            jacobian = (heatmap.unsqueeze(2) * jacobian_map).reshape(b, k, 4, h * w).sum(dim=-1)
            out["jacobian"] = jacobian.reshape(b, k, 2, 2)
        return out
