"""FOMM's dense motion network: from sparse keypoint motion to a dense flow and an occlusion map.

Siarohin et al., *First Order Motion Model for Image Animation*, NeurIPS 2019, Sec. 3.2 (Eqs. 4, 6, 7).
Re-implementation matching AliaksandrSiarohin/first-order-model@c0274845 ``modules/dense_motion.py``.

Conventions (as the official code runs under its pinned torch 1.12.1): ``grid_sample`` with ``align_corners=False``
and zero padding; the local affine of keypoint k is ``J_s,k @ inverse(J_d,k)``; motion channel 0 is the background
(identity) motion.
"""

from __future__ import annotations

from collections.abc import Mapping

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from baselines.fomm.blocks import AntiAliasInterpolation2d, Hourglass, kp2gaussian, make_coordinate_grid

__all__ = ["DenseMotionNetwork"]

KP = Mapping[str, Tensor]


class DenseMotionNetwork(nn.Module):
    """Predicts the dense backward flow (driving -> source) as a soft mix of K+1 local motions.

    Args:
        block_expansion: hourglass channel multiplier.
        num_blocks: hourglass depth.
        max_features: hourglass channel cap.
        num_kp: number of keypoints K.
        num_channels: image channels C.
        estimate_occlusion_map: also predict an occlusion map.
        scale_factor: the source is anti-alias downsampled by this factor first (0.25: motion at 64x64).
        kp_variance: variance of the keypoint Gaussians (normalised coordinates).
    """

    def __init__(
        self,
        block_expansion: int,
        num_blocks: int,
        max_features: int,
        num_kp: int,
        num_channels: int,
        estimate_occlusion_map: bool = False,
        scale_factor: float = 1,
        kp_variance: float = 0.01,
    ) -> None:
        super().__init__()
        self.hourglass = Hourglass(
            block_expansion=block_expansion,
            in_features=(num_kp + 1) * (num_channels + 1),
            max_features=max_features,
            num_blocks=num_blocks,
        )
        self.mask = nn.Conv2d(self.hourglass.out_filters, num_kp + 1, kernel_size=(7, 7), padding=(3, 3))
        self.occlusion: nn.Conv2d | None = (
            nn.Conv2d(self.hourglass.out_filters, 1, kernel_size=(7, 7), padding=(3, 3))
            if estimate_occlusion_map
            else None
        )
        self.num_kp = num_kp
        self.scale_factor = scale_factor
        self.kp_variance = kp_variance
        if scale_factor != 1:
            self.down = AntiAliasInterpolation2d(num_channels, scale_factor)

    def create_heatmap_representations(self, source_image: Tensor, kp_driving: KP, kp_source: KP) -> Tensor:
        """Eq. 6: ``H_k(z) = G(z; p_d,k) - G(z; p_s,k)`` with a zero background channel.

        Returns:
            ``(B, K+1, 1, h, w)``.
        """
        spatial_size = source_image.shape[2:]
        heatmap = kp2gaussian(kp_driving, spatial_size, self.kp_variance) - kp2gaussian(
            kp_source, spatial_size, self.kp_variance
        )
        zeros = heatmap.new_zeros(heatmap.shape[0], 1, *heatmap.shape[2:])
        return torch.cat([zeros, heatmap], dim=1).unsqueeze(2)

    def create_sparse_motions(self, source_image: Tensor, kp_driving: KP, kp_source: KP) -> Tensor:
        """Eq. 4: ``T_s<-d,k(z) = p_s,k + J_s,k J_d,k^-1 (z - p_d,k)``, plus the identity as motion 0.

        Returns:
            ``(B, K+1, h, w, 2)`` sampling grids (x, y) in [-1, 1].
        """
        with torch.autocast(source_image.device.type, enabled=False):  # coordinates stay fp32 under bf16 autocast
            return self._sparse_motions(source_image, _float_kp(kp_driving), _float_kp(kp_source))

    def _sparse_motions(self, source_image: Tensor, kp_driving: KP, kp_source: KP) -> Tensor:
        bs, _, h, w = source_image.shape
        identity_grid = make_coordinate_grid((h, w), dtype=kp_source["value"].dtype, device=source_image.device)
        identity_grid = identity_grid.view(1, 1, h, w, 2)
        coordinate_grid = identity_grid - kp_driving["value"].reshape(bs, self.num_kp, 1, 1, 2)
        if "jacobian" in kp_driving:
            jacobian = torch.matmul(kp_source["jacobian"], torch.inverse(kp_driving["jacobian"]))  # (B, K, 2, 2)
            coordinate_grid = torch.matmul(jacobian[:, :, None, None], coordinate_grid.unsqueeze(-1)).squeeze(-1)
        driving_to_source = coordinate_grid + kp_source["value"].reshape(bs, self.num_kp, 1, 1, 2)
        return torch.cat([identity_grid.expand(bs, 1, h, w, 2), driving_to_source], dim=1)

    def create_deformed_source_image(self, source_image: Tensor, sparse_motions: Tensor) -> Tensor:
        """Eq. 7: the source warped by each of the K+1 motions.

        Returns:
            ``(B, K+1, C, h, w)``.
        """
        bs, c, h, w = source_image.shape
        n = self.num_kp + 1
        source_repeat = source_image.unsqueeze(1).expand(bs, n, c, h, w).reshape(bs * n, c, h, w)
        grids = sparse_motions.reshape(bs * n, h, w, 2)
        sparse_deformed = F.grid_sample(
            source_repeat, grids, mode="bilinear", padding_mode="zeros", align_corners=False
        )
        return sparse_deformed.reshape(bs, n, c, h, w)

    def forward(self, source_image: Tensor, kp_driving: KP, kp_source: KP) -> dict[str, Tensor]:
        """Dense motion from the source image and the two keypoint sets.

        Args:
            source_image: ``(B, C, H, W)`` float in [0, 1].
            kp_driving: ``{"value": (B, K, 2), "jacobian": (B, K, 2, 2)}`` (Jacobian optional).
            kp_source: same layout as ``kp_driving``.

        Returns:
            ``"sparse_deformed"`` ``(B, K+1, C, h, w)``, ``"mask"`` ``(B, K+1, h, w)`` (softmax over motions),
            ``"deformation"`` ``(B, h, w, 2)`` (backward flow grid), and ``"occlusion_map"`` ``(B, 1, h, w)`` in
            (0, 1) when estimated; ``(h, w) = scale_factor * (H, W)``.
        """
        if self.scale_factor != 1:
            source_image = self.down(source_image)
        bs, _, h, w = source_image.shape

        heatmap_representation = self.create_heatmap_representations(source_image, kp_driving, kp_source)
        sparse_motion = self.create_sparse_motions(source_image, kp_driving, kp_source)
        deformed_source = self.create_deformed_source_image(source_image, sparse_motion)

        hourglass_input = torch.cat([heatmap_representation, deformed_source], dim=2).reshape(bs, -1, h, w)
        prediction = self.hourglass(hourglass_input)

        mask = F.softmax(_at_least_fp32(self.mask(prediction)), dim=1)  # (B, K+1, h, w); fp32 also under autocast
        deformation = (sparse_motion * mask.unsqueeze(-1)).sum(dim=1)  # (B, h, w, 2)

        out = {"sparse_deformed": deformed_source, "mask": mask, "deformation": deformation}
        if self.occlusion is not None:
            out["occlusion_map"] = torch.sigmoid(_at_least_fp32(self.occlusion(prediction)))
        return out


def _at_least_fp32(t: Tensor) -> Tensor:
    """bf16/fp16 (autocast) -> fp32; fp32 and fp64 are kept as they are."""
    return t.float() if t.dtype in (torch.bfloat16, torch.float16) else t


def _float_kp(kp: KP) -> KP:
    """Keypoints in at least fp32 (a no-op outside autocast)."""
    return {k: _at_least_fp32(v) for k, v in kp.items()}
