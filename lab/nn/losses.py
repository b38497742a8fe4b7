"""Loss pieces shared by the lab's trainable animators (FOMM, Monkey-Net, X2Face, the proposed model).

The pieces follow FOMM's training losses (Siarohin et al., *First Order Motion Model for Image Animation*,
NeurIPS 2019, Sec. 3.3; official code AliaksandrSiarohin/first-order-model@c0274845 ``modules/model.py``),
re-implemented and made generic:

* :class:`ImagePyramid` -- anti-aliased image pyramid, ``{"prediction_<scale>": image}`` (FOMM's key names, which
  :class:`baselines.fomm.MultiScaleDiscriminator` reads);
* :class:`Vgg19` -- the five VGG19 feature slices (relu1_1 ... relu5_1) of the perceptual loss;
* :class:`PerceptualPyramidLoss` -- the multi-scale perceptual loss, **with a documented fallback**: pretrained
  VGG19 weights cannot be downloaded on the lab's machines, so the loss uses torchvision's ``vgg19`` architecture
  with the weights of ``$TORCH_HOME/hub/checkpoints/vgg19-dcbb9e9d.pth`` (torchvision's ImageNet file, loaded with
  ``weights_only=True``) when that file exists, and otherwise a multi-scale L1 + (1 - SSIM) loss on the same
  pyramid. :attr:`PerceptualPyramidLoss.description` says which one runs and is meant for the run's metadata;
* :func:`ssim` -- differentiable SSIM (Gaussian window) used by the fallback;
* :class:`Transform` -- FOMM's random affine + thin-plate-spline warp for the equivariance constraints, with an
  analytic Jacobian (no autograd call inside the forward);
* :func:`equivariance_value_loss`, :func:`equivariance_jacobian_loss`;
* :func:`lsgan_generator_loss`, :func:`lsgan_discriminator_loss`, :func:`feature_matching_loss` (LSGAN, as FOMM);
* :func:`detach_kp`.

Everything here is device-agnostic: modules follow ``.to()``; random draws happen on the CPU with torch's
default generator (or the one passed), so a seeded run is reproducible on any device.
"""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from lab.nn.blocks import AntiAliasInterpolation2d, make_coordinate_grid

__all__ = [
    "VGG19_FILE",
    "ImagePyramid",
    "Vgg19",
    "find_vgg19_weights",
    "PerceptualPyramidLoss",
    "ssim",
    "Transform",
    "detach_kp",
    "equivariance_value_loss",
    "equivariance_jacobian_loss",
    "lsgan_generator_loss",
    "lsgan_discriminator_loss",
    "feature_matching_loss",
]

#: torchvision's ImageNet VGG19 weights file (``torchvision.models.VGG19_Weights.IMAGENET1K_V1``)
VGG19_FILE = "vgg19-dcbb9e9d.pth"
_VGG19_SHA256_PREFIX = "dcbb9e9d"  # torchvision names its files after the first hex digits of their sha256


def _scale_key(scale: float) -> str:
    return "prediction_" + str(scale)


# ---------------------------------------------------------------------------------------------- pyramid
class ImagePyramid(nn.Module):
    """Anti-aliased downsampled copies of an image (FOMM's ``ImagePyramide``).

    Args:
        scales: output/input size ratios, each ``1 / int`` (e.g. ``[1, 0.5, 0.25, 0.125]``).
        num_channels: image channels.
    """

    def __init__(self, scales: Sequence[float], num_channels: int) -> None:
        super().__init__()
        self.scales = list(scales)
        self.downs = nn.ModuleDict(
            {str(scale).replace(".", "-"): AntiAliasInterpolation2d(num_channels, scale) for scale in self.scales}
        )

    def forward(self, x: Tensor) -> dict[str, Tensor]:
        """``(B, C, H, W)`` -> ``{"prediction_<scale>": (B, C, H*scale, W*scale)}`` (``str(scale)`` as given)."""
        return {_scale_key(scale): self.downs[str(scale).replace(".", "-")](x) for scale in self.scales}


# ---------------------------------------------------------------------------------------------- perceptual
def find_vgg19_weights() -> Path | None:
    """``$TORCH_HOME/hub/checkpoints/vgg19-dcbb9e9d.pth`` (torch's hub cache) if it exists, else None."""
    p = Path(torch.hub.get_dir()) / "checkpoints" / VGG19_FILE
    return p if p.is_file() else None


class Vgg19(nn.Module):
    """VGG19 feature slices ending at relu1_1, relu2_1, relu3_1, relu4_1, relu5_1 (FOMM Sec. 3.3).

    Inputs are images in [0, 1]; ImageNet normalisation happens inside. Only the ``features`` part of torchvision's
    ``vgg19`` is built (the 120 M-parameter classifier is not needed).

    Args:
        weights_path: a torchvision VGG19 state_dict file (``features.*`` keys are used, others ignored), loaded with
            ``weights_only=True``; None leaves the layers randomly initialised (tests only).
        requires_grad: train the VGG too (FOMM: no).

    Raises:
        lab.core.checkpoint.CheckpointError: the file is unreadable or lacks ``features`` keys.
    """

    _SLICES = ((0, 2), (2, 7), (7, 12), (12, 21), (21, 30))

    def __init__(self, weights_path: str | os.PathLike | None = None, requires_grad: bool = False) -> None:
        super().__init__()
        from torchvision.models.vgg import cfgs, make_layers

        features = make_layers(cfgs["E"], batch_norm=False)
        if weights_path is not None:
            from lab.core.checkpoint import load_state_dict_strict, safe_load

            state = safe_load(weights_path)
            state = {k[len("features.") :]: v for k, v in state.items() if k.startswith("features.")}
            load_state_dict_strict(features, state, what=f"VGG19 features ({weights_path})")
        self.slices = nn.ModuleList(nn.Sequential(*features[a:b]) for a, b in self._SLICES)
        self.register_buffer("mean", torch.tensor([0.485, 0.456, 0.406]).view(1, 3, 1, 1), persistent=False)
        self.register_buffer("std", torch.tensor([0.229, 0.224, 0.225]).view(1, 3, 1, 1), persistent=False)
        self.requires_grad_(requires_grad)

    def forward(self, x: Tensor) -> list[Tensor]:
        """``(B, 3, H, W)`` in [0, 1] -> the five feature maps (64, 128, 256, 512, 512 channels)."""
        out = []
        h = (x - self.mean) / self.std
        for s in self.slices:
            h = s(h)
            out.append(h)
        return out


def _gaussian_window(size: int, sigma: float, dtype: torch.dtype, device: torch.device) -> Tensor:
    coords = torch.arange(size, dtype=dtype, device=device) - (size - 1) / 2
    g = torch.exp(-(coords**2) / (2 * sigma**2))
    g = g / g.sum()
    return g.view(-1, 1) * g.view(1, -1)


def ssim(x: Tensor, y: Tensor, window_size: int = 11, sigma: float = 1.5, data_range: float = 1.0) -> Tensor:
    """Mean structural similarity (Wang et al. 2004) with a Gaussian window, differentiable.

    Valid convolution (no padding); the window shrinks to the image size for tiny images (coarse pyramid levels).

    Args:
        x: ``(B, C, H, W)``.
        y: ``(B, C, H, W)``.
        window_size: Gaussian window size (odd).
        sigma: Gaussian standard deviation.
        data_range: value range of the images.

    Returns:
        scalar, 1 for identical images.
    """
    c = x.shape[1]
    k = min(window_size, x.shape[-2], x.shape[-1])
    k -= 1 - k % 2  # odd
    w = _gaussian_window(k, sigma, x.dtype, x.device).expand(c, 1, k, k)
    c1, c2 = (0.01 * data_range) ** 2, (0.03 * data_range) ** 2

    def filt(t: Tensor) -> Tensor:
        return F.conv2d(t, w, groups=c)

    mu_x, mu_y = filt(x), filt(y)
    sxx = filt(x * x) - mu_x**2
    syy = filt(y * y) - mu_y**2
    sxy = filt(x * y) - mu_x * mu_y
    s = ((2 * mu_x * mu_y + c1) * (2 * sxy + c2)) / ((mu_x**2 + mu_y**2 + c1) * (sxx + syy + c2))
    return s.mean()


class PerceptualPyramidLoss(nn.Module):
    """FOMM's multi-scale perceptual loss, or its documented fallback when VGG19 weights are absent.

    * **vgg19**: ``sum_s sum_i w_i * mean|VGG_i(G_s) - VGG_i(D_s)|`` over pyramid scales ``s`` and the five
      :class:`Vgg19` slices ``i`` (the target's features are detached), exactly FOMM's ``perceptual`` loss.
    * **fallback** (no weights file): ``sum_s (sum_i w_i) * (mean|G_s - D_s| + (1 - SSIM(G_s, D_s)))``: a
      differentiable pixel loss on the same pyramid with the same total weight per scale. It is *not* FOMM's loss;
      :attr:`description` says so, for the run's metadata.

    Args:
        scales: pyramid scales (FOMM: ``[1, 0.5, 0.25, 0.125]``).
        layer_weights: the five per-slice weights (FOMM: ``[10, 10, 10, 10, 10]``).
        num_channels: image channels (3 for VGG).
        vgg_weights: ``"auto"`` (use :func:`find_vgg19_weights`), a path to a VGG19 state_dict, or None to force
            the fallback.

    Attributes:
        backend: ``"vgg19"`` or ``"fallback"``.
        description: what runs, with the weights file's sha256 (e.g.
            ``"vgg19 (vgg19-dcbb9e9d.pth sha256 dcbb9e9d...)"``) or why the fallback runs.
    """

    def __init__(
        self,
        scales: Sequence[float],
        layer_weights: Sequence[float],
        num_channels: int = 3,
        vgg_weights: str | os.PathLike | None = "auto",
    ) -> None:
        super().__init__()
        self.scales = list(scales)
        self.layer_weights = [float(w) for w in layer_weights]
        self.pyramid = ImagePyramid(self.scales, num_channels)
        path = find_vgg19_weights() if (isinstance(vgg_weights, str) and vgg_weights == "auto") else vgg_weights
        if path is not None:
            from lab.core.checkpoint import file_sha256

            path = Path(path)
            sha = file_sha256(path)
            self.vgg: Vgg19 | None = Vgg19(path)
            self.backend = "vgg19"
            note = "" if sha.startswith(_VGG19_SHA256_PREFIX) else ", not torchvision's ImageNet file"
            self.description = f"vgg19 ({path.name} sha256 {sha}{note})"
        else:
            self.vgg = None
            self.backend = "fallback"
            where = Path(torch.hub.get_dir()) / "checkpoints"
            why = "forced" if vgg_weights is None else f"{VGG19_FILE} absent from {where}"
            self.description = f"fallback: multi-scale L1 + SSIM ({why})"

    def forward(self, generated: Tensor | Mapping[str, Tensor], real: Tensor | Mapping[str, Tensor]) -> Tensor:
        """Weighted loss between a prediction and its target.

        Args:
            generated: ``(B, C, H, W)`` in [0, 1], or its :class:`ImagePyramid` dict (computed once and shared with
                a GAN loss).
            real: the target, same form.

        Returns:
            scalar.
        """
        pg = self.pyramid(generated) if isinstance(generated, Tensor) else generated
        pr = self.pyramid(real) if isinstance(real, Tensor) else real
        total = 0.0
        for scale in self.scales:
            g, r = pg[_scale_key(scale)], pr[_scale_key(scale)].detach()
            if self.vgg is not None:
                for w, fg, fr in zip(self.layer_weights, self.vgg(g), self.vgg(r)):
                    total = total + w * torch.abs(fg - fr.detach()).mean()
            else:
                total = total + sum(self.layer_weights) * (torch.abs(g - r).mean() + (1 - ssim(g, r)))
        return total if isinstance(total, Tensor) else torch.zeros((), device=pg[_scale_key(self.scales[0])].device)


# ---------------------------------------------------------------------------------------------- equivariance
class Transform:
    """FOMM's random warp for the equivariance constraints: affine + thin-plate spline (Sec. 3.3).

    ``T(z) = A z + t + sum_c w_c * r_c^2 * log(r_c + 1e-6)`` with ``r_c = |z - c|_1`` over a ``points_tps`` x
    ``points_tps`` grid of control points ``c``; the TPS term is added to both coordinates, as in the official code.
    ``[A | t] = [I | 0] + N(0, sigma_affine^2)``, ``w_c ~ N(0, sigma_tps^2)``, drawn on the CPU in FOMM's order (so a
    seeded run draws the same warps as the official code).

    Args:
        bs: batch size.
        sigma_affine: std of the affine noise.
        sigma_tps: std of the TPS weights (TPS off when None, as is ``points_tps``).
        points_tps: control points per side.
        generator: CPU random generator (default: torch's global one).
    """

    def __init__(
        self,
        bs: int,
        sigma_affine: float,
        sigma_tps: float | None = None,
        points_tps: int | None = None,
        generator: torch.Generator | None = None,
    ) -> None:
        noise = torch.normal(mean=0.0, std=sigma_affine * torch.ones([bs, 2, 3]), generator=generator)
        self.theta = noise + torch.eye(2, 3).view(1, 2, 3)  # (bs, 2, 3)
        self.bs = bs
        self.tps = sigma_tps is not None and points_tps is not None
        if self.tps:
            self.control_points = make_coordinate_grid((points_tps, points_tps)).view(1, 1, -1, 2)
            self.control_params = torch.normal(
                mean=0.0, std=sigma_tps * torch.ones([bs, 1, points_tps**2]), generator=generator
            )

    def transform_frame(self, frame: Tensor) -> Tensor:
        """Warp images: ``out(z) = frame(T(z))`` (bilinear, reflection padding).

        Args:
            frame: ``(bs, C, H, W)``.
        """
        h, w = frame.shape[2:]
        grid = make_coordinate_grid((h, w), dtype=frame.dtype, device=frame.device).view(1, h * w, 2)
        grid = self.warp_coordinates(grid).view(self.bs, h, w, 2)
        return F.grid_sample(frame, grid, mode="bilinear", padding_mode="reflection", align_corners=False)

    def _tps_terms(self, coordinates: Tensor) -> tuple[Tensor, Tensor, Tensor]:
        cp = self.control_points.to(coordinates)  # (1, 1, P, 2)
        w = self.control_params.to(coordinates)  # (bs, 1, P)
        diff = coordinates.unsqueeze(-2) - cp  # (b, N, P, 2)
        r = diff.abs().sum(-1)  # (b, N, P), L1 distance as the official code
        return diff, r, w

    def warp_coordinates(self, coordinates: Tensor) -> Tensor:
        """``T`` applied to points.

        Args:
            coordinates: ``(bs or 1, N, 2)`` (x, y) in [-1, 1].

        Returns:
            ``(bs, N, 2)``.
        """
        theta = self.theta.to(coordinates).unsqueeze(1)  # (bs, 1, 2, 3)
        transformed = (theta[..., :2] @ coordinates.unsqueeze(-1)).squeeze(-1) + theta[..., 2]
        if self.tps:
            _, r, w = self._tps_terms(coordinates)
            result = (r**2 * torch.log(r + 1e-6) * w).sum(dim=-1)  # (bs, N)
            transformed = transformed + result.unsqueeze(-1)
        return transformed

    def jacobian(self, coordinates: Tensor) -> Tensor:
        """The Jacobian ``dT/dz`` at the points, analytically (differentiable; needs no ``requires_grad``).

        Equals the official code's autograd Jacobian (``d|u|/du = sign(u)``, 0 at 0).

        Args:
            coordinates: ``(bs or 1, N, 2)``.

        Returns:
            ``(bs, N, 2, 2)``, rows = output coordinate, columns = input coordinate.
        """
        a = self.theta.to(coordinates)[:, None, :, :2]  # (bs, 1, 2, 2)
        jac = a.expand(self.bs, coordinates.shape[1], 2, 2)
        if self.tps:
            diff, r, w = self._tps_terms(coordinates)
            dphi = 2 * r * torch.log(r + 1e-6) + r**2 / (r + 1e-6)  # d/dr [r^2 log(r + eps)]
            g = ((w * dphi).unsqueeze(-1) * torch.sign(diff)).sum(dim=-2)  # (bs, N, 2): d(tps)/dx, d(tps)/dy
            jac = jac + g.unsqueeze(-2)  # the same TPS term in both output coordinates
        return jac


def detach_kp(kp: Mapping[str, Tensor]) -> dict[str, Tensor]:
    """A copy of a keypoint dict with every tensor detached."""
    return {k: v.detach() for k, v in kp.items()}


def equivariance_value_loss(kp_value: Tensor, transformed_kp_value: Tensor, transform: Transform) -> Tensor:
    """``mean|p - T(p')|``: keypoints of a frame vs the warped keypoints of its ``T``-warped copy.

    Args:
        kp_value: ``(B, K, 2)`` keypoints of the frame.
        transformed_kp_value: ``(B, K, 2)`` keypoints detected on ``transform.transform_frame(frame)``.
        transform: the warp.
    """
    return torch.abs(kp_value - transform.warp_coordinates(transformed_kp_value)).mean()


def equivariance_jacobian_loss(
    kp_jacobian: Tensor, transformed_kp_value: Tensor, transformed_kp_jacobian: Tensor, transform: Transform
) -> Tensor:
    """``mean|I - J^-1 (J_T(p') J')|``: Jacobians must compose with the warp's Jacobian.

    Args:
        kp_jacobian: ``(B, K, 2, 2)`` Jacobians of the frame.
        transformed_kp_value: ``(B, K, 2)`` keypoints of the warped frame.
        transformed_kp_jacobian: ``(B, K, 2, 2)`` Jacobians of the warped frame.
        transform: the warp.
    """
    jacobian_transformed = torch.matmul(transform.jacobian(transformed_kp_value), transformed_kp_jacobian)
    value = torch.matmul(torch.inverse(kp_jacobian), jacobian_transformed)
    eye = torch.eye(2, dtype=value.dtype, device=value.device).view(1, 1, 2, 2)
    return torch.abs(eye - value).mean()


# ---------------------------------------------------------------------------------------------- GAN
def lsgan_generator_loss(prediction_map: Tensor) -> Tensor:
    """LSGAN generator term ``mean((1 - D(G))^2)``."""
    return ((1 - prediction_map) ** 2).mean()


def lsgan_discriminator_loss(real_map: Tensor, generated_map: Tensor) -> Tensor:
    """LSGAN discriminator term ``mean((1 - D(x))^2 + D(G)^2)``."""
    return ((1 - real_map) ** 2 + generated_map**2).mean()


def feature_matching_loss(
    real_features: Sequence[Tensor], generated_features: Sequence[Tensor], weights: Sequence[float]
) -> Tensor:
    """``sum_i w_i * mean|F_i(x) - F_i(G)|`` over discriminator feature maps (zero weights skipped).

    Args:
        real_features: the discriminator's feature maps on real images.
        generated_features: the same on generated images.
        weights: one weight per feature map.
    """
    total = 0.0
    for w, a, b in zip(weights, real_features, generated_features):
        if w != 0:
            total = total + w * torch.abs(a - b).mean()
    return total if isinstance(total, Tensor) else real_features[0].new_zeros(())
