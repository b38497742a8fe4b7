"""Training data: pairs of frames from the same video (FOMM's ``FramesDataset`` + ``DatasetRepeater``).

Sources, all giving ``(N, H, W, 3)`` uint8 RGB frames at the config's ``frame_shape``:

* a **VoxCeleb-layout** folder (``<root>/train|test/<video>.mp4`` or ``<video>/`` frame folders);
* the **shared data set** (a folder holding ``MANIFEST.csv``; the split comes from ``splits.csv``);
* a **frame archive** (``.npz`` written by :func:`export_frames`): every frame of every video in one
  uint8 array plus offsets and names, to carry a prepared data set to a GPU machine in one file.

Videos are decoded once into memory (a VoxCeleb-scale set needs pre-extracted archives or a frame cap:
``max_frames_per_video``). Frames that are not already ``frame_shape`` are face-cropped with
:mod:`datasets.crop` when it can run here (dlib), or resized when they are square.

Determinism (for exact resume): the sampler tags each index with its epoch; a sample's augmentation is
drawn from a generator seeded by ``(seed, epoch, index)``, never from global state, so a resumed run
sees exactly the batches an uninterrupted one would.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from torch.utils.data import Dataset, DistributedSampler, Sampler

__all__ = [
    "VideoFrames",
    "PairDataset",
    "EpochBatchSampler",
    "load_videos",
    "iter_videos",
    "export_frames",
    "attach_landmarks",
    "write_voxceleb",
    "describe_videos",
]

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


# ---------------------------------------------------------------------------------------------- loading
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


def attach_landmarks(videos: Sequence[VideoFrames], archive: str | os.PathLike, frame_stride: int = 1) -> None:
    """Give the videos of a ``.npz`` archive their cached dlib landmarks (:mod:`lab.train.landmarks`; computed
    once on first use), frame for frame as :func:`load_videos` read them."""
    from lab.train.landmarks import load_or_compute_landmarks

    if not str(archive).endswith(".npz"):
        raise ValueError(f"keypoint landmark targets need a .npz frame archive (facelab export-frames), not {archive}")
    lm = load_or_compute_landmarks(archive)
    with np.load(archive, allow_pickle=False) as z:
        offsets, names, size = z["offsets"], [str(n) for n in z["names"]], tuple(z["frames"].shape[1:3])
    index = {n: i for i, n in enumerate(names)}
    for v in videos:
        i = index[v.name]
        v.landmarks = lm[offsets[i] : offsets[i + 1]][::frame_stride][: len(v.frames)]
        v.landmark_size = size


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


# ---------------------------------------------------------------------------------------------- dataset
class PairDataset(Dataset):
    """Two random frames of the same video, augmented identically (FOMM's training sampling).

    An index encodes ``epoch * len(self) + i`` (see :class:`EpochBatchSampler`); item ``i`` is video
    ``i % num_videos`` (``num_repeats`` passes per epoch).

    Returns:
        ``{"source": (3,H,W) float [0,1], "driving": (3,H,W) float [0,1], "video": int}``, plus
        ``"kp_target_source"`` / ``"kp_target_driving"`` ``(10, 2)`` (:func:`lab.train.landmarks.keypoint_targets`,
        NaN where no face was found) when the videos carry landmarks.
    """

    def __init__(self, videos: Sequence[VideoFrames], num_repeats: int = 1, augmentation_params: dict | None = None,
                 seed: int = 0) -> None:
        if not videos:
            raise ValueError("PairDataset needs at least one video")
        self.videos = list(videos)
        self.num_repeats = int(num_repeats)
        self.aug = augmentation_params or {}
        self.seed = int(seed)

    def __len__(self) -> int:
        return len(self.videos) * self.num_repeats

    def __getitem__(self, tagged: int) -> dict:
        epoch, i = divmod(int(tagged), len(self))
        rng = np.random.default_rng([self.seed, epoch, i])
        vid = i % len(self.videos)
        frames = self.videos[vid].frames
        n = len(frames)
        a, b = rng.choice(n, size=2, replace=n < 2)
        pair = np.stack([frames[a], frames[b]]).astype(np.float32) / 255.0  # (2, H, W, 3)
        pair, time_flip, hflip = self._augment(pair, rng)
        t = torch.from_numpy(np.ascontiguousarray(pair)).permute(0, 3, 1, 2)
        item = {"source": t[0], "driving": t[1], "video": vid}
        lm = self.videos[vid].landmarks
        if lm is not None:
            from lab.train.landmarks import keypoint_targets

            kp = keypoint_targets(lm[[a, b]], self.videos[vid].landmark_size, flip=hflip)
            kp = torch.from_numpy(np.ascontiguousarray(kp[::-1] if time_flip else kp))
            item.update(kp_target_source=kp[0], kp_target_driving=kp[1])
        return item

    def _augment(self, pair: np.ndarray, rng: np.random.Generator) -> tuple[np.ndarray, bool, bool]:
        """The augmented pair and whether it was time-flipped (source/driving swapped) and mirrored."""
        flip = self.aug.get("flip_param", {})
        time_flip = bool(flip.get("time_flip") and rng.random() < 0.5)
        if time_flip:
            pair = pair[::-1]
        hflip = bool(flip.get("horizontal_flip") and rng.random() < 0.5)
        if hflip:
            pair = pair[:, :, ::-1]
        jit = self.aug.get("jitter_param")
        if jit:
            pair = _color_jitter(pair, rng, **jit)
        return pair, time_flip, hflip


def _color_jitter(x: np.ndarray, rng: np.random.Generator, brightness=0.0, contrast=0.0, saturation=0.0,
                  hue=0.0) -> np.ndarray:
    """torchvision's ColorJitter operations, in a random order, with one draw shared by both frames of ``x``.

    ``x``: ``(2, H, W, 3)`` float in [0, 1]. The factors come from ``rng`` (not torch's global RNG), so a sample
    is a function of its (seed, epoch, index) only.
    """
    import torchvision.transforms.v2.functional as TF

    ops = {
        0: (TF.adjust_brightness, rng.uniform(max(0, 1 - brightness), 1 + brightness), brightness),
        1: (TF.adjust_contrast, rng.uniform(max(0, 1 - contrast), 1 + contrast), contrast),
        2: (TF.adjust_saturation, rng.uniform(max(0, 1 - saturation), 1 + saturation), saturation),
        3: (TF.adjust_hue, rng.uniform(-hue, hue), hue),
    }
    t = torch.from_numpy(np.ascontiguousarray(x)).permute(0, 3, 1, 2)
    for op in rng.permutation(4):
        fn, factor, enabled = ops[int(op)]
        if enabled:
            t = fn(t, float(factor))
    return t.permute(0, 2, 3, 1).numpy().astype(np.float32)


class EpochBatchSampler(Sampler[list[int]]):
    """Resumable distributed batches: a :class:`DistributedSampler` per epoch, indices tagged with the epoch.

    Yields batches of ``epoch * len(dataset) + i`` starting at global step ``start_step``; steps run
    across epochs until ``total_steps``. Every rank gets the same number of batches (drop_last).
    """

    def __init__(self, dataset_len: int, batch_size: int, num_replicas: int = 1, rank: int = 0, seed: int = 0,
                 start_step: int = 0, total_steps: int | None = None) -> None:
        self.n = dataset_len
        self.batch_size = batch_size
        self.num_replicas = num_replicas
        self.rank = rank
        self.seed = seed
        self.start_step = start_step
        self.steps_per_epoch = dataset_len // (batch_size * num_replicas)
        if self.steps_per_epoch == 0:
            raise ValueError(
                f"{dataset_len} samples per epoch are fewer than one global batch ({batch_size} x {num_replicas} "
                "processes): raise num_repeats or lower batch_size"
            )
        self.total_steps = total_steps

    def __len__(self) -> int:
        return max(0, (self.total_steps or 0) - self.start_step)

    def __iter__(self) -> Iterator[list[int]]:
        step = self.start_step
        while self.total_steps is None or step < self.total_steps:
            epoch, pos = divmod(step, self.steps_per_epoch)
            ds = DistributedSampler(range(self.n), num_replicas=self.num_replicas, rank=self.rank, shuffle=True,
                                    seed=self.seed, drop_last=True)
            ds.set_epoch(epoch)
            idx = list(ds)
            for b in range(pos, self.steps_per_epoch):
                if self.total_steps is not None and step >= self.total_steps:
                    return
                yield [epoch * self.n + i for i in idx[b * self.batch_size : (b + 1) * self.batch_size]]
                step += 1

