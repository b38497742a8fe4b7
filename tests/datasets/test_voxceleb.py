"""datasets.voxceleb: the FOMM train/test folder layout."""

from __future__ import annotations

import numpy as np
import pytest
from PIL import Image

from datasets.errors import DataError
from datasets.voxceleb import VideoItem, VoxCelebFolder


@pytest.fixture()
def vox(tmp_path, make_clip, gray):
    root = tmp_path / "vox"
    for split in ("train", "test"):
        (root / split).mkdir(parents=True)
    make_clip(root / "test" / "id10_b.mp4", gray(6))
    make_clip(root / "test" / "id2_a.webm", gray(5), codec="libvpx-vp9")
    frames = root / "test" / "id10_a"
    frames.mkdir()
    for i in range(4):
        Image.fromarray(np.full((32, 32, 3), i * 40, np.uint8)).save(frames / f"{i:07d}.png")
    (root / "test" / "notes.txt").write_text("not a video")
    (root / "test" / "empty_dir").mkdir()
    (root / "test" / ".hidden.mp4").write_bytes(b"")
    make_clip(root / "train" / "x.mp4", gray(3))
    return root


def test_lists_videos_and_frame_folders_sorted(vox):
    test = VoxCelebFolder(vox, split="test")
    assert test.names == ["id2_a", "id10_a", "id10_b"]  # natural order
    assert [it.kind for it in test] == ["video", "frames", "video"]
    assert all(isinstance(it, VideoItem) and it.path.is_absolute() for it in test)
    assert len(test) == 3 and test[1].name == "id10_a"
    assert len(test[1].open()) == 4 and test[2].open().info.num_frames == 6
    assert VoxCelebFolder(vox, split="train").names == ["x"]


def test_layout_errors_are_data_errors(tmp_path, vox):
    with pytest.raises(DataError, match="does not exist"):
        VoxCelebFolder(tmp_path / "nowhere")
    (tmp_path / "flat").mkdir()
    with pytest.raises(DataError, match="not in the VoxCeleb layout: expected a 'test' folder"):
        VoxCelebFolder(tmp_path / "flat")
    (tmp_path / "flat" / "test").mkdir()
    (tmp_path / "flat" / "test" / "readme.md").write_text("x")
    with pytest.raises(DataError, match="holds no video"):
        VoxCelebFolder(tmp_path / "flat", split="test")
    with pytest.raises(ValueError, match="split must be one of"):
        VoxCelebFolder(vox, split="val")
    with pytest.raises(DataError, match="no test videos"):
        VoxCelebFolder.from_items([], tmp_path, "test")
