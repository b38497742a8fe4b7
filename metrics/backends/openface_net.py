"""OpenFace nn4.small2.v1 as a PyTorch module whose ``state_dict`` matches the thnkim/OpenFacePytorch port.

OpenFace (Amos, Ludwiczuk, Satyanarayanan, "OpenFace: A general-purpose face recognition library with mobile
applications", CMU-CS-16-118, 2016; cmusatyalab/openface ``models/openface/nn4.small2.def.lua``) is FaceNet's
NN4 with inception 4b-4d removed and a smaller 5th stage: 96x96 input, 128-D L2-normalised embedding,
3,733,968 parameters. pose-evaluation (AliaksandrSiarohin/pose-evaluation) computes AED with the PyTorch port
thnkim/OpenFacePytorch (``loadOpenFace.py``, weights ``openface.pth`` converted from ``nn4.small2.v1.t7``).

This is an independent implementation written to the port's *facts*, so that ``openface.pth`` loads with a
strict key check and gives the port's outputs:

* parameter names are the port's: ``layer{1,2,6,7,9,10}`` for the stem, ``layer14``...``layer21`` for the
  inception blocks with branches ``seq_list.{i}`` made of ``1_conv``/``2_bn``/``4_conv``/``5_bn`` (conv
  branches), ``2_conv``/``3_bn`` after ``1_pool`` (pool branch) and ``1_conv``/``2_bn`` (1x1 branch), and
  ``layer25`` for the final linear layer (the numbers are positions in the Torch7 ``nn.Sequential``);
* every convolution has a bias, every batch norm is affine with ``eps=1e-5`` (torch defaults, as the port);
* branch outputs of different spatial size are zero-padded, centred (``floor`` of the difference on the
  left/top), before concatenation: Torch7's ``nn.DepthConcat`` as the port reimplements it;
* the port's pool branches: 3x3 max-pool stride 2 (3a, 3c, 4e, 5b) and L2 pool 3x3 stride 3 (3b, 4a, 5a);
* local response normalisation reproduces the port's ``SpatialCrossMapLRN_temp`` (a copy of torch 0.4's
  ``torch.legacy.nn.SpatialCrossMapLRN``), including its off-by-one: when sliding the 5-channel window it
  removes channel ``c - 3`` only from ``c > 3`` on (0-based), so the square of channel 0 is never removed and
  stays in the sum of every channel ``c >= 3``. Torch7's Lua original is correct. ``legacy_lrn=False`` gives
  the textbook LRN (:class:`torch.nn.LocalResponseNorm`);
* the output is ``x / sqrt(sum(x**2) + 1e-6)``, as the port normalises.

Model code only: no file access; :mod:`metrics.backends.openface` loads weights and prepares frames.
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Sequence

import torch
import torch.nn.functional as F
from torch import Tensor, nn

__all__ = ["CrossMapLRN", "InceptionBlock", "OpenFaceNN4Small2"]


class CrossMapLRN(nn.Module):
    r"""Local response normalisation across channels (Torch7 ``SpatialCrossMapLRN``).

    .. math::

        y_c = x_c \Big(k + \frac{\alpha}{n} \sum_{c' \in W(c)} x_{c'}^2\Big)^{-\beta},
        \qquad W(c) = [c - \lfloor (n-1)/2 \rfloor,\ c + \lfloor n/2 \rfloor]

    With ``legacy=True`` (the port's behaviour) ``W(c)`` also contains channel 0 for every
    ``c > (n-1)/2`` (see the module docstring).

    Args:
        size: window size ``n`` in channels.
        alpha: scale :math:`\alpha`.
        beta: exponent :math:`\beta`.
        k: additive constant.
        legacy: reproduce the off-by-one of torch 0.4's ``torch.legacy.nn.SpatialCrossMapLRN``.
    """

    def __init__(self, size: int = 5, alpha: float = 1e-4, beta: float = 0.75, k: float = 1.0,
                 legacy: bool = True) -> None:
        super().__init__()
        self.size, self.alpha, self.beta, self.k, self.legacy = size, alpha, beta, k, legacy

    def forward(self, x: Tensor) -> Tensor:
        """``(N, C, H, W)`` → ``(N, C, H, W)``."""
        sq = x * x
        before = (self.size - 1) // 2
        padded = F.pad(sq, (0, 0, 0, 0, before, self.size - 1 - before))
        window = padded.unfold(1, self.size, 1).sum(-1)
        if self.legacy and x.shape[1] > before + 1:
            window = torch.cat([window[:, : before + 1], window[:, before + 1 :] + sq[:, :1]], dim=1)
        return x * (self.k + (self.alpha / self.size) * window).pow(-self.beta)

    def extra_repr(self) -> str:
        return f"size={self.size}, alpha={self.alpha}, beta={self.beta}, k={self.k}, legacy={self.legacy}"


def _conv_bn_relu(prefix: int, in_ch: int, out_ch: int, kernel: int = 1, stride: int = 1
                  ) -> list[tuple[str, nn.Module]]:
    """``[(f"{prefix}_conv", conv), (f"{prefix+1}_bn", bn), (f"{prefix+2}_relu", relu)]``; 'same' padding."""
    return [
        (f"{prefix}_conv", nn.Conv2d(in_ch, out_ch, kernel, stride=stride, padding=kernel // 2)),
        (f"{prefix + 1}_bn", nn.BatchNorm2d(out_ch)),
        (f"{prefix + 2}_relu", nn.ReLU()),
    ]


class InceptionBlock(nn.Module):
    """Inception block with Torch7 ``nn.DepthConcat`` semantics (centred zero padding to the largest branch).

    Args:
        in_ch: input channels.
        convs: per convolution branch ``(reduce_channels, out_channels, kernel, stride)``: a 1x1 reduction
            then a ``kernel x kernel`` convolution with the given stride (each followed by BN + ReLU).
        pool: the pool branch's pooling module.
        pool_proj: channels of the 1x1 convolution after the pool, or ``None`` for none.
        proj: channels of the plain 1x1 branch, or ``None`` for none.
    """

    def __init__(self, in_ch: int, convs: Sequence[tuple[int, int, int, int]], pool: nn.Module,
                 pool_proj: int | None, proj: int | None) -> None:
        super().__init__()
        branches: list[nn.Module] = []
        for reduce_ch, out_ch, kernel, stride in convs:
            layers = _conv_bn_relu(1, in_ch, reduce_ch) + _conv_bn_relu(4, reduce_ch, out_ch, kernel, stride)
            branches.append(nn.Sequential(OrderedDict(layers)))
        pool_layers: list[tuple[str, nn.Module]] = [("1_pool", pool)]
        if pool_proj is not None:
            pool_layers += _conv_bn_relu(2, in_ch, pool_proj)
        branches.append(nn.Sequential(OrderedDict(pool_layers)))
        if proj is not None:
            branches.append(nn.Sequential(OrderedDict(_conv_bn_relu(1, in_ch, proj))))
        self.seq_list = nn.ModuleList(branches)

    def forward(self, x: Tensor) -> Tensor:
        """``(N, in_ch, H, W)`` → ``(N, sum of branch channels, H', W')`` (the largest branch's size)."""
        outs = [branch(x) for branch in self.seq_list]
        h = max(o.shape[-2] for o in outs)
        w = max(o.shape[-1] for o in outs)
        padded = []
        for o in outs:
            dh, dw = h - o.shape[-2], w - o.shape[-1]
            padded.append(F.pad(o, (dw // 2, dw - dw // 2, dh // 2, dh - dh // 2)) if dh or dw else o)
        return torch.cat(padded, dim=1)


def _maxpool() -> nn.Module:
    return nn.MaxPool2d(3, stride=2, padding=0)


def _l2pool() -> nn.Module:
    return nn.LPPool2d(2, 3, stride=3)


class OpenFaceNN4Small2(nn.Module):
    """OpenFace nn4.small2.v1: ``(N, 3, 96, 96)`` BGR float in [0, 1] → ``(N, 128)`` L2-normalised embedding.

    Args:
        legacy_lrn: reproduce the port's LRN off-by-one (default, needed for the pose-evaluation numbers).
    """

    input_size = (96, 96)
    embedding_dim = 128

    def __init__(self, legacy_lrn: bool = True) -> None:
        super().__init__()
        # stem (Torch7 positions 1-13)
        self.layer1 = nn.Conv2d(3, 64, 7, stride=2, padding=3)
        self.layer2 = nn.BatchNorm2d(64)
        self.layer3 = nn.ReLU()
        self.layer4 = nn.MaxPool2d(3, stride=2, padding=1)
        self.layer5 = CrossMapLRN(5, 1e-4, 0.75, legacy=legacy_lrn)
        self.layer6 = nn.Conv2d(64, 64, 1)
        self.layer7 = nn.BatchNorm2d(64)
        self.layer8 = nn.ReLU()
        self.layer9 = nn.Conv2d(64, 192, 3, padding=1)
        self.layer10 = nn.BatchNorm2d(192)
        self.layer11 = nn.ReLU()
        self.layer12 = CrossMapLRN(5, 1e-4, 0.75, legacy=legacy_lrn)
        self.layer13 = nn.MaxPool2d(3, stride=2, padding=1)
        # inception 3a, 3b, 3c, 4a, 4e, 5a, 5b
        self.layer14 = InceptionBlock(192, [(96, 128, 3, 1), (16, 32, 5, 1)], _maxpool(), 32, 64)
        self.layer15 = InceptionBlock(256, [(96, 128, 3, 1), (32, 64, 5, 1)], _l2pool(), 64, 64)
        self.layer16 = InceptionBlock(320, [(128, 256, 3, 2), (32, 64, 5, 2)], _maxpool(), None, None)
        self.layer17 = InceptionBlock(640, [(96, 192, 3, 1), (32, 64, 5, 1)], _l2pool(), 128, 256)
        self.layer18 = InceptionBlock(640, [(160, 256, 3, 2), (64, 128, 5, 2)], _maxpool(), None, None)
        self.layer19 = InceptionBlock(1024, [(96, 384, 3, 1)], _l2pool(), 96, 256)
        self.layer21 = InceptionBlock(736, [(96, 384, 3, 1)], _maxpool(), 96, 256)
        self.layer22 = nn.AvgPool2d(3, stride=1)
        self.layer25 = nn.Linear(736, 128)

    def features(self, x: Tensor) -> Tensor:
        """``(N, 3, 96, 96)`` → ``(N, 736)`` pooled features before the embedding layer."""
        for i in (1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16, 17, 18, 19, 21, 22):
            x = getattr(self, f"layer{i}")(x)
        return x.flatten(1)

    def forward(self, x: Tensor) -> Tensor:
        """``(N, 3, 96, 96)`` BGR float in [0, 1] → ``(N, 128)`` embedding with unit L2 norm."""
        e = self.layer25(self.features(x))
        return e / torch.sqrt((e * e).sum(dim=1, keepdim=True) + 1e-6)
