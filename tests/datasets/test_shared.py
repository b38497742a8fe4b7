"""datasets.shared: MANIFEST/pairs/splits parsing (real set via ``data_root``) and malformed-CSV errors."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from datasets.errors import DataError
from datasets.shared import SharedData, shared_data_root, shared_voxceleb


@pytest.fixture(scope="module")
def sd(data_root) -> SharedData:
    return SharedData(data_root)


def test_root_follows_facelab_data(monkeypatch, tmp_path):
    monkeypatch.setenv("FACELAB_DATA", str(tmp_path))
    assert shared_data_root() == tmp_path.resolve()
    monkeypatch.delenv("FACELAB_DATA")
    assert shared_data_root() == (Path(__file__).resolve().parents[2].parent / "shared" / "data").resolve()
    with pytest.raises(DataError, match=r"shared data set not found at .* \(set FACELAB_DATA"):
        SharedData(tmp_path)


def _csv_rows(root: Path, name: str) -> list[dict]:
    import csv

    with open(root / name, newline="") as f:
        return list(csv.DictReader(f))


@pytest.mark.data
def test_counts_match_the_csv_files(sd, data_root):
    """Counts read from the CSVs themselves (the set grows: never pinned numbers), parsed independently here."""
    manifest = _csv_rows(data_root, "MANIFEST.csv")
    split = {r["file"]: r["split"] for r in _csv_rows(data_root, "splits.csv")}
    by_kind = {k: [r for r in manifest if r["kind"] == k] for k in ("clip", "frames", "image")}
    moving = by_kind["clip"] + by_kind["frames"]
    assert len(sd) == len(manifest) > 0
    assert len(sd.clips()) == len(moving) and len(sd.images()) == len(by_kind["image"])
    assert len(sd.items(kind="frames")) == len(by_kind["frames"]) and len(sd.items(kind="clip")) == len(by_kind["clip"])
    for s in ("train", "test"):
        assert len(sd.clips(split=s)) == sum(split[r["file"]] == s for r in moving) > 0
    for pc in ("large", "moderate", "frontal"):
        assert len(sd.clips(pose_class=pc)) == sum(r["pose_class"] == pc for r in moving)
    assert set(split) == {r["file"] for r in manifest}  # every manifest row has a split
    # the README names the test split's large-pose clips
    assert {it.file.split("/")[-1] for it in sd.clips(split="test", pose_class="large")} == {
        "00015.mp4", "nice_clip1.mp4", "furious_talk1_clip2.mp4"}
    assert all(it.split in ("train", "test") for it in sd)


@pytest.mark.data
def test_rows_are_typed_with_absolute_paths(sd):
    for it in sd:
        assert it.path.is_absolute() and it.path.exists(), it.file
        assert (it.kind == "frames") == it.file.endswith("/") == it.path.is_dir()
    eamm = sd.item("clips/jixinya+EAMM/M030_sad_3_001.mp4")
    assert (eamm.width, eamm.height, eamm.frames, eamm.fps, eamm.audio) == (1920, 1080, 112, 30.0, True)
    assert eamm.identity_group == "mead_M030" and eamm.name == "jixinya+EAMM/M030_sad_3_001"
    img = sd.images()[0]
    assert img.fps is None and img.frames == 1 and img.pose_class == "n/a"
    assert sd.split_of("clips/jixinya+EAMM/M030_sad_3_001.mp4") == "train"
    with pytest.raises(KeyError):
        sd.split_of("clips/none.mp4")
    with pytest.raises(ValueError, match="kind must be one of"):
        sd.items(kind="video")


@pytest.mark.data
def test_pairs(sd):
    pairs = sd.pairs()
    rows = _csv_rows(sd.root, "pairs.csv")
    assert len(pairs) == len(rows) > 0
    assert len(sd.pairs("cross_identity")) == sum(r["relation"] == "cross_identity" for r in rows)
    assert len(sd.pairs("cross_identity")) + len(sd.pairs("same_identity")) == len(rows)
    assert all(p.source.split == p.driving.split for p in pairs)  # README: both items in the same split
    dpe = [p for p in sd.pairs("cross_identity") if p.source.file == "clips/OpenTalker+DPE/s.mp4"]
    assert [p.driving.file for p in dpe] == ["clips/OpenTalker+DPE/d.mp4"]
    assert {p.split for p in sd.pairs(split="test")} == {"test"}


@pytest.mark.data
def test_voxceleb_view(sd, data_root):
    test = sd.as_voxceleb("test")
    assert len(test) == len(sd.clips(split="test")) and len(shared_voxceleb("train", data_root)) == len(
        sd.clips(split="train"))
    assert len(set(test.names)) == len(test)
    frames = [it for it in sd.as_voxceleb("train") if it.kind == "frames"]
    assert [it.name for it in frames] == ["Hangz-nju-cuhk+Talking-Face_PC-AVS/517600078",
                                          "Hangz-nju-cuhk+Talking-Face_PC-AVS/681600002"]
    assert all(it.path.exists() for it in test)


@pytest.mark.data
def test_sha256_of_a_clip_and_a_frame_folder(sd):
    assert sd.item("clips/OpenTalker+DPE/d.mp4").verify()
    assert sd.item("clips/Hangz-nju-cuhk+Talking-Face_PC-AVS/681600002/").verify()


_HEADER = ("file,source_repo,source_path,source_commit,licence,kind,width,height,frames,fps,duration_s,audio,"
           "pose_class,identity_group,notes,sha256\n")


def _mini(tmp_path, rows, splits="", pairs=""):
    (tmp_path / "MANIFEST.csv").write_text(_HEADER + rows)
    if splits:
        (tmp_path / "splits.csv").write_text("file,split\n" + splits)
    if pairs:
        (tmp_path / "pairs.csv").write_text("source,driving,relation\n" + pairs)
    return tmp_path


def test_malformed_csvs(tmp_path):
    row = "clips/a.mp4,o/r,a.mp4,c,MIT,clip,256,256,10,25,0.4,no,frontal,,,0\n"
    sd = SharedData(_mini(tmp_path, row, splits="clips/a.mp4,test\n", pairs="clips/a.mp4,clips/a.mp4,same_identity\n"))
    assert sd.split_of("clips/a.mp4") == "test" and len(sd.pairs("same_identity", split="test")) == 1
    with pytest.raises(DataError, match="has kind 'movie'"):
        SharedData(_mini(tmp_path, row.replace(",clip,", ",movie,")))
    with pytest.raises(DataError, match="names clips/b.mp4, which is not in MANIFEST.csv"):
        SharedData(_mini(tmp_path, row, pairs="clips/a.mp4,clips/b.mp4,cross_identity\n"))
    shutil.rmtree(tmp_path)
    tmp_path.mkdir()
    with pytest.raises(DataError, match="has a bad width value"):
        SharedData(_mini(tmp_path, row.replace(",256,256,", ",wide,256,")))
    (tmp_path / "MANIFEST.csv").write_text("file,kind\nclips/a.mp4,clip\n")
    with pytest.raises(DataError, match="lacks the column"):
        SharedData(tmp_path)
