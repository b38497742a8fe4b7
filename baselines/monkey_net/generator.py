"""Monkey-Net motion transfer generator: warp the source's features by the dense motion, then decode.

Own re-implementation of ``MotionTransferGenerator`` from Siarohin et al., "Animating Arbitrary Objects via
Deep Motion Transfer", CVPR 2019 (https://arxiv.org/abs/1812.08861), checked against the official code
AliaksandrSiarohin/monkey-net@0c8aa4ea458a79717d9016a36a3d86d10a166aea (``modules/generator.py``).

The 5-D ``grid_sample`` of :meth:`MotionTransferGenerator.deform_input` uses ``align_corners=True``: the
official code pins torch 0.4.1, whose grid_sample behaved that way. The resizes keep ``F.interpolate``'s
defaults (``align_corners=False``), as the official code does.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from baselines.monkey_net.blocks import Decoder, Encoder, ResBlock3d
from baselines.monkey_net.dense_motion import DenseMotionModule, IdentityDeformation
from baselines.monkey_net.keypoint_detector import KpVariance
from baselines.monkey_net.movement_embedding import MovementEmbeddingModule

__all__ = ["MotionTransferGenerator"]


class MotionTransferGenerator(nn.Module):
    """Renders driving frames from one source frame and source/driving keypoints.

    Built as ``MotionTransferGenerator(**common_params, **generator_params)`` from the official YAML.

    Args:
        num_channels: image channels ``C``.
        num_kp: number of keypoints ``K``.
        kp_variance: keypoint representation.
        block_expansion: appearance encoder/decoder width multiplier.
        max_features: width cap.
        num_blocks: encoder/decoder depth (``H`` and ``W`` must be divisible by ``2 ** num_blocks``).
        num_refinement_blocks: residual blocks after the decoder.
        dense_motion_params: kwargs of :class:`DenseMotionModule` (None: no motion, the identity grid).
        kp_embedding_params: kwargs of the :class:`MovementEmbeddingModule` whose output is concatenated to
            every skip (None: none).
        interpolation_mode: ``F.interpolate`` mode used to resize the motion and the keypoint embedding to
            each skip (vox: ``'trilinear'``).
    """

    def __init__(
        self,
        num_channels: int,
        num_kp: int,
        kp_variance: KpVariance,
        block_expansion: int,
        max_features: int,
        num_blocks: int,
        num_refinement_blocks: int,
        dense_motion_params: dict | None = None,
        kp_embedding_params: dict | None = None,
        interpolation_mode: str = "nearest",
    ) -> None:
        super().__init__()
        self.appearance_encoder = Encoder(
            block_expansion, in_features=num_channels, max_features=max_features, num_blocks=num_blocks
        )
        self.kp_embedding_module: MovementEmbeddingModule | None = None
        embedding_features = 0
        if kp_embedding_params is not None:
            self.kp_embedding_module = MovementEmbeddingModule(
                num_kp=num_kp, kp_variance=kp_variance, num_channels=num_channels, **kp_embedding_params
            )
            embedding_features = self.kp_embedding_module.out_channels

        self.dense_motion_module: nn.Module
        if dense_motion_params is not None:
            self.dense_motion_module = DenseMotionModule(
                num_kp=num_kp, kp_variance=kp_variance, num_channels=num_channels, **dense_motion_params
            )
        else:
            self.dense_motion_module = IdentityDeformation()

        self.video_decoder = Decoder(
            block_expansion=block_expansion, in_features=num_channels, out_features=num_channels,
            max_features=max_features, num_blocks=num_blocks, additional_features_for_block=embedding_features,
            use_last_conv=False,
        )
        in_features = block_expansion + num_channels + embedding_features
        self.refinement_module = nn.Sequential()
        for i in range(num_refinement_blocks):
            self.refinement_module.add_module(f"r{i}", ResBlock3d(in_features))
        self.refinement_module.add_module("conv-last", nn.Conv3d(in_features, num_channels, kernel_size=1))
        self.interpolation_mode = interpolation_mode

    def deform_input(self, inp: Tensor, deformation: Tensor) -> Tensor:
        """Sample ``inp`` ``(B, C, 1, H, W)`` with the grid ``(B, D, h, w, 3)`` resized to ``(D, H, W)``.

        Returns:
            ``(B, C, D, H, W)``.
        """
        d = deformation.shape[1]
        h, w = inp.shape[3:]
        deformation = F.interpolate(deformation.permute(0, 4, 1, 2, 3), size=(d, h, w), mode=self.interpolation_mode)
        return F.grid_sample(inp, deformation.permute(0, 2, 3, 4, 1), align_corners=True)

    def encode_appearance(self, source_image: Tensor) -> list[Tensor]:
        """The appearance encoder's skips of ``source_image`` ``(B, C, 1, H, W)`` (the source itself first).

        They depend on the source only, so a server can compute them once per source and pass them to
        :meth:`forward` as ``appearance_skips``.
        """
        return self.appearance_encoder(source_image)

    def forward(
        self,
        source_image: Tensor,
        kp_driving: dict[str, Tensor],
        kp_source: dict[str, Tensor],
        appearance_skips: list[Tensor] | None = None,
    ) -> dict[str, Tensor]:
        """Animate the source.

        Args:
            source_image: ``(B, C, 1, H, W)`` in [0, 1].
            kp_driving: ``{'mean': (B, D, K, 2), 'var': (B, D, K, 2, 2)}``.
            kp_source: ``{'mean': (B, 1, K, 2), 'var': (B, 1, K, 2, 2)}``.
            appearance_skips: precomputed :meth:`encode_appearance` of ``source_image`` (optional).

        Returns:
            ``{'video_prediction': (B, C, D, H, W)`` in [0, 1] (sigmoid), ``'video_deformed': (B, C, D, H, W)}``
            (the source warped by the dense motion).
        """
        skips = appearance_skips if appearance_skips is not None else self.encode_appearance(source_image)
        deformation = self.dense_motion_module(source_image=source_image, kp_driving=kp_driving, kp_source=kp_source)
        deformed_skips = [self.deform_input(skip, deformation) for skip in skips]

        if self.kp_embedding_module is not None:
            d = kp_driving["mean"].shape[1]
            embedding = self.kp_embedding_module(source_image=source_image, kp_driving=kp_driving, kp_source=kp_source)
            decoder_inputs = [
                torch.cat(
                    [deformed, F.interpolate(embedding, size=(d, *skip.shape[3:]), mode=self.interpolation_mode)],
                    dim=1,
                )
                for deformed, skip in zip(deformed_skips, skips)
            ]
        else:
            decoder_inputs = deformed_skips

        prediction = torch.sigmoid(self.refinement_module(self.video_decoder(decoder_inputs)))
        # skips[0] is the source itself, so its warp is the deformed video
        return {"video_prediction": prediction, "video_deformed": deformed_skips[0]}
