"""The reconstruction evaluation runner (mirrors lab/evaluation/reconstruction.py) and ``facelab evaluate``."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from lab.core.animate import load_animator
from lab.evaluation.reconstruction import evaluate_reconstruction, iter_eval_videos, reconstruct, table2_markdown

STATIC = [load_animator("static")]


def test_static_reconstruction_is_frame_zero_and_metrics_match(data_root, tmp_path):
    from lab import create_animator
    from metrics import l1

    videos = list(iter_eval_videos(data_root, "test", max_frames=4))[:2]
    assert len(videos) == 2 and all(f.shape == (4, 256, 256, 3) for _, f in videos)
    name, frames = videos[0]
    pred = reconstruct(create_animator("static"), frames)
    assert np.array_equal(pred, np.repeat(frames[:1], 4, axis=0))  # source = frame 0, absolute motion

    res = evaluate_reconstruction(STATIC, videos, out_dir=tmp_path, metrics=("l1", "akd"), progress=False)
    row = res.summary[0]
    assert row["frames"] == 8 and row["videos"] == 2
    expected = np.mean([l1(np.repeat(f[:1], 4, axis=0), f, reduction="none") for _, f in videos])
    assert row["l1"] == pytest.approx(expected, rel=1e-6)  # pooled over all frames of all videos
    df = pd.read_csv(tmp_path / "per_frame.csv")
    assert set(df.columns) >= {"model", "video", "frame", "l1", "akd", "akd_status"}
    assert df[df.frame == 0].l1.max() == 0.0 and df[df.frame == 0].akd.max() == 0.0  # frame 0 is the source
    md = (tmp_path / "table2.md").read_text()
    assert md.startswith("| method | L1 | AKD |") and "| static |" in md
    assert (tmp_path / "provenance.json").is_file()


def test_resume_skips_finished_videos(tmp_path):
    rng = np.random.default_rng(0)
    videos = [(f"v{i}", (rng.random((3, 256, 256, 3)) * 255).astype(np.uint8)) for i in range(2)]
    a = evaluate_reconstruction(STATIC, videos, out_dir=tmp_path, metrics=("l1", "psnr"), progress=False)
    b = evaluate_reconstruction(STATIC, videos, out_dir=tmp_path, metrics=("l1", "psnr"), progress=False)
    assert b.provenance["render_seconds_this_run"]["static"] == 0.0  # nothing recomputed
    assert a.summary[0]["l1"] == b.summary[0]["l1"]
    assert len(pd.read_csv(tmp_path / "per_frame.csv")) == 6
    assert "| static |" in table2_markdown(b.summary, ("l1", "psnr"))
    # an interrupted attempt left v1 half-scored: the rerun scores v1 again, without duplicate rows
    df = pd.read_csv(tmp_path / "per_frame.csv")
    df.iloc[:-1].to_csv(tmp_path / "per_frame.csv", index=False)
    c = evaluate_reconstruction(STATIC, videos, out_dir=tmp_path, metrics=("l1", "psnr"), progress=False)
    again = pd.read_csv(tmp_path / "per_frame.csv")
    assert len(again) == 6 and not again.duplicated(["model", "video", "frame"]).any()
    assert c.provenance["render_seconds_this_run"]["static"] > 0 and c.summary[0]["l1"] == a.summary[0]["l1"]


def test_evaluate_cli(data_root, tmp_path, capsys):
    from lab.cli import main

    rc = main(["evaluate", "--models", "static", "--data", str(data_root), "--out", str(tmp_path),
               "--max-frames", "2", "--metrics", "l1"])
    assert rc == 0
    out = capsys.readouterr().out
    assert "| static |" in out and "offline" in out
    assert main(["evaluate", "--models", "static", "--out", str(tmp_path), "--checkpoint", "static"]) == 2


# ------------------------------------------------------------------ weights identity, determinism, resume
@pytest.fixture
def no_weights(tmp_path, monkeypatch):
    """Empty weight folders, and ultralight's shipped file name pointed elsewhere (as before it is committed)."""
    from dataclasses import replace

    from lab.models.ultralight.model import UltralightAnimator

    monkeypatch.setenv("FACELAB_WEIGHTS", str(tmp_path / "no-weights"))
    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "no-torch"))
    monkeypatch.setattr(UltralightAnimator, "info",
                        replace(UltralightAnimator.info, checkpoint_file="lab/models/ultralight/weights/absent.st"))


@pytest.fixture(scope="module")
def tiny_videos():
    from datasets.demo import demo_driving

    f = demo_driving(6)
    return [("clip-a", f[:2]), ("clip-b", f[2:4]), ("clip-c", f[4:6])]


@pytest.fixture
def tiny_archive(tmp_path, tiny_videos):
    from lab.train.data import VideoFrames, export_frames

    return export_frames([VideoFrames(name=n, frames=f, source=n) for n, f in tiny_videos], tmp_path / "tiny.npz")


def _ultralight(videos, out, checkpoint="default"):
    """ultralight loaded now (under the test's weight folders) and evaluated."""
    return evaluate_reconstruction([load_animator("ultralight", checkpoint)], videos, out_dir=out,
                                   metrics=("l1", "psnr"), progress=False)


def test_two_cli_runs_without_weights_agree(no_weights, tiny_archive, tmp_path, capsys):
    from lab.cli import main

    for run in ("a", "b"):
        assert main(["evaluate", "--models", "ultralight", "--data", str(tiny_archive), "--out", str(tmp_path / run),
                     "--metrics", "l1", "--max-frames", "2"]) == 0
    assert "| ultralight |" in capsys.readouterr().out
    a, b = (pd.read_csv(tmp_path / r / "summary.csv") for r in ("a", "b"))
    assert a.equals(b) and a.weights[0] == "random init"
    rows = pd.read_csv(tmp_path / "a" / "per_frame.csv")
    assert set(rows.weights_id) == {"random-init seed 0"} and len(rows) == 6
    assert rows.equals(pd.read_csv(tmp_path / "b" / "per_frame.csv"))


@pytest.mark.slow
def test_killed_run_resumes_to_the_uninterrupted_summary(no_weights, tiny_videos, tmp_path):
    import torch

    whole = _ultralight(tiny_videos, tmp_path / "whole")

    def killed_after_two():
        yield from tiny_videos[:2]
        raise KeyboardInterrupt  # the process is killed while the third clip is being decoded

    torch.manual_seed(99)  # the caller's RNG state must not matter
    with pytest.raises(KeyboardInterrupt):
        _ultralight(killed_after_two(), tmp_path / "resumed")
    half = pd.read_csv(tmp_path / "resumed" / "per_frame.csv")
    assert sorted(half.video.unique()) == ["clip-a", "clip-b"]
    half.iloc[:-1].to_csv(tmp_path / "resumed" / "per_frame.csv", index=False)  # ... and clip-b's last row lost
    resumed = _ultralight(tiny_videos, tmp_path / "resumed")
    assert resumed.summary == whole.summary
    assert resumed.provenance["models"]["ultralight"]["weights_id"] == "random-init seed 0"
    a, b = (pd.read_csv(tmp_path / r / "per_frame.csv").sort_values(["video", "frame"], ignore_index=True)
            for r in ("whole", "resumed"))
    assert a.equals(b)


def test_resume_with_other_weights_is_refused(no_weights, tiny_videos, tmp_path, capsys):
    from lab import create_animator
    from lab.cli import main
    from lab.core.checkpoint import file_sha256, save_inference_weights

    out = tmp_path / "run"
    _ultralight(tiny_videos[:1], out)
    before = (out / "per_frame.csv").read_text()
    other = save_inference_weights(create_animator("ultralight", seed=7), tmp_path / "other.safetensors")
    sha = "sha256:" + file_sha256(other)[:16]
    with pytest.raises(ValueError, match=f"ultralight rows were made with weights random-init seed 0, this run's "
                                         f"ultralight weights are {sha}"):
        _ultralight(tiny_videos, out, checkpoint=str(other))
    assert (out / "per_frame.csv").read_text() == before  # nothing mixed in
    # the CLI says so in one line; a fresh folder with those weights records their hash in every row
    archive = tmp_path / "one.npz"
    from lab.train.data import VideoFrames, export_frames

    export_frames([VideoFrames(name=n, frames=f, source=n) for n, f in tiny_videos[:1]], archive)
    args = ["evaluate", "--models", "ultralight", "--data", str(archive), "--metrics", "l1"]
    assert main([*args, "--out", str(out), "--checkpoint", f"ultralight={other}"]) == 2
    err = capsys.readouterr().err
    assert err.startswith(f"facelab evaluate: error: cannot resume {out}: ") and "another --out" in err
    assert main([*args, "--out", str(tmp_path / "fresh"), "--checkpoint", f"ultralight={other}"]) == 0
    assert set(pd.read_csv(tmp_path / "fresh" / "per_frame.csv").weights_id) == {sha}
    # rows written before weights were recorded cannot be vouched for either
    legacy = pd.read_csv(out / "per_frame.csv").drop(columns="weights_id")
    legacy.to_csv(out / "per_frame.csv", index=False)
    with pytest.raises(ValueError, match="made with weights unrecorded"):
        _ultralight(tiny_videos, out)
