"""Shared loss pieces (mirrors lab/nn/losses.py): pyramid, perceptual loss and its fallback, TPS transform, GAN
terms."""

from __future__ import annotations

import pytest
import torch
from torch.autograd import grad

from lab.core.checkpoint import CheckpointError, file_sha256
from lab.nn.losses import (
    VGG19_FILE,
    ImagePyramid,
    PerceptualPyramidLoss,
    Transform,
    Vgg19,
    detach_kp,
    equivariance_jacobian_loss,
    equivariance_value_loss,
    feature_matching_loss,
    find_vgg19_weights,
    lsgan_discriminator_loss,
    lsgan_generator_loss,
    ssim,
)

SCALES = [1, 0.5, 0.25, 0.125]


@pytest.fixture(scope="module")
def vgg_home(tmp_path_factory):
    """A TORCH_HOME holding a *random* VGG19 as ``hub/checkpoints/vgg19-dcbb9e9d.pth`` (features + a stray key)."""
    from torchvision.models.vgg import cfgs, make_layers

    home = tmp_path_factory.mktemp("torch_home")
    (home / "hub" / "checkpoints").mkdir(parents=True)
    torch.manual_seed(0)
    state = {f"features.{k}": v for k, v in make_layers(cfgs["E"]).state_dict().items()}
    state["classifier.6.bias"] = torch.zeros(1000)  # other keys of the real file are ignored
    torch.save(state, home / "hub" / "checkpoints" / VGG19_FILE)
    return home


def test_image_pyramid_keys_and_sizes():
    x = torch.rand(2, 3, 64, 64)
    out = ImagePyramid(SCALES, 3)(x)
    assert list(out) == ["prediction_1", "prediction_0.5", "prediction_0.25", "prediction_0.125"]
    assert [tuple(v.shape[2:]) for v in out.values()] == [(64, 64), (32, 32), (16, 16), (8, 8)]
    assert out["prediction_1"] is x
    const = ImagePyramid([0.25], 3)(torch.full((1, 3, 64, 64), 0.5))["prediction_0.25"]
    assert torch.allclose(const[..., 4:-4, 4:-4], torch.tensor(0.5))  # normalised kernel (zero-padded borders)


def test_ssim_properties():
    x = torch.rand(2, 3, 32, 32)
    assert torch.allclose(ssim(x, x), torch.tensor(1.0))
    noisy = (x + 0.1 * torch.randn_like(x)).clamp(0, 1)
    noisier = (x + 0.3 * torch.randn_like(x)).clamp(0, 1)
    assert 1 > ssim(x, noisy) > ssim(x, noisier)
    tiny = torch.rand(1, 3, 4, 4, requires_grad=True)  # window shrinks to the image
    s = ssim(tiny, torch.rand(1, 3, 4, 4))
    s.backward()
    assert torch.isfinite(s) and torch.isfinite(tiny.grad).all()


def test_perceptual_fallback_when_vgg_absent(tmp_path, monkeypatch):
    monkeypatch.setenv("TORCH_HOME", str(tmp_path))
    assert find_vgg19_weights() is None
    loss = PerceptualPyramidLoss(SCALES, [10] * 5)
    assert loss.backend == "fallback" and loss.vgg is None
    assert loss.description.startswith("fallback: multi-scale L1 + SSIM")
    assert f"{VGG19_FILE} absent" in loss.description
    x = torch.rand(2, 3, 64, 64)
    assert loss(x, x).abs() < 1e-5
    pred = torch.rand(2, 3, 64, 64, requires_grad=True)
    value = loss(pred, x)
    value.backward()
    assert value > 0 and pred.grad.abs().sum() > 0
    assert "forced" in PerceptualPyramidLoss(SCALES, [10] * 5, vgg_weights=None).description


def test_perceptual_uses_vgg19_from_torch_home(vgg_home, monkeypatch):
    monkeypatch.setenv("TORCH_HOME", str(vgg_home))
    path = vgg_home / "hub" / "checkpoints" / VGG19_FILE
    assert find_vgg19_weights() == path
    loss = PerceptualPyramidLoss([1, 0.5], [1, 2, 3, 4, 5])
    assert loss.backend == "vgg19" and isinstance(loss.vgg, Vgg19)
    sha = file_sha256(path)
    assert loss.description.startswith(f"vgg19 ({VGG19_FILE} sha256 {sha}")
    assert "not torchvision's ImageNet file" in loss.description  # a random file: its hash says so
    assert not any(p.requires_grad for p in loss.vgg.parameters())
    x, y = torch.rand(2, 3, 64, 64), torch.rand(2, 3, 64, 64)
    pyr = ImagePyramid([1, 0.5], 3)
    expected = sum(
        w * (a - b).abs().mean()
        for s in ("prediction_1", "prediction_0.5")
        for w, a, b in zip([1, 2, 3, 4, 5], loss.vgg(pyr(x)[s]), loss.vgg(pyr(y)[s]))
    )
    assert torch.allclose(loss(x, y), expected)
    assert [f.shape[1] for f in loss.vgg(x)] == [64, 128, 256, 512, 512]


def test_vgg_file_without_features_is_refused(tmp_path):
    bad = tmp_path / VGG19_FILE
    torch.save({"features.0.weight": torch.zeros(64, 3, 3, 3)}, bad)
    with pytest.raises(CheckpointError, match="VGG19 features.*missing keys"):
        Vgg19(bad)


def test_fomm_objective_records_the_vgg_path(vgg_home, monkeypatch):
    """The FOMM objective picks the VGG up from TORCH_HOME and records it in Objective.description."""
    from baselines.fomm import FOMMAnimator, load_config

    monkeypatch.setenv("TORCH_HOME", str(vgg_home))
    torch.manual_seed(0)
    small = {"common_params": {"num_kp": 5}, "kp_detector_params": {"block_expansion": 8, "max_features": 32,
                                                                    "num_blocks": 3},
             "generator_params": {"block_expansion": 8, "max_features": 32, "num_bottleneck_blocks": 1,
                                  "dense_motion_params": {"block_expansion": 8, "max_features": 32, "num_blocks": 3}}}
    m = FOMMAnimator(**small).train()
    tp = load_config()["train_params"]
    tp["scales"] = [1, 0.5]  # 64x64 frames: VGG's 4 poolings need >= 16 px at the coarsest scale
    obj = m.training_objective(tp)
    assert obj.description["perceptual"].startswith("vgg19 (vgg19-dcbb9e9d.pth sha256 ")
    losses, _ = obj.generator(torch.rand(2, 3, 64, 64), torch.rand(2, 3, 64, 64))
    assert torch.isfinite(losses["perceptual"]) and losses["perceptual"] > 0


def _autograd_jacobian(t: Transform, pts: torch.Tensor) -> torch.Tensor:
    """The official code's way: autograd of the warp (for comparison)."""
    pts = pts.clone().requires_grad_(True)
    new = t.warp_coordinates(pts)
    gx = grad(new[..., 0].sum(), pts, create_graph=True)[0]
    gy = grad(new[..., 1].sum(), pts, create_graph=True)[0]
    return torch.stack([gx, gy], dim=-2)


@pytest.mark.parametrize("tps", [True, False])
def test_transform_jacobian_is_the_warp_derivative(tps):
    g = torch.Generator().manual_seed(0)
    params = {"sigma_affine": 0.05, "sigma_tps": 0.005, "points_tps": 5} if tps else {"sigma_affine": 0.05}
    t = Transform(3, **params, generator=g)
    pts = torch.rand(3, 10, 2, generator=g) * 2 - 1
    assert torch.allclose(t.jacobian(pts), _autograd_jacobian(t, pts), atol=1e-6)
    if not tps:  # affine: a constant Jacobian
        return
    # and it is differentiable w.r.t. the points like the autograd one (second derivatives)
    p1 = pts.clone().requires_grad_(True)
    (g1,) = grad(t.jacobian(p1).square().sum(), p1)
    p2 = pts.clone().requires_grad_(True)
    (g2,) = grad(_autograd_jacobian(t, p2).square().sum(), p2)
    assert torch.allclose(g1, g2, atol=1e-5)


def test_transform_draws_like_the_official_code_and_warps_frames():
    torch.manual_seed(5)
    t1 = Transform(2, sigma_affine=0.05, sigma_tps=0.005, points_tps=5)
    torch.manual_seed(5)
    theta = torch.normal(mean=0, std=0.05 * torch.ones([2, 2, 3])) + torch.eye(2, 3).view(1, 2, 3)
    params = torch.normal(mean=0, std=0.005 * torch.ones([2, 1, 25]))
    assert torch.equal(t1.theta, theta) and torch.equal(t1.control_params, params)
    frame = torch.rand(2, 3, 32, 32)
    out = t1.transform_frame(frame)
    assert out.shape == frame.shape and torch.isfinite(out).all()
    ident = Transform(1, sigma_affine=0.0)
    pts = torch.rand(1, 7, 2)
    assert torch.allclose(ident.warp_coordinates(pts), pts)
    assert torch.allclose(ident.jacobian(pts), torch.eye(2).expand(1, 7, 2, 2))


def test_equivariance_losses_vanish_for_a_consistent_detector():
    t = Transform(2, sigma_affine=0.05, sigma_tps=0.005, points_tps=5, generator=torch.Generator().manual_seed(1))
    kp_t = torch.rand(2, 5, 2) * 1.6 - 0.8  # keypoints found on the warped frame
    jac_t = torch.eye(2) + 0.1 * torch.randn(2, 5, 2, 2)
    kp = t.warp_coordinates(kp_t)  # what a perfectly equivariant detector finds on the original frame
    jac = t.jacobian(kp_t) @ jac_t
    assert equivariance_value_loss(kp, kp_t, t) < 1e-6
    assert equivariance_jacobian_loss(jac, kp_t, jac_t, t) < 1e-5
    assert equivariance_value_loss(kp + 0.1, kp_t, t) > 0.09


def test_gan_terms_and_detach_kp():
    ones, zeros = torch.ones(2, 1, 4, 4), torch.zeros(2, 1, 4, 4)
    assert lsgan_generator_loss(ones) == 0 and lsgan_generator_loss(zeros) == 1
    assert lsgan_discriminator_loss(ones, zeros) == 0 and lsgan_discriminator_loss(zeros, ones) == 2
    a = [torch.zeros(1, 2, 3, 3), torch.zeros(1, 2, 2, 2)]
    b = [torch.ones(1, 2, 3, 3), torch.full((1, 2, 2, 2), 2.0)]
    assert feature_matching_loss(a, b, [10, 0]) == 10
    assert feature_matching_loss(a, b, [1, 1]) == 3
    assert feature_matching_loss(a, b, [0, 0]) == 0
    kp = {"value": torch.rand(1, 5, 2, requires_grad=True)}
    d = detach_kp(kp)
    assert not d["value"].requires_grad and kp["value"].requires_grad and d is not kp
