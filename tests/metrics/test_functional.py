"""Functional L1 / PSNR / SSIM against hand-computed values and scikit-image (the torchmetrics reference)."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from skimage.metrics import peak_signal_noise_ratio, structural_similarity

from metrics import l1, psnr, ssim
from metrics.functional.l1 import _l1_compute, _l1_update


def test_l1_hand_computed():
    gt = np.zeros((2, 4, 4, 3), np.uint8)
    pred = gt.copy()
    pred[0] = 51  # every value off by 51/255 = 0.2
    pred[1, :2] = 255  # half the pixels off by 1.0
    per_frame = l1(pred, gt, reduction="none")
    np.testing.assert_allclose(per_frame, [0.2, 0.5])
    assert l1(pred, gt) == pytest.approx(0.35)
    assert _l1_compute(_l1_update(pred, gt)) == pytest.approx(0.35)
    assert l1(gt, gt) == 0.0


def test_l1_torch_input_matches_numpy():
    rng = np.random.default_rng(1)
    a = rng.integers(0, 256, (3, 16, 16, 3), dtype=np.uint8)
    b = rng.integers(0, 256, (3, 16, 16, 3), dtype=np.uint8)
    ta = torch.from_numpy(a).permute(0, 3, 1, 2).float() / 255
    tb = torch.from_numpy(b).permute(0, 3, 1, 2).float() / 255
    assert l1(ta, tb) == pytest.approx(l1(a, b), abs=1e-7)
    assert l1(ta, tb) == pytest.approx(float((ta.double() - tb.double()).abs().mean()), abs=1e-12)


def test_psnr_hand_computed():
    gt = np.zeros((1, 4, 4, 3), np.uint8)
    pred = np.full((1, 4, 4, 3), 51, np.uint8)  # MSE = 0.2**2 = 0.04 on [0, 1]
    assert psnr(pred, gt) == pytest.approx(10 * math.log10(1 / 0.04))  # 13.979 dB
    assert math.isinf(psnr(gt, gt))


def test_psnr_ssim_equal_skimage_on_uint8():
    rng = np.random.default_rng(2)
    gt = rng.integers(0, 256, (3, 32, 32, 3), dtype=np.uint8)
    pred = np.clip(gt.astype(int) + rng.integers(-20, 21, gt.shape), 0, 255).astype(np.uint8)
    ref_psnr = [peak_signal_noise_ratio(g, p, data_range=255) for p, g in zip(pred, gt)]
    ref_ssim = [structural_similarity(g, p, channel_axis=-1, data_range=255) for p, g in zip(pred, gt)]
    np.testing.assert_allclose(psnr(pred, gt, reduction="none"), ref_psnr, rtol=1e-10)
    np.testing.assert_allclose(ssim(pred, gt, reduction="none"), ref_ssim, rtol=1e-8)
    assert ssim(pred, gt) == pytest.approx(np.mean(ref_ssim))
    assert ssim(gt, gt) == pytest.approx(1.0)
