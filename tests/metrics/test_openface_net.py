"""The OpenFace nn4.small2.v1 network: the port's key layout, OpenFace's parameter count, the port's LRN."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from skimage.transform import resize

from metrics.backends.openface import openface_preprocess
from metrics.backends.openface_net import CrossMapLRN, OpenFaceNN4Small2

# thnkim/OpenFacePytorch loadOpenFace.py, netOpenFace: Inception(inputSize, kernelSize, kernelStride,
# outputSize, reduceSize, pool, ...) per layer; a None in reduceSize means "no such branch".
PORT_INCEPTIONS = {
    14: (192, (3, 5), (128, 32), (96, 16, 32, 64)),
    15: (256, (3, 5), (128, 64), (96, 32, 64, 64)),
    16: (320, (3, 5), (256, 64), (128, 32, None, None)),
    17: (640, (3, 5), (192, 64), (96, 32, 128, 256)),
    18: (640, (3, 5), (256, 128), (160, 64, None, None)),
    19: (1024, (3,), (384,), (96, 96, 256)),
    21: (736, (3,), (384,), (96, 96, 256)),
}


def _port_shapes() -> dict[str, tuple[int, ...]]:
    """Parameter/buffer shapes of the port's state_dict, derived from its constructor arguments."""
    shapes: dict[str, tuple[int, ...]] = {}

    def conv(name, cin, cout, k):
        shapes[f"{name}.weight"] = (cout, cin, k, k)
        shapes[f"{name}.bias"] = (cout,)

    def bn(name, c):
        for p in ("weight", "bias", "running_mean", "running_var"):
            shapes[f"{name}.{p}"] = (c,)

    conv("layer1", 3, 64, 7), bn("layer2", 64), conv("layer6", 64, 64, 1), bn("layer7", 64)
    conv("layer9", 64, 192, 3), bn("layer10", 192)
    for layer, (cin, kernels, outs, reduces) in PORT_INCEPTIONS.items():
        for i, (k, out) in enumerate(zip(kernels, outs)):
            pre = f"layer{layer}.seq_list.{i}"
            conv(f"{pre}.1_conv", cin, reduces[i], 1), bn(f"{pre}.2_bn", reduces[i])
            conv(f"{pre}.4_conv", reduces[i], out, k), bn(f"{pre}.5_bn", out)
        i = len(kernels)
        if i < len(reduces) and reduces[i] is not None:  # pool branch's 1x1 conv
            pre = f"layer{layer}.seq_list.{i}"
            conv(f"{pre}.2_conv", cin, reduces[i], 1), bn(f"{pre}.3_bn", reduces[i])
        if i + 1 < len(reduces) and reduces[i + 1] is not None:  # 1x1 branch
            pre = f"layer{layer}.seq_list.{i + 1}"
            conv(f"{pre}.1_conv", cin, reduces[i + 1], 1), bn(f"{pre}.2_bn", reduces[i + 1])
    shapes["layer25.weight"], shapes["layer25.bias"] = (128, 736), (128,)
    return shapes


def test_state_dict_matches_port_layout():
    own = {k: tuple(v.shape) for k, v in OpenFaceNN4Small2().state_dict().items()
           if not k.endswith("num_batches_tracked")}
    assert own == _port_shapes()


def test_parameter_count_is_openfaces():
    # cmusatyalab/openface docs/models-and-accuracies.md: nn4.small2, 128-D embeddings: 3733968 parameters
    assert sum(p.numel() for p in OpenFaceNN4Small2().parameters()) == 3_733_968


def test_forward_shapes_and_unit_norm():
    net = OpenFaceNN4Small2().eval()
    with torch.no_grad():
        x = torch.rand(2, 3, 96, 96)
        assert net.features(x).shape == (2, 736)
        e = net(x)
    assert e.shape == (2, 128)
    torch.testing.assert_close(e.norm(dim=1), torch.ones(2), atol=1e-5, rtol=0)


def _legacy_lrn_reference(x: torch.Tensor, size=5, alpha=1e-4, beta=0.75, k=1.0) -> torch.Tensor:
    """torch 0.4 ``torch.legacy.nn.SpatialCrossMapLRN.updateOutput``'s sliding-window algorithm, as a loop."""
    sq = x * x
    channels = x.shape[1]
    pre_pad = int((size - 1) / 2 + 1)
    scale = torch.zeros_like(x)
    for c in range(min(pre_pad, channels)):
        scale[:, 0] += sq[:, c]
    for c in range(1, channels):
        scale[:, c] = scale[:, c - 1]
        if c < channels - pre_pad + 1:
            scale[:, c] += sq[:, c + pre_pad - 1]
        if c > pre_pad:  # the off-by-one: the Lua original removes channel c - pre_pad from c >= pre_pad
            scale[:, c] -= sq[:, c - pre_pad]
    return x * (scale * (alpha / size) + k).pow(-beta)


def test_lrn_reproduces_the_ports_legacy_window():
    x = torch.randn(2, 12, 3, 4, dtype=torch.float64) * 30  # large values so the window matters
    torch.testing.assert_close(CrossMapLRN(legacy=True)(x), _legacy_lrn_reference(x))
    textbook = torch.nn.LocalResponseNorm(5, alpha=1e-4, beta=0.75, k=1.0)
    torch.testing.assert_close(CrossMapLRN(legacy=False)(x), textbook(x))
    assert not torch.allclose(CrossMapLRN(legacy=True)(x), textbook(x))


def test_preprocess_is_pose_evaluations():
    rng = np.random.default_rng(0)
    frames = rng.integers(0, 256, (2, 256, 256, 3), dtype=np.uint8)
    x = openface_preprocess(frames)
    assert x.shape == (2, 3, 96, 96) and x.dtype == torch.float32
    # pose-evaluation: frame[..., ::-1]; resize(frame, (96, 96)) with scikit-image 0.14 defaults; CHW
    ref = resize(frames[1][..., ::-1], (96, 96), order=1, mode="constant", anti_aliasing=False).transpose(2, 0, 1)
    np.testing.assert_allclose(x[1].numpy(), ref, atol=1e-6)
    red = np.zeros((1, 256, 256, 3), np.uint8)
    red[..., 0] = 255
    assert openface_preprocess(red)[0, 2].min() == pytest.approx(1.0)  # red is the last channel in BGR
