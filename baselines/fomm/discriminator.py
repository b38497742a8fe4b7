"""FOMM's multi-scale Pix2Pix-style discriminator (training only).

Siarohin et al., *First Order Motion Model for Image Animation*, NeurIPS 2019, Sec. 3.3 / supplementary.
Re-implementation matching AliaksandrSiarohin/first-order-model@c0274845 ``modules/discriminator.py``: built as
``MultiScaleDiscriminator(**common_params, **discriminator_params)``; with ``sn: True`` the convolutions use
:func:`torch.nn.utils.spectral_norm` (``weight_orig`` / ``weight_u`` / ``weight_v`` keys, as the official
checkpoints hold), instance norm with affine parameters, LeakyReLU 0.2.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from baselines.fomm.blocks import kp2gaussian

__all__ = ["DiscriminatorDownBlock2d", "Discriminator", "MultiScaleDiscriminator"]


class DiscriminatorDownBlock2d(nn.Module):
    """conv (no padding, optionally spectral-normalised) -> InstanceNorm -> LeakyReLU(0.2) -> optional 2x2 avg pool.

    Args:
        in_features: input channels.
        out_features: output channels.
        norm: add an affine instance norm.
        kernel_size: convolution kernel.
        pool: average-pool 2x2 at the end.
        sn: spectral normalisation of the convolution.
    """

    def __init__(
        self, in_features: int, out_features: int, norm: bool = False, kernel_size: int = 4, pool: bool = False,
        sn: bool = False,
    ) -> None:
        super().__init__()
        conv = nn.Conv2d(in_features, out_features, kernel_size=kernel_size)
        self.conv = nn.utils.spectral_norm(conv) if sn else conv
        self.norm = nn.InstanceNorm2d(out_features, affine=True) if norm else None
        self.pool = pool

    def forward(self, x: Tensor) -> Tensor:
        """``(B, C_in, H, W)`` -> ``(B, C_out, H', W')``."""
        out = self.conv(x)
        if self.norm is not None:
            out = self.norm(out)
        out = F.leaky_relu(out, 0.2)
        if self.pool:
            out = F.avg_pool2d(out, (2, 2))
        return out


class Discriminator(nn.Module):
    """Pix2Pix-like patch discriminator that also returns its intermediate feature maps (feature matching).

    Args:
        num_channels: image channels.
        block_expansion: channel multiplier.
        num_blocks: down blocks.
        max_features: channel cap.
        sn: spectral normalisation.
        use_kp: concatenate the driving keypoints' Gaussian heatmaps to the input.
        num_kp: number of keypoints (input channels added when ``use_kp``).
        kp_variance: variance of those heatmaps.
        estimate_jacobian: accepted because it is in ``common_params``; unused.
    """

    def __init__(
        self,
        num_channels: int = 3,
        block_expansion: int = 64,
        num_blocks: int = 4,
        max_features: int = 512,
        sn: bool = False,
        use_kp: bool = False,
        num_kp: int = 10,
        kp_variance: float = 0.01,
        estimate_jacobian: bool = False,
    ) -> None:
        super().__init__()
        self.down_blocks = nn.ModuleList(
            DiscriminatorDownBlock2d(
                num_channels + num_kp * use_kp if i == 0 else min(max_features, block_expansion * (2**i)),
                min(max_features, block_expansion * (2 ** (i + 1))),
                norm=(i != 0),
                kernel_size=4,
                pool=(i != num_blocks - 1),
                sn=sn,
            )
            for i in range(num_blocks)
        )
        conv = nn.Conv2d(min(max_features, block_expansion * (2**num_blocks)), 1, kernel_size=1)
        self.conv = nn.utils.spectral_norm(conv) if sn else conv
        self.use_kp = use_kp
        self.kp_variance = kp_variance

    def forward(self, x: Tensor, kp: Mapping[str, Tensor] | None = None) -> tuple[list[Tensor], Tensor]:
        """Score a batch of images.

        Args:
            x: ``(B, C, H, W)``.
            kp: keypoints ``{"value": (B, K, 2)}``; needed only when ``use_kp``.

        Returns:
            ``(feature_maps, prediction_map)``: the output of every down block, and ``(B, 1, h, w)`` patch scores.
        """
        out = x
        if self.use_kp:
            if kp is None:
                raise ValueError("this discriminator has use_kp=True: pass the driving keypoints")
            out = torch.cat([out, kp2gaussian(kp, x.shape[2:], self.kp_variance)], dim=1)
        feature_maps = []
        for down_block in self.down_blocks:
            out = down_block(out)
            feature_maps.append(out)
        return feature_maps, self.conv(out)


class MultiScaleDiscriminator(nn.Module):
    """One :class:`Discriminator` per image-pyramid scale (``discs.1``, ``discs.0-5``, ...).

    Args:
        scales: pyramid scales the discriminators look at (FOMM faces: ``[1]``).
        **kwargs: :class:`Discriminator` arguments (the YAML's ``common_params`` + the rest of
            ``discriminator_params``).
    """

    def __init__(self, scales: Sequence[float] = (), **kwargs) -> None:
        super().__init__()
        self.scales = list(scales)
        self.discs = nn.ModuleDict({str(scale).replace(".", "-"): Discriminator(**kwargs) for scale in scales})

    def forward(self, x: Mapping[str, Tensor], kp: Mapping[str, Tensor] | None = None) -> dict[str, Tensor | list]:
        """Score an image pyramid.

        Args:
            x: ``{"prediction_<scale>": (B, C, H*s, W*s)}`` (see :class:`lab.nn.losses.ImagePyramid`).
            kp: driving keypoints (for ``use_kp``).

        Returns:
            ``{"feature_maps_<scale>": [Tensor, ...], "prediction_map_<scale>": (B, 1, h, w)}`` per scale.
        """
        out: dict[str, Tensor | list] = {}
        for key, disc in self.discs.items():
            scale = key.replace("-", ".")
            feature_maps, prediction_map = disc(x["prediction_" + scale], kp)
            out["feature_maps_" + scale] = feature_maps
            out["prediction_map_" + scale] = prediction_map
        return out
