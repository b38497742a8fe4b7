"""Generated media for the data-layer tests (written with PyAV/Pillow into tmp folders, never copied)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest


def gray_frames(n: int, h: int = 48, w: int = 64, step: int = 8) -> list[np.ndarray]:
    """``n`` uniform frames whose value encodes the index (``i * step % 256``), robust to lossy codecs."""
    return [np.full((h, w, 3), (i * step) % 256, np.uint8) for i in range(n)]


def frame_index(frame: np.ndarray, step: int = 8) -> int:
    """Inverse of :func:`gray_frames` (nearest index)."""
    return int(round(float(frame.mean()) / step))


def write_av(path: Path, frames, fps: float = 25, codec: str = "libx264", audio_s: float = 0.0,
             rotation: float | None = None, container_options: dict | None = None) -> Path:
    """Write a clip with PyAV directly (optionally a 440 Hz AAC tone and a display rotation)."""
    import av

    frames = list(frames)
    h, w = frames[0].shape[:2]
    with av.open(str(path), "w", options=container_options or {}) as out:
        v = out.add_stream(codec, rate=fps)
        v.width, v.height, v.pix_fmt = w, h, "yuv420p"
        if codec == "mpeg4":
            v.bit_rate = 2_000_000  # the default (200 kb/s) smears the gray levels that encode the index
        if rotation is not None:
            v.set_display_rotation(rotation)
        a = out.add_stream("aac", rate=16000, layout="mono") if audio_s else None
        for i, f in enumerate(frames):
            vf = av.VideoFrame.from_ndarray(f, format="rgb24")
            vf.pts = i
            for p in v.encode(vf):
                out.mux(p)
        for p in v.encode():
            out.mux(p)
        if a is not None:
            t = np.arange(int(16000 * audio_s)) / 16000
            pcm = (0.3 * np.sin(2 * np.pi * 440 * t)).astype(np.float32)[None]
            af = av.AudioFrame.from_ndarray(pcm, format="flt", layout="mono")
            af.sample_rate, af.pts = 16000, 0
            rs = av.AudioResampler(format=a.codec_context.format.name, layout="mono", rate=16000)
            for r in rs.resample(af):
                for p in a.encode(r):
                    out.mux(p)
            for p in a.encode():
                out.mux(p)
    return path


def astronaut_canvas(width: int, height: int, face_px: int, center: tuple[float, float]) -> np.ndarray:
    """A ``height × width`` gray canvas holding the astronaut portrait scaled so her face box is ~``face_px``."""
    from PIL import Image
    from skimage import data

    img = data.astronaut()  # HOG face box (179, 83, 267, 171): 88 px, centre (223, 127)
    s = face_px / 88
    small = np.asarray(Image.fromarray(img).resize((round(512 * s), round(512 * s)), Image.LANCZOS))
    canvas = np.full((height, width, 3), 90, np.uint8)
    x0, y0 = round(center[0] - 223 * s), round(center[1] - 127 * s)
    sx0, sy0 = max(0, -x0), max(0, -y0)
    dx0, dy0 = max(0, x0), max(0, y0)
    hh = min(small.shape[0] - sy0, height - dy0)
    ww = min(small.shape[1] - sx0, width - dx0)
    canvas[dy0:dy0 + hh, dx0:dx0 + ww] = small[sy0:sy0 + hh, sx0:sx0 + ww]
    return canvas


@pytest.fixture(scope="session")
def media_dir(tmp_path_factory) -> Path:
    """One folder of small generated media shared by the tests (read-only use)."""
    from PIL import Image

    d = tmp_path_factory.mktemp("media")
    frames = gray_frames(30)
    write_av(d / "clip.mp4", frames)
    write_av(d / "clip.mov", frames)
    write_av(d / "clip.mkv", frames)
    write_av(d / "clip.webm", frames, codec="libvpx-vp9")
    write_av(d / "clip.avi", frames, codec="mpeg4")
    write_av(d / "talk.mp4", frames, audio_s=1.2)
    folder = d / "frames"
    folder.mkdir()
    for i, f in enumerate(frames[:12]):  # names that sort wrongly as strings
        Image.fromarray(f).save(folder / f"f{i}.png")
    y, x = np.mgrid[0:40, 0:50]
    img = np.stack([x * 5, y * 6, 255 - x * 2 - y * 2], -1).astype(np.uint8)  # smooth: jpg stays close
    np.save(d / "image.npy", img)
    for ext in ("png", "jpg", "jpeg", "webp", "bmp"):
        opts = {"jpg": {"quality": 95}, "jpeg": {"quality": 95}, "webp": {"lossless": True}}.get(ext, {})
        Image.fromarray(img).save(d / f"image.{ext}", **opts)
    return d


@pytest.fixture()
def gray():
    return gray_frames


@pytest.fixture()
def index_of():
    return frame_index


@pytest.fixture()
def make_clip():
    return write_av


@pytest.fixture()
def canvas():
    return astronaut_canvas
