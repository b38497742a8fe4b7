"""MobileNetV2-style building blocks of the ultra-lightweight animator (Sandler et al., CVPR 2018).

Inverted residuals (1×1 expand → 3×3 depthwise → 1×1 linear project, residual when shapes allow) and
depthwise-separable convolutions: the paper cites MobileNetV2 as its backbone and targets mobile engines
(MNN, TensorRT), so every block is plain conv/BN/ReLU6 that exports to ONNX.
"""

from __future__ import annotations

import torch.nn.functional as F
from torch import Tensor, nn

__all__ = ["ConvBNAct", "InvertedResidual", "DepthwiseSeparable", "UpSeparable"]


class ConvBNAct(nn.Sequential):
    """Conv → BatchNorm → ReLU6 (``act=False`` for a linear projection)."""

    def __init__(self, cin: int, cout: int, k: int = 3, stride: int = 1, groups: int = 1, act: bool = True) -> None:
        layers: list[nn.Module] = [
            nn.Conv2d(cin, cout, k, stride, k // 2, groups=groups, bias=False),
            nn.BatchNorm2d(cout),
        ]
        if act:
            layers.append(nn.ReLU6(inplace=True))
        super().__init__(*layers)


class InvertedResidual(nn.Module):
    """MobileNetV2 block: expand ``t``× → depthwise 3×3 (stride s) → linear project; skip if s=1, cin=cout."""

    def __init__(self, cin: int, cout: int, stride: int = 1, expand: int = 4) -> None:
        super().__init__()
        hidden = cin * expand
        layers: list[nn.Module] = []
        if expand != 1:
            layers.append(ConvBNAct(cin, hidden, 1))
        layers += [ConvBNAct(hidden, hidden, 3, stride, groups=hidden), ConvBNAct(hidden, cout, 1, act=False)]
        self.conv = nn.Sequential(*layers)
        self.use_res = stride == 1 and cin == cout

    def forward(self, x: Tensor) -> Tensor:
        out = self.conv(x)
        return x + out if self.use_res else out


class DepthwiseSeparable(nn.Sequential):
    """Depthwise k×k → pointwise 1×1, each with BN + ReLU (``act_last=False`` leaves the output linear)."""

    def __init__(self, cin: int, cout: int, k: int = 3, stride: int = 1, act_last: bool = True) -> None:
        super().__init__(
            nn.Conv2d(cin, cin, k, stride, k // 2, groups=cin, bias=False),
            nn.BatchNorm2d(cin),
            nn.ReLU(inplace=True),
            nn.Conv2d(cin, cout, 1, bias=False),
            nn.BatchNorm2d(cout),
            *([nn.ReLU(inplace=True)] if act_last else []),
        )


class UpSeparable(nn.Module):
    """×2 up block that changes channels before upsampling: 1×1 conv at the low resolution → nearest ×2 →
    depthwise 3×3 at the high resolution (FOMM's UpBlock2d runs a full 3×3 conv at the high resolution)."""

    def __init__(self, cin: int, cout: int) -> None:
        super().__init__()
        self.pw = ConvBNAct(cin, cout, 1)
        self.dw = ConvBNAct(cout, cout, 3, groups=cout)

    def forward(self, x: Tensor) -> Tensor:
        return self.dw(F.interpolate(self.pw(x), scale_factor=2, mode="nearest"))
