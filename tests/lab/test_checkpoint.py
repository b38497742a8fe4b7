"""Safe checkpoint loading (mirrors lab/core/checkpoint.py)."""

from __future__ import annotations

import os

import pytest
import torch
from torch import nn

from lab.core.checkpoint import (
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


class _RunsCode:
    def __reduce__(self):
        return (os.system, ("echo this must never run",))


@pytest.mark.parametrize(
    ("content", "expected"),
    [
        (b"hello, these are not weights\n", "not a checkpoint (a text file starting 'hello, these are not weights')"),
        (b"", "not a checkpoint (an empty file)"),
        (b"version https://git-lfs.github.com/spec/v1\noid sha256:0\nsize 9\n", "not a checkpoint (a Git LFS pointer"),
        (b"<!DOCTYPE html><html>404</html>", "not a checkpoint (an HTML page"),
        (bytes(range(7, 64)), "not a checkpoint (binary data that is neither a zip nor a pickle"),
    ],
    ids=["text", "empty", "lfs-pointer", "html", "binary"],
)
def test_reason_says_the_file_is_not_a_checkpoint(tmp_path, content, expected):
    p = tmp_path / "x2face_model.pth"
    p.write_bytes(content)
    with pytest.raises(CheckpointError) as ei:
        safe_load(p)
    assert ei.value.reason.startswith(expected)
    assert "pickled" not in ei.value.reason and "\n" not in ei.value.reason  # not described as code any more


def _save_code(kind: str, p) -> None:
    import pickle

    if kind == "zip":
        torch.save({"state_dict": {"w": torch.zeros(1)}, "hook": _RunsCode()}, p)
    elif kind == "legacy":
        torch.save({"state_dict": _RunsCode()}, p, _use_new_zipfile_serialization=False)
    elif kind == "raw-pickle":
        with open(p, "wb") as f:
            pickle.dump({"generator": _RunsCode()}, f, protocol=4)
    else:  # a whole module pickled (a class, not code that runs on load, but still refused)
        torch.save({"model": nn.Linear(2, 2)}, p)


@pytest.mark.filterwarnings("ignore:Detected pickle protocol")  # torch's note on the raw protocol-4 pickle
@pytest.mark.parametrize("kind", ["zip", "legacy", "raw-pickle", "module"])
def test_reason_names_the_pickled_code_without_running_it(tmp_path, kind, capfd):
    p = tmp_path / "vox-cpk.pth.tar"
    _save_code(kind, p)
    with pytest.raises(CheckpointError, match="weights_only=True") as ei:
        safe_load(p)
    reason, msg = ei.value.reason, str(ei.value)
    assert reason.startswith("holds code (pickled objects/classes: ") and "refused by weights_only" in reason
    want = "torch.nn.modules.linear.Linear" if kind == "module" else "system"  # posix.system / nt.system
    assert want in reason and want in msg
    assert "\x1b" not in msg and "\x1b" not in reason  # torch's own message carries terminal colour codes
    assert "this must never run" not in capfd.readouterr().out


def test_reason_lists_a_few_wrong_keys(tmp_path):
    sd = Tiny().state_dict()
    sd["extra.weight"] = torch.zeros(1)
    del sd["conv.bias"]
    with pytest.raises(CheckpointError) as ei:
        load_state_dict_strict(Tiny(), sd, what="tiny (w.pth)")
    assert ei.value.reason == "wrong keys for tiny (missing: conv.bias; unexpected: extra.weight)"
    p = tmp_path / "w.pth"
    torch.save({"a": torch.zeros(1), "b": 2, "c": 3, "d": 4, "e": 5}, p)
    with pytest.raises(CheckpointError) as ei:
        load_animator_weights(Tiny(), p)
    assert ei.value.reason == "wrong keys (holds a, b, c, d, ... (5 keys); expected a 'model' state_dict)"
    torch.save({"model": {"conv.weight": 1}}, p)  # a value that is not a tensor: refused, not an AttributeError
    with pytest.raises(CheckpointError, match="not tensors"):
        load_animator_weights(Tiny(), p)


def test_fomm_inference_file_leaves_out_the_discriminator_and_loads_back(tmp_path):
    """FOMM's fp16 inference file (an equal-budget run's export) holds the generator and keypoint detector only
    (59.8 M parameters, 120 MB); loading it keeps the model's own discriminator."""
    from safetensors import safe_open

    from baselines.fomm.animator import FOMMAnimator
    from lab.core.checkpoint import load_animator_weights, save_inference_weights

    torch.manual_seed(0)
    a = FOMMAnimator()
    p = save_inference_weights(a, tmp_path / "fomm.safetensors", meta={"model": "fomm"})
    with safe_open(str(p), "pt") as f:
        keys = list(f.keys())
    assert keys and not any(k.startswith("discriminator.") for k in keys)
    assert {k.split(".")[0] for k in keys} == {"generator", "kp_detector"}
    torch.manual_seed(1)
    b = FOMMAnimator()
    disc = {k: v.clone() for k, v in b.state_dict().items() if k.startswith("discriminator.")}
    load_animator_weights(b, p)
    sa, sb = a.state_dict(), b.state_dict()
    for k in keys:
        assert torch.equal(sb[k], sa[k].half().to(sb[k].dtype)), k
    assert all(torch.equal(sb[k], v) for k, v in disc.items())
