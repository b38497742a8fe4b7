"""datasets.video: lazy decoding of every format, limits and errors, the OpenCV fallback, encoding stats, audio."""

from __future__ import annotations

import itertools
import pickle
import sys
import tracemalloc
import types
import warnings

import numpy as np
import pytest
from PIL import Image

import datasets.video as video
from datasets.errors import DataError
from datasets.video import DataWarning, open_media, read_frames, write_frames, write_video

VIDEO_FILES = ["clip.mp4", "clip.mov", "clip.mkv", "clip.webm", "clip.avi"]


# ---------------------------------------------------------------------------------------------- formats
@pytest.mark.parametrize("name", VIDEO_FILES)
def test_video_formats_decode_to_uint8_rgb(media_dir, index_of, name):
    m = open_media(media_dir / name)
    assert m.kind == "video" and m.backend == "av"
    assert (m.info.width, m.info.height, m.info.num_frames) == (64, 48, 30)
    assert m.info.fps == pytest.approx(25)
    assert len(m) == 30 and not m.info.has_audio
    frames = m.read()
    assert frames.shape == (30, 48, 64, 3) and frames.dtype == np.uint8
    assert [index_of(f) for f in frames] == list(range(30))


def test_frame_folder_is_sorted_naturally(media_dir, index_of):
    m = open_media(media_dir / "frames")
    assert m.kind == "frames" and len(m) == 12
    assert m.info.fps == video.DEFAULT_FOLDER_FPS and m.info.codec == "png"
    assert [index_of(f) for f in m.iter_frames()] == list(range(12))  # f2 before f10


@pytest.mark.parametrize("ext", ["png", "jpg", "jpeg", "webp", "bmp"])
def test_single_images(media_dir, ext):
    want = np.load(media_dir / "image.npy")
    m = open_media(media_dir / f"image.{ext}")
    assert m.kind == "image" and len(m) == 1 and (m.info.width, m.info.height) == (50, 40)
    got = m.read()
    assert got.shape == (1, 40, 50, 3) and got.dtype == np.uint8
    if ext in ("png", "bmp", "webp"):  # lossless (the webp fixture is written lossless)
        assert np.array_equal(got[0], want)
    else:
        assert np.abs(got[0].astype(int) - want).mean() < 3


def test_image_exif_orientation_is_applied(tmp_path):
    img = np.zeros((20, 40, 3), np.uint8)
    img[:, :5] = 255  # white left edge
    exif = Image.Exif()
    exif[0x0112] = 6  # "rotate 90 CW to display"
    Image.fromarray(img).save(tmp_path / "phone.jpg", exif=exif, quality=95)
    m = open_media(tmp_path / "phone.jpg")
    assert (m.info.width, m.info.height) == (20, 40)
    f = m.frame()
    assert f.shape == (40, 20, 3) and f[:5].mean() > 200  # the left edge is now on top


def test_display_rotation_of_phone_clips(tmp_path, make_clip):
    frame = np.zeros((32, 64, 3), np.uint8)
    frame[:, :8] = 255  # white left edge of the stored (landscape) picture
    make_clip(tmp_path / "portrait.mp4", [frame] * 3, rotation=-90)  # stored 64x32, shown rotated clockwise
    m = open_media(tmp_path / "portrait.mp4")
    assert (m.info.width, m.info.height) == (32, 64)
    f = m.frame()
    assert f.shape == (64, 32, 3)
    assert f[:8].mean() > 200 and f[-8:].mean() < 50  # clockwise: the left edge is on top


# ---------------------------------------------------------------------------------------------- laziness
def test_iteration_is_lazy(tmp_path, make_clip, gray, index_of):
    make_clip(tmp_path / "long.mp4", gray(600, 64, 64, step=1))
    m = open_media(tmp_path / "long.mp4")
    it = m.iter_frames()
    assert isinstance(it, types.GeneratorType)
    assert [index_of(f, 1) for f in itertools.islice(it, 3)] == [0, 1, 2]
    it.close()
    # walking the whole clip never holds more than a couple of frames (600 frames = 7 MB)
    tracemalloc.start()
    n = sum(1 for _ in m.iter_frames())
    peak = tracemalloc.get_traced_memory()[1]
    tracemalloc.stop()
    assert n == 600 and peak < 1_000_000


def test_start_stop_step_and_caps(media_dir, index_of):
    m = open_media(media_dir / "clip.mp4")
    assert [index_of(f) for f in m.iter_frames(3, 12, 4)] == [3, 7, 11]
    assert index_of(m.frame(17)) == 17
    assert read_frames(media_dir / "clip.mp4", max_frames=5).shape[0] == 5
    assert [index_of(f) for f in video.iter_frames(media_dir / "clip.mp4", 1, 8, 3)] == [1, 4, 7]
    capped = open_media(media_dir / "clip.mp4", max_frames=7)
    assert len(capped) == 7 and capped.info.num_frames == 30
    assert [index_of(f) for f in capped.iter_frames(5)] == [5, 6]
    assert list(m.iter_frames(40)) == []
    assert len(open_media(m, max_frames=4)) == 4 and len(m) == 30  # a capped copy
    assert np.array_equal(pickle.loads(pickle.dumps(capped)).read(), capped.read())  # DataLoader workers
    with pytest.raises(ValueError):
        m.iter_frames(step=0)


def test_decoder_side_downscale(media_dir):
    m = open_media(media_dir / "clip.mp4")
    assert m.scaled_size(32) == (32, 24)
    f = next(m.iter_frames(max_side=32))
    assert f.shape == (24, 32, 3) and f.dtype == np.uint8
    assert next(open_media(media_dir / "image.png").iter_frames(max_side=25)).shape == (20, 25, 3)


# ---------------------------------------------------------------------------------------------- bad input
def _assert_one_line(err: pytest.ExceptionInfo, path) -> str:
    msg = str(err.value)
    assert "\n" not in msg and str(path.name) in msg, msg
    return msg


def test_bad_inputs_give_one_line_data_errors(tmp_path, media_dir, make_clip):
    cases = {}
    cases["notes.txt"] = "not a video or image"
    (tmp_path / "notes.txt").write_text("hello")
    cases["junk.mp4"] = "not a readable video"
    (tmp_path / "junk.mp4").write_bytes(b"\x00garbage" * 100)
    cases["empty.mp4"] = "empty file"
    (tmp_path / "empty.mp4").write_bytes(b"")
    data = (media_dir / "clip.mp4").read_bytes()
    cases["cut.mp4"] = "not a readable video"  # index (moov) at the end: cut before it
    (tmp_path / "cut.mp4").write_bytes(data[: len(data) // 2])
    png = (media_dir / "image.png").read_bytes()
    cases["cut.png"] = "truncated"
    (tmp_path / "cut.png").write_bytes(png[: len(png) // 2])
    cases["junk.png"] = "not a readable image"
    (tmp_path / "junk.png").write_bytes(b"nope")
    cases["missing.mp4"] = "does not exist"
    cases["nothing"] = "without png/jpg frames"
    (tmp_path / "nothing").mkdir()
    cases["audio_only.mp4"] = "no video stream"
    _audio_only(tmp_path / "audio_only.mp4")
    cases["zero.avi"] = "no video frames"
    _zero_frames(tmp_path / "zero.avi")
    for name, words in cases.items():
        with pytest.raises(DataError) as e:
            open_media(tmp_path / name).read()
        assert words in _assert_one_line(e, tmp_path / name), name


def _audio_only(path):
    import av

    with av.open(str(path), "w") as o:
        a = o.add_stream("aac", rate=16000, layout="mono")
        f = av.AudioFrame.from_ndarray(np.zeros((1, 4096), np.float32), format="flt", layout="mono")
        f.sample_rate, f.pts = 16000, 0
        for r in av.AudioResampler(format=a.codec_context.format.name, layout="mono", rate=16000).resample(f):
            for p in a.encode(r):
                o.mux(p)
        for p in a.encode():
            o.mux(p)


def _zero_frames(path):
    import av

    with av.open(str(path), "w") as o:
        s = o.add_stream("mpeg4", rate=25)
        s.width, s.height, s.pix_fmt = 64, 64, "yuv420p"
        o.start_encoding()


def test_truncated_tail_yields_decoded_frames_with_a_warning(tmp_path, make_clip):
    # faststart puts the index first: a cut file opens, warns, and yields the frames it holds
    make_clip(tmp_path / "fs.mp4", [np.random.default_rng(i).integers(0, 255, (64, 64, 3), np.uint8)
                                    for i in range(40)], container_options={"movflags": "+faststart"})
    data = (tmp_path / "fs.mp4").read_bytes()
    (tmp_path / "cut.mp4").write_bytes(data[: int(len(data) * 0.5)])
    with pytest.warns(DataWarning, match=r"cut\.mp4 is truncated: .* of the 40 its index lists") as w:
        m = open_media(tmp_path / "cut.mp4")
    assert len(w) == 1 and "\n" not in str(w[0].message)
    assert 0 < len(m) < 40
    with warnings.catch_warnings(record=True):  # the last, partial packets may not decode (another warning)
        warnings.simplefilter("always")
        frames = m.read()
    assert 0 < len(frames) <= len(m)
    with warnings.catch_warnings():  # evaluation code turns the warning into an error
        warnings.simplefilter("error", DataWarning)
        with pytest.raises(DataWarning):
            open_media(tmp_path / "cut.mp4")


def _noise(n: int, side: int = 64) -> list[np.ndarray]:
    return [np.random.default_rng(i).integers(0, 255, (side, side, 3), np.uint8) for i in range(n)]


def test_faststart_mp4_cut_to_30_percent_warns_and_counts_what_is_there(tmp_path):
    # issue 12: a faststart mp4 keeps its whole index at the front, so a copy cut to 30 % of its bytes opens;
    # it must say so (naming the file) instead of passing silently, and count only the frames it holds
    write_video(tmp_path / "whole.mp4", _noise(40), fps=25, container_options={"movflags": "+faststart"})
    data = (tmp_path / "whole.mp4").read_bytes()
    assert data.find(b"moov") < data.find(b"mdat")  # faststart: the index first
    (tmp_path / "my clip.mp4").write_bytes(data[: int(len(data) * 0.3)])
    with pytest.warns(DataWarning, match=r"my clip\.mp4 is truncated: .* of the 40 its index lists") as w:
        m = open_media(tmp_path / "my clip.mp4")
    assert len(w) == 1 and m.notes == [str(w[0].message)]  # Media.notes keeps it for the app's status
    assert 0 < m.info.num_frames < 20
    with warnings.catch_warnings(record=True) as w:
        warnings.simplefilter("always")
        frames = m.read()
    assert 0 < len(frames) <= m.info.num_frames < 40
    # frames decoded vs frames listed: a shortfall while decoding is a second warning, kept in the notes too
    stopped = [str(x.message) for x in w if issubclass(x.category, DataWarning)]
    assert all("my clip.mp4: decoding stopped after" in t for t in stopped)
    assert m.notes[1:] == stopped[:1]


@pytest.mark.parametrize(("ext", "codec"), [("mkv", "libx264"), ("webm", "libvpx-vp9")])
def test_cut_file_without_an_index_is_caught_by_its_header_duration(tmp_path, ext, codec):
    write_video(tmp_path / f"whole.{ext}", _noise(30, 32), fps=25, codec=codec)
    data = (tmp_path / f"whole.{ext}").read_bytes()
    (tmp_path / f"cut.{ext}").write_bytes(data[: int(len(data) * 0.5)])
    with pytest.warns(DataWarning, match=rf"cut\.{ext} is truncated: its header lists 30 frames \(1\.2 s\) but the "
                                         r"file holds \d+"):
        m = open_media(tmp_path / f"cut.{ext}")
    assert 0 < len(m) < 30
    with warnings.catch_warnings():  # the whole file: no warning
        warnings.simplefilter("error", DataWarning)
        assert len(open_media(tmp_path / f"whole.{ext}")) == 30


def test_decoding_that_stops_early_warns(media_dir, monkeypatch):
    m = open_media(media_dir / "clip.mp4")
    m.info = video.MediaInfo(64, 48, 35, 25.0, False, "h264")  # claims 5 frames more than the file has
    with pytest.warns(DataWarning, match=r"clip\.mp4: decoding stopped after 30 frames"):
        assert len(m.read()) == 30


def test_absurd_sizes_are_refused(tmp_path, make_clip, gray, monkeypatch):
    Image.new("RGB", (video.MAX_SIDE + 4, 8)).save(tmp_path / "wide.png")
    with pytest.raises(DataError, match="limit is 4096 px") as e:
        open_media(tmp_path / "wide.png")
    _assert_one_line(e, tmp_path / "wide.png")
    make_clip(tmp_path / "wide.mp4", [np.zeros((16, video.MAX_SIDE + 16, 3), np.uint8)] * 2)
    with pytest.raises(DataError, match="limit is 4096 px"):
        open_media(tmp_path / "wide.mp4")
    # frame-count limit: lowered here instead of encoding 20 001 frames
    make_clip(tmp_path / "long.mp4", gray(30))
    monkeypatch.setattr(video.probe, "MAX_FRAMES", 20)  # the module whose check reads it
    with pytest.raises(DataError, match=r"has 30 frames; the limit is 20 \(pass max_frames") as e:
        open_media(tmp_path / "long.mp4")
    _assert_one_line(e, tmp_path / "long.mp4")
    assert len(open_media(tmp_path / "long.mp4", max_frames=25)) == 25  # an explicit cap lifts it


def test_frame_folder_with_mixed_sizes(tmp_path):
    Image.new("RGB", (32, 32)).save(tmp_path / "0.png")
    Image.new("RGB", (16, 32)).save(tmp_path / "1.png")
    with pytest.raises(DataError, match="1.png is 16x32 px but the first frame"):
        open_media(tmp_path).read()


# ---------------------------------------------------------------------------------------------- OpenCV
def test_opencv_fallback_when_av_is_missing(media_dir, monkeypatch, index_of):
    pytest.importorskip("cv2")
    with_av = open_media(media_dir / "clip.mp4").read()
    monkeypatch.setitem(sys.modules, "av", None)  # `import av` now raises ImportError
    m = open_media(media_dir / "clip.mp4")
    assert m.backend == "cv2"
    assert (m.info.width, m.info.height, m.info.fps) == (64, 48, 25)
    frames = m.read()
    assert frames.shape == with_av.shape and frames.dtype == np.uint8
    assert np.abs(frames.astype(int) - with_av).mean() < 1.0  # same picture, RGB order
    assert [index_of(f) for f in m.iter_frames(2, 10, 3)] == [2, 5, 8]
    with pytest.raises(ImportError, match="needs PyAV"):
        write_video(media_dir / "never.mp4", with_av, 25)


def test_module_imports_without_av_or_cv2():
    import subprocess

    code = ("import sys; sys.modules['av'] = None; sys.modules['cv2'] = None; sys.modules['dlib'] = None\n"
            "import datasets, datasets.video, datasets.crop, datasets.shared, datasets.demo\n"
            "print(sorted(m for m in ('av', 'cv2', 'dlib', 'scipy', 'torch') if sys.modules.get(m)))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"


# ---------------------------------------------------------------------------------------------- writing
def _moving(n=25, h=64, w=96):
    y, x = np.mgrid[0:h, 0:w]
    return [np.stack([(x * 3 + i * 5) % 256, (y * 4 + i * 3) % 256, ((x + y) * 2 + i) % 256], -1).astype(np.uint8)
            for i in range(n)]


def test_encode_stats_crf_and_bit_rate(tmp_path):
    frames = _moving()
    hi = write_video(tmp_path / "crf18.mp4", frames, 25, crf=18)
    lo = write_video(tmp_path / "crf40.mp4", frames, 25, crf=40)
    assert hi.total_bytes > 2 * lo.total_bytes
    for st in (hi, lo):
        assert st.num_frames == 25 and len(st.packet_sizes) == 25 and st.total_bytes == sum(st.packet_sizes)
        assert st.kbps == pytest.approx(st.total_bytes * 8 / 1000 / (25 / 25))
        assert st.file_bytes > st.total_bytes and not st.padded and st.bit_rate is None
        assert sorted(st.packet_pts) == list(range(25))
        assert st.frame_bytes[0] == max(st.frame_bytes)  # the intra frame
    br_lo = write_video(tmp_path / "b100.mp4", frames, 25, bit_rate=100_000)
    br_hi = write_video(tmp_path / "b800.mp4", frames, 25, bit_rate=800_000)
    assert br_lo.crf is None and br_lo.bit_rate == 100_000
    assert br_hi.kbps > 2 * br_lo.kbps
    h265 = write_video(tmp_path / "h265.mp4", frames, 25, codec="libx265", crf=28)
    assert h265.total_bytes > 0 and open_media(tmp_path / "h265.mp4").info.codec == "hevc"
    with pytest.raises(ValueError, match="crf or bit_rate"):
        write_video(tmp_path / "x.mp4", frames, 25, crf=20, bit_rate=10_000)
    with pytest.raises(ValueError, match="at least 64 px wide"):
        write_video(tmp_path / "x.mp4", [f[:, :48] for f in frames], 25, codec="libx265")
    with pytest.raises(ValueError, match="uint8"):
        write_video(tmp_path / "x.mp4", [frames[0].astype(np.float32)], 25)


@pytest.mark.parametrize("n", [1, 2, 3])
def test_x265_short_clips_mux_and_decode(tmp_path, n):
    """libx265 clips of 1-2 frames (an intra reference frame) are written without B-frames: with them FFmpeg's
    wrapper hands the muxer garbage timestamps, which it refuses now and then. Repeated to catch the flake."""
    rng = np.random.default_rng(n)
    for k in range(4):
        frames = rng.integers(0, 255, (n, 64, 96, 3), dtype=np.uint8)
        stats = write_video(tmp_path / f"c{k}.mp4", frames, fps=25, codec="libx265", crf=30)
        assert stats.num_frames == n and len(stats.packet_sizes) == n
        assert read_frames(tmp_path / f"c{k}.mp4").shape == (n, 64, 96, 3)


def test_odd_sizes_are_padded_to_even(tmp_path):
    st = write_video(tmp_path / "odd.mp4", [np.full((33, 47, 3), 128, np.uint8)] * 3, 25)
    assert st.padded and (st.width, st.height) == (48, 34)
    assert open_media(tmp_path / "odd.mp4").frame().shape == (34, 48, 3)


def test_audio_passthrough(media_dir, tmp_path):
    import av

    frames = _moving(n=25)  # 1 s of video; the tone is 1.2 s
    st = write_video(tmp_path / "dub.mp4", frames, 25, audio_from=media_dir / "talk.mp4")
    assert st.has_audio
    m = open_media(tmp_path / "dub.mp4")
    assert m.info.has_audio and m.info.num_frames == 25
    with av.open(str(tmp_path / "dub.mp4")) as c:
        a = c.streams.audio[0]
        assert a.codec_context.name == "aac"  # copied, not re-encoded
        duration = sum(p.duration or 0 for p in c.demux(a)) * a.time_base
    assert 0.8 < float(duration) <= 1.1  # trimmed to the video
    # webm cannot hold AAC: re-encoded to opus
    st = write_video(tmp_path / "dub.webm", frames, 25, codec="libvpx-vp9", crf=35, audio_from=media_dir / "talk.mp4")
    with av.open(str(tmp_path / "dub.webm")) as c:
        assert [s.codec_context.name for s in c.streams.audio] == ["opus"]
    with pytest.raises(DataError, match="has no audio stream"):
        write_video(tmp_path / "x.mp4", frames, 25, audio_from=media_dir / "clip.mp4")


def test_write_frames_is_lossless(tmp_path):
    frames = _moving(n=12, h=20, w=30)
    assert write_frames(tmp_path / "out", frames) == 12
    assert sorted(p.name for p in (tmp_path / "out").iterdir())[:2] == ["000000.png", "000001.png"]
    assert np.array_equal(read_frames(tmp_path / "out"), np.stack(frames))
