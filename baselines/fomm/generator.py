"""FOMM's occlusion-aware generator: warps source features with the dense motion and decodes the frame.

Siarohin et al., *First Order Motion Model for Image Animation*, NeurIPS 2019, Sec. 3.2 (Johnson-style
encoder / bottleneck / decoder). Re-implementation matching AliaksandrSiarohin/first-order-model@c0274845
``modules/generator.py`` (constructor = the YAML's ``common_params`` + ``generator_params``).
"""

from __future__ import annotations

from collections.abc import Mapping

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from baselines.fomm.blocks import DownBlock2d, ResBlock2d, SameBlock2d, UpBlock2d
from baselines.fomm.dense_motion import DenseMotionNetwork

__all__ = ["OcclusionAwareGenerator", "apply_dense_motion"]


def apply_dense_motion(
    features: Tensor, source_image: Tensor, dense_motion: Mapping[str, Tensor]
) -> tuple[Tensor, dict[str, Tensor]]:
    """Warp encoded source features with a dense motion and mask them with its occlusion map (FOMM Sec. 3.3).

    Args:
        features: ``(B, C, h', w')`` encoded source.
        source_image: ``(B, 3, H, W)``, warped too for the ``"deformed"`` output.
        dense_motion: :class:`~baselines.fomm.dense_motion.DenseMotionNetwork` outputs.

    Returns:
        The warped (and occlusion-masked) features, and the generator's outputs ``"mask"``,
        ``"sparse_deformed"``, ``"occlusion_map"`` (when estimated) and ``"deformed"``.
    """
    output_dict = {"mask": dense_motion["mask"], "sparse_deformed": dense_motion["sparse_deformed"]}
    deformation = dense_motion["deformation"]
    out = OcclusionAwareGenerator.deform_input(features, deformation)
    occlusion_map = dense_motion.get("occlusion_map")
    if occlusion_map is not None:
        output_dict["occlusion_map"] = occlusion_map
        if out.shape[2:] != occlusion_map.shape[2:]:
            occlusion_map = F.interpolate(occlusion_map, size=out.shape[2:], mode="bilinear", align_corners=False)
        out = out * occlusion_map
    output_dict["deformed"] = OcclusionAwareGenerator.deform_input(source_image, deformation)
    return out, output_dict


class OcclusionAwareGenerator(nn.Module):
    """Source image + keypoints of source and driving frames -> the animated frame.

    Args:
        num_channels: image channels.
        num_kp: number of keypoints K.
        block_expansion: channels after the first 7x7 block.
        max_features: channel cap.
        num_down_blocks: down/up blocks around the bottleneck (2: features at 64x64 for 256x256 frames).
        num_bottleneck_blocks: :class:`ResBlock2d` s in the bottleneck (``bottleneck.r0`` ...).
        estimate_occlusion_map: multiply the warped features by a predicted occlusion map.
        dense_motion_params: :class:`DenseMotionNetwork` arguments (``block_expansion``, ``max_features``,
            ``num_blocks``, ``scale_factor``, ...); None for no motion (an auto-encoder).
        estimate_jacobian: accepted because it is in ``common_params``; the generator uses a Jacobian whenever
            the keypoint dicts carry one.
    """

    def __init__(
        self,
        num_channels: int,
        num_kp: int,
        block_expansion: int,
        max_features: int,
        num_down_blocks: int,
        num_bottleneck_blocks: int,
        estimate_occlusion_map: bool = False,
        dense_motion_params: dict | None = None,
        estimate_jacobian: bool = False,
    ) -> None:
        super().__init__()
        self.dense_motion_network: DenseMotionNetwork | None = (
            DenseMotionNetwork(
                num_kp=num_kp,
                num_channels=num_channels,
                estimate_occlusion_map=estimate_occlusion_map,
                **dense_motion_params,
            )
            if dense_motion_params is not None
            else None
        )
        self.first = SameBlock2d(num_channels, block_expansion, kernel_size=(7, 7), padding=(3, 3))
        self.down_blocks = nn.ModuleList(
            DownBlock2d(
                min(max_features, block_expansion * (2**i)),
                min(max_features, block_expansion * (2 ** (i + 1))),
                kernel_size=(3, 3),
                padding=(1, 1),
            )
            for i in range(num_down_blocks)
        )
        self.up_blocks = nn.ModuleList(
            UpBlock2d(
                min(max_features, block_expansion * (2 ** (num_down_blocks - i))),
                min(max_features, block_expansion * (2 ** (num_down_blocks - i - 1))),
                kernel_size=(3, 3),
                padding=(1, 1),
            )
            for i in range(num_down_blocks)
        )
        bottleneck_features = min(max_features, block_expansion * (2**num_down_blocks))
        self.bottleneck = nn.Sequential()
        for i in range(num_bottleneck_blocks):
            self.bottleneck.add_module(f"r{i}", ResBlock2d(bottleneck_features, kernel_size=(3, 3), padding=(1, 1)))
        self.final = nn.Conv2d(block_expansion, num_channels, kernel_size=(7, 7), padding=(3, 3))
        self.estimate_occlusion_map = estimate_occlusion_map
        self.num_channels = num_channels

    @staticmethod
    def deform_input(inp: Tensor, deformation: Tensor) -> Tensor:
        """Backward-warp ``inp`` ``(B, C, H, W)`` with a sampling grid ``(B, h, w, 2)`` (resized bilinearly to H, W)."""
        _, h_old, w_old, _ = deformation.shape
        _, _, h, w = inp.shape
        if h_old != h or w_old != w:
            deformation = deformation.permute(0, 3, 1, 2)
            deformation = F.interpolate(deformation, size=(h, w), mode="bilinear", align_corners=False)
            deformation = deformation.permute(0, 2, 3, 1)
        return F.grid_sample(inp, deformation, mode="bilinear", padding_mode="zeros", align_corners=False)

    def forward(
        self, source_image: Tensor, kp_driving: Mapping[str, Tensor], kp_source: Mapping[str, Tensor]
    ) -> dict[str, Tensor]:
        """Animate ``source_image`` from ``kp_source`` to ``kp_driving``.

        Args:
            source_image: ``(B, C, H, W)`` float in [0, 1].
            kp_driving: ``{"value": (B, K, 2), "jacobian": (B, K, 2, 2)}`` of the driving frames.
            kp_source: same layout, of the source frames.

        Returns:
            ``"prediction"`` ``(B, C, H, W)`` in (0, 1); with a dense motion network also ``"mask"``
            ``(B, K+1, h, w)``, ``"sparse_deformed"`` ``(B, K+1, C, h, w)``, ``"deformed"`` ``(B, C, H, W)`` (the
            source warped by the dense motion) and, when estimated, ``"occlusion_map"`` ``(B, 1, h, w)``;
            ``(h, w)`` is the dense-motion resolution.
        """
        out = self.first(source_image)
        for down_block in self.down_blocks:
            out = down_block(out)

        output_dict: dict[str, Tensor] = {}
        if self.dense_motion_network is not None:
            dense_motion = self.dense_motion_network(
                source_image=source_image, kp_driving=kp_driving, kp_source=kp_source
            )
            out, output_dict = apply_dense_motion(out, source_image, dense_motion)

        out = self.bottleneck(out)
        for up_block in self.up_blocks:
            out = up_block(out)
        output_dict["prediction"] = torch.sigmoid(self.final(out))
        return output_dict
