"""Animate one source with one driving clip by several models and score each against the driving frames: the
Animate tab's and ``facelab animate``'s job (the animators come loaded or are loaded once by name)."""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np

from lab.core.animate import LoadedAnimator, animate_frames, load_animator

__all__ = ["AnimationResult", "run_models"]


@dataclass
class AnimationResult:
    """One model's output on one source/driving pair."""

    model: str
    frames: np.ndarray  # (N, H, W, 3) uint8
    weights: str
    seconds: float
    metrics: dict = field(default_factory=dict)  # name -> pooled value (vs the driving frames)


def run_models(
    names: Sequence[str],
    source: np.ndarray,
    driving: np.ndarray,
    relative: bool = False,
    metrics: Sequence[str] = ("l1", "psnr", "ssim"),
    loaded: dict[str, LoadedAnimator] | None = None,
    progress=None,
) -> list[AnimationResult]:
    """Animate one source with one driving clip by several models, side by side.

    Args:
        names: registered animators.
        source: ``(H, W, 3)`` uint8.
        driving: ``(N, H, W, 3)`` uint8 — also the ground truth of the metrics (self-reenactment reading;
            for a cross-identity pair they measure distance to the driving frames, not quality).
        relative: FOMM's animate mode instead of absolute (reconstruction) motion.
        metrics: names from :mod:`metrics` computed per model against ``driving``.
        loaded: a cache of :class:`LoadedAnimator` by name (filled in).
        progress: a :data:`lab.core.progress.ProgressFn`: each model reports the driving frames it has animated
            (``what`` = the model's name).
    """
    from metrics import functional as mf

    loaded = {} if loaded is None else loaded
    results = []
    for name in names:
        if name not in loaded:
            loaded[name] = load_animator(name)
        la = loaded[name].require()
        t0 = time.perf_counter()
        frames = animate_frames(la.model, source, driving, relative=relative, progress=progress, what=name)
        dt = time.perf_counter() - t0
        vals = {m: float(getattr(mf, m)(frames, driving)) for m in metrics}
        results.append(AnimationResult(name, frames, la.weights, dt, vals))
    return results
