"""Frames of talking-head videos in memory: every source a job reads clips from, one uniform result.

Sources, all giving ``(N, H, W, 3)`` uint8 RGB frames at the asked ``frame_shape``:

* a **VoxCeleb-layout** folder (``<root>/train|test/<video>.mp4`` or ``<video>/`` frame folders);
* the **shared data set** (a folder holding ``MANIFEST.csv``; the split comes from ``splits.csv``);
* a **frame archive** (``.npz`` written by :func:`export_frames`): every frame of every video in one
  uint8 array plus offsets and names, to carry a prepared data set to a GPU machine in one file.

Videos are decoded once into memory (a VoxCeleb-scale set needs pre-extracted archives or a frame cap:
``max_frames_per_video``). Frames that are not already ``frame_shape`` are face-cropped with
:mod:`datasets.crop` when it can run here (dlib), or resized when they are square. Training
(:mod:`lab.train.data`), evaluation and calibration read videos through here.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

__all__ = ["VideoFrames", "load_videos", "iter_videos", "export_frames", "write_voxceleb", "describe_videos"]

log = logging.getLogger(__name__)


@dataclass
class VideoFrames:
    """One decoded training video: ``frames`` is ``(N, H, W, 3)`` uint8 RGB."""

    name: str
    frames: np.ndarray
    source: str = ""
    #: ``(N, 68, 2)`` pixel landmarks of the frames (NaN: no face) and the (H, W) they were measured at
    landmarks: np.ndarray | None = None
    landmark_size: tuple[int, int] | None = None


def _fit_frames(frames: np.ndarray, path: str, size: tuple[int, int]) -> np.ndarray:
    """Bring decoded frames to ``size``: as is, face-cropped (one box per clip, :mod:`datasets.crop`), or —
    where dlib is absent (a bare GPU machine) — resized when square (prepare such data with dlib first)."""
    h, w = frames.shape[1:3]
    if (h, w) == tuple(size):
        return frames
    from datasets.crop import crop_frames

    try:
        return crop_frames(frames, size=size)
    except ImportError as e:  # dlib loads on the first detection
        if abs(h - w) <= 0.02 * max(h, w):
            log.warning("%s: %dx%d frames resized to %dx%d without a face crop (dlib absent)", path, w, h, *size)
            return _resize_stack(frames, size)
        raise RuntimeError(
            f"{path}: {w}x{h} frames need a face crop, which needs dlib here; prepare the data set on a machine "
            "with facelab's face extra (`facelab prepare-data`) and train from that folder"
        ) from e


def _downscale_stack(frames: np.ndarray, size: tuple[int, int], chunk: int = 256) -> np.ndarray:
    """Antialiased bilinear downscale of a uint8 stack (a 256² archive read for a 128² curriculum phase)."""
    import torch
    import torch.nn.functional as F

    out = np.empty((len(frames), size[0], size[1], 3), np.uint8)
    for i in range(0, len(frames), chunk):
        x = torch.from_numpy(frames[i : i + chunk]).permute(0, 3, 1, 2).float()
        y = F.interpolate(x, size=size, mode="bilinear", antialias=True, align_corners=False)
        out[i : i + chunk] = y.round().clamp(0, 255).byte().permute(0, 2, 3, 1).numpy()
    return out


def _resize_stack(frames: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    from PIL import Image

    out = np.empty((len(frames), size[0], size[1], 3), np.uint8)
    for i, f in enumerate(frames):
        out[i] = np.asarray(Image.fromarray(f).resize((size[1], size[0]), Image.BICUBIC))
    return out


def _video_paths(data: str | os.PathLike, split: str) -> list[tuple[str, Path]]:
    root = Path(data)
    if (root / "MANIFEST.csv").is_file():
        from datasets.shared import SharedData

        sd = SharedData(root)
        items = [it for kind in ("clip", "frames") for it in sd.items(kind=kind, split=split)]
        return sorted((it.name, Path(it.path)) for it in items)
    from datasets.voxceleb import VoxCelebFolder

    return [(it.name, Path(it.path)) for it in VoxCelebFolder(root, split=split)]


def iter_videos(
    data: str | os.PathLike,
    split: str = "train",
    frame_shape: Sequence[int] = (256, 256, 3),
    max_frames_per_video: int | None = None,
    frame_stride: int = 1,
) -> Iterator[VideoFrames]:
    """Decode the videos of ``split`` one at a time at ``frame_shape`` (see :func:`load_videos`)."""
    size = (int(frame_shape[0]), int(frame_shape[1]))
    p = Path(data)
    if p.suffix == ".npz":
        yield from _load_archive(p, size, max_frames_per_video, frame_stride)
        return
    from datasets.video import open_media

    for name, path in _video_paths(p, split):
        media = open_media(path)
        stop = None if max_frames_per_video is None else max_frames_per_video * frame_stride
        frames = np.stack(list(media.iter_frames(stop=stop, step=frame_stride)))
        yield VideoFrames(name=name, frames=_fit_frames(frames, str(path), size), source=str(path))


def load_videos(
    data: str | os.PathLike,
    split: str = "train",
    frame_shape: Sequence[int] = (256, 256, 3),
    max_frames_per_video: int | None = None,
    frame_stride: int = 1,
) -> list[VideoFrames]:
    """Decode every video of ``split`` into memory at ``frame_shape``.

    Args:
        data: a VoxCeleb-layout root, the shared data root, or a ``.npz`` frame archive.
        split: ``"train"`` or ``"test"`` (ignored for archives, which hold one split).
        frame_shape: ``[H, W, 3]``.
        max_frames_per_video: keep at most this many frames per video (after the stride).
        frame_stride: keep every k-th frame.
    """
    videos = list(iter_videos(data, split, frame_shape, max_frames_per_video, frame_stride))
    if not videos:
        raise ValueError(f"no {split} videos found in {data}")
    return videos


def _load_archive(path: Path, size, max_frames, stride) -> list[VideoFrames]:
    with np.load(path, allow_pickle=False) as z:
        frames, offsets, names = z["frames"], z["offsets"], z["names"]
    if frames.shape[1:3] != size:
        got = f"{frames.shape[2]}x{frames.shape[1]}"
        if frames.shape[1] < size[0] or frames.shape[2] < size[1]:
            raise ValueError(f"{path}: archive frames are {got}, smaller than the {size[1]}x{size[0]} the config wants")
        log.info("%s: %s archive frames downscaled to %dx%d", path, got, size[1], size[0])
        frames = _downscale_stack(frames, size)
    out = []
    for i, name in enumerate(names):
        v = frames[offsets[i] : offsets[i + 1]][::stride]
        if max_frames is not None:
            v = v[:max_frames]
        out.append(VideoFrames(name=str(name), frames=v, source=f"{path}::{name}"))
    return out


def export_frames(videos: Sequence[VideoFrames], out: str | os.PathLike) -> Path:
    """Write videos to one ``.npz`` frame archive (``frames`` uint8, ``offsets``, ``names``)."""
    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    offsets = np.cumsum([0] + [len(v.frames) for v in videos]).astype(np.int64)
    np.savez(
        out,
        frames=np.concatenate([v.frames for v in videos]),
        offsets=offsets,
        names=np.array([v.name for v in videos]),
    )
    return out


def write_voxceleb(videos: Sequence[VideoFrames], root: str | os.PathLike, split: str, fps: float = 25.0,
                   crf: int = 14) -> list[Path]:
    """Write videos as ``<root>/<split>/<name>.mp4`` (H.264, near-lossless ``crf``): the VoxCeleb layout.

    The compact way to carry a prepared (cropped, 256×256) data set to a GPU machine: about the size of the
    source clips, decodable there with OpenCV. Names are made file-safe (``/`` → ``__``).
    """
    from datasets.video import write_video

    out = []
    for v in videos:
        name = v.name.strip("/").replace("/", "__")
        name = name[:-4] if name.endswith((".mp4", ".mov", ".avi")) else name
        p = Path(root) / split / f"{name}.mp4"
        write_video(p, iter(v.frames), fps=fps, crf=crf)
        out.append(p)
    return out


def describe_videos(videos: Sequence[VideoFrames], data: str, split: str) -> dict:
    """What the run was trained on, for checkpoints and exported weights."""
    return {
        "data": str(data),
        "split": split,
        "videos": len(videos),
        "frames": int(sum(len(v.frames) for v in videos)),
        "frame_shape": list(videos[0].frames.shape[1:]) if videos else None,
        "names": [v.name for v in videos],
    }
