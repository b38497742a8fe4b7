"""Export-time rewrites: the same function in fewer or cheaper graph operations.

Applied by :func:`lab.deploy.export.export_onnx` to a *copy* of the animator (the caller's model, its
architecture and its ``state_dict`` keys are untouched), each one exact in real arithmetic and checked in
``tests/lab/test_runtimes.py`` against the module it replaces (float32 rounding differs by a few ulps):

``AntiAliasInterpolation2d`` (FOMM's Gaussian downsampling, used by FOMM's keypoint detector and by every
dense-motion network)
    pads, blurs the *full-resolution* frame with a 13×13 kernel and keeps one pixel in 16: the rewrite runs
    the same kernel as a stride-4 convolution, so only the kept pixels are computed (16× less work).
``F.interpolate(..., antialias=True)`` of the ultralight keypoint detector (256² → 64²)
    ONNX ``Resize`` with ``antialias=1`` makes runtimes reorder the frame to channels-last first; the
    rewrite is the separable triangle filter as a stride-4 depthwise convolution, times the per-pixel
    renormalisation that PyTorch applies where the filter leaves the frame (edge rows and columns).
``UltralightKPDetector.keypoints`` (the soft-argmax of the heatmaps and the heatmap-weighted Jacobians)
    a broadcast product with the coordinate grid and a permute of the Jacobian map, each reduced over the
    pixels (``Transpose`` + two ``ReduceSum`` in the graph, 25 µs of OpenVINO's 0.2 ms encoder); the rewrite
    is two ``MatMul``: ``heat (K, hw) @ grid (hw, 2)`` and ``jac (K, 4, hw) @ heat (K, hw, 1)``.
``DenseMotionNetwork._sparse_motions``
    ``J @ (z - p)`` for every pixel as a broadcast ``MatMul`` of 2×2 by 2×1 matrices (one tiny GEMM per
    pixel in ONNX Runtime); the rewrite writes the two products per coordinate as element-wise ops.
"""

from __future__ import annotations

import copy
import types

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from baselines.fomm.blocks import AntiAliasInterpolation2d, make_coordinate_grid
from baselines.fomm.dense_motion import DenseMotionNetwork

__all__ = ["deploy_copy", "StridedAntiAlias", "ConvAntialiasResize"]


class StridedAntiAlias(nn.Module):
    """:class:`AntiAliasInterpolation2d` computed only where it is kept: the same kernel with stride ``1/scale``."""

    def __init__(self, aa: AntiAliasInterpolation2d) -> None:
        super().__init__()
        self.register_buffer("weight", aa.weight.detach().clone(), persistent=False)
        self.pad = (aa.ka, aa.kb, aa.ka, aa.kb)
        self.stride = aa.int_inv_scale
        self.groups = aa.groups

    def forward(self, x: Tensor) -> Tensor:
        return F.conv2d(F.pad(x, self.pad), self.weight.to(x.dtype), stride=self.stride, groups=self.groups)


def _aa_matrix(n_in: int, n_out: int) -> Tensor:
    """The ``(n_out, n_in)`` matrix of PyTorch's 1-D antialiased bilinear resize (read off the op itself)."""
    eye = torch.eye(n_in, dtype=torch.float64).view(n_in, 1, 1, n_in)
    return F.interpolate(eye, size=(1, n_out), mode="bilinear", align_corners=False, antialias=True).view(n_in, n_out).T


class ConvAntialiasResize(nn.Module):
    """``F.interpolate(x, scale_factor=1/s, mode="bilinear", antialias=True)`` as a stride-``s`` depthwise conv.

    The interior rows of PyTorch's resize matrix are one kernel ``k`` (length ``2s``) shifted by ``s``; at the
    edges the kernel is truncated and renormalised. So ``resize(x) = conv(pad0(x), k kᵀ, stride s) · n`` where
    ``n`` is the outer product of the per-row and per-column renormalisation. Built for one input size; the
    construction asserts that it reproduces the resize matrix (else it raises ``ValueError``).
    """

    def __init__(self, channels: int, size_in: tuple[int, int], scale_factor: float) -> None:
        super().__init__()
        s = round(1 / scale_factor)
        if abs(1 / scale_factor - s) > 1e-9 or s < 2 or any(n % s for n in size_in):
            raise ValueError(f"no strided-conv form for scale {scale_factor} at {size_in}")
        kernels, norms, pads = [], [], []
        for n_in in size_in:
            n_out = n_in // s
            a = _aa_matrix(n_in, n_out)
            mid = n_out // 2
            start = int(torch.nonzero(a[mid])[0])
            k = a[mid, start:start + 2 * s].clone()
            pad = s * mid - start
            # rebuild the matrix from (k, pad) with zero padding + renormalisation, and check it
            full = torch.zeros(n_out, n_in + 2 * s + 2 * pad, dtype=torch.float64)
            for i in range(n_out):
                full[i, s * i: s * i + 2 * s] = k
            band = full[:, pad:pad + n_in]
            norm = 1.0 / band.sum(1)
            if not torch.allclose(band * norm[:, None], a, atol=1e-12):
                raise ValueError(f"antialiased resize {n_in}->{n_out} is not a strided kernel")
            kernels.append(k)
            norms.append(norm)
            pads.append((pad, s * (n_out - 1) + 2 * s - n_in - pad))
        w = torch.outer(kernels[0], kernels[1]).float().view(1, 1, 2 * s, 2 * s).repeat(channels, 1, 1, 1)
        self.register_buffer("weight", w, persistent=False)
        self.register_buffer("norm", torch.outer(norms[0], norms[1]).float()[None, None], persistent=False)
        self.pad = (pads[1][0], pads[1][1], pads[0][0], pads[0][1])
        self.stride, self.groups = s, channels

    def forward(self, x: Tensor) -> Tensor:
        y = F.conv2d(F.pad(x, self.pad), self.weight.to(x.dtype), stride=self.stride, groups=self.groups)
        return y * self.norm.to(x.dtype)


class _PreResized(nn.Module):
    """A keypoint detector whose own antialiased resize is done by :class:`ConvAntialiasResize` first."""

    def __init__(self, detector: nn.Module, resize: ConvAntialiasResize) -> None:
        super().__init__()
        self.detector, self.resize = detector, resize
        detector.scale_factor = 1  # the copy's own resize is skipped (``if self.scale_factor != 1``)

    def forward(self, x: Tensor) -> dict[str, Tensor]:
        return self.detector(self.resize(x))


def _keypoints_matmul(self, p: Tensor) -> dict[str, Tensor]:
    """:meth:`UltralightKPDetector.keypoints` with the pixel sums as matrix products (the export's float32)."""
    heat = self.kp(p)
    b, k, h, w = heat.shape
    heat = F.softmax(heat.flatten(2) / self.temperature, dim=2)  # (B, K, hw)
    grid = make_coordinate_grid((h, w), dtype=heat.dtype, device=heat.device).view(h * w, 2)
    out = {"value": torch.matmul(heat, grid)}
    if self.jacobian is not None:
        jac = self.jacobian(p).view(b, k, 4, h * w)
        out["jacobian"] = torch.matmul(jac, heat.unsqueeze(-1)).view(b, k, 2, 2)
    return out


def _sparse_motions_elementwise(self: DenseMotionNetwork, source_image: Tensor, kp_driving, kp_source) -> Tensor:
    """:meth:`DenseMotionNetwork._sparse_motions` with the per-pixel 2×2 matrix product written out."""
    bs, _, h, w = source_image.shape
    identity_grid = make_coordinate_grid((h, w), dtype=kp_source["value"].dtype, device=source_image.device)
    identity_grid = identity_grid.view(1, 1, h, w, 2)
    coordinate_grid = identity_grid - kp_driving["value"].reshape(bs, self.num_kp, 1, 1, 2)
    if "jacobian" in kp_driving:
        jac = torch.matmul(kp_source["jacobian"], torch.inverse(kp_driving["jacobian"]))[:, :, None, None]
        x, y = coordinate_grid[..., 0], coordinate_grid[..., 1]
        coordinate_grid = torch.stack([jac[..., 0, 0] * x + jac[..., 0, 1] * y,
                                       jac[..., 1, 0] * x + jac[..., 1, 1] * y], dim=-1)
    driving_to_source = coordinate_grid + kp_source["value"].reshape(bs, self.num_kp, 1, 1, 2)
    return torch.cat([identity_grid.expand(bs, 1, h, w, 2), driving_to_source], dim=1)


def deploy_copy(animator: nn.Module) -> nn.Module:
    """A deep copy of ``animator`` (eval, CPU) with the rewrites of the module docstring applied."""
    from lab.models.ultralight.encoder import UltralightKPDetector

    model = copy.deepcopy(animator).eval().cpu()
    for parent in list(model.modules()):
        for name, child in list(parent.named_children()):
            if isinstance(child, AntiAliasInterpolation2d) and child.scale != 1:
                setattr(parent, name, StridedAntiAlias(child))
            elif isinstance(child, UltralightKPDetector) and child.scale_factor != 1:
                h, w = getattr(model, "input_size", (256, 256))
                try:
                    resize = ConvAntialiasResize(child.stem[0].in_channels, (h, w), child.scale_factor)
                except ValueError:
                    continue  # sizes without an exact strided form keep the resize
                setattr(parent, name, _PreResized(child, resize))
    for m in model.modules():
        if isinstance(m, DenseMotionNetwork):
            m._sparse_motions = types.MethodType(_sparse_motions_elementwise, m)
        elif isinstance(m, UltralightKPDetector):
            m.keypoints = types.MethodType(_keypoints_matmul, m)
    return model
