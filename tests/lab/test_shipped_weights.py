"""The ultralight weights shipped in the repository: found by default, described, and better than ``static``.

The rest of the suite runs without them (``FACELAB_SHIPPED_WEIGHTS=0`` in tests/conftest.py); these tests turn
them back on.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch

from lab.models.ultralight.model import WEIGHTS_FILE

REPO = Path(__file__).resolve().parents[2]
SHIPPED = REPO / WEIGHTS_FILE


@pytest.fixture
def shipped(monkeypatch):
    if not SHIPPED.is_file():
        pytest.skip(f"{WEIGHTS_FILE} is not in this checkout")
    monkeypatch.setenv("FACELAB_SHIPPED_WEIGHTS", "1")
    monkeypatch.setenv("FACELAB_WEIGHTS", "/nonexistent")
    return SHIPPED


def test_file_is_fp16_small_and_says_how_it_was_made(shipped):
    from safetensors import safe_open

    assert shipped.stat().st_size <= 35e6
    with safe_open(str(shipped), "pt") as f:
        meta = json.loads(f.metadata()["facelab"])
        assert {f.get_tensor(k).dtype for k in f.keys() if f.get_tensor(k).is_floating_point()} == {torch.float16}
        assert not any(k.startswith("discriminator.") for k in f.keys())  # training-only
    assert meta["model"] == "ultralight" and meta["steps"] >= 0 and meta["cpu_hours"] > 0
    assert meta["data"]["split"] == "train" and meta["data"]["videos"] > 0
    assert meta["recipe"] and meta["commit"]


def test_found_by_default_and_beats_static_on_the_demo(shipped):
    """A fresh clone animates with trained weights: the app's loader says so, and on the embedded demo the output
    follows the driving frames closer than the source does (L1 to the driving frames)."""
    from datasets.demo import demo_driving, demo_source
    from lab.core.animate import animate_frames, load_animator

    la = load_animator("ultralight")
    assert la.weights.startswith("trained:") and la.path == str(shipped), la.weights
    src, drv = demo_source(), demo_driving(12)
    pred = animate_frames(la.model, src, drv, relative=True)
    l1_model = np.abs(pred.astype(float) - drv).mean()
    l1_static = np.abs(src[None].astype(float) - drv).mean()
    assert pred.std() > 10  # a picture, not a flat square
    assert l1_model < l1_static, (l1_model, l1_static)
