"""FOMM (mirrors baselines/fomm/): official layout, official outputs, checkpoints, relative motion, training."""

from __future__ import annotations

import json
import os
from pathlib import Path

import numpy as np
import pytest
import torch
import yaml

from baselines.fomm import (
    FOMMAnimator,
    KPDetector,
    MultiScaleDiscriminator,
    OcclusionAwareGenerator,
    list_configs,
    load_config,
    normalize_kp,
)
from lab import create_animator
from lab.core.checkpoint import CheckpointError

# copy of shared/spec/baselines/fomm_state_dict.json (measured from the official modules at vox-256)
SPEC = Path(__file__).resolve().parent / "goldens" / "fomm_state_dict.json"
GOLDEN = Path(__file__).resolve().parent / "goldens" / "fomm_small.npz"

# A small config (every section overridden) for fast tests: 64x64 frames.
SMALL = {
    "common_params": {"num_kp": 5},
    "kp_detector_params": {"block_expansion": 8, "max_features": 32, "num_blocks": 3},
    "generator_params": {
        "block_expansion": 8,
        "max_features": 32,
        "num_bottleneck_blocks": 1,
        "dense_motion_params": {"block_expansion": 8, "max_features": 32, "num_blocks": 3},
    },
    "discriminator_params": {"block_expansion": 8, "max_features": 32},
}


def small_animator(**extra) -> FOMMAnimator:
    torch.manual_seed(0)
    return FOMMAnimator(**{**SMALL, **extra}).eval()


@pytest.fixture(scope="module")
def spec() -> dict:
    return json.loads(SPEC.read_text())


@pytest.fixture(scope="module")
def vox() -> FOMMAnimator:
    """The full vox-256 animator (built once: ~60 M parameters)."""
    torch.manual_seed(0)
    return FOMMAnimator().eval()


# ---------------------------------------------------------------------------------------------- layout
def test_packaged_configs_are_the_official_values(spec):
    assert list_configs() == ["vox-256", "vox-adv-256"]
    mp = load_config()["model_params"]
    assert mp == spec["config"]
    adv = load_config("vox-adv-256")
    assert adv["model_params"]["discriminator_params"]["use_kp"] is True
    assert adv["train_params"]["loss_weights"]["generator_gan"] == 1
    for section in ("kp_detector_params", "generator_params", "common_params"):
        assert adv["model_params"][section] == mp[section]


def test_state_dicts_and_param_counts_match_official(vox, spec):
    """Keys (as a set) and every shape equal the official modules' at vox-256; parameter counts too."""
    for name in ("kp_detector", "generator", "discriminator"):
        module = getattr(vox, name)
        own = {k: list(v.shape) for k, v in module.state_dict().items()}
        ref = spec["modules"][name]
        assert set(own) == set(ref), f"{name}: missing {set(ref) - set(own)}, unexpected {set(own) - set(ref)}"
        assert {k: own[k] for k in ref} == ref
        counts = spec["param_counts"][name]
        assert sum(p.numel() for p in module.parameters()) == counts["parameters"]
        assert sum(b.numel() for b in module.buffers()) == counts["buffers_incl_num_batches_tracked"]
        assert len(own) == counts["state_dict_entries"]
    assert vox.encoder_params == 14_215_368
    assert vox.decoder_params == 45_575_391
    assert "discriminator" not in vox.decoder_modules() and "discriminator" not in vox.encoder_modules()
    # the anti-alias kernels are persistent buffers (they are in official checkpoints)
    assert vox.kp_detector.down.weight.shape == (3, 1, 13, 13)
    assert torch.allclose(vox.kp_detector.down.weight.sum(dim=(2, 3)), torch.ones(3, 1))


def test_constructors_take_the_yaml_keys(spec):
    mp = spec["config"]
    common = mp["common_params"]
    kp = KPDetector(**common, **mp["kp_detector_params"])
    assert torch.equal(kp.jacobian.weight, torch.zeros_like(kp.jacobian.weight))  # identity Jacobian init
    assert kp.jacobian.bias.tolist() == [1.0, 0.0, 0.0, 1.0] * 10
    disc = MultiScaleDiscriminator(**common, **mp["discriminator_params"])
    assert disc.scales == [1]
    with pytest.raises(TypeError):
        OcclusionAwareGenerator(**common, **mp["generator_params"], no_such_key=1)


def test_forward_keys_and_shapes_at_vox256(vox):
    x = torch.rand(1, 3, 256, 256)
    with torch.no_grad():
        kp = vox.kp_detector(x)
        out = vox.generator(x, kp_driving=kp, kp_source=kp)
    assert kp["value"].shape == (1, 10, 2) and kp["jacobian"].shape == (1, 10, 2, 2)
    assert kp["value"].abs().max() <= 1
    shapes = {k: tuple(v.shape) for k, v in out.items()}
    assert shapes == {
        "mask": (1, 11, 64, 64),
        "sparse_deformed": (1, 11, 3, 64, 64),
        "occlusion_map": (1, 1, 64, 64),
        "deformed": (1, 3, 256, 256),
        "prediction": (1, 3, 256, 256),
    }
    assert torch.allclose(out["mask"].sum(1), torch.ones(1, 64, 64), atol=1e-5)
    assert 0 <= out["prediction"].min() and out["prediction"].max() <= 1


def test_small_config_round_trips_strict():
    a = small_animator()
    with torch.no_grad():  # make BN stats non-trivial
        for m in a.modules():
            if isinstance(m, torch.nn.BatchNorm2d):
                m.running_mean.normal_(0, 0.1)
    b = FOMMAnimator(**SMALL).eval()
    for name in ("kp_detector", "generator", "discriminator"):
        getattr(b, name).load_state_dict(getattr(a, name).state_dict(), strict=True)
    x, y = torch.rand(2, 3, 64, 64), torch.rand(2, 3, 64, 64)
    with torch.no_grad():
        pa = a.render(a.encode_source(x), a.extract_motion(x), a.extract_motion(y))
        pb = b.render(b.encode_source(x), b.extract_motion(x), b.extract_motion(y))
    assert torch.equal(pa, pb)


# ---------------------------------------------------------------------------------------------- official outputs
# The golden's outputs are the official code's float64 results rounded to float32 (half an ulp at most): an output
# may differ from them by one float32 ulp (RTOL) plus what float64 itself varies across CPUs, kernels and thread
# counts (ATOL; measured: at most 2.5e-13, see test_matches_official_golden). The losses are stored in float64.
RTOL = 2.0**-23
ATOL = 1e-9
LOSS_RTOL = 1e-10


def _load_golden() -> tuple[dict, dict]:
    z = np.load(GOLDEN, allow_pickle=False)
    meta = json.loads(str(z["meta"]))
    return meta, {k: torch.from_numpy(z[k]) for k in z.files if k != "meta"}


def _modules_from_golden(meta: dict, arrays: dict) -> dict:
    """The golden's modules with its (float32) weights, in float64 and eval()."""
    mp = meta["model_params"]
    common = mp["common_params"]
    mods = {
        "kp_detector": KPDetector(**common, **mp["kp_detector_params"]),
        "generator": OcclusionAwareGenerator(**common, **mp["generator_params"]),
        "discriminator": MultiScaleDiscriminator(**common, **mp["discriminator_params"]),
        "discriminator_adv": MultiScaleDiscriminator(**common, **meta["discriminator_adv_params"]),
    }
    for name, m in mods.items():
        prefix = f"weights/{name}/"
        m.load_state_dict({k[len(prefix) :]: v for k, v in arrays.items() if k.startswith(prefix)}, strict=True)
        m.double().eval()
    return mods


def test_matches_official_golden(float64):
    """Our modules reproduce the official code's outputs, both in float64, for the same weights and inputs.

    How ``goldens/fomm_small.npz`` was produced (full instructions: ``goldens/make_fomm_golden.md``):
    AliaksandrSiarohin/first-order-model at c0274845cb2dd8f0f2fe6da580d97b60fef90c91 was checked out under /tmp
    (never into this repo) and imported unmodified with torch 2.14.1 (CPU); our modules were built at a small config
    (block_expansion 8, max_features 32, num_kp 5, num_blocks 3, one bottleneck block; 64x64 frames, batch 2),
    randomly initialised, then perturbed so the check is not trivial (BatchNorm/InstanceNorm affine and running
    stats, keypoint logits x30 for peaked heatmaps, non-identity Jacobian weights); their state_dicts (float32,
    stored) were loaded strictly into the official ``KPDetector``, ``OcclusionAwareGenerator`` and two
    ``MultiScaleDiscriminator`` s (``sn: True`` and ``use_kp: True``); everything was then cast to float64
    (modules, inputs, torch's default dtype) and the official modules ran in eval() on random inputs; their outputs
    are stored rounded to float32, plus the official ``normalize_kp`` (relative motion, adapt scale on/off) and the
    official ``GeneratorFullModel``/``DiscriminatorFullModel`` losses (train(), seed 123, no VGG: perceptual
    weights 0; float64).

    Why float64: these random-weight nets amplify rounding (peaked heatmaps: logits x300), so float32 results
    differ between CPUs by more than any useful tolerance (the earlier float32 golden: ``discriminator/
    prediction_map_1`` 1.3e-3 off on another CPU). In float64 the measured max |ours - official| over every output
    was 0 (bit-identical) with both in one process, and, with ours run under other CPU settings against the
    official run made under avx512 with 2 threads (table: ``goldens/make_fomm_golden.md``): 0 for avx512 with 1 or 2
    threads and mkldnn on or off, 8.9e-16 for ATEN_CPU_CAPABILITY=avx2, 2.5e-13 for =default (1 or 2 threads).
    Tolerance per element: ATOL 1e-9 (4000 x the largest measured difference) + one float32 ulp of the stored
    value (RTOL 2**-23, the rounding of the stored reference). A wrong convention shows up as 1e-3 or more
    (measured: ``align_corners`` flipped in our generator and dense motion, 0.76). At full vox-256 the float32
    comparison (run out of tree, not stored: 180 MB of weights) gave max |diff| 0.
    """
    if not GOLDEN.is_file():
        pytest.fail(f"golden missing: {GOLDEN}")
    meta, arrays = _load_golden()
    assert meta["official_code"].endswith("c0274845cb2dd8f0f2fe6da580d97b60fef90c91")
    assert meta["dtype"].startswith("float64")
    mods = _modules_from_golden(meta, arrays)
    source, driving = arrays["inputs/source"].double(), arrays["inputs/driving"].double()
    diffs: dict[str, float] = {}
    failed: list[str] = []

    def check(ours: torch.Tensor, key: str) -> None:
        ref = arrays[f"outputs/{key}"].double()
        assert ours.shape == ref.shape, key
        assert ours.dtype == torch.float64, key
        diff = (ours - ref).abs()
        diffs[key] = float(diff.max())
        if not (diff <= ATOL + RTOL * ref.abs()).all():
            failed.append(f"{key}: max |diff| {diffs[key]:.3e}")

    def ref_kp(side: str) -> dict:
        return {k: arrays[f"outputs/{side}/{k}"].double() for k in ("value", "jacobian")}

    with torch.no_grad():
        kp_s, kp_d = mods["kp_detector"](source), mods["kp_detector"](driving)
        for k in ("value", "jacobian"):
            check(kp_s[k], f"kp_source/{k}")
            check(kp_d[k], f"kp_driving/{k}")
        # feed the official keypoints to the generator so each module is checked on its own inputs
        ref_s, ref_d = ref_kp("kp_source"), ref_kp("kp_driving")
        out = mods["generator"](source, kp_driving=ref_d, kp_source=ref_s)
        gen_keys = {k.split("/")[-1] for k in arrays if k.startswith("outputs/generator/")}
        assert set(out) == gen_keys == {"mask", "sparse_deformed", "occlusion_map", "deformed", "prediction"}
        for k in gen_keys:
            check(out[k], f"generator/{k}")
        pred = {"prediction_1": arrays["outputs/generator/prediction"].double()}
        for name in ("discriminator", "discriminator_adv"):
            d = mods[name](pred, kp=ref_d)
            for i, fm in enumerate(d["feature_maps_1"]):
                check(fm, f"{name}/feature_maps_1/{i}")
            check(d["prediction_map_1"], f"{name}/prediction_map_1")
        ks = {k: v[:1] for k, v in ref_s.items()}
        ki = {k: v[:1] for k, v in ref_d.items()}
        for adapt in (0, 1):
            n = normalize_kp(ks, ref_d, ki, adapt_movement_scale=bool(adapt), use_relative_movement=True,
                             use_relative_jacobian=True)
            for k in ("value", "jacobian"):
                check(n[k], f"normalize_kp_adapt{adapt}/{k}")
    assert len(diffs) == sum(k.startswith("outputs/") for k in arrays)  # every stored output compared
    assert not failed, failed


def test_training_losses_match_official_golden(float64):
    """FOMM's objective gives the official GeneratorFullModel/DiscriminatorFullModel losses (same seed, no VGG).

    Both in float64 (the default dtype too: the random warp's noise is drawn in it, by the official code and by
    ours alike). Measured |ours - official| / max(1, |official|): 0 in one process, at most 4.3e-14 across the CPU
    settings of ``goldens/make_fomm_golden.md`` (ATEN_CPU_CAPABILITY=default); tolerance 1e-10 (2000 x). The
    float32 golden's 1e-4 was exceeded on another CPU: ``equivariance_jacobian`` 0.8981 vs 0.8970.
    """
    from baselines.fomm.objective import build_objective

    meta, arrays = _load_golden()
    mods = _modules_from_golden(meta, arrays)
    mp = dict(meta["model_params"], discriminator_params=meta["discriminator_adv_params"])
    animator = FOMMAnimator(config={"model_params": mp})
    animator.kp_detector.load_state_dict(mods["kp_detector"].state_dict())
    animator.generator.load_state_dict(mods["generator"].state_dict())
    animator.discriminator.load_state_dict(mods["discriminator_adv"].state_dict())
    animator.double().train()
    obj = build_objective(animator, meta["train_params"])
    obj.generator.double(), obj.discriminator.double()  # their image pyramids' Gaussian kernels
    assert obj.description["perceptual"] == "off"
    source, driving = arrays["inputs/source"].double(), arrays["inputs/driving"].double()
    torch.manual_seed(meta["loss_seed"])
    losses, generated = obj.generator(source, driving)
    losses.update(obj.discriminator(source, driving, generated))
    ref = {k.split("/", 1)[1]: float(v) for k, v in arrays.items() if k.startswith("losses/")}
    assert set(losses) == set(ref)
    for k, v in ref.items():
        assert losses[k].dtype == torch.float64, k
        assert abs(losses[k].item() - v) <= LOSS_RTOL * max(1.0, abs(v)), (k, losses[k].item(), v)


# ---------------------------------------------------------------------------------------------- checkpoints
def _official_checkpoint(model: FOMMAnimator, prefix: str = "") -> dict:
    """An official-format checkpoint (Logger.save_cpk layout) with real Adam states after one step."""
    ckpt = {}
    for name in ("generator", "kp_detector", "discriminator"):
        module = getattr(model, name)
        opt = torch.optim.Adam(module.parameters(), lr=2e-4, betas=(0.5, 0.999))
        for p in module.parameters():
            p.grad = torch.full_like(p, 1e-3)
        opt.step()
        ckpt[name] = {prefix + k: v.clone() for k, v in module.state_dict().items()}
        ckpt[f"optimizer_{name}"] = opt.state_dict()
    ckpt["epoch"] = 41
    return ckpt


@pytest.mark.parametrize("prefix", ["", "module."])
def test_official_checkpoint_loads_through_create_animator(tmp_path, prefix):
    src = small_animator()
    ckpt = _official_checkpoint(src, prefix)
    path = tmp_path / "vox-cpk.pth.tar"
    torch.save(ckpt, path)
    torch.load(path, weights_only=True)  # the file is weights_only-loadable
    model = create_animator("fomm", checkpoint=path, **SMALL)
    assert model.checkpoint_meta["epoch"] == 41 and model.checkpoint_meta["format"] == "fomm-official"
    assert model.checkpoint_meta["discriminator"] == "loaded"
    for name in ("generator", "kp_detector", "discriminator"):
        theirs = getattr(src, name).state_dict()
        for k, v in getattr(model, name).state_dict().items():
            assert torch.equal(v, theirs[k]), f"{name}.{k}"
    assert not model.training


def test_default_checkpoint_is_found_in_facelab_weights(tmp_path, monkeypatch):
    torch.save(_official_checkpoint(small_animator()), tmp_path / "vox-cpk.pth.tar")
    monkeypatch.setenv("FACELAB_WEIGHTS", str(tmp_path))
    model = create_animator("fomm", checkpoint="default", **SMALL)
    assert model.checkpoint_meta["path"] == str(tmp_path / "vox-cpk.pth.tar")
    monkeypatch.setenv("FACELAB_WEIGHTS", str(tmp_path / "empty"))
    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "empty"))
    with pytest.raises(FileNotFoundError, match="vox-cpk.pth.tar"):
        create_animator("fomm", checkpoint="default", **SMALL)


def test_checkpoint_with_pickled_callable_is_refused(tmp_path):
    ckpt = _official_checkpoint(small_animator())
    ckpt["hook"] = os.system  # a pickle would call whatever global it names
    path = tmp_path / "evil.pth.tar"
    torch.save(ckpt, path)
    with pytest.raises(CheckpointError, match="refused to load.*weights_only=True"):
        create_animator("fomm", checkpoint=path, **SMALL)


def test_checkpoint_of_another_config_lists_the_keys(tmp_path):
    path = tmp_path / "vox-cpk.pth.tar"
    torch.save(_official_checkpoint(small_animator()), path)
    with pytest.raises(CheckpointError, match=r"kp_detector.*shape mismatch: kp\.weight"):
        create_animator("fomm", checkpoint=path, **{**SMALL, "common_params": {"num_kp": 6}})
    with pytest.raises(CheckpointError, match=r"generator.*missing keys: bottleneck\.r1\.conv1\.weight"):
        create_animator("fomm", checkpoint=path,
                        **{**SMALL, "generator_params": {**SMALL["generator_params"], "num_bottleneck_blocks": 2}})
    torch.save({"generator": {}, "something": 1}, path)
    with pytest.raises(CheckpointError, match="neither an official FOMM checkpoint"):
        create_animator("fomm", checkpoint=path, **SMALL)


def test_mismatched_discriminator_is_skipped_with_a_warning(tmp_path):
    """vox-adv-cpk-style files (use_kp discriminator) still load for inference under a vox-256-style config."""
    adv = small_animator(discriminator_params={"block_expansion": 8, "max_features": 32, "use_kp": True, "sn": False})
    path = tmp_path / "vox-adv-cpk.pth.tar"
    torch.save(_official_checkpoint(adv), path)
    with pytest.warns(UserWarning, match="discriminator not loaded"):
        model = create_animator("fomm", checkpoint=path, **SMALL)
    assert model.checkpoint_meta["discriminator"].startswith("not loaded")
    assert torch.equal(model.generator.final.weight, adv.generator.final.weight)


def test_lab_formats_load(tmp_path):
    from lab.core.checkpoint import save_inference_weights

    src = small_animator()
    torch.save({"model": src.state_dict(), "step": 7}, tmp_path / "train.pt")
    m = create_animator("fomm", checkpoint=tmp_path / "train.pt", **SMALL)
    assert m.checkpoint_meta["step"] == 7
    assert torch.equal(m.generator.final.weight, src.generator.final.weight)
    save_inference_weights(src, tmp_path / "w.safetensors", meta={"note": "x"})
    m = create_animator("fomm", checkpoint=tmp_path / "w.safetensors", **SMALL)
    assert m.checkpoint_meta["note"] == "x"
    assert torch.allclose(m.generator.final.weight, src.generator.final.weight, atol=1e-3)


# ---------------------------------------------------------------------------------------------- relative motion
def _kp(b: int, k: int = 5, seed: int = 0) -> dict:
    g = torch.Generator().manual_seed(seed)
    return {
        "value": torch.rand(b, k, 2, generator=g) * 1.6 - 0.8,
        "jacobian": torch.eye(2) + 0.2 * torch.randn(b, k, 2, 2, generator=g),
    }


def test_normalize_kp_identity_when_driving_is_the_initial_frame():
    src, drv = _kp(1, seed=1), _kp(1, seed=2)
    for adapt in (False, True):
        out = normalize_kp(src, drv, drv, adapt_movement_scale=adapt, use_relative_movement=True,
                           use_relative_jacobian=True)
        assert torch.allclose(out["value"], src["value"], atol=1e-6)
        assert torch.allclose(out["jacobian"], src["jacobian"], atol=1e-5)
    plain = normalize_kp(src, drv, drv)  # no relative movement: the driving keypoints unchanged
    assert set(plain) == set(drv) and all(plain[k] is drv[k] for k in drv)


def test_normalize_kp_adapt_movement_scale_is_sqrt_area_ratio():
    from scipy.spatial import ConvexHull

    initial = _kp(1, seed=3)
    src = {"value": initial["value"] * 2.0, "jacobian": initial["jacobian"]}  # hull area x4 -> scale 2
    drv = _kp(1, seed=4)
    out = normalize_kp(src, drv, initial, adapt_movement_scale=True, use_relative_movement=True)
    expected = src["value"] + 2.0 * (drv["value"] - initial["value"])
    assert torch.allclose(out["value"], expected, atol=1e-5)
    # general case against scipy directly (the official code's formula)
    src = _kp(1, seed=5)
    area_src, area_ini = (ConvexHull(kp["value"][0].numpy()).volume for kp in (src, initial))
    scale = np.sqrt(area_src) / np.sqrt(area_ini)
    out = normalize_kp(src, drv, initial, adapt_movement_scale=True, use_relative_movement=True)
    assert torch.allclose(out["value"], src["value"] + float(scale) * (drv["value"] - initial["value"]), atol=1e-5)
    assert torch.equal(out["jacobian"], drv["jacobian"])  # relative Jacobian off


def test_normalize_kp_broadcasts_batch_one_source_and_initial():
    src, initial, drv = _kp(1, seed=6), _kp(1, seed=7), _kp(4, seed=8)
    snapshot = {k: v.clone() for k, v in drv.items()}
    out = normalize_kp(src, drv, initial, adapt_movement_scale=True, use_relative_movement=True,
                       use_relative_jacobian=True)
    assert out["value"].shape == (4, 5, 2) and out["jacobian"].shape == (4, 5, 2, 2)
    for i in range(4):
        one = normalize_kp(src, {k: v[i : i + 1] for k, v in drv.items()}, initial, adapt_movement_scale=True,
                           use_relative_movement=True, use_relative_jacobian=True)
        assert torch.allclose(out["value"][i : i + 1], one["value"]) and torch.allclose(out["jacobian"][i : i + 1],
                                                                                          one["jacobian"])
    assert all(torch.equal(drv[k], snapshot[k]) for k in drv)  # inputs untouched
    with pytest.raises(ValueError, match="spanning an area"):
        flat = {"value": torch.zeros(1, 5, 2), "jacobian": src["jacobian"]}
        normalize_kp(flat, drv, initial, adapt_movement_scale=True, use_relative_movement=True)


# ---------------------------------------------------------------------------------------------- animator
def test_animator_interface_and_animate_mode():
    m = small_animator()
    assert m.name == "fomm" and m.input_size == (256, 256)  # small overrides keep vox-256's dataset_params
    info = m.info
    assert info.official_code.endswith("c0274845cb2dd8f0f2fe6da580d97b60fef90c91")
    assert info.checkpoint_file == "vox-cpk.pth.tar" and info.licence.startswith("CC BY-NC")
    assert info.motion_description == "10 keypoints × 2 + 10 Jacobians × 4 = 60 values"
    assert set(m.encoder_modules()) == {"kp_detector"} and set(m.decoder_modules()) == {"generator"}
    assert m.config["model_params"]["common_params"] == {"num_kp": 5, "num_channels": 3, "estimate_jacobian": True}
    src, drv = torch.rand(1, 3, 64, 64), torch.rand(3, 3, 64, 64)
    with torch.no_grad():
        state, ms, md = m.encode_source(src), m.extract_motion(src), m.extract_motion(drv)
        assert set(md) == {"value", "jacobian"}
        out = m.render(state, ms, md)  # batch-1 source broadcast to 3 driving frames
        ref = m.generator(src.expand(3, -1, -1, -1), kp_driving=md, kp_source={k: v.expand(3, *v.shape[1:])
                                                                               for k, v in ms.items()})["prediction"]
    assert torch.equal(out, ref)
    rel = torch.cat(list(m.animate(src, drv, relative=True, adapt_movement_scale=True, batch_size=2)))
    with torch.no_grad():
        first = m.transfer_motion(ms, {k: v[:1] for k, v in md.items()}, {k: v[:1] for k, v in md.items()})
    assert torch.allclose(first["value"], ms["value"], atol=1e-6)  # frame 0 of the animate mode = the source pose
    assert rel.shape == (3, 3, 64, 64) and torch.isfinite(rel).all()


def test_config_overrides_and_files(tmp_path):
    cfg = load_config(common_params={"num_kp": 5}, generator_params={"dense_motion_params": {"num_blocks": 3}})
    gp = cfg["model_params"]["generator_params"]
    assert gp["dense_motion_params"] == {"block_expansion": 64, "max_features": 1024, "num_blocks": 3,
                                         "scale_factor": 0.25}
    assert load_config()["model_params"]["common_params"]["num_kp"] == 10  # packaged file untouched
    with pytest.raises(TypeError, match="unknown FOMM override 'num_kp'"):
        load_config(num_kp=5)
    with pytest.raises(FileNotFoundError, match="vox-256"):
        load_config("no-such-config")
    p = tmp_path / "mine.yaml"
    p.write_text(yaml.safe_dump({**load_config("vox-adv-256"), "dataset_params": {"frame_shape": [128, 128, 3]}}))
    m = FOMMAnimator(config=str(p), **SMALL)
    assert m.input_size == (128, 128) and m.discriminator.discs["1"].use_kp
    with pytest.raises(ValueError, match="model_params lacks"):
        load_config({"model_params": {"common_params": {}}})


# ---------------------------------------------------------------------------------------------- training
@pytest.mark.parametrize("config", ["vox-256", "vox-adv-256"])
def test_one_training_step_on_a_tiny_config(config, tmp_path, monkeypatch):
    monkeypatch.setenv("TORCH_HOME", str(tmp_path))  # no VGG19 weights -> the documented fallback
    m = FOMMAnimator(config=config, **SMALL).train()
    tp = load_config(config)["train_params"]
    obj = m.training_objective(tp)
    assert obj.description["perceptual"].startswith("fallback: multi-scale L1 + SSIM")
    assert "vgg19-dcbb9e9d.pth absent" in obj.description["perceptual"]
    gen_params = list(obj.generator.parameters())
    assert {id(p) for p in m.discriminator.parameters()}.isdisjoint({id(p) for p in gen_params})
    assert obj.generator.animator is m
    opt = torch.optim.Adam([p for p in gen_params if p.requires_grad], lr=2e-4, betas=(0.5, 0.999))
    source, driving = torch.rand(2, 3, 64, 64), torch.rand(2, 3, 64, 64)
    before = m.generator.final.weight.detach().clone()
    losses, generated = obj.generator(source, driving)
    expected = {"perceptual", "equivariance_value", "equivariance_jacobian"}
    if config == "vox-adv-256":
        expected |= {"gen_gan", "feature_matching"}
    assert set(losses) == expected
    assert all(v.ndim == 0 and torch.isfinite(v) for v in losses.values())
    assert {"prediction", "kp_source", "kp_driving", "transformed_frame", "transformed_kp"} <= set(generated)
    sum(losses.values()).backward()
    opt.step()
    assert not torch.equal(before, m.generator.final.weight)
    if config == "vox-adv-256":
        assert obj.discriminator is not None and obj.generator.discriminator is m.discriminator
        d_losses = obj.discriminator(source, driving, generated)
        assert set(d_losses) == {"disc_gan"} and torch.isfinite(d_losses["disc_gan"])
        d_losses["disc_gan"].backward()
        assert m.discriminator.discs["1"].down_blocks[0].conv.weight.grad is not None
    else:
        assert obj.discriminator is None and obj.description["gan"] == "off"


def test_forward_is_exportable():
    """Graph-friendly forward (no Python loops over keypoints, no input mutation): torch.export traces both sides."""
    m = small_animator()
    x = torch.rand(2, 3, 64, 64)
    with torch.no_grad():
        kp = m.kp_detector(x)

    class Decoder(torch.nn.Module):
        def __init__(self, generator: torch.nn.Module) -> None:
            super().__init__()
            self.generator = generator

        def forward(self, source, value_d, jacobian_d, value_s, jacobian_s):
            return self.generator(source, kp_driving={"value": value_d, "jacobian": jacobian_d},
                                  kp_source={"value": value_s, "jacobian": jacobian_s})["prediction"]

    args = (x, kp["value"].flip(0), kp["jacobian"].flip(0), kp["value"], kp["jacobian"])
    decoder = Decoder(m.generator)
    exported = torch.export.export(decoder, args)
    with torch.no_grad():
        assert torch.allclose(exported.module()(*args), decoder(*args), atol=1e-6)
    encoder = torch.export.export(m.kp_detector, (x,))
    assert torch.allclose(encoder.module()(x)["jacobian"], kp["jacobian"], atol=1e-6)
