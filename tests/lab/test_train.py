"""The common trainer (mirrors lab/train/): data sampling, determinism, torchrun DDP, kill + resume, export."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
import yaml

from lab.train.data import EpochBatchSampler, PairDataset, VideoFrames, export_frames, load_videos

REPO = Path(__file__).resolve().parents[2]

# A reduced-width ultralight model at 64x64: the real architecture and losses, small enough for 2 CPU cores.
SMALL = {
    "dataset_params": {"frame_shape": [64, 64, 3]},
    "model_params": {
        "kp_detector_params": {"scale_factor": 0.5},
        "generator_params": {
            "block_expansion": 8, "max_features": 32, "num_bottleneck_blocks": 1,
            "dense_motion_params": {"block_expansion": 8, "max_features": 32, "num_blocks": 3, "scale_factor": 0.5},
        },
    },
    "train_params": {
        "num_repeats": 8, "batch_size": 2, "checkpoint_every": 4, "log_every": 1, "image_every": 100,
        "num_workers": 0, "lr_generator": 2.0e-3, "lr_kp_detector": 2.0e-3, "seed": 3,
    },
}


def _videos(n=3, frames=5, size=32, seed=0):
    rng = np.random.default_rng(seed)
    return [VideoFrames(f"v{i}", (rng.random((frames, size, size, 3)) * 255).astype(np.uint8)) for i in range(n)]


def test_pair_dataset_is_deterministic_per_epoch_and_index():
    ds = PairDataset(_videos(), num_repeats=2, augmentation_params=SMALL_AUG, seed=1)
    assert len(ds) == 6
    a, b = ds[4], ds[4]
    assert torch.equal(a["source"], b["source"]) and torch.equal(a["driving"], b["driving"])
    assert a["video"] == 4 % 3
    assert a["source"].shape == (3, 32, 32) and a["source"].dtype == torch.float32
    assert 0 <= a["source"].min() and a["source"].max() <= 1
    c = ds[4 + len(ds)]  # same item, next epoch: a new random pair/augmentation
    assert not torch.equal(a["source"], c["source"]) or not torch.equal(a["driving"], c["driving"])


SMALL_AUG = {"flip_param": {"horizontal_flip": True, "time_flip": True},
             "jitter_param": {"brightness": 0.1, "contrast": 0.1, "saturation": 0.1, "hue": 0.1}}


def test_epoch_batch_sampler_resumes_and_splits_ranks():
    full = list(EpochBatchSampler(20, 3, num_replicas=2, rank=0, seed=5, total_steps=10))
    tail = list(EpochBatchSampler(20, 3, num_replicas=2, rank=0, seed=5, start_step=4, total_steps=10))
    assert len(full) == 10 and tail == full[4:]
    other = list(EpochBatchSampler(20, 3, num_replicas=2, rank=1, seed=5, total_steps=3))
    for b0, b1 in zip(full[:3], other):
        assert not set(b0) & set(b1)  # ranks see disjoint samples of the same epoch
    steps_per_epoch = 20 // 6
    assert all(i // 20 == 1 for i in full[steps_per_epoch])  # second epoch's indices are tagged with epoch 1
    with pytest.raises(ValueError, match="fewer than one global batch"):
        EpochBatchSampler(4, 3, num_replicas=2)


def test_archive_roundtrip(tmp_path):
    vids = _videos(n=2, frames=3)
    p = export_frames(vids, tmp_path / "a.npz")
    back = load_videos(p, frame_shape=(32, 32, 3))
    assert [v.name for v in back] == ["v0", "v1"]
    assert all(np.array_equal(a.frames, b.frames) for a, b in zip(vids, back))
    assert len(load_videos(p, frame_shape=(32, 32, 3), max_frames_per_video=2, frame_stride=1)[0].frames) == 2
    with pytest.raises(ValueError, match="config wants"):
        load_videos(p, frame_shape=(64, 64, 3))


def _torchrun(args: list[str], env_extra: dict | None = None) -> subprocess.CompletedProcess:
    env = {**os.environ, "OMP_NUM_THREADS": "1", **(env_extra or {})}
    cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node", "2",
           "-m", "lab.train", *args, "--no-progress"]
    return subprocess.run(cmd, cwd=REPO, env=env, capture_output=True, text=True, timeout=900)


def _final_state(run: Path) -> dict:
    ckpts = sorted((run / "checkpoints").glob("step_*.pt"))
    return torch.load(ckpts[-1], map_location="cpu", weights_only=True)


@pytest.mark.slow
def test_torchrun_ddp_trains_real_frames_and_resumes_exactly(tmp_path, data_root):
    """2-process torchrun (gloo) on frames of the shared train split: the loss goes down, and a run killed
    after step 6 (last checkpoint at step 4) and rerun with the same command ends with the same step and
    parameters as an uninterrupted run of equal length."""
    videos = load_videos(data_root, split="train", frame_shape=(64, 64, 3), max_frames_per_video=6, frame_stride=5)
    archive = export_frames(videos[:8], tmp_path / "train.npz")
    cfg = tmp_path / "small.yaml"
    cfg.write_text(yaml.safe_dump(SMALL))
    steps = 16
    common = ["--model", "ultralight", "--data", str(archive), "--config", str(cfg), "--max-steps", str(steps)]

    a = _torchrun([*common, "--out", str(tmp_path / "A")])
    assert a.returncode == 0, a.stderr[-3000:]
    log = [ln.split(",") for ln in (tmp_path / "A" / "log.csv").read_text().splitlines()[1:]]
    losses = [float(r[1]) for r in log]
    assert [int(r[0]) for r in log] == list(range(1, steps + 1))
    assert np.mean(losses[-4:]) < 0.9 * np.mean(losses[:4]), losses

    b = _torchrun([*common, "--out", str(tmp_path / "B")], {"FACELAB_TRAIN_KILL_AT_STEP": "6"})
    assert b.returncode != 0  # killed
    assert [p.name for p in sorted((tmp_path / "B" / "checkpoints").glob("step_*.pt"))][-1] == "step_00000004.pt"
    b2 = _torchrun([*common, "--out", str(tmp_path / "B")])
    assert b2.returncode == 0, b2.stderr[-3000:]
    assert "resuming from step_00000004.pt at step 4" in b2.stdout + b2.stderr
    sa, sb = _final_state(tmp_path / "A"), _final_state(tmp_path / "B")
    assert sa["step"] == sb["step"] == steps
    for k, v in sa["model"].items():
        torch.testing.assert_close(sb["model"][k], v, rtol=1e-5, atol=1e-6, msg=k)
    rows_b = [int(ln.split(",")[0]) for ln in (tmp_path / "B" / "log.csv").read_text().splitlines()[1:]]
    assert rows_b == list(range(1, steps + 1))  # no repeated or lost steps in the log either

    meta = json.loads((tmp_path / "A" / "meta.json").read_text())
    assert meta["world_size"] == 2 and meta["data"]["videos"] == 8
    assert "perceptual" in meta["objective"]
    assert list((tmp_path / "A" / "tb").glob("events.*"))


def test_single_process_train_export_and_load(tmp_path):
    """facelab train on CPU, then an fp16 inference file that create_animator loads, with its metadata."""
    from lab import create_animator
    from lab.cli import main

    archive = export_frames(_videos(n=2, frames=4, size=64), tmp_path / "d.npz")
    cfg = tmp_path / "small.yaml"
    cfg.write_text(yaml.safe_dump(SMALL))
    rc = main(["train", "--model", "ultralight", "--data", str(archive), "--out", str(tmp_path / "run"),
               "--config", str(cfg), "--max-steps", "2", "--no-progress"])
    assert rc == 0
    assert (tmp_path / "run" / "config.yaml").is_file()
    out = tmp_path / "w.safetensors"
    assert main(["export-weights", str(tmp_path / "run"), str(out), "--meta", "recipe=a note",
                 "--meta", 'held_out={"l1": 0.04}']) == 0
    run_cfg = yaml.safe_load((tmp_path / "run" / "config.yaml").read_text())
    m = create_animator("ultralight", checkpoint=out, config=run_cfg)
    assert m.checkpoint_meta["steps"] == 2
    assert m.checkpoint_meta["recipe"] == "a note" and m.checkpoint_meta["held_out"] == {"l1": 0.04}
    assert m.checkpoint_meta["train_params"]["max_steps"] == 2
    if (Path(__file__).resolve().parents[2] / ".git").exists():
        assert m.checkpoint_meta["commit"]
    with pytest.raises(SystemExit, match="KEY=VALUE"):
        main(["export-weights", str(tmp_path / "run"), str(out), "--meta", "no-equals-sign"])
    assert m.checkpoint_meta["data"]["videos"] == 2
    assert "perceptual" in m.checkpoint_meta["losses"]
    # a second run into the same folder with another model is refused with a clear error
    assert main(["train", "--model", "fomm", "--data", str(archive), "--out", str(tmp_path / "run"),
                 "--max-steps", "1", "--no-progress"]) == 2


def test_time_budget_stops_with_a_checkpoint_and_warm_start_continues(tmp_path, capsys):
    from lab.cli import main
    from lab.train.optim import make_optimizer

    archive = export_frames(_videos(n=2, frames=4, size=64), tmp_path / "d.npz")
    cfg = tmp_path / "small.yaml"
    cfg.write_text(yaml.safe_dump(SMALL))
    args = ["train", "--model", "ultralight", "--data", str(archive), "--config", str(cfg), "--no-progress"]
    assert main([*args, "--out", str(tmp_path / "a"), "--max-steps", "50", "--time-budget-minutes", "0"]) == 0
    assert "time budget reached at step 1" in capsys.readouterr().out
    assert _final_state(tmp_path / "a")["step"] == 1
    assert main(["export-weights", str(tmp_path / "a"), str(tmp_path / "a.safetensors")]) == 0
    # a new run (another machine) starts from those weights with a fresh optimiser, counting steps on
    assert main([*args, "--out", str(tmp_path / "b"), "--max-steps", "3", "--init-from",
                 str(tmp_path / "a.safetensors")]) == 0
    out = capsys.readouterr().out
    assert "warm start from" in out and "at step 1" in out
    state = _final_state(tmp_path / "b")
    assert state["step"] == 3 and state["warm_from"]["step"] == 1
    sgd = make_optimizer([{"params": [torch.nn.Parameter(torch.zeros(1))], "lr": 0.1}],
                     {"optimizer": {"name": "sgd", "momentum": 0.9}})
    assert isinstance(sgd, torch.optim.SGD) and sgd.defaults["momentum"] == 0.9
    with pytest.raises(ValueError, match="'adam' or 'sgd'"):
        make_optimizer([{"params": [torch.nn.Parameter(torch.zeros(1))], "lr": 0.1}], {"optimizer": {"name": "lbfgs"}})


def test_training_path_runs_without_av_gradio_lpips_dlib(tmp_path):
    """The GPU machine has torch, numpy, PIL, yaml, tqdm, tensorboard and OpenCV only: the trainer, the registry
    and the CLI must import there, and a VoxCeleb-layout folder written here must decode there (OpenCV)."""
    from lab.train.data import write_voxceleb

    vids = [VideoFrames("a+b/one", np.full((4, 64, 64, 3), 120, np.uint8))]
    paths = write_voxceleb(vids, tmp_path / "vox", "train")
    assert paths[0].name == "a+b__one.mp4"
    code = f"""
import sys
for m in ["av", "gradio", "lpips", "dlib", "face_alignment", "face_recognition_models", "plotly", "kaleido",
          "onnxscript", "jinja2"]:
    sys.modules[m] = None
from lab.cli import build_parser
build_parser()
from lab.core.registry import list_animators
assert "ultralight" in list_animators() and "fomm" in list_animators()
from lab.train.data import load_videos
v = load_videos({str(tmp_path / "vox")!r}, split="train", frame_shape=(64, 64, 3))
assert len(v) == 1 and v[0].frames.shape == (4, 64, 64, 3), v[0].frames.shape
assert abs(float(v[0].frames.mean()) - 120) < 4
print("ok")
"""
    r = subprocess.run([sys.executable, "-c", code], cwd=REPO, capture_output=True, text=True, timeout=300)
    assert r.returncode == 0 and r.stdout.strip().endswith("ok"), r.stderr[-2000:]


@pytest.mark.parametrize("model", ["ultralight", "fomm"])
def test_objective_under_bf16_autocast(model):
    """The trainer autocasts to bf16 on CUDA; CPU autocast runs the same casts (no fp32-only op gets bf16 input,
    e.g. torch.inverse of the Jacobians) and the losses and gradients stay finite."""
    from lab.core.registry import create_animator

    small = {"model_params": {
        "common_params": {"num_kp": 4},
        "kp_detector_params": {"scale_factor": 0.5} if model == "ultralight" else
        {"block_expansion": 8, "max_features": 16, "num_blocks": 2, "scale_factor": 0.5},
        "generator_params": SMALL["model_params"]["generator_params"],
    }}
    from lab.core.config import deep_merge

    torch.manual_seed(0)
    m = create_animator(model, config=deep_merge(create_animator(model).config, small)).train()
    tp = deep_merge(m.config["train_params"], {"scales": [1, 0.5]})
    obj = m.training_objective(tp)
    src, drv = torch.rand(2, 3, 64, 64), torch.rand(2, 3, 64, 64)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        losses, _ = obj.generator(src, drv)
    total = sum(v.float() for v in losses.values())
    total.backward()
    assert torch.isfinite(total)
    assert all(torch.isfinite(p.grad).all() for p in m.kp_detector.parameters() if p.grad is not None)
