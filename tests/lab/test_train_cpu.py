"""CPU training: precision selection, networks-only bf16 autocast, the 128² curriculum's resolution change, the
static-start decoder, the training-time budget and the held-out learning curve."""

from __future__ import annotations

import csv
import json

import numpy as np
import pytest
import torch
import yaml

from lab.train.data import VideoFrames, export_frames, load_videos

from .test_train import SMALL


def test_precision_resolution(monkeypatch, tmp_path):
    from lab.train import precision as P

    cpu = torch.device("cpu")
    assert P.resolve_precision("fp32", cpu)[0] is None and P.resolve_precision("off", cpu)[0] is None
    assert P.resolve_precision("bf16", cpu)[0] == torch.bfloat16  # forced
    with pytest.raises(ValueError, match="fp16 autocast is for CUDA"):
        P.resolve_precision("fp16", cpu)
    with pytest.raises(ValueError, match="must be one of"):
        P.resolve_precision("int8", cpu)
    monkeypatch.setattr(P, "cpu_bf16_native", lambda: False)
    dtype, why = P.resolve_precision("auto", cpu)
    assert dtype is None and "no native bf16" in why
    monkeypatch.setattr(P, "cpu_bf16_native", lambda: True)
    assert P.resolve_precision("auto", cpu)[0] == torch.bfloat16
    no_flags = tmp_path / "cpuinfo"
    no_flags.write_text("flags\t: fpu sse2 avx2 avx512f avx512bw\n")
    monkeypatch.undo()
    assert P.cpu_bf16_native(no_flags) is False  # AVX-512 without avx512_bf16 only emulates bf16


def _small_ultralight(**gen):
    from lab.core.config import deep_merge
    from lab.core.registry import create_animator

    cfg = deep_merge(create_animator("ultralight").config, SMALL)
    if gen:
        cfg = deep_merge(cfg, {"model_params": {"generator_params": gen}})
    return create_animator("ultralight", config=cfg)


def test_networks_only_bf16_autocast_keeps_losses_finite_and_fp32():
    """bf16 over the whole objective drives the SSIM/L1 fallback to -inf (cpu-training notes); the trainer autocasts
    the networks only: outputs come back fp32, keys are unchanged, and a few Adam steps keep every loss finite."""
    from lab.train.precision import autocast_networks

    torch.manual_seed(0)
    m = _small_ultralight().train()
    keys = list(m.state_dict())
    autocast_networks([*m.encoder_modules().values(), *m.decoder_modules().values()], "cpu", torch.bfloat16)
    assert list(m.state_dict()) == keys
    obj = m.training_objective(m.config["train_params"])
    opt = torch.optim.Adam([p for p in obj.generator.parameters() if p.requires_grad], lr=2e-3)
    src = torch.rand(2, 3, 64, 64)
    drv = (src + 0.1 * torch.randn_like(src)).clamp(0, 1)
    for _ in range(4):
        losses, gen = obj.generator(src, drv)
        assert gen["prediction"].dtype == torch.float32 and gen["kp_source"]["value"].dtype == torch.float32
        total = sum(losses.values())
        assert all(torch.isfinite(v) for v in losses.values()), losses
        opt.zero_grad()
        total.backward()
        opt.step()


def test_untrained_decoder_renders_the_source_exactly():
    """output: warped_residual starts at the static floor: with no motion (same keypoints) the prediction is the
    source itself, in float64 to the last bits; FOMM's synthesis output does not."""
    torch.manual_seed(0)
    m = _small_ultralight().double().eval()
    x = torch.rand(2, 3, 64, 64, dtype=torch.float64)
    with torch.no_grad():
        kp = m.kp_detector(x)
        kp = {k: v.double() for k, v in kp.items()}
        pred = m.generator(x, kp_driving=kp, kp_source=kp)["prediction"]
        assert float((pred - x).abs().max()) < 1e-12
        synth = _small_ultralight(output="synthesis").double().eval()
        assert float((synth.generator(x, kp_driving=kp, kp_source=kp)["prediction"] - x).abs().max()) > 0.1
    with pytest.raises(ValueError, match="generator_params.output"):
        _small_ultralight(output="paste")


def test_config_at_resolution_keeps_the_views_and_weights_move_across_sizes():
    from lab.core.checkpoint import load_state_dict_strict
    from lab.core.registry import create_animator
    from lab.models.ultralight.model import UltralightAnimator
    from lab.train.curves import config_at_resolution

    base = UltralightAnimator().config
    c128 = config_at_resolution(base, 128)
    assert c128["dataset_params"]["frame_shape"] == [128, 128, 3]
    assert c128["model_params"]["kp_detector_params"]["scale_factor"] == 0.5
    assert c128["model_params"]["generator_params"]["dense_motion_params"]["scale_factor"] == 0.5
    assert base["model_params"]["kp_detector_params"]["scale_factor"] == 0.25  # not mutated
    assert config_at_resolution(c128, 256)["model_params"]["kp_detector_params"]["scale_factor"] == 0.25
    with pytest.raises(ValueError, match="not 1/integer"):
        config_at_resolution(base, 96)
    # FOMM: weights of the 128² phase (a 5x5 anti-aliasing kernel) load into the 256² model (13x13, its own)
    f128 = create_animator("fomm", config=config_at_resolution(create_animator("fomm").config, 128))
    f256 = create_animator("fomm")
    own = f256.kp_detector.down.weight.clone()
    assert f128.kp_detector.down.weight.shape != own.shape
    load_state_dict_strict(f256, f128.state_dict())
    assert torch.equal(f256.kp_detector.down.weight, own)
    assert torch.equal(f256.generator.first.conv.weight, f128.generator.first.conv.weight)
    with pytest.raises(Exception, match="shape mismatch"):  # a real parameter mismatch is still refused
        bad = dict(f128.state_dict())
        bad["generator.first.conv.weight"] = bad["generator.first.conv.weight"][:1]
        load_state_dict_strict(f256, bad)


def test_archive_downscales_for_a_smaller_phase(tmp_path):
    rng = np.random.default_rng(0)
    vids = [VideoFrames("a", (rng.random((3, 64, 64, 3)) * 255).astype(np.uint8))]
    path = export_frames(vids, tmp_path / "a.npz")
    small = load_videos(path, frame_shape=(32, 32, 3))[0].frames
    assert small.shape == (3, 32, 32, 3) and small.dtype == np.uint8
    block = vids[0].frames.reshape(3, 32, 2, 32, 2, 3).mean(axis=(2, 4))
    subsample = vids[0].frames[:, ::2, ::2].astype(float)
    # antialiased (a local average), not a subsample: on noise it is far closer to the 2x2 block means
    assert np.abs(small.astype(float) - block).mean() < 0.6 * np.abs(subsample - block).mean()
    with pytest.raises(ValueError, match="smaller than"):
        load_videos(path, frame_shape=(128, 128, 3))


def _curve(run):
    with open(run / "curve.csv", newline="") as f:
        return list(csv.DictReader(f))


def test_budget_and_learning_curve(tmp_path, capsys):
    """Training time is budgeted over resumes; the held-out curve starts at step 0 (the untrained model), gets a
    row at the end, a static line once, and a resume with a larger budget continues it."""
    from lab.cli import main

    rng = np.random.default_rng(1)
    vids = [VideoFrames(f"v{i}", (rng.random((5, 64, 64, 3)) * 255).astype(np.uint8)) for i in range(2)]
    archive = export_frames(vids, tmp_path / "d.npz")
    cfg = yaml.safe_load(yaml.safe_dump(SMALL))
    cfg["train_params"]["eval"] = {"frames": 4, "stride": 1}
    (tmp_path / "c.yaml").write_text(yaml.safe_dump(cfg))
    run = tmp_path / "run"
    args = ["train", "--model", "ultralight", "--data", str(archive), "--eval-data", str(archive), "--out", str(run),
            "--config", str(tmp_path / "c.yaml"), "--threads", "1", "--precision", "bf16", "--no-progress",
            "--eval-every-minutes", "1000"]
    assert main([*args, "--max-train-hours", "1e-9"]) == 0
    out = capsys.readouterr().out
    assert "precision: bf16 autocast on CPU (forced)" in out and "(1 threads)" in out
    assert "training budget of 1e-09 h spent at step 1" in out
    assert json.loads(out.strip().splitlines()[-1])["budget_spent"] is True  # what cpu_train.sh all chains on
    rows = _curve(run)
    assert [int(r["step"]) for r in rows] == [0, 1]
    static = json.loads((run / "curve_static.json").read_text())
    assert static["subset"]["driving_frames"] == 8 and static["subset"]["size"] == 64
    # the untrained static-start model is close to static (same source, a near-identity flow)
    assert abs(float(rows[0]["l1"]) - static["static"]["l1"]) < 0.02
    assert float(rows[1]["train_hours"]) > 0 and float(rows[1]["cpu_hours"]) > 0
    assert main([*args]) == 0  # same budget: nothing left to do
    out = capsys.readouterr().out
    assert "training budget of 1e-09 h already spent at step 1" in out
    assert json.loads(out.strip().splitlines()[-1])["budget_spent"] is True
    assert len(_curve(run)) == 2
    assert main([*args, "--max-train-hours", "1", "--max-steps", "3"]) == 0  # a larger budget resumes
    assert json.loads(capsys.readouterr().out.strip().splitlines()[-1])["budget_spent"] is False  # steps ran out
    rows = _curve(run)
    assert [int(r["step"]) for r in rows] == [0, 1, 3]
    assert main(["export-weights", str(run), str(tmp_path / "w.safetensors")]) == 0
    from safetensors import safe_open

    with safe_open(str(tmp_path / "w.safetensors"), "pt") as f:
        meta = json.loads(f.metadata()["facelab"])
    assert meta["steps"] == 3 and meta["train_hours"] >= 0 and "bf16" in meta["precision"]
    # trained at 64², described at the model's own 256² (what loaders build), with the views it trained on
    trained = yaml.safe_load((run / "config.yaml").read_text())["model_params"]["kp_detector_params"]
    assert meta["trained_frame_size"] == 64
    assert meta["model_params"]["kp_detector_params"]["scale_factor"] == trained["scale_factor"] * 64 / 256
    # the learning-curve report reads the run folder: one line per model, the static line, the subset
    assert main(["curves", str(run), "--out", str(tmp_path / "curves"), "--no-png"]) == 0
    md = (tmp_path / "curves" / "curves.md").read_text()
    assert "| ultralight | 64² | 3 | 6 |" in md and "| static | 64² |" in md and "2 clips of the test split" in md
    assert (tmp_path / "curves" / "curves.html").stat().st_size > 1000


def test_learning_rate_drops_at_training_hours(tmp_path, capsys):
    """``--lr-drop-hours``: 10x per milestone passed, on top of the step milestones; a resumed run takes new ones
    and says when the rate changes."""
    from lab.cli import main
    from lab.core.checkpoint import safe_load
    from lab.train.checkpointing import latest_checkpoint
    from lab.train.optim import lr_factor

    assert lr_factor(10, [5], 2.0, [1.0, 3.0]) == pytest.approx(0.01)
    assert lr_factor(4, [5], 0.5, [1.0]) == 1.0
    rng = np.random.default_rng(2)
    vids = [VideoFrames(f"v{i}", (rng.random((4, 64, 64, 3)) * 255).astype(np.uint8)) for i in range(2)]
    archive = export_frames(vids, tmp_path / "d.npz")
    (tmp_path / "c.yaml").write_text(yaml.safe_dump(SMALL))
    run = tmp_path / "run"
    args = ["train", "--model", "ultralight", "--data", str(archive), "--out", str(run), "--config",
            str(tmp_path / "c.yaml"), "--threads", "1", "--precision", "fp32", "--no-progress"]

    def lrs():
        groups = safe_load(latest_checkpoint(run))["optimizer"]["param_groups"]
        return [g["lr"] / g["initial_lr"] for g in groups]

    assert main([*args, "--max-steps", "2", "--lr-drop-hours", "1"]) == 0
    assert "learning rate" not in capsys.readouterr().out
    assert lrs() == [1.0] * len(lrs())
    assert yaml.safe_load((run / "config.yaml").read_text())["train_params"]["hour_milestones"] == [1.0]
    assert main([*args, "--max-steps", "3", "--lr-drop-hours", "0"]) == 0  # resumed: the drop is passed
    assert "learning rate x0.1 from step 2 (" in capsys.readouterr().out
    assert lrs() == pytest.approx([0.1] * len(lrs()))


def test_cpu_batch_is_sized_to_memory(monkeypatch, capsys):
    """The YAML's GPU batch is lowered to what fits (said in the log); an explicit --batch-size that cannot fit is
    refused with a message naming --batch-size, before any allocation."""
    from lab.train import cpu_batch

    monkeypatch.setattr(cpu_batch, "mem_available_mb", lambda: 8 * 1024.0)  # 8 GiB
    monkeypatch.setenv("LOCAL_WORLD_SIZE", "2")
    tp, dp = {"batch_size": 20}, {"frame_shape": [256, 256, 3]}
    cpu_batch.fit_cpu_batch(tp, dp, explicit=False, rank=0)
    assert tp["batch_size"] == int(0.8 * 8 * 1024 / 2 / cpu_batch.CPU_MB_PER_SAMPLE_256) == 4
    assert "using --batch-size 4" in capsys.readouterr().out
    with pytest.raises(ValueError, match=r"--batch-size 20 does not fit .* use --batch-size 4 or less"):
        cpu_batch.fit_cpu_batch({"batch_size": 20}, dp, explicit=True, rank=0)
    small = {"batch_size": 20}
    cpu_batch.fit_cpu_batch(small, {"frame_shape": [64, 64, 3]}, explicit=True, rank=0)  # 64²: 20 fit
    assert small["batch_size"] == 20


def test_keypoint_targets_follow_the_landmarks_and_mirror():
    from lab.train.landmarks import KEYPOINT_GROUPS, MIRROR, keypoint_targets

    rng = np.random.default_rng(0)
    lm = rng.uniform(0, 255, (2, 68, 2)).astype(np.float32)
    t = keypoint_targets(lm, (256, 256))
    assert t.shape == (2, 10, 2)
    np.testing.assert_allclose(t[0, 2], 2 * lm[0, list(KEYPOINT_GROUPS[2])].mean(0) / 255 - 1, rtol=1e-6)
    # a mirrored frame: x negated and the left/right groups swapped, so mirroring twice is the identity
    mirrored_lm = lm.copy()
    mirrored_lm[..., 0] = 255 - lm[..., 0]
    f = keypoint_targets(lm, (256, 256), flip=True)
    np.testing.assert_allclose(f[:, :, 0], -t[:, list(MIRROR), 0], rtol=1e-6)
    np.testing.assert_allclose(f[:, 4], keypoint_targets(mirrored_lm, (256, 256))[:, 4], atol=1e-6)  # the nose
    assert sorted(MIRROR) == list(range(10)) and all(MIRROR[MIRROR[k]] == k for k in range(10))


def test_pair_dataset_carries_targets_through_the_flips():
    from lab.train.data import PairDataset

    lm = np.full((3, 68, 2), np.nan, np.float32)
    lm[:2] = np.random.default_rng(1).uniform(0, 63, (2, 68, 2))
    v = VideoFrames("v", np.zeros((3, 64, 64, 3), np.uint8), landmarks=lm, landmark_size=(64, 64))
    ds = PairDataset([v], num_repeats=50, augmentation_params={"flip_param": {"horizontal_flip": True,
                                                                               "time_flip": True}})
    seen_nan = 0
    for i in range(50):
        item = ds[i]
        assert item["kp_target_source"].shape == (10, 2)
        seen_nan += int(torch.isnan(item["kp_target_driving"]).any())
    assert 0 < seen_nan < 50  # frame 2 has no face: its target is NaN, the others are not
    plain = PairDataset([VideoFrames("v", v.frames)], num_repeats=2)
    assert "kp_target_source" not in plain[0]


def test_landmark_loss_skips_faceless_frames_and_freeze_holds_weights(tmp_path):
    from lab.models.ultralight.objective import landmark_l1
    from lab.train.optim import frozen_params

    kp = torch.zeros(2, 10, 2, requires_grad=True)
    target = torch.ones(2, 10, 2)
    target[1] = float("nan")
    loss = landmark_l1(kp, target)
    loss.backward()
    assert float(loss) == pytest.approx(1.0) and torch.isfinite(kp.grad).all()
    assert float(landmark_l1(kp, torch.full((2, 10, 2), float("nan")))) == 0.0
    m = _small_ultralight()
    obj = m.training_objective({**m.config["train_params"], "loss_weights": {
        **m.config["train_params"]["loss_weights"], "keypoint_landmarks": 20}})
    src = torch.rand(2, 3, 64, 64)
    losses, _ = obj.generator(src, src.flip(-1), kp_target_source=torch.zeros(2, 10, 2),
                              kp_target_driving=torch.zeros(2, 10, 2))
    assert "keypoint_landmarks" in losses and obj.description["keypoint_landmarks"].startswith("L1 weight 20")
    frozen = frozen_params(obj.generator, {"steps": 3, "modules": ["generator.dense_motion_network"]})
    assert frozen and all(any(p is q for q in m.generator.dense_motion_network.parameters()) for p in frozen)
    with pytest.raises(ValueError, match="no module generator.nope"):
        frozen_params(obj.generator, {"steps": 3, "modules": ["generator.nope"]})


def test_trainer_attaches_landmarks_and_freezes(tmp_path, capsys):
    """With keypoint_landmarks on, the trainer computes and caches the archive's landmarks once (no face in noise:
    NaN targets, the loss term 0) and the frozen dense motion keeps its initial weights while the rest trains."""
    from lab.cli import main
    from lab.core.checkpoint import safe_load
    from lab.core.registry import create_animator
    from lab.train.checkpointing import latest_checkpoint
    from lab.train.landmarks import landmark_cache_path

    rng = np.random.default_rng(2)
    archive = export_frames([VideoFrames("v", (rng.random((4, 64, 64, 3)) * 255).astype(np.uint8))], tmp_path / "d.npz")
    noise = export_frames([VideoFrames("v", (rng.random((4, 64, 64, 3)) * 255).astype(np.uint8))], tmp_path / "n.npz")
    np.save(landmark_cache_path(archive), rng.uniform(10, 50, (4, 68, 2)).astype(np.float32))  # a cached face
    cfg = yaml.safe_load(yaml.safe_dump(SMALL))
    cfg["train_params"].update(loss_weights={"keypoint_landmarks": 20},
                               freeze={"steps": 5, "modules": ["generator.dense_motion_network"]},
                               keypoint_pretrain={"steps": 3, "batch_size": 2})
    (tmp_path / "c.yaml").write_text(yaml.safe_dump(cfg))
    args = ["train", "--model", "ultralight", "--config", str(tmp_path / "c.yaml"), "--max-steps", "2", "--no-progress"]
    assert main([*args, "--data", str(noise), "--out", str(tmp_path / "noise")]) == 0
    assert landmark_cache_path(noise).is_file()  # computed once (no face in noise: NaN, nothing to pretrain)
    assert np.isnan(np.load(landmark_cache_path(noise))).all()
    assert main([*args, "--data", str(archive), "--out", str(tmp_path / "run")]) == 0
    assert "keypoints pretrained on landmarks, 3 steps" in capsys.readouterr().out
    assert "keypoint_landmarks" in (tmp_path / "run" / "log.csv").read_text().splitlines()[0]
    ck = safe_load(latest_checkpoint(tmp_path / "run"))
    torch.manual_seed(int(ck["config"]["train_params"]["seed"]))
    init = create_animator("ultralight", config=ck["config"]).state_dict()
    assert not torch.equal(ck["model"]["kp_detector.kp.weight"], init["kp_detector.kp.weight"])
    dm = [k for k in init if k.startswith("generator.dense_motion_network.") and "running" not in k
          and "num_batches" not in k]
    assert dm and all(torch.equal(ck["model"][k], init[k]) for k in dm)
    assert not torch.equal(ck["model"]["generator.final.weight"], init["generator.final.weight"])


def _resume_when_paused(run_dir, seen: list, hold: float) -> None:
    """Wait (up to 10 s) for the run's PAUSED file, note it in ``seen``, hold the pause ``hold`` s, send SIGUSR2."""
    import os
    import signal
    import time

    from lab.train.pause import PAUSED_FILE

    for _ in range(500):
        if (run_dir / PAUSED_FILE).is_file():
            seen.append(True)
            break
        time.sleep(0.02)
    time.sleep(hold)
    os.kill(os.getpid(), signal.SIGUSR2)


def test_pause_switch_waits_between_steps_and_reports_the_wait(tmp_path):
    """SIGUSR1 pauses at the next step boundary (PAUSED file written), SIGUSR2 resumes; the returned wait is
    what the trainer keeps out of the training-time budget."""
    import os
    import signal
    import threading

    from lab.train.pause import PAUSED_FILE, PauseSwitch

    sw = PauseSwitch(tmp_path)
    try:
        assert sw.wait_if_paused() == 0.0
        os.kill(os.getpid(), signal.SIGUSR1)
        seen: list[bool] = []
        t = threading.Thread(target=_resume_when_paused, args=(tmp_path, seen, 0.3))
        t.start()
        waited = sw.wait_if_paused()
        t.join()
        assert seen == [True]
        assert waited >= 0.3
        assert not (tmp_path / PAUSED_FILE).exists()
    finally:
        sw.close()
    assert signal.getsignal(signal.SIGUSR1) == signal.SIG_DFL


def test_a_pause_asked_for_during_set_up_is_held_until_the_first_step(tmp_path, monkeypatch, capsys):
    """scripts/pause_training.sh signals every training process; one still loading its frames used to die of
    SIGUSR1's default action. Now the switch is installed before the data is read, and the pause is held at the
    first step boundary (here the keypoint pretraining's), outside the training time."""
    import os
    import signal
    import threading

    import lab.train.loop as loop
    from lab.cli import main
    from lab.train.landmarks import landmark_cache_path

    rng = np.random.default_rng(2)
    archive = export_frames([VideoFrames("v", (rng.random((4, 64, 64, 3)) * 255).astype(np.uint8))], tmp_path / "d.npz")
    np.save(landmark_cache_path(archive), rng.uniform(10, 50, (4, 68, 2)).astype(np.float32))
    cfg = yaml.safe_load(yaml.safe_dump(SMALL))
    cfg["train_params"].update(loss_weights={"keypoint_landmarks": 20}, keypoint_pretrain={"steps": 2, "batch_size": 2})
    (tmp_path / "c.yaml").write_text(yaml.safe_dump(cfg))
    run = tmp_path / "run"
    seen: list[bool] = []
    real_dataset = loop._dataset

    def loading(*args, **kwargs):  # the set-up: the pause is asked for while the frames are being read
        assert signal.getsignal(signal.SIGUSR1) not in (signal.SIG_DFL, None), "SIGUSR1 would end the run"
        os.kill(os.getpid(), signal.SIGUSR1)
        threading.Thread(target=_resume_when_paused, args=(run, seen, 0.5), daemon=True).start()
        return real_dataset(*args, **kwargs)

    monkeypatch.setattr(loop, "_dataset", loading)
    assert main(["train", "--model", "ultralight", "--data", str(archive), "--out", str(run), "--config",
                 str(tmp_path / "c.yaml"), "--max-steps", "1", "--no-progress"]) == 0
    out = capsys.readouterr().out
    assert seen == [True] and "paused (SIGUSR1)" in out and "keypoints pretrained on landmarks, 2 steps" in out
    assert out.index("resumed after") < out.index("keypoints pretrained")  # held before the first pretraining step
    assert signal.getsignal(signal.SIGUSR1) == signal.SIG_DFL
