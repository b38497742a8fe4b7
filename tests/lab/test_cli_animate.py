"""``facelab animate``: one pair side by side, or every clip of a folder."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from PIL import Image

from datasets.demo import demo_driving, demo_fps, demo_source
from datasets.video import read_frames, write_video
from lab.cli import main


@pytest.fixture(scope="module")
def pair(tmp_path_factory):
    d = tmp_path_factory.mktemp("pair")
    src, drv = d / "source.png", d / "driving.mp4"
    Image.fromarray(demo_source()).save(src)
    write_video(drv, demo_driving(6), fps=demo_fps(), crf=12)
    return src, drv


def test_one_pair_side_by_side_and_metrics(pair, tmp_path, capsys):
    src, drv = pair
    out = tmp_path / "a"
    assert main(["animate", str(src), str(drv), "--models", "static", "--out", str(out)]) == 0
    grid = read_frames(out / "side_by_side.mp4")
    assert grid.shape[0] == 6 and grid.shape[2] == 2 * 256  # driving | static
    static = read_frames(out / "static.mp4")
    # static renders the source for every frame (up to the mp4's coding error)
    assert np.abs(static.astype(int) - demo_source()).mean() < 3
    table = pd.read_csv(out / "metrics.csv")
    assert list(table.model) == ["static"] and table.frames[0] == 6
    # its L1 against the moving driving frames is what metrics.l1 gives on the same decoded inputs
    assert 0 < table.l1[0] < 0.2
    assert "static" in capsys.readouterr().out


def test_folder_mode_writes_one_video_per_clip(tmp_path):
    out = tmp_path / "b"
    assert main(["animate", "--data", "demo", "--models", "static", "--max-frames", "4", "--out", str(out)]) == 0
    assert (out / "astronaut-demo.mp4").is_file()
    table = pd.read_csv(out / "metrics.csv")
    assert table["clip"].tolist() == ["astronaut-demo"] and table.l1[0] > 0


def test_argument_errors(pair, tmp_path, capsys):
    src, drv = pair
    assert main(["animate", "--models", "static", "--out", str(tmp_path)]) == 2
    assert "SOURCE and DRIVING" in capsys.readouterr().err
    assert main(["animate", str(src), str(drv), "--data", "demo", "--out", str(tmp_path)]) == 2
    assert main(["animate", str(src), str(tmp_path / "missing.mp4"), "--out", str(tmp_path)]) == 2
    assert "missing.mp4" in capsys.readouterr().err
