"""Compare baselines.monkey_net with the official Monkey-Net code and write the golden fixture.

Run out of tree against a patched copy of the official repository (see ``make_monkey_net_golden.md``)::

    .venv/bin/python tests/baselines/goldens/monkey_net_make_golden.py --official /tmp/mn_official \
        --config small --out tests/baselines/goldens/monkey_net_small.npz
    .venv/bin/python tests/baselines/goldens/monkey_net_make_golden.py --official /tmp/mn_official --config vox

Our modules are built with random weights (seeded; BatchNorm running stats and affine parameters, InstanceNorm
affine parameters and the dense-motion output conv, which starts at zero, are perturbed so that every path
matters); their state_dicts are loaded *strictly* into the official modules; then modules, inputs and torch's
default dtype are switched to float64 (:func:`to_float64`), both run on the same inputs, and the max-abs
differences are printed. With ``--out`` the weights and inputs (float32, exact in float64) and the official
float64 outputs (rounded to float32; the training losses in float64) are saved; ``--full64`` also writes the
unrounded official outputs (for measuring tolerances, not for the repository). ``--float32`` runs the old float32
comparison instead (prints only). No official code is part of facelab: this script imports it from
``--official`` only.
"""

from __future__ import annotations

import argparse
import copy
import json
import subprocess
import sys
import types
from pathlib import Path

import numpy as np
import torch

REPO = Path(__file__).resolve().parents[3]
sys.path.insert(0, str(REPO))

from baselines.monkey_net import MonkeyNetAnimator, load_config  # noqa: E402

OFFICIAL_COMMIT = "0c8aa4ea458a79717d9016a36a3d86d10a166aea"

SMALL_MODEL_PARAMS = {
    "common_params": {"num_kp": 5, "kp_variance": "matrix", "num_channels": 3},
    "kp_detector_params": {
        "temperature": 0.1, "block_expansion": 8, "max_features": 32, "scale_factor": 0.5, "num_blocks": 3,
        "clip_variance": 0.001,
    },
    "generator_params": {
        "interpolation_mode": "trilinear", "block_expansion": 8, "max_features": 32, "num_blocks": 4,
        "num_refinement_blocks": 2,
        "dense_motion_params": {
            "block_expansion": 8, "max_features": 32, "num_blocks": 3, "use_mask": True, "use_correction": True,
            "scale_factor": 0.5,
            "mask_embedding_params": {
                "use_heatmap": True, "use_deformed_source_image": True, "heatmap_type": "difference",
                "norm_const": 100,
            },
            "num_group_blocks": 2,
        },
        "kp_embedding_params": {
            "scale_factor": 0.5, "use_heatmap": True, "norm_const": 100, "heatmap_type": "difference",
        },
    },
    "discriminator_params": {"kp_embedding_params": {"norm_const": 100}, "block_expansion": 8, "max_features": 32,
                             "num_blocks": 3},
}
SMALL_TRAIN_PARAMS = {
    "detach_kp_generator": False,
    "detach_kp_discriminator": True,
    "loss_weights": {"reconstruction": [10, 10, 10, 1], "reconstruction_deformed": 0, "generator_gan": 1,
                     "discriminator_gan": 1},
}
KP_LOGIT_SCALE = 64.0
NORMALIZATION_VARIANTS = {
    "vox": {"movement_mult": False, "move_location": True, "adapt_variance": False},
    "all": {"movement_mult": True, "move_location": True, "adapt_variance": True, "clip_mean": True},
}


def small_config() -> dict:
    cfg = load_config()
    cfg["model_params"] = copy.deepcopy(SMALL_MODEL_PARAMS)
    cfg["train_params"] = {**cfg["train_params"], **copy.deepcopy(SMALL_TRAIN_PARAMS)}
    return cfg


def perturb_(module: torch.nn.Module, gen: torch.Generator) -> None:
    """Give normalisation layers non-trivial statistics/affine terms and make zero-initialised convs non-zero."""
    for m in module.modules():
        if isinstance(m, torch.nn.modules.batchnorm._BatchNorm):
            with torch.no_grad():
                m.running_mean.copy_(0.1 * torch.randn(m.running_mean.shape, generator=gen))
                m.running_var.copy_(0.5 + torch.rand(m.running_var.shape, generator=gen))
                m.weight.copy_(1 + 0.2 * torch.randn(m.weight.shape, generator=gen))
                m.bias.copy_(0.1 * torch.randn(m.bias.shape, generator=gen))
                m.num_batches_tracked.fill_(7)
        elif isinstance(m, torch.nn.InstanceNorm3d) and m.affine:
            with torch.no_grad():
                m.weight.copy_(1 + 0.2 * torch.randn(m.weight.shape, generator=gen))
                m.bias.copy_(0.1 * torch.randn(m.bias.shape, generator=gen))


def build_ours(cfg: dict, seed: int) -> MonkeyNetAnimator:
    torch.manual_seed(seed)
    model = MonkeyNetAnimator(config=cfg)
    gen = torch.Generator().manual_seed(seed + 1)
    for m in (model.kp_detector, model.generator, model.discriminator):
        perturb_(m, gen)
    conv = model.generator.dense_motion_module.hourglass.decoder.conv  # zero-initialised in both codes
    with torch.no_grad():
        conv.weight.copy_(0.05 * torch.randn(conv.weight.shape, generator=gen))
        conv.bias.add_(0.1 * torch.randn(conv.bias.shape, generator=gen))
        # eval mode: peaky heatmaps (as a trained detector has; spread-out means, small covariances, some
        # clipped) by shrinking the running variance of the last decoder BatchNorm; train mode (batch
        # statistics) keeps the milder random-init heatmaps, whose losses stay finite
        model.kp_detector.predictor.decoder.up_blocks[-1].norm.running_var.div_(KP_LOGIT_SCALE**2)
    return model


def to_float64(ours: MonkeyNetAnimator, mods: dict[str, torch.nn.Module] | None = None) -> None:
    """Modules in float64 and torch's default dtype float64 (the official code makes ``clip_variance`` and the
    matrix-inverse ``eps`` with it: float64 constants, as our Python floats are)."""
    torch.set_default_dtype(torch.float64)
    ours.double()
    ours.discriminator.double()  # not a registered sub-module
    for m in (mods or {}).values():
        m.double()


def is_loss(key: str) -> bool:
    """Keys stored in float64 (scalars); every other output is stored rounded to float32."""
    return key.startswith("out/train_losses/")


def import_official(path: Path) -> types.SimpleNamespace:
    sys.path.insert(0, str(path))
    # transfer.py imports the training-time logger/dataset (matplotlib, skimage.draw.circle, imageio); normalize_kp
    # needs none of them, so stub those two modules
    for name in ("logger", "frames_dataset"):
        stub = types.ModuleType(name)
        stub.Logger = stub.Visualizer = stub.PairedDataset = object
        sys.modules.setdefault(name, stub)
    from modules.discriminator import Discriminator
    from modules.generator import MotionTransferGenerator
    from modules.keypoint_detector import KPDetector
    from modules.losses import discriminator_loss, generator_loss, generator_loss_names
    from transfer import normalize_kp as official_normalize_kp

    return types.SimpleNamespace(
        KPDetector=KPDetector, MotionTransferGenerator=MotionTransferGenerator, Discriminator=Discriminator,
        generator_loss=generator_loss, discriminator_loss=discriminator_loss,
        generator_loss_names=generator_loss_names, normalize_kp=official_normalize_kp,
    )


def build_official(off: types.SimpleNamespace, ours: MonkeyNetAnimator) -> dict[str, torch.nn.Module]:
    mp = ours.config["model_params"]
    c = mp["common_params"]
    mods = {
        "kp_detector": off.KPDetector(**mp["kp_detector_params"], **c),
        "generator": off.MotionTransferGenerator(**mp["generator_params"], **c),
        "discriminator": off.Discriminator(**mp["discriminator_params"], **c),
    }
    for name, m in mods.items():
        m.load_state_dict(getattr(ours, name).state_dict(), strict=True)
    return mods


def official_outputs(off, mods, source, video, train_params) -> dict[str, np.ndarray]:
    """Everything the golden checks, computed by the official modules."""
    out: dict[str, np.ndarray] = {}
    kp_det, gen, disc = mods["kp_detector"], mods["generator"], mods["discriminator"]
    for m in mods.values():
        m.eval()
    with torch.no_grad():
        kp_source = kp_det(source)
        kp_video = kp_det(video)
        g = gen(source, kp_driving=kp_video, kp_source=kp_source)
        maps = disc(video, kp_driving=kp_video, kp_source=kp_source)
        for k, v in kp_source.items():
            out[f"out/kp_source/{k}"] = v.numpy()
        for k, v in kp_video.items():
            out[f"out/kp_video/{k}"] = v.numpy()
        out["out/video_prediction"] = g["video_prediction"].numpy()
        out["out/video_deformed"] = g["video_deformed"].numpy()
        for i, m in enumerate(maps[1:], start=1):  # map 0 is the input itself
            out[f"out/disc_maps/{i}"] = m.numpy()
        # relative transfer of batch element 0 (transfer.py normalize_kp)
        for variant, params in NORMALIZATION_VARIANTS.items():
            first_video = {k: v[:1] for k, v in kp_video.items()}
            first_source = {k: v[:1] for k, v in kp_source.items()}
            kp_norm = off.normalize_kp(first_video, first_source, **params)
            for k, v in kp_norm.items():
                out[f"out/normalize_kp/{variant}/{k}"] = v.numpy()

    # one training forward (train.py GeneratorFullModel / DiscriminatorFullModel), train mode, first driving frame
    tm = {k: copy.deepcopy(m).train() for k, m in mods.items()}
    driving = video[:, :, :1]
    kp_joined = tm["kp_detector"](torch.cat([source, driving], dim=2))
    kp_dict = {"kp_driving": {k: v[:, 1:] for k, v in kp_joined.items()},
               "kp_source": {k: v[:, :1] for k, v in kp_joined.items()}}
    generated = tm["generator"](source, **kp_dict)
    maps_gen = tm["discriminator"](generated["video_prediction"], **kp_dict)
    maps_real = tm["discriminator"](driving, **kp_dict)
    values = off.generator_loss(maps_gen, maps_real, generated["video_deformed"], train_params["loss_weights"])
    for name, v in zip(off.generator_loss_names(train_params["loss_weights"]), values):
        out[f"out/train_losses/{name}"] = v.mean().detach().numpy()
    kp_det_dict = {k: {kk: vv.detach() for kk, vv in d.items()} for k, d in kp_dict.items()}
    maps_gen = tm["discriminator"](generated["video_prediction"].detach(), **kp_det_dict)
    maps_real = tm["discriminator"](driving, **kp_det_dict)
    (disc_loss,) = off.discriminator_loss(maps_gen, maps_real, train_params["loss_weights"])
    out["out/train_losses/disc_gan"] = disc_loss.mean().detach().numpy()
    out["out/train_prediction"] = generated["video_prediction"].detach().numpy()
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--official", type=Path, required=True, help="patched copy of the official repository")
    ap.add_argument("--config", choices=["small", "vox"], default="small")
    ap.add_argument("--batch", type=int, default=None)
    ap.add_argument("--frames", type=int, default=2, help="driving frames D")
    ap.add_argument("--size", type=int, default=None, help="frame size (small: 64, vox: 256)")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--out", type=Path, default=None, help="write the golden .npz here")
    ap.add_argument("--full64", type=Path, default=None, help="also write the unrounded official outputs here")
    ap.add_argument("--float32", action="store_true", help="compare in float32 (prints only; no golden)")
    args = ap.parse_args()
    if args.float32 and (args.out or args.full64):
        ap.error("--float32 only prints (the golden is made in float64)")

    torch.set_num_threads(2)
    cfg = small_config() if args.config == "small" else load_config()
    size = args.size or (64 if args.config == "small" else 256)
    batch = args.batch or (2 if args.config == "small" else 1)
    ours = build_ours(cfg, args.seed)
    off = import_official(args.official)
    mods = build_official(off, ours)

    g = torch.Generator().manual_seed(args.seed + 2)
    source = torch.rand(batch, 3, 1, size, size, generator=g)
    video = torch.rand(batch, 3, args.frames, size, size, generator=g)
    train_params = cfg["train_params"]
    weights = {name: {k: v.clone() for k, v in getattr(ours, name).state_dict().items()}
               for name in ("kp_detector", "generator", "discriminator")}
    inputs = {"in/source": source.numpy(), "in/video": video.numpy()}  # float32
    if not args.float32:
        to_float64(ours, mods)
        source, video = source.double(), video.double()

    ref = official_outputs(off, mods, source, video, train_params)
    sys.path.insert(0, str(REPO / "tests" / "baselines"))
    from test_monkey_net import compute_golden_outputs  # our side, exactly as the test computes it

    mine = compute_golden_outputs(ours, source, video, train_params, NORMALIZATION_VARIANTS)
    worst = 0.0
    for k in sorted(ref):
        assert args.float32 or (ref[k].dtype == np.float64 and mine[k].dtype == np.float64), k
        d = float(np.abs(np.asarray(ref[k], dtype=np.float64) - np.asarray(mine[k], dtype=np.float64)).max())
        worst = max(worst, d) if "train" not in k else worst
        print(f"{k:45s} shape {str(np.shape(ref[k])):22s} max|ours - official| = {d:.3e}")
    print(f"config={args.config} size={size} batch={batch} D={args.frames}: max abs diff (eval outputs) = {worst:.3e}")

    if args.out is not None:
        arrays: dict[str, np.ndarray] = {}
        for name, sd in weights.items():
            for k, v in sd.items():
                arrays[f"w/{name}/{k}"] = v.numpy()  # float32 as built (num_batches_tracked: int64)
        arrays.update(inputs)
        arrays.update({k: np.asarray(v, dtype=np.float64 if is_loss(k) else np.float32) for k, v in ref.items()})
        meta = {
            "official": f"AliaksandrSiarohin/monkey-net@{OFFICIAL_COMMIT}",
            "torch": torch.__version__,
            "numpy": np.__version__,
            "patches": [
                "modules/util.py: torch.gesv(eye, b_mat) -> torch.linalg.solve(b_mat, eye)",
                "modules/generator.py, modules/movement_embedding.py: F.grid_sample(..., align_corners=True)",
                "transfer.py: torch.gesv(var_first, var) -> torch.linalg.solve(var, var_first) (dead code)",
                "logger/frames_dataset stubbed at import (not used by normalize_kp)",
            ],
            "facelab_commit": subprocess.run(["git", "-C", str(REPO), "rev-parse", "HEAD"], capture_output=True,
                                             text=True).stdout.strip(),
            "seed": args.seed,
            "dtype": "float64 run (modules .double(), inputs .double(), torch default dtype float64); weights and "
                     "inputs stored float32 (exact in float64); outputs stored as the float64 results rounded to "
                     "float32, training losses float64",
            "max_abs_diff_eval": worst,
        }
        arrays["config_json"] = np.array(json.dumps(cfg))
        arrays["meta_json"] = np.array(json.dumps(meta))
        args.out.parent.mkdir(parents=True, exist_ok=True)
        np.savez_compressed(args.out, **arrays)
        print(f"wrote {args.out} ({args.out.stat().st_size / 1e6:.2f} MB)")
    if args.full64 is not None:
        np.savez_compressed(args.full64, **{k: np.asarray(v, dtype=np.float64) for k, v in ref.items()})
        print(f"wrote {args.full64}")


if __name__ == "__main__":
    main()
