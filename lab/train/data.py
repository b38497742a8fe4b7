"""Training data: pairs of frames from the same video (FOMM's ``FramesDataset`` + ``DatasetRepeater``).

The videos come from :mod:`datasets.frames` (re-exported here for the trainer), from these sources, all giving
``(N, H, W, 3)`` uint8 RGB frames at the config's ``frame_shape``:

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

import numpy as np
import torch
from torch.utils.data import Dataset, DistributedSampler, Sampler

from datasets.frames import VideoFrames, describe_videos, export_frames, iter_videos, load_videos, write_voxceleb

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

