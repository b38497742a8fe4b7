"""The animator registry and the static animator (mirrors lab/registry.py and lab/static.py)."""

from __future__ import annotations

import warnings

import pytest
import torch

from lab import Animator, create_animator, is_animator, list_animators, register_animator
from lab.animator import cat_batches, expand_batch, index_batch


def test_static_is_registered():
    assert "static" in list_animators()
    assert is_animator("static")
    assert not is_animator("no-such-model")
    assert list_animators("stat*") == ["static"]
    assert "static" not in list_animators(exclude_filters="stat*")


def test_unknown_name_lists_registered():
    with pytest.raises(ValueError, match="unknown animator 'nope'.*static"):
        create_animator("nope")


def test_static_renders_source_unchanged():
    m = create_animator("static")
    src = torch.rand(1, 3, 64, 64)
    drv = torch.rand(5, 3, 64, 64)
    out = torch.cat(list(m.animate(src, drv, batch_size=2)))
    assert out.shape == (5, 3, 64, 64)
    assert torch.equal(out, src.expand(5, -1, -1, -1))
    motion = m.extract_motion(drv)
    assert sum(v[0].numel() for v in motion.values()) == 0  # nothing crosses the network
    assert m.encoder_params == 0 and m.decoder_params == 0
    assert not m.training


def test_register_overwrite_warns_and_custom_entrypoint():
    class Dummy(Animator):
        name = "dummy-test"
        needs_weights = False

        def __init__(self, scale: float = 1.0):
            super().__init__()
            self.scale = scale

    register_animator(Dummy)
    try:
        assert create_animator("dummy-test", scale=3.0).scale == 3.0
        with warnings.catch_warnings(record=True) as w:
            warnings.simplefilter("always")
            register_animator(Dummy)
        assert any("Overwriting animator 'dummy-test'" in str(x.message) for x in w)
    finally:
        from lab import registry

        registry._entrypoints.pop("dummy-test", None)


def test_batch_helpers():
    d = {"value": torch.rand(1, 10, 2)}
    e = expand_batch(d, 4)
    assert e["value"].shape == (4, 10, 2)
    with pytest.raises(ValueError, match="cannot broadcast"):
        expand_batch({"value": torch.rand(3, 2)}, 4)
    c = cat_batches([e, d])
    assert c["value"].shape == (5, 10, 2)
    assert torch.equal(index_batch(c, 4)["value"], d["value"])


@pytest.mark.parametrize("name", list_animators())
def test_animator_forward(name):
    """Every registered animator runs end to end on random frames: shapes, range, no NaNs (timm-style)."""
    torch.manual_seed(0)
    m = create_animator(name)
    h, w = m.input_size
    src = torch.rand(1, 3, h, w)
    drv = torch.rand(2, 3, h, w)
    with torch.no_grad():
        state = m.encode_source(src)
        ms = m.extract_motion(src)
        md = m.extract_motion(drv)
        out = m.render(state, ms, md)
    assert all(v.shape[0] == 2 for v in md.values())
    assert out.shape == (2, 3, h, w)
    assert not torch.isnan(out).any()
