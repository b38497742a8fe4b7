"""The VoxCeleb folder layout used by FOMM: ``<root>/train|test/<video>.mp4`` or ``<root>/train|test/<video>/``.

FOMM's ``frames_dataset.py`` (AliaksandrSiarohin/first-order-model@c027484, ``FramesDataset``) reads
``root_dir/train`` and ``root_dir/test``, each holding one entry per video: a frame folder
(``vox-png``: ``<video>/0000000.png ...``) or a video file. This module lists such a split; decoding is
:func:`datasets.video.open_media`'s job. FOMM's third form, a whole video stored as one long png strip
(the ``.png``/``.gif`` files of its mgif/taichi sets), is not supported.

The shared data set is presented with the same type by :meth:`datasets.shared.SharedData.as_voxceleb`,
so trainers and evaluators read both alike.
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

from datasets.errors import DataError
from datasets.video import FRAME_EXTS, VIDEO_EXTS, Media, natural_key, open_media

__all__ = ["SPLITS", "VideoItem", "VoxCelebFolder"]

SPLITS = ("train", "test")


@dataclass(frozen=True)
class VideoItem:
    """One video of a split.

    Attributes:
        name: the video's name (file name without extension, or the folder name; for the shared set the
            path under ``clips/`` without extension, e.g. ``jixinya+EAMM/sad``).
        path: absolute path of the video file or frame folder.
        kind: ``"video"`` or ``"frames"``.
    """

    name: str
    path: Path
    kind: str

    def open(self, max_frames: int | None = None) -> Media:
        """Open the video for lazy reading (see :func:`datasets.video.open_media`)."""
        return open_media(self.path, max_frames=max_frames)


def _is_frame_folder(p: Path) -> bool:
    try:
        return any(c.suffix.lower() in FRAME_EXTS and c.is_file() for c in p.iterdir())
    except OSError:
        return False


class VoxCelebFolder(Sequence[VideoItem]):
    """The videos of one split of a VoxCeleb-layout folder, sorted by name.

    Args:
        root: folder holding ``train/`` and/or ``test/``.
        split: ``"train"`` or ``"test"``.

    Raises:
        DataError: ``root`` or ``root/split`` is missing, or the split holds no video file or frame folder.

    Example:
        >>> for item in VoxCelebFolder("data/vox", split="test"):  # doctest: +SKIP
        ...     frames = item.open().iter_frames()
    """

    def __init__(self, root: str | os.PathLike, split: str = "test") -> None:
        if split not in SPLITS:
            raise ValueError(f"split must be one of {SPLITS}, got {split!r}")
        self.root = Path(root).expanduser().resolve()
        self.split = split
        folder = self.root / split
        if not self.root.is_dir():
            raise DataError(f"VoxCeleb root {self.root} does not exist")
        if not folder.is_dir():
            raise DataError(
                f"{self.root} is not in the VoxCeleb layout: expected a '{split}' folder holding one video file "
                "or frame folder per video"
            )
        items = []
        for p in folder.iterdir():
            if p.name.startswith("."):
                continue
            if p.is_file() and p.suffix.lower() in VIDEO_EXTS:
                items.append(VideoItem(p.stem, p, "video"))
            elif p.is_dir() and _is_frame_folder(p):
                items.append(VideoItem(p.name, p, "frames"))
        if not items:
            raise DataError(
                f"{folder} holds no video ({' '.join(VIDEO_EXTS)}) and no frame folder (png/jpg files)"
            )
        self.items: list[VideoItem] = sorted(items, key=lambda it: natural_key(it.name))

    @classmethod
    def from_items(cls, items: Iterable[VideoItem], root: str | os.PathLike, split: str) -> VoxCelebFolder:
        """A listing made from given items (no folder scan); used to present other data sets alike.

        Raises:
            DataError: ``items`` is empty.
        """
        self = cls.__new__(cls)
        self.root = Path(root)
        self.split = split
        self.items = sorted(items, key=lambda it: natural_key(it.name))
        if not self.items:
            raise DataError(f"no {split} videos in {root}")
        return self

    def __len__(self) -> int:
        return len(self.items)

    def __getitem__(self, i):  # int -> VideoItem, slice -> list
        return self.items[i]

    def __iter__(self) -> Iterator[VideoItem]:
        return iter(self.items)

    def __repr__(self) -> str:
        return f"VoxCelebFolder({str(self.root)!r}, split={self.split!r}, videos={len(self)})"

    @property
    def names(self) -> list[str]:
        """Video names in order."""
        return [it.name for it in self.items]
