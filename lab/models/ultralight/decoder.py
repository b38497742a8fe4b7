"""The server-side decoder: dense motion + occlusion-aware generator on a mobile budget.

The structure is FOMM's (Siarohin et al., 2019): a dense-motion network turns the sparse keypoint motion
(keypoints + local affine Jacobians) into a backward flow and an occlusion map at 64×64; a generator
encodes the source, warps its features with the flow, masks them with the occlusion map and decodes
the driving frame. What changes is where the compute goes (see ``README.md`` beside this file):

* the source encoding (first conv + down blocks) depends only on the source image, so the codec runs it
  once per reference frame (:meth:`UltralightGenerator.encode_source`) and every driving frame starts
  from cached features;
* high-resolution layers are depthwise-separable with few channels (FOMM spends 19 G MACs in full 3×3
  convolutions at 128² and 256²);
* the 64×64 bottleneck uses MobileNetV2 inverted residuals instead of FOMM's 256-channel ResBlocks
  (58 G FLOPs there in FOMM);
* the dense-motion hourglass keeps FOMM's design (:class:`baselines.fomm.dense_motion.DenseMotionNetwork`,
  same math) with fewer channels;
* **the output starts from the warped source** (``output: warped_residual``): the prediction is the
  full-resolution source backward-warped by the dense flow plus a residual that the decoder learns, the
  residual's last conv initialised to zero. With the flow's identity grid in the keypoints' own
  convention (corners at ±1, ``align_corners=True``), an untrained decoder renders the source unchanged:
  training starts at the ``static`` floor and only has to learn the motion and what the warp cannot show
  (an opening mouth, disocclusions). FOMM's design (``output: synthesis``: every pixel re-synthesised
  through the 64×64 bottleneck) learns far slower on CPU (``README.md``, the A/B).
"""

from __future__ import annotations

from collections.abc import Mapping

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from baselines.fomm.dense_motion import DenseMotionNetwork
from baselines.fomm.generator import apply_dense_motion
from lab.models.ultralight.blocks import ConvBNAct, DepthwiseSeparable, InvertedResidual, UpSeparable

__all__ = ["UltralightGenerator", "warp_full_resolution"]

OUTPUTS = ("warped_residual", "synthesis")


def warp_full_resolution(image: Tensor, deformation: Tensor) -> Tensor:
    """Backward-warp ``image`` ``(B, C, H, W)`` by ``deformation`` ``(B, h, w, 2)`` (FOMM's [-1, 1] grid).

    The grid is upsampled to ``H×W`` and sampled with ``align_corners=True``, the convention of
    :func:`baselines.fomm.blocks.make_coordinate_grid` (pixel centres at the corners ±1): the identity grid
    returns ``image`` exactly, at any resolution. Border padding repeats the edge rather than darkening it.
    """
    _, h, w, _ = deformation.shape
    if (h, w) != tuple(image.shape[-2:]):
        deformation = F.interpolate(deformation.permute(0, 3, 1, 2), size=image.shape[-2:], mode="bilinear",
                                    align_corners=True).permute(0, 2, 3, 1)
    return F.grid_sample(image, deformation.to(image.dtype), mode="bilinear", padding_mode="border",
                         align_corners=True)


class UltralightGenerator(nn.Module):
    """Occlusion-aware generator with separable high-resolution layers and an inverted-residual bottleneck.

    Args:
        num_kp: keypoints K.
        num_channels: image channels.
        block_expansion: channels after the first 7×7 conv; doubles per down block.
        max_features: channel cap.
        num_down_blocks: stride-2 stages between the image and the bottleneck (2: 256 → 64).
        num_bottleneck_blocks: inverted-residual blocks at the bottleneck resolution.
        bottleneck_expand: their expansion ratio.
        estimate_occlusion_map: predict and apply an occlusion map.
        dense_motion_params: kwargs of the dense-motion network (FOMM's keys).
        estimate_jacobian: keypoints carry Jacobians (FOMM's common param; used by the dense motion).
        output: ``"warped_residual"`` (default: warped full-resolution source + learned residual, starts as
            ``static``) or ``"synthesis"`` (FOMM's: sigmoid of the decoder, every pixel re-synthesised).
    """

    def __init__(self, num_kp: int = 10, num_channels: int = 3, block_expansion: int = 32, max_features: int = 256,
                 num_down_blocks: int = 2, num_bottleneck_blocks: int = 6, bottleneck_expand: int = 2,
                 estimate_occlusion_map: bool = True, dense_motion_params: dict | None = None,
                 estimate_jacobian: bool = True, output: str = "warped_residual") -> None:
        super().__init__()
        if output not in OUTPUTS:
            raise ValueError(f"generator_params.output must be one of {OUTPUTS}, got {output!r}")
        self.output = output
        dm = dict(block_expansion=64, max_features=512, num_blocks=5, scale_factor=0.25)
        dm.update(dense_motion_params or {})
        self.dense_motion_network = DenseMotionNetwork(num_kp=num_kp, num_channels=num_channels,
                                                       estimate_occlusion_map=estimate_occlusion_map, **dm)
        self.first = ConvBNAct(num_channels, block_expansion, 7)
        down, c = [], block_expansion
        for i in range(num_down_blocks):
            cout = min(max_features, block_expansion * 2 ** (i + 1))
            down.append(DepthwiseSeparable(c, cout, stride=2))
            c = cout
        self.down_blocks = nn.ModuleList(down)
        self.bottleneck = nn.Sequential(
            *(InvertedResidual(c, c, 1, bottleneck_expand) for _ in range(num_bottleneck_blocks))
        )
        up = []
        for i in range(num_down_blocks):
            cout = min(max_features, block_expansion * 2 ** (num_down_blocks - i - 1))
            up.append(UpSeparable(c, cout))
            c = cout
        self.up_blocks = nn.ModuleList(up)
        self.final = nn.Conv2d(c, num_channels, 7, padding=3)
        if output == "warped_residual":  # the residual starts at zero: an untrained decoder is `static`
            nn.init.zeros_(self.final.weight)
            nn.init.zeros_(self.final.bias)
        self.estimate_occlusion_map = estimate_occlusion_map
        self.num_channels = num_channels

    def encode_source(self, source_image: Tensor) -> Tensor:
        """Source features before warping: ``(B, 3, H, W)`` → ``(B, C, H/4, W/4)`` (cached by the codec)."""
        out = self.first(source_image)
        for block in self.down_blocks:
            out = block(out)
        return out

    def forward(self, source_image: Tensor, kp_driving: Mapping[str, Tensor], kp_source: Mapping[str, Tensor],
                source_features: Tensor | None = None) -> dict[str, Tensor]:
        """Animate ``source_image`` from ``kp_source`` to ``kp_driving`` (FOMM's generator contract).

        Args:
            source_image: ``(B, 3, H, W)`` float in [0, 1].
            kp_driving: ``{"value": (B, K, 2), "jacobian": (B, K, 2, 2)}``.
            kp_source: same layout.
            source_features: :meth:`encode_source` output to reuse (computed when None).

        Returns:
            ``"prediction"`` ``(B, 3, H, W)`` in (0, 1), ``"deformed"``, ``"mask"``, ``"sparse_deformed"``,
            ``"occlusion_map"`` as FOMM's generator.
        """
        out = self.encode_source(source_image) if source_features is None else source_features
        dense = self.dense_motion_network(source_image=source_image, kp_driving=kp_driving, kp_source=kp_source)
        out, result = apply_dense_motion(out, source_image, dense)
        out = self.bottleneck(out)
        for block in self.up_blocks:
            out = block(out)
        if self.output == "synthesis":
            result["prediction"] = torch.sigmoid(self.final(out))
            return result
        warped = warp_full_resolution(source_image, dense["deformation"])
        result["deformed"] = warped
        prediction = warped + self.final(out).to(warped.dtype)
        # the losses see the unclamped sum (no dead gradient at the range's ends); a rendered frame is clamped
        result["prediction"] = prediction if self.training else prediction.clamp(0.0, 1.0)
        return result
