"""Central input validation (metrics/validate.py): one helper, messages naming the allowed values."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from metrics import l1, psnr
from metrics.validate import _validate_frames, _validate_pair, to_float_nchw, to_float_nhwc, to_uint8_nhwc


@pytest.mark.parametrize(
    ("x", "match"),
    [
        (np.zeros((2, 8, 8, 3), np.float32), "dtype uint8"),
        (np.zeros((8, 8, 3), np.uint8), r"\(N, H, W, 3\) uint8 numpy array or a \(N, 3, H, W\) float"),
        (np.zeros((2, 3, 8, 8), np.uint8), r"\(N, H, W, 3\)"),
        (torch.zeros(2, 3, 8, 8, dtype=torch.uint8), "floating point"),
        (torch.full((1, 3, 8, 8), 1.5), r"values in \[0, 1\]"),
        (torch.zeros(1, 8, 8, 3), r"\(N, 3, H, W\) float torch tensor"),
        ([[0, 1]], "got list"),
        (np.zeros((0, 8, 8, 3), np.uint8), "at least one frame"),
    ],
)
def test_validate_frames_rejects(x, match):
    with pytest.raises(ValueError, match=match):
        _validate_frames(x)


def test_validate_pair_layout_and_shape():
    a = np.zeros((2, 8, 8, 3), np.uint8)
    with pytest.raises(ValueError, match="same shape"):
        _validate_pair(a, np.zeros((3, 8, 8, 3), np.uint8))
    with pytest.raises(ValueError, match="same layout"):
        _validate_pair(a, torch.zeros(2, 3, 8, 8))
    with pytest.raises(ValueError, match="same shape"):
        l1(a, np.zeros((2, 8, 9, 3), np.uint8))


def test_converters_round_trip():
    rng = np.random.default_rng(0)
    a = rng.integers(0, 256, (2, 5, 7, 3), dtype=np.uint8)
    t = to_float_nchw(a)
    assert t.shape == (2, 3, 5, 7) and t.dtype == torch.float32
    np.testing.assert_array_equal(to_uint8_nhwc(t), a)
    np.testing.assert_allclose(to_float_nhwc(t), a / 255.0, atol=1e-7)


def test_reduction_is_checked():
    a = np.zeros((1, 8, 8, 3), np.uint8)
    with pytest.raises(ValueError, match=r"one of \('mean', 'none'\)"):
        psnr(a, a, reduction="sum")
