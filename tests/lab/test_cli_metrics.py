"""``facelab metrics``: JSON structure, values equal the functional ones, one-line errors."""

from __future__ import annotations

import json

import numpy as np
import pytest

from lab.cli import main
from metrics import l1, psnr, ssim

OBAMA = "clips/FuxiVirtualHuman+styletalk/Obama_clip1.mp4"


def _frames(n: int, seed: int, size: int = 32) -> np.ndarray:
    return np.random.default_rng(seed).integers(0, 256, (n, size, size, 3), dtype=np.uint8)


def _folder(path, frames):
    from datasets.video import write_frames

    write_frames(path, frames)
    return str(path)


@pytest.fixture
def empty_weights(tmp_path, monkeypatch):
    from metrics.backends import clear_backend_cache

    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "torch"))
    monkeypatch.setenv("FACELAB_WEIGHTS", str(tmp_path / "facelab"))
    clear_backend_cache()
    yield tmp_path / "torch" / "hub" / "checkpoints"
    clear_backend_cache()


def test_json_structure_and_values(tmp_path, capsys, empty_weights):
    pred, gt = _frames(3, 0), _frames(3, 1)
    rc = main(["metrics", _folder(tmp_path / "p", pred), _folder(tmp_path / "g", gt), "--json",
               "--csv", str(tmp_path / "out.csv")])
    captured = capsys.readouterr()
    assert rc == 0
    doc = json.loads(captured.out)
    assert set(doc) == {"frames", "summary", "provenance"}
    assert [f["frame"] for f in doc["frames"]] == [0, 1, 2]
    assert set(doc["summary"]) == {"l1", "psnr", "ssim", "akd", "aed"}  # lpips left out: no AlexNet weights
    assert "lpips left out" in captured.err and "alexnet-owt-7be5be79.pth" in captured.err
    assert doc["summary"]["l1"]["value"] == pytest.approx(l1(pred, gt), rel=1e-12)
    assert doc["summary"]["psnr"]["value"] == pytest.approx(psnr(pred, gt), rel=1e-12)
    assert doc["summary"]["ssim"]["value"] == pytest.approx(ssim(pred, gt), rel=1e-12)
    np.testing.assert_allclose([f["l1"] for f in doc["frames"]], l1(pred, gt, reduction="none"))
    # noise has no face: AKD/AED skipped (null), counted as missing in the ground truth
    assert all(f["akd"] is None and f["akd_status"] == "no_face_gt" for f in doc["frames"])
    assert doc["summary"]["akd"]["value"] is None and doc["summary"]["akd"]["skipped_no_face_gt"] == 3
    prov = doc["provenance"]
    assert prov["image_size"] == [32, 32] and prov["frames"] == 3
    assert prov["metrics"]["akd"]["backend"] == "dlib" and not prov["metrics"]["akd"]["protocol"]
    assert "not the FOMM/pose-evaluation convention" in doc["summary"]["aed"]["backend"]
    assert (tmp_path / "out.csv").is_file() and (tmp_path / "out.csv.provenance.json").is_file()


def test_table_output(tmp_path, capsys):
    f = _frames(2, 0)
    assert main(["metrics", _folder(tmp_path / "p", f), _folder(tmp_path / "g", f), "--metrics", "l1,psnr"]) == 0
    out = capsys.readouterr().out
    assert "l1 ↓" in out and "0.0000" in out and "psnr ↑" in out and "inf" in out


def test_length_mismatch_is_one_line_error(tmp_path, capsys):
    p, g = _folder(tmp_path / "p", _frames(3, 0)), _folder(tmp_path / "g", _frames(2, 1))
    assert main(["metrics", p, g, "--metrics", "l1"]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "equal length" in err and "Traceback" not in err
    assert main(["metrics", p, g, "--metrics", "l1", "--max-frames", "2", "--json"]) == 0
    assert len(json.loads(capsys.readouterr().out)["frames"]) == 2


def test_frame_size_mismatch_is_an_error(tmp_path, capsys):
    p, g = _folder(tmp_path / "p", _frames(2, 0, 32)), _folder(tmp_path / "g", _frames(2, 1, 40))
    assert main(["metrics", p, g, "--metrics", "l1"]) == 2
    assert "frame sizes differ" in capsys.readouterr().err


@pytest.mark.parametrize(
    ("option", "missing"),
    [
        (["--backend", "face-alignment", "--metrics", "akd"], "2DFAN4-11f355bf06.pth.tar"),
        (["--aed-backend", "openface", "--metrics", "aed"], "openface.pth"),
        (["--metrics", "l1,lpips"], "alexnet-owt-7be5be79.pth"),
    ],
)
def test_missing_protocol_weights_is_one_line_error(tmp_path, capsys, empty_weights, option, missing):
    f = _folder(tmp_path / "p", _frames(2, 0))
    assert main(["metrics", f, f, *option]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "Traceback" not in err
    assert missing in err and str(empty_weights) in err and err.startswith("facelab metrics: error:")


def test_bad_metric_name(tmp_path, capsys):
    f = _folder(tmp_path / "p", _frames(1, 0))
    assert main(["metrics", f, f, "--metrics", "l1,fid"]) == 2
    assert "subset of l1,psnr,ssim,lpips,akd,aed" in capsys.readouterr().err


@pytest.mark.data
def test_video_input_real_clip(data_root, tmp_path, capsys):
    """A real clip against itself shifted by 4 px in x and y, read from mp4 (GT) and PNG frames (PRED)."""
    from datasets.video import read_frames

    gt_path = data_root / OBAMA
    gt = read_frames(gt_path, max_frames=3)
    pred = _folder(tmp_path / "p", np.roll(gt, (4, 4), axis=(1, 2)))
    assert main(["metrics", pred, str(gt_path), "--max-frames", "3", "--metrics", "l1,akd", "--json"]) == 0
    doc = json.loads(capsys.readouterr().out)
    assert doc["summary"]["akd"]["value"] == pytest.approx(4.0, abs=1.0)
    assert doc["summary"]["akd"]["frames_used"] == 3
    assert doc["summary"]["l1"]["value"] == pytest.approx(l1(np.roll(gt, (4, 4), axis=(1, 2)), gt), rel=1e-12)
