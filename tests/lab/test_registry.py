"""The animator registry and the static animator (mirrors lab/core/registry.py and lab/models/static.py)."""

from __future__ import annotations

import warnings

import pytest
import torch

from lab import Animator, create_animator, is_animator, list_animators, register_animator
from lab.core.animator import cat_batches, expand_batch, index_batch


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
        from lab.core import registry

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


def test_one_weights_search_order(tmp_path, monkeypatch):
    """lab.core.registry and lab.core.weights search the same folders in the same order: FACELAB_WEIGHTS first."""
    from lab.core import registry, weights

    fw, th = tmp_path / "facelab", tmp_path / "torch"
    monkeypatch.setenv("FACELAB_WEIGHTS", str(fw))
    monkeypatch.setenv("TORCH_HOME", str(th))
    assert registry.weights_dirs() == weights.weights_dirs() == [fw, th / "hub" / "checkpoints"]
    for d in weights.weights_dirs():
        d.mkdir(parents=True)
        (d / "w.pth").write_bytes(b"x")
    assert weights.find_weight_file("w.pth", "test weights") == fw / "w.pth"
    (fw / "w.pth").unlink()
    assert weights.find_weight_file("w.pth", "test weights") == th / "hub" / "checkpoints" / "w.pth"


def test_default_checkpoint_prefers_the_shipped_file(tmp_path, monkeypatch):
    """A repo-relative ``checkpoint_file`` (ultralight's WEIGHTS_FILE) is used when present, before the folders."""
    from dataclasses import replace
    from pathlib import Path

    from lab.core import registry
    from lab.core.registry import resolve_checkpoint
    from lab.models.ultralight.model import WEIGHTS_FILE, UltralightAnimator

    repo = Path(registry.__file__).resolve().parents[2]

    assert UltralightAnimator.info.checkpoint_file == WEIGHTS_FILE
    shipped = "lab/models/ultralight/config/ultralight-256.yaml"  # any file in the repository stands in for it
    m = create_animator("static")
    monkeypatch.setattr(m, "info", replace(m.info, checkpoint_file=shipped))
    monkeypatch.setenv("FACELAB_WEIGHTS", str(tmp_path))
    monkeypatch.setenv("FACELAB_SHIPPED_WEIGHTS", "1")  # the suite runs with it off (tests/conftest.py)
    (tmp_path / "ultralight-256.yaml").write_text("a decoy in the weights folder")
    assert resolve_checkpoint(m, "default") == repo / shipped
    monkeypatch.setenv("FACELAB_SHIPPED_WEIGHTS", "0")  # off: the shipped file is passed over for the folders
    assert resolve_checkpoint(m, "default") == tmp_path / "ultralight-256.yaml"
    monkeypatch.setenv("FACELAB_SHIPPED_WEIGHTS", "1")
    monkeypatch.setattr(m, "info", replace(m.info, checkpoint_file="lab/models/ultralight/weights/absent.safetensors"))
    (tmp_path / "absent.safetensors").write_text("found by name in FACELAB_WEIGHTS")
    assert resolve_checkpoint(m, "default") == tmp_path / "absent.safetensors"


def test_seeded_construction_is_reproducible_and_leaves_the_global_rng():
    torch.manual_seed(1234)
    before = torch.random.get_rng_state()
    a = create_animator("ultralight", seed=0)
    assert torch.equal(torch.random.get_rng_state(), before)  # the caller's RNG stream is not advanced
    b = create_animator("ultralight", seed=0)
    c = create_animator("ultralight", seed=1)
    sa, sb, sc = a.state_dict(), b.state_dict(), c.state_dict()
    assert all(torch.equal(sa[k], sb[k]) for k in sa)
    assert any(not torch.equal(sa[k], sc[k]) for k in sa if sa[k].is_floating_point())
    create_animator("ultralight")  # seed=None draws from the global RNG, as nn.Module constructors do
    assert not torch.equal(torch.random.get_rng_state(), before)


OFFICIAL_NAMES = {"fomm": "vox-cpk.pth.tar", "x2face": "x2face_model.pth", "monkey_net": "monkey-net-vox.pth.tar"}


class _RunsCode:
    def __reduce__(self):
        import os

        return (os.system, ("echo this must never run",))


def write_bad_weights(folder, kind: str) -> None:
    """A text file (``kind="text"``) or a pickle carrying code (``"code"``) under each official weights name."""
    folder.mkdir(parents=True, exist_ok=True)
    for name, fname in OFFICIAL_NAMES.items():
        if kind == "text":
            (folder / fname).write_text(f"the {name} weights go here\n")
        else:
            torch.save({"generator": _RunsCode(), "kp_detector": {}, "state_dict": {}}, folder / fname)


@pytest.mark.parametrize("kind", ["text", "code"])
def test_bad_weights_file_makes_one_model_unavailable(tmp_path, monkeypatch, capsys, kind):
    from lab.cli import main
    from lab.core.animate import ModelUnavailable, load_animator

    monkeypatch.setenv("FACELAB_WEIGHTS", str(tmp_path / "w"))
    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "torch"))
    write_bad_weights(tmp_path / "w", kind)
    want = "not a checkpoint (a text file starting 'the" if kind == "text" else "holds code (pickled objects/classes"
    for name, fname in OFFICIAL_NAMES.items():
        la = load_animator(name, allow_unavailable=True)
        assert not la.available and not la.trained and la.weights_id == "unavailable"
        assert la.weights.startswith(f"unavailable: {fname}: {want}"), la.weights
        with pytest.raises(ModelUnavailable, match=f"^{name} unavailable: {fname}: "):
            la.require()
        with pytest.raises(ModelUnavailable):
            load_animator(name)  # whatever runs the model is refused, with the reason
    assert load_animator("static").available  # the other models are untouched
    # the CLI: one plain line naming the model and the reason, exit code 2; `facelab models` lists it
    src = tmp_path / "src.png"
    from PIL import Image

    Image.new("RGB", (256, 256), (120, 90, 80)).save(src)
    assert main(["animate", str(src), str(src), "--models", "static,x2face", "--out", str(tmp_path / "o")]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith(f"facelab animate: error: x2face unavailable: x2face_model.pth: {want}")
    assert "\n" not in err and "\x1b" not in err
    assert err.endswith(f"replace or remove {tmp_path / 'w' / 'x2face_model.pth'}")
    assert main(["models", "--filter", "x2face"]) == 0
    out = capsys.readouterr().out
    assert f"unavailable: x2face_model.pth: {want}" in out and "note: x2face unavailable" in out
