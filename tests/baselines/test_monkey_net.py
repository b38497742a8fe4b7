"""baselines.monkey_net: official layout, official outputs (golden), checkpoints, the lab interface, training.

The golden fixture ``goldens/monkey_net_small.npz`` was produced by ``goldens/monkey_net_make_golden.py`` (see
``goldens/make_monkey_net_golden.md``): our modules at a small config (5 keypoints, widths 8-32, 64x64 frames,
batch 2, D=2 driving frames) with seeded random weights, BatchNorm running stats/affine terms, InstanceNorm
affine terms and the dense-motion output conv (zero-initialised) perturbed; their state_dicts loaded strictly
into the official modules of AliaksandrSiarohin/monkey-net@0c8aa4ea458a79717d9016a36a3d86d10a166aea, run out of
tree under torch 2.14.1 (CPU) with the official code patched only where torch 0.4.1 APIs are gone or defaults
changed: ``torch.gesv`` -> ``torch.linalg.solve`` (``modules/util.py``, and dead code in ``transfer.py``), and
``align_corners=True`` in the two ``F.grid_sample`` calls (``modules/generator.py``,
``modules/movement_embedding.py``: torch 0.4.1's behaviour). Both codes ran in **float64** (modules, inputs and
torch's default dtype). The file holds those weights and inputs (float32, exact in float64) and the official
outputs (float64 rounded to float32; the training losses in float64): keypoints, generator outputs,
discriminator maps, ``transfer.py``'s ``normalize_kp`` and one training forward (``train.py``'s losses, train
mode). Its ``meta_json`` records versions and patches.

Why float64: the peaky random-weight keypoint detector makes the covariances ill-conditioned, so float32 results
differ between CPUs far beyond any useful tolerance (the earlier float32 golden: ``kp_video/var`` 0.9800 vs
0.9630 on another CPU). Measured max |ours - official| in float64, ours run under ATEN_CPU_CAPABILITY default /
avx2 / avx512, 1 or 2 threads, mkldnn on or off, against the official run made under avx512 and 2 threads
(table: ``goldens/make_monkey_net_golden.md``): eval outputs 5.1e-12 (``kp_video/var``, capability default;
1.3e-13 avx2, 5.6e-17 avx512), training losses 1.5e-14 relative, the per-frame animator interface 3.4e-11 (on
every setting: batching frames differently changes the summation order). Tolerance per element: ``ATOL`` 1e-8
(300 x the largest measured difference) + one float32 ulp of the stored value (``RTOL`` 2**-23, the rounding of
the stored reference); losses ``LOSS_RTOL`` 1e-10 relative. A wrong convention shows up as 1e-2 or more (e.g.
``align_corners=False``: 0.61 on ``video_deformed``).
"""

from __future__ import annotations

import argparse
import copy
import json
import os
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

from baselines.monkey_net import (
    Discriminator,
    KPDetector,
    MonkeyNetAnimator,
    MotionTransferGenerator,
    load_config,
    normalize_kp,
)
from lab import create_animator, list_animators
from lab.core.checkpoint import CheckpointError, save_inference_weights

HERE = Path(__file__).resolve().parent
GOLDEN = HERE / "goldens" / "monkey_net_small.npz"
SPEC_COPY = HERE / "goldens" / "monkey_net_state_dict.json"
SPEC_SHARED = HERE.parents[2] / "shared" / "spec" / "baselines" / "monkey_net_state_dict.json"
CLIP = "clips/FuxiVirtualHuman+styletalk/Obama_clip1.mp4"
NETWORKS = ("kp_detector", "generator", "discriminator")
# float64 goldens (module docstring): stored value rounded to float32 -> one float32 ulp, plus ATOL
ATOL = 1e-8
RTOL = 2.0**-23
LOSS_RTOL = 1e-10


def assert_matches_golden(mine: np.ndarray, ref: np.ndarray, key: str) -> None:
    """``mine`` (float64) within the golden tolerance of the stored official value ``ref``."""
    assert np.asarray(mine).dtype == np.float64, key
    if key.startswith("out/train_losses/"):  # float64 scalars
        np.testing.assert_allclose(mine, ref, rtol=LOSS_RTOL, atol=LOSS_RTOL, err_msg=key)
    else:
        np.testing.assert_allclose(mine, ref.astype(np.float64), rtol=RTOL, atol=ATOL, err_msg=key)


# ---------------------------------------------------------------------------------------------- helpers
def compute_golden_outputs(
    model: MonkeyNetAnimator, source: torch.Tensor, video: torch.Tensor, train_params: dict, variants: dict
) -> dict[str, np.ndarray]:
    """Our side of every quantity in the golden, under the same names (also used by the golden script).

    Args:
        model: the animator holding the weights.
        source: ``(B, 3, 1, H, W)``; video: ``(B, 3, D, H, W)``.
        train_params: ``train_params`` for the training forward.
        variants: name -> ``normalize_kp`` keyword arguments.
    """
    out: dict[str, np.ndarray] = {}
    model.eval()
    model.discriminator.eval()
    with torch.no_grad():
        kp_source = model.kp_detector(source)
        kp_video = model.kp_detector(video)
        g = model.generator(source, kp_driving=kp_video, kp_source=kp_source)
        maps = model.discriminator(video, kp_driving=kp_video, kp_source=kp_source)
        for k, v in kp_source.items():
            out[f"out/kp_source/{k}"] = v.numpy()
        for k, v in kp_video.items():
            out[f"out/kp_video/{k}"] = v.numpy()
        out["out/video_prediction"] = g["video_prediction"].numpy()
        out["out/video_deformed"] = g["video_deformed"].numpy()
        assert maps[0] is video  # map 0 is the input itself (not stored)
        for i, m in enumerate(maps[1:], start=1):
            out[f"out/disc_maps/{i}"] = m.numpy()
        drv = {k: v[0] for k, v in kp_video.items()}  # batch element 0: its D frames as N
        src = {k: v[0] for k, v in kp_source.items()}
        first = {k: v[0, :1] for k, v in kp_video.items()}
        for name, params in variants.items():
            for k, v in normalize_kp(drv, src, first, **params).items():
                out[f"out/normalize_kp/{name}/{k}"] = v.unsqueeze(0).numpy()

    trained = copy.deepcopy(model).train()  # the unregistered discriminator is copied along
    trained.discriminator.train()
    objective = trained.training_objective(train_params)
    losses, generated = objective.generator(source[:, :, 0], video[:, :, 0])
    losses.update(objective.discriminator(source[:, :, 0], video[:, :, 0], generated))
    for k, v in losses.items():
        out[f"out/train_losses/{k}"] = v.detach().numpy()
    out["out/train_prediction"] = generated["prediction"].detach().unsqueeze(2).numpy()
    return out


def _load_golden() -> tuple[dict, MonkeyNetAnimator, dict[str, np.ndarray]]:
    """The golden's config, its model (float32 weights, then float64; eval) and arrays."""
    data = dict(np.load(GOLDEN))
    cfg = json.loads(str(data["config_json"]))
    assert json.loads(str(data["meta_json"]))["dtype"].startswith("float64")
    model = MonkeyNetAnimator(config=cfg)
    for name in NETWORKS:
        prefix = f"w/{name}/"
        sd = {k[len(prefix) :]: torch.from_numpy(v) for k, v in data.items() if k.startswith(prefix)}
        getattr(model, name).load_state_dict(sd, strict=True)
    model.double()
    model.discriminator.double()  # not a registered sub-module
    return cfg, model.eval(), data


def _golden_inputs(data: dict[str, np.ndarray]) -> tuple[torch.Tensor, torch.Tensor]:
    return torch.from_numpy(data["in/source"]).double(), torch.from_numpy(data["in/video"]).double()


def _golden_variants() -> dict:
    return {
        "vox": {"movement_mult": False, "move_location": True, "adapt_variance": False},
        "all": {"movement_mult": True, "move_location": True, "adapt_variance": True, "clip_mean": True},
    }


def _official_checkpoint(model: MonkeyNetAnimator, prefix: str = "") -> dict:
    """A checkpoint in the official ``Logger.save_cpk`` layout, optimisers with real (stepped) states."""
    nets = {"generator": model.generator, "discriminator": model.discriminator, "kp_detector": model.kp_detector}
    ckpt: dict = {}
    for name, net in nets.items():
        opt = torch.optim.Adam(net.parameters(), lr=2e-4, betas=(0.5, 0.999))
        for p in net.parameters():
            p.grad = torch.zeros_like(p)
        opt.step()
        opt.zero_grad()
        ckpt[name] = {prefix + k: v for k, v in net.state_dict().items()}
        ckpt[f"optimizer_{name}"] = opt.state_dict()
    ckpt["epoch"] = 4
    ckpt["it"] = 1234
    return ckpt


def _small_model_params() -> dict:
    return {
        "common_params": {"num_kp": 4},
        "kp_detector_params": {"block_expansion": 4, "max_features": 16, "num_blocks": 3, "scale_factor": 0.5},
        "generator_params": {
            "block_expansion": 4, "max_features": 16, "num_blocks": 3, "num_refinement_blocks": 1,
            "dense_motion_params": {"block_expansion": 4, "max_features": 16, "num_blocks": 3, "scale_factor": 0.5},
            "kp_embedding_params": {"scale_factor": 0.5},
        },
        "discriminator_params": {"block_expansion": 4, "max_features": 16, "num_blocks": 2},
    }


@pytest.fixture(scope="module")
def vox_model() -> MonkeyNetAnimator:
    """The registered animator at the packaged vox config, random weights, eval mode."""
    torch.manual_seed(0)
    return create_animator("monkey_net")


@pytest.fixture
def tiny_model() -> MonkeyNetAnimator:
    torch.manual_seed(0)
    return MonkeyNetAnimator(**_small_model_params()).eval()


# ---------------------------------------------------------------------------------------------- layout
def test_state_dict_and_param_counts_match_official(vox_model):
    spec = json.loads(SPEC_COPY.read_text())
    assert vox_model.config["model_params"] == spec["config"]
    for name in NETWORKS:
        net = getattr(vox_model, name)
        got = [(k, list(v.shape)) for k, v in net.state_dict().items()]
        assert got == [(k, v) for k, v in spec["modules"][name].items()], name
        counts = spec["param_counts"][name]
        assert sum(p.numel() for p in net.parameters()) == counts["parameters"]
        assert len(got) == counts["state_dict_entries"]
        assert sum(b.numel() for b in net.buffers()) == counts["buffers_incl_num_batches_tracked"]
    assert vox_model.encoder_params == 14_132_728
    assert vox_model.decoder_params == 80_629_691
    assert sum(p.numel() for p in vox_model.discriminator.parameters()) == 1_719_489


def test_spec_copy_is_the_shared_spec():
    if not SPEC_SHARED.is_file():
        pytest.skip(f"shared spec not found at {SPEC_SHARED}")
    assert json.loads(SPEC_COPY.read_text()) == json.loads(SPEC_SHARED.read_text())


def test_constructors_take_official_yaml_keys():
    mp = load_config()["model_params"]
    c = mp["common_params"]
    assert isinstance(KPDetector(**c, **mp["kp_detector_params"]), KPDetector)
    small = load_config(**_small_model_params())["model_params"]
    assert isinstance(MotionTransferGenerator(**small["common_params"], **small["generator_params"]), torch.nn.Module)
    assert isinstance(Discriminator(**small["common_params"], **small["discriminator_params"]), torch.nn.Module)


def test_discriminator_is_not_registered(vox_model):
    names = {n for n, _ in vox_model.named_modules()}
    assert not any(n.startswith("discriminator") for n in names)
    assert set(vox_model.encoder_modules()) == {"kp_detector"}
    assert set(vox_model.decoder_modules()) == {"generator"}
    assert not any(k.startswith("discriminator") for k in vox_model.state_dict())


def test_config_overrides_and_errors():
    cfg = load_config(generator_params={"dense_motion_params": {"num_blocks": 3}})
    dm = cfg["model_params"]["generator_params"]["dense_motion_params"]
    assert dm["num_blocks"] == 3 and dm["use_mask"] is True  # nested keys merged, others kept
    assert load_config()["model_params"]["generator_params"]["dense_motion_params"]["num_blocks"] == 5
    # the errors of every model's load_config (lab.core.config.load_model_config): FOMM's test checks the same
    with pytest.raises(TypeError, match="unknown Monkey-Net override 'train_params'"):
        load_config(train_params={"lr": 1})
    with pytest.raises(TypeError, match="must be a dict"):
        load_config(generator_params=3)
    with pytest.raises(ValueError, match="model_params"):
        load_config({"train_params": {}})
    with pytest.raises(FileNotFoundError, match="Monkey-Net config not found"):
        load_config("no-such.yaml")


# ---------------------------------------------------------------------------------------------- golden
def test_outputs_match_official_golden(float64):
    """Same weights, same inputs as the official code -> same keypoints, frames, maps, transfer, losses (float64)."""
    cfg, model, data = _load_golden()
    source, video = _golden_inputs(data)
    mine = compute_golden_outputs(model, source, video, cfg["train_params"], _golden_variants())
    expected = {k: v for k, v in data.items() if k.startswith("out/")}
    assert set(mine) == set(expected)
    assert mine["out/video_prediction"].shape == (2, 3, 2, 64, 64)
    assert mine["out/kp_video/mean"].shape == (2, 2, 5, 2) and mine["out/kp_video/var"].shape == (2, 2, 5, 2, 2)
    for k, ref in expected.items():
        assert_matches_golden(mine[k], ref, k)


def test_animator_interface_matches_official_golden(float64):
    """extract_motion/encode_source/render (one generator call per frame) reproduce the official frames."""
    _, model, data = _load_golden()
    source, video = _golden_inputs(data)
    with torch.no_grad():
        for b in range(source.shape[0]):
            src = source[b : b + 1, :, 0]
            frames = video[b].permute(1, 0, 2, 3)  # (D, 3, H, W)
            motion = model.extract_motion(frames)
            assert_matches_golden(motion["mean"].numpy(), data["out/kp_video/mean"][b], "kp_video/mean")
            assert_matches_golden(motion["var"].numpy(), data["out/kp_video/var"][b], "kp_video/var")
            out = model.render(model.encode_source(src), model.extract_motion(src), motion)
            ref = data["out/video_prediction"][b].transpose(1, 0, 2, 3)
            assert_matches_golden(out.numpy(), ref, "video_prediction")
            if b == 0:  # the golden's relative transfer is of batch element 0
                initial = {k: v[:1] for k, v in motion.items()}
                relative = model.transfer_motion(model.extract_motion(src), motion, initial)
                for k in ("mean", "var"):
                    assert_matches_golden(relative[k].numpy(), data[f"out/normalize_kp/vox/{k}"][0], k)


def test_against_official_code_when_available(float64):
    """Live comparison (small config, float64) when MONKEY_NET_OFFICIAL points to the patched official copy."""
    path = os.environ.get("MONKEY_NET_OFFICIAL")
    if not path:
        pytest.skip("set MONKEY_NET_OFFICIAL to a patched copy of the official repo (make_monkey_net_golden.md)")
    sys.path.insert(0, str(HERE / "goldens"))
    import monkey_net_make_golden as mk

    cfg = mk.small_config()
    ours = mk.build_ours(cfg, seed=3)
    mods = mk.build_official(mk.import_official(Path(path)), ours)
    mk.to_float64(ours, mods)
    g = torch.Generator().manual_seed(5)
    source = torch.rand(1, 3, 1, 64, 64, generator=g, dtype=torch.float32).double()
    video = torch.rand(1, 3, 3, 64, 64, generator=g, dtype=torch.float32).double()
    ref = mk.official_outputs(mk.import_official(Path(path)), mods, source, video, cfg["train_params"])
    mine = compute_golden_outputs(ours, source, video, cfg["train_params"], mk.NORMALIZATION_VARIANTS)
    for k in ref:  # both unrounded float64 here
        np.testing.assert_allclose(mine[k], ref[k], atol=ATOL, rtol=LOSS_RTOL, err_msg=k)


# ---------------------------------------------------------------------------------------------- checkpoints
def test_official_checkpoint_loads_through_public_loader(tmp_path, tiny_model):
    for prefix in ("", "module."):
        path = tmp_path / f"{prefix or 'plain'}00000004-checkpoint.pth.tar"
        torch.save(_official_checkpoint(tiny_model, prefix), path)
        loaded = create_animator("monkey_net", checkpoint=path, **_small_model_params())
        assert loaded.checkpoint_meta["format"] == "official"
        assert loaded.checkpoint_meta["epoch"] == 4 and loaded.checkpoint_meta["it"] == 1234
        assert loaded.checkpoint_meta["discriminator_loaded"] is True
        for name in NETWORKS:
            a, b = getattr(tiny_model, name).state_dict(), getattr(loaded, name).state_dict()
            assert all(torch.equal(a[k], b[k]) for k in a), name


def test_official_checkpoint_mismatch_is_explained(tmp_path, tiny_model):
    ckpt = _official_checkpoint(tiny_model)
    del ckpt["generator"]["refinement_module.conv-last.bias"]
    ckpt["kp_detector"]["extra.weight"] = torch.zeros(1)
    path = tmp_path / "bad.pth.tar"
    torch.save(ckpt, path)
    with pytest.raises(CheckpointError, match=r"kp_detector.*unexpected keys: extra\.weight"):
        create_animator("monkey_net", checkpoint=path, **_small_model_params())
    del ckpt["kp_detector"]["extra.weight"]
    torch.save(ckpt, path)
    with pytest.raises(CheckpointError, match=r"generator.*missing keys: refinement_module\.conv-last\.bias"):
        create_animator("monkey_net", checkpoint=path, **_small_model_params())
    # the vox-sized model refuses the small checkpoint with shape mismatches, naming the config as the cause
    torch.save(_official_checkpoint(tiny_model), path)
    with pytest.raises(CheckpointError, match="shape mismatch.*config"):
        MonkeyNetAnimator(**{**_small_model_params(), "common_params": {"num_kp": 5}}).load_checkpoint(str(path))
    torch.save({"state_dict": {}}, path)
    with pytest.raises(CheckpointError, match="not a Monkey-Net checkpoint"):
        create_animator("monkey_net", checkpoint=path, **_small_model_params())


def test_unsafe_pickle_is_refused(tmp_path, tiny_model):
    ckpt = _official_checkpoint(tiny_model)
    ckpt["opt"] = argparse.Namespace(config="config/vox.yaml")  # arbitrary pickled object
    path = tmp_path / "unsafe.pth.tar"
    torch.save(ckpt, path)
    with pytest.raises(CheckpointError, match="refused to load.*weights_only=True"):
        create_animator("monkey_net", checkpoint=path, **_small_model_params())


def test_lab_format_checkpoints_load(tmp_path, tiny_model):
    st = save_inference_weights(tiny_model, tmp_path / "mn.safetensors", meta={"note": "tiny"}, dtype=torch.float32)
    loaded = create_animator("monkey_net", checkpoint=st, **_small_model_params())
    assert loaded.checkpoint_meta["note"] == "tiny"
    torch.save({"model": tiny_model.state_dict(), "step": 9}, tmp_path / "train.pth")
    loaded2 = create_animator("monkey_net", checkpoint=tmp_path / "train.pth", **_small_model_params())
    assert loaded2.checkpoint_meta["step"] == 9
    for m in (loaded, loaded2):
        a, b = tiny_model.state_dict(), m.state_dict()
        assert all(torch.equal(a[k], b[k]) for k in a)


# ---------------------------------------------------------------------------------------------- lab interface
def test_registered_with_provenance(vox_model):
    assert "monkey_net" in list_animators()
    info = vox_model.info
    assert info.official_code.endswith("@0c8aa4ea458a79717d9016a36a3d86d10a166aea")
    assert "NC" in info.licence and info.checkpoint_file
    assert vox_model.input_size == (256, 256) and vox_model.name == "monkey_net"


def test_relative_transfer_semantics(tiny_model):
    g = torch.Generator().manual_seed(0)
    src = {"mean": torch.rand(1, 4, 2, generator=g), "var": torch.eye(2).expand(1, 4, 2, 2) * 0.01}
    drv = {"mean": torch.rand(3, 4, 2, generator=g), "var": torch.eye(2).expand(3, 4, 2, 2) * 0.02}
    first = {k: v[:1] for k, v in drv.items()}
    out = tiny_model.transfer_motion(src, drv, first)
    torch.testing.assert_close(out["mean"][0], src["mean"][0])  # first driving frame -> source pose
    torch.testing.assert_close(out["mean"] - out["mean"][:1], drv["mean"] - drv["mean"][:1])
    assert out["var"] is drv["var"]  # vox: covariances are the driving ones
    assert torch.equal(tiny_model.transfer_motion(src, drv, first, adapt_movement_scale=False)["mean"], out["mean"])


def _read_frames(path: Path, n: int) -> torch.Tensor:
    """First ``n`` frames as ``(n, 3, H, W)`` float in [0, 1] (datasets.video when present, else PyAV)."""
    try:
        from datasets.video import open_media

        frames = list(open_media(path).iter_frames(0, n))
    except ImportError:
        av = pytest.importorskip("av")
        frames = []
        with av.open(str(path)) as container:
            for frame in container.decode(video=0):
                frames.append(frame.to_ndarray(format="rgb24"))
                if len(frames) == n:
                    break
    return torch.from_numpy(np.stack(frames)).permute(0, 3, 1, 2).float() / 255


@pytest.mark.data
def test_animates_real_clip(data_root, vox_model):
    frames = _read_frames(data_root / CLIP, 3)
    assert frames.shape == (3, 3, 256, 256)
    source, driving = frames[:1], frames[1:]
    for relative in (False, True):
        out = torch.cat(list(vox_model.animate(source, driving, relative=relative, batch_size=2)))
        assert out.shape == (2, 3, 256, 256)
        assert not torch.isnan(out).any() and out.min() >= 0 and out.max() <= 1
    motion = vox_model.extract_motion(driving)
    assert motion["mean"].shape == (2, 10, 2) and motion["var"].shape == (2, 10, 2, 2)
    assert motion["mean"].abs().max() <= 1


# ---------------------------------------------------------------------------------------------- training
def test_one_training_step(tiny_model):
    model = tiny_model.train()
    objective = model.training_objective({"loss_weights": {"reconstruction": [10, 10, 1]}})
    gen_side, disc_side = objective.generator, objective.discriminator
    assert disc_side is not None and gen_side.discriminator is model.discriminator
    assert not any(p is q for p in gen_side.parameters() for q in model.discriminator.parameters())
    opt_g = torch.optim.Adam(gen_side.parameters(), lr=2e-4, betas=(0.5, 0.999))
    opt_d = torch.optim.Adam(disc_side.parameters(), lr=2e-4, betas=(0.5, 0.999))
    g = torch.Generator().manual_seed(0)
    source, driving = torch.rand(2, 3, 64, 64, generator=g), torch.rand(2, 3, 64, 64, generator=g)

    losses, generated = gen_side(source, driving)
    assert set(losses) == {"layer-0_rec", "layer-1_rec", "layer-2_rec", "gen_gan"}
    assert all(v.ndim == 0 and torch.isfinite(v) for v in losses.values())
    assert generated["prediction"].shape == (2, 3, 64, 64)
    assert generated["kp_driving"]["mean"].shape == (2, 4, 2)
    before = model.kp_detector.predictor.decoder.conv.weight.detach().clone()
    sum(losses.values()).backward()
    assert model.kp_detector.predictor.decoder.conv.weight.grad.abs().sum() > 0  # keypoints learn
    opt_g.step()
    assert not torch.equal(before, model.kp_detector.predictor.decoder.conv.weight)
    opt_g.zero_grad(set_to_none=True)
    opt_d.zero_grad(set_to_none=True)  # the trainer zeroes the discriminator's grads from the generator loss
    d_losses = disc_side(source, driving, generated)
    assert set(d_losses) == {"disc_gan"} and torch.isfinite(d_losses["disc_gan"])
    d_losses["disc_gan"].backward()
    assert model.kp_detector.predictor.decoder.conv.weight.grad is None  # detach_kp_discriminator (vox: true)
    assert all(p.grad is not None for p in model.discriminator.parameters())
    opt_d.step()
    assert objective.description["reconstruction"] == [10.0, 10.0, 1.0]


def test_keypoints_stay_float32_under_autocast(tiny_model):
    """Under AMP the keypoint moments/covariance inverses run in float32 (bf16 would turn them into NaN)."""
    x = torch.rand(2, 3, 64, 64, generator=torch.Generator().manual_seed(0))
    with torch.no_grad(), torch.autocast("cpu", dtype=torch.bfloat16):
        motion = tiny_model.extract_motion(x)
        out = tiny_model.render(tiny_model.encode_source(x[:1]), tiny_model.extract_motion(x[:1]), motion)
    assert motion["var"].dtype == torch.float32 and torch.isfinite(motion["var"]).all()
    assert out.shape == (2, 3, 64, 64) and torch.isfinite(out.float()).all()


def test_objective_checks_loss_weights(tiny_model):
    with pytest.raises(ValueError, match="one weight each"):
        tiny_model.training_objective({"loss_weights": {"reconstruction": [10, 1]}})
