"""Safe checkpoint loading (mirrors lab/checkpoint.py)."""

from __future__ import annotations

import os

import pytest
import torch
from torch import nn

from lab.checkpoint import (
    CheckpointError,
    clean_state_dict,
    load_animator_weights,
    load_state_dict_strict,
    safe_load,
    save_inference_weights,
)


class Tiny(nn.Module):
    name = "tiny"

    def __init__(self):
        super().__init__()
        self.conv = nn.Conv2d(3, 4, 3)
        self.norm = nn.BatchNorm2d(4)


def test_safe_load_refuses_pickled_callable(tmp_path):
    p = tmp_path / "evil.pth"
    torch.save({"model": {}, "hook": os.system}, p)
    with pytest.raises(CheckpointError, match="weights_only=True"):
        safe_load(p)


def test_safe_load_missing_and_truncated(tmp_path):
    with pytest.raises(CheckpointError, match="not found"):
        safe_load(tmp_path / "nope.pth")
    p = tmp_path / "trunc.pth"
    torch.save({"w": torch.zeros(1000)}, p)
    p.write_bytes(p.read_bytes()[:100])
    with pytest.raises(CheckpointError, match="cannot read"):
        safe_load(p)


def test_clean_state_dict_strips_module_prefix():
    assert list(clean_state_dict({"module.a.b": 1, "module.module.c": 2, "d": 3})) == ["a.b", "c", "d"]


def test_strict_load_lists_mismatches():
    m = Tiny()
    sd = m.state_dict()
    sd["extra.weight"] = torch.zeros(1)
    del sd["conv.bias"]
    sd["norm.weight"] = torch.zeros(5)
    with pytest.raises(CheckpointError) as ei:
        load_state_dict_strict(Tiny(), sd)
    msg = str(ei.value)
    assert "missing keys: conv.bias" in msg and "unexpected keys: extra.weight" in msg and "norm.weight" in msg


def test_strict_load_tolerates_missing_num_batches_tracked():
    src = Tiny()
    sd = {k: v for k, v in src.state_dict().items() if not k.endswith("num_batches_tracked")}
    dst = Tiny()
    load_state_dict_strict(dst, sd)
    assert torch.equal(dst.conv.weight, src.conv.weight)


def test_inference_weights_roundtrip_fp16(tmp_path):
    src = Tiny()
    p = save_inference_weights(src, tmp_path / "w.safetensors", meta={"steps": 7})
    dst = Tiny()
    meta = load_animator_weights(dst, p)
    assert meta == {"steps": 7}
    assert torch.allclose(dst.conv.weight, src.conv.weight, atol=1e-3)
    assert dst.conv.weight.dtype == torch.float32


def test_training_checkpoint_format(tmp_path):
    src = Tiny()
    p = tmp_path / "ckpt.pt"
    torch.save({"model": {"module." + k: v for k, v in src.state_dict().items()}, "step": 3}, p)
    dst = Tiny()
    assert load_animator_weights(dst, p)["step"] == 3
    assert torch.equal(dst.conv.weight, src.conv.weight)
    torch.save({"weights": {}}, p)
    with pytest.raises(CheckpointError, match="not a facelab checkpoint"):
        load_animator_weights(dst, p)
