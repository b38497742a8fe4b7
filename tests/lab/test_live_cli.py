"""``facelab conference --realtime``: a clip played as a camera through the live call, with its report."""

from __future__ import annotations

import json

import pandas as pd
import pytest

from lab.cli import main
from lab.conference.measure import STAGES


def _check_run(out, n: int, printed: str) -> dict:
    summary = json.loads((out / "realtime_summary.json").read_text())
    rows = pd.read_csv(out / "realtime_frames.csv")
    assert len(rows) == n - 1 and list(rows["frame"]) == list(range(1, n))
    assert summary["frames_processed"] == int(rows["processed"].sum()) >= 1
    assert summary["frames_processed"] + summary["frames_dropped"] == n - 1  # every camera frame accounted for
    assert summary["fps"] > 0 and summary["seconds"] > 0
    assert all(summary[f"ms_{s}"] >= 0 for s in STAGES) and summary["slowest_stage"] in STAGES
    from datasets.video import read_frames

    assert len(read_frames(out / "realtime.mp4")) == n - 1  # what the receiver saw at each camera frame
    for text in ("frames/s end to end", "dropped", "uplink:", "per stage", "bottleneck:", "decoder"):
        assert text in printed, text
    return summary


def test_realtime_on_the_demo_clip(tmp_path, capsys):
    out = tmp_path / "rt"
    assert main(["conference", "demo", "--realtime", "--model", "static", "--gate", "off", "--max-frames", "8",
                 "--out", str(out)]) == 0
    s = _check_run(out, 8, capsys.readouterr().out)
    assert s["model"] == "static" and s["runtime"] == "torch" and s["motion_bits"] == 0  # static sends no motion
    assert s["camera_fps"] == 25.0 and s["camera_size"] == "512x512"


def test_realtime_bad_runtime_is_one_line(tmp_path, capsys):
    assert main(["conference", "demo", "--realtime", "--model", "static", "--runtime", "tensorrt",
                 "--out", str(tmp_path / "x")]) == 2
    assert "runtime must be one of" in capsys.readouterr().err


@pytest.mark.data
@pytest.mark.slow
def test_realtime_ultralight_on_a_shared_upper_body_clip(data_root, tmp_path, capsys):
    clip = data_root / "clips" / "filby89+spectre" / "M026_level_3_disgusted_018.mp4"  # 1920x1080, face centre
    out = tmp_path / "rt"
    assert main(["conference", str(clip), "--realtime", "--model", "ultralight", "--max-frames", "10",
                 "--out", str(out)]) == 0
    s = _check_run(out, 10, capsys.readouterr().out)
    assert s["camera_size"] == "1920x1080" and s["gate"] == "landmarks"
    x0, y0, x1, y1 = s["crop_box"]
    assert 0 < x1 - x0 < 1080  # a face box inside the upper-body frame: the head is composed back into it
    assert s["frames_sent"] == 0 or s["motion_bits"] > 0
