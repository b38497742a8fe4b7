"""The shared talking-head test set: MANIFEST.csv, pairs.csv and splits.csv, read in place.

The set lives outside the repository (``$FACELAB_DATA``, default ``<repo>/../shared/data``; its README
states the use rules: internal research testing only, never copied into the repo). Layout:
``clips/<owner>+<repo>/<file>`` (videos, and two PC-AVS frame folders whose ``file`` ends in ``/``) and
``images/<owner>+<repo>/<file>``.

>>> sd = SharedData()                                     # doctest: +SKIP
>>> len(sd.clips(split="test"))                           # doctest: +SKIP
16
>>> [p.driving.file for p in sd.pairs("cross_identity")][:1]   # doctest: +SKIP
['clips/OpenTalker+DPE/d.mp4']
"""

from __future__ import annotations

import csv
import hashlib
import os
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path

from datasets.errors import DataError
from datasets.video import Media, open_media
from datasets.voxceleb import SPLITS, VideoItem, VoxCelebFolder

__all__ = [
    "KINDS",
    "RELATIONS",
    "POSE_CLASSES",
    "shared_data_root",
    "SharedItem",
    "Pair",
    "SharedData",
    "shared_voxceleb",
]

KINDS = ("clip", "frames", "image")
RELATIONS = ("same_identity", "cross_identity")
POSE_CLASSES = ("large", "moderate", "frontal", "n/a")
MANIFEST_COLUMNS = (
    "file", "source_repo", "source_path", "source_commit", "licence", "kind", "width", "height", "frames", "fps",
    "duration_s", "audio", "pose_class", "identity_group", "notes", "sha256",
)

_REPO = Path(__file__).resolve().parent.parent


def shared_data_root() -> Path:
    """The shared data folder: ``$FACELAB_DATA``, else ``<repo>/../shared/data`` (resolved; may not exist)."""
    return Path(os.environ.get("FACELAB_DATA") or (_REPO.parent / "shared" / "data")).expanduser().resolve()


@dataclass(frozen=True)
class SharedItem:
    """One MANIFEST.csv row (see the set's README for the meaning of each column).

    Attributes:
        file: path relative to the data root, as in the manifest (a frame folder ends in ``/``).
        path: absolute path.
        kind: ``clip``, ``frames`` or ``image``.
        split: ``train``/``test`` from splits.csv (None if the file is not listed there).
        fps: None for images. duration_s: None for images.
        audio: whether the clip has an audio stream.
    """

    file: str
    path: Path
    kind: str
    width: int
    height: int
    frames: int
    fps: float | None
    duration_s: float | None
    audio: bool
    pose_class: str
    identity_group: str
    licence: str
    source_repo: str
    source_path: str
    source_commit: str
    notes: str
    sha256: str
    split: str | None

    @property
    def name(self) -> str:
        """The file without its top folder and extension: ``jixinya+EAMM/sad``, ``...PC-AVS/517600078``."""
        rel = self.file.rstrip("/").split("/", 1)[-1]
        return rel if self.kind == "frames" else str(Path(rel).with_suffix(""))

    @property
    def is_clip(self) -> bool:
        """A video file or a frame folder (``kind`` is ``clip`` or ``frames``)."""
        return self.kind in ("clip", "frames")

    def open(self, max_frames: int | None = None) -> Media:
        """Open for lazy reading (:func:`datasets.video.open_media`)."""
        return open_media(self.path, max_frames=max_frames)

    def verify(self) -> bool:
        """Whether the file's sha256 matches the manifest (a frame folder hashes its JPG list, per the README)."""
        if self.kind == "frames":
            lines = "".join(
                f"{hashlib.sha256(p.read_bytes()).hexdigest()}  {p.name}\n"
                for p in sorted(self.path.iterdir())
                if p.suffix.lower() == ".jpg"
            )
            digest = hashlib.sha256(lines.encode()).hexdigest()
        else:
            digest = hashlib.sha256(self.path.read_bytes()).hexdigest()
        return digest == self.sha256


@dataclass(frozen=True)
class Pair:
    """One pairs.csv row: animate ``source`` with ``driving``; ``relation`` is same_ or cross_identity."""

    source: SharedItem
    driving: SharedItem
    relation: str

    @property
    def split(self) -> str | None:
        """The pair's split (both items share it, per the README)."""
        return self.driving.split


def _read_csv(path: Path, required: Iterable[str]) -> list[dict[str, str]]:
    try:
        with path.open(newline="", encoding="utf-8") as f:
            reader = csv.DictReader(f)
            missing = [c for c in required if c not in (reader.fieldnames or [])]
            if missing:
                raise DataError(f"{path} lacks the column(s) {', '.join(missing)}")
            return list(reader)
    except OSError as e:
        raise DataError(f"cannot read {path}: {e.strerror or e}") from e


def _num(row: dict[str, str], key: str, cast, file: Path):
    v = (row.get(key) or "").strip()
    if not v:
        return None
    try:
        return cast(v)
    except ValueError:
        raise DataError(f"{file}: row {row.get('file')!r} has a bad {key} value {v!r}") from None


def _check_choice(name: str, value: str | Iterable[str] | None, allowed: tuple[str, ...]) -> set[str] | None:
    if value is None:
        return None
    values = {value} if isinstance(value, str) else set(value)
    bad = values - set(allowed)
    if bad:
        raise ValueError(f"{name} must be one of {allowed}, got {sorted(bad)}")
    return values


class SharedData:
    """The shared data set, parsed from its three CSV files (the media are opened only on request).

    Args:
        root: the folder holding MANIFEST.csv (default :func:`shared_data_root`).

    Raises:
        DataError: the folder or a CSV file is missing or malformed (unknown kind, a split or pair naming
            a file not in the manifest).
    """

    def __init__(self, root: str | os.PathLike | None = None) -> None:
        self.root = Path(root).expanduser().resolve() if root is not None else shared_data_root()
        manifest = self.root / "MANIFEST.csv"
        if not manifest.is_file():
            raise DataError(
                f"shared data set not found at {self.root} (set FACELAB_DATA to the folder holding MANIFEST.csv)"
            )
        splits: dict[str, str] = {}
        if (self.root / "splits.csv").is_file():
            for row in _read_csv(self.root / "splits.csv", ("file", "split")):
                if row["split"] not in SPLITS:
                    raise DataError(f"{self.root / 'splits.csv'}: {row['file']} has split {row['split']!r}")
                splits[row["file"]] = row["split"]
        self._items: dict[str, SharedItem] = {}
        for row in _read_csv(manifest, MANIFEST_COLUMNS):
            file = row["file"]
            if row["kind"] not in KINDS:
                raise DataError(f"{manifest}: {file} has kind {row['kind']!r}, expected one of {KINDS}")
            self._items[file] = SharedItem(
                file=file,
                path=self.root / file,
                kind=row["kind"],
                width=_num(row, "width", int, manifest) or 0,
                height=_num(row, "height", int, manifest) or 0,
                frames=_num(row, "frames", int, manifest) or 0,
                fps=_num(row, "fps", float, manifest),
                duration_s=_num(row, "duration_s", float, manifest),
                audio=row["audio"].strip().lower() in ("yes", "true", "1"),
                pose_class=row["pose_class"],
                identity_group=row["identity_group"],
                licence=row["licence"],
                source_repo=row["source_repo"],
                source_path=row["source_path"],
                source_commit=row["source_commit"],
                notes=row["notes"],
                sha256=row["sha256"],
                split=splits.get(file),
            )
        unknown = sorted(set(splits) - set(self._items))
        if unknown:
            raise DataError(f"{self.root / 'splits.csv'} names {unknown[0]}, which is not in MANIFEST.csv")
        self._pairs: list[Pair] = []
        if (self.root / "pairs.csv").is_file():
            for row in _read_csv(self.root / "pairs.csv", ("source", "driving", "relation")):
                for key in ("source", "driving"):
                    if row[key] not in self._items:
                        raise DataError(f"{self.root / 'pairs.csv'} names {row[key]}, which is not in MANIFEST.csv")
                if row["relation"] not in RELATIONS:
                    raise DataError(
                        f"{self.root / 'pairs.csv'}: relation {row['relation']!r} is not one of {RELATIONS}"
                    )
                self._pairs.append(Pair(self._items[row["source"]], self._items[row["driving"]], row["relation"]))

    def __repr__(self) -> str:
        return f"SharedData({str(self.root)!r}, items={len(self)}, pairs={len(self._pairs)})"

    def __len__(self) -> int:
        return len(self._items)

    def __iter__(self) -> Iterator[SharedItem]:
        return iter(self._items.values())

    def __contains__(self, file: object) -> bool:
        return file in self._items

    def item(self, file: str) -> SharedItem:
        """The row of ``file`` (as written in the manifest).

        Raises:
            KeyError: not in the manifest.
        """
        try:
            return self._items[file]
        except KeyError:
            raise KeyError(f"{file} is not in {self.root / 'MANIFEST.csv'}") from None

    def items(
        self,
        kind: str | Iterable[str] | None = None,
        split: str | None = None,
        pose_class: str | Iterable[str] | None = None,
        identity_group: str | None = None,
    ) -> list[SharedItem]:
        """Manifest rows, in manifest order, filtered by every argument given.

        Args:
            kind: ``clip``, ``frames``, ``image`` or several of them.
            split: ``train`` or ``test``.
            pose_class: ``large``, ``moderate``, ``frontal``, ``n/a`` or several.
            identity_group: an ``identity_group`` label.
        """
        kinds = _check_choice("kind", kind, KINDS)
        poses = _check_choice("pose_class", pose_class, POSE_CLASSES)
        if split is not None:
            _check_choice("split", split, SPLITS)
        return [
            it
            for it in self._items.values()
            if (kinds is None or it.kind in kinds)
            and (split is None or it.split == split)
            and (poses is None or it.pose_class in poses)
            and (identity_group is None or it.identity_group == identity_group)
        ]

    def clips(self, split: str | None = None, pose_class: str | Iterable[str] | None = None) -> list[SharedItem]:
        """Video files and frame folders (``kind`` clip or frames)."""
        return self.items(kind=("clip", "frames"), split=split, pose_class=pose_class)

    def images(self, split: str | None = None) -> list[SharedItem]:
        """Still images (``kind`` image)."""
        return self.items(kind="image", split=split)

    def pairs(self, relation: str | None = None, split: str | None = None) -> list[Pair]:
        """pairs.csv rows, in file order, filtered by relation and split."""
        _check_choice("relation", relation, RELATIONS)
        if split is not None:
            _check_choice("split", split, SPLITS)
        return [p for p in self._pairs if (relation is None or p.relation == relation)
                and (split is None or p.split == split)]

    def split_of(self, file: str) -> str | None:
        """``train``/``test`` of a manifest file (None when splits.csv does not list it).

        Raises:
            KeyError: not in the manifest.
        """
        return self.item(file).split

    def as_voxceleb(self, split: str = "test") -> VoxCelebFolder:
        """The clips (videos and frame folders) of ``split`` as a VoxCeleb-style listing (no copy).

        Item names are :attr:`SharedItem.name` (``jixinya+EAMM/sad``), unique across the set.
        """
        _check_choice("split", split, SPLITS)
        items = [VideoItem(it.name, it.path, "frames" if it.kind == "frames" else "video")
                 for it in self.clips(split=split)]
        return VoxCelebFolder.from_items(items, self.root, split)


def shared_voxceleb(split: str = "test", root: str | os.PathLike | None = None) -> VoxCelebFolder:
    """Shortcut for ``SharedData(root).as_voxceleb(split)``."""
    return SharedData(root).as_voxceleb(split)
