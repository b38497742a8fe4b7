"""Run animators on frames: the one place the app and the CLI turn a source + driving clip into results.

Frames enter and leave as ``(N, H, W, 3)`` uint8 RGB arrays (the data layer's format) and cross the
animator interface as ``(N, 3, H, W)`` float tensors in [0, 1]. No UI, no file I/O here.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass

import numpy as np
import torch

from lab.core.animator import Animator
from lab.core.checkpoint import CheckpointError, first_line
from lab.core.registry import RANDOM_INIT_SEED, create_animator, load_weights, resolve_checkpoint

__all__ = [
    "to_tensor",
    "to_uint8",
    "LoadedAnimator",
    "ModelUnavailable",
    "load_animator",
    "animate_frames",
    "side_by_side",
]


def to_tensor(frames: np.ndarray) -> torch.Tensor:
    """``(N, H, W, 3)`` or ``(H, W, 3)`` uint8 → ``(N, 3, H, W)`` float32 in [0, 1]."""
    a = np.asarray(frames)
    if a.ndim == 3:
        a = a[None]
    if a.ndim != 4 or a.shape[-1] != 3:
        raise ValueError(f"expected (N, H, W, 3) or (H, W, 3) RGB frames, got shape {a.shape}")
    a = np.ascontiguousarray(a)
    if not a.flags.writeable:  # cached/decoded frames are read-only; torch wants to own writable memory
        a = a.copy()
    return torch.from_numpy(a).permute(0, 3, 1, 2).float().div_(255.0)


def to_uint8(frames: torch.Tensor) -> np.ndarray:
    """``(N, 3, H, W)`` float in [0, 1] → ``(N, H, W, 3)`` uint8 (rounded, clipped)."""
    return frames.detach().clamp(0, 1).mul(255).round().byte().permute(0, 2, 3, 1).cpu().numpy()


class ModelUnavailable(CheckpointError, ValueError):
    """A model whose weights file was found but cannot be used (not a checkpoint, holds code, wrong keys).

    The first line of the message is ``"<model> unavailable: <file>: <reason>; ..."``; the loader's full
    message follows on the next line.
    """


@dataclass
class LoadedAnimator:
    """An animator and what its weights are.

    ``weights`` is ``"trained: <file>"``, ``"random init"``, ``"none needed"`` or ``"unavailable: <file>:
    <reason>"`` (a weights file was found but refused: see :meth:`require`); ``note`` says why weights are
    missing (where to put the file) or, for an unavailable model, the loader's full message. ``path`` is the
    weights file (trained or refused), ``seed`` the seed the networks were built from.
    """

    model: Animator
    weights: str
    note: str = ""
    path: str = ""
    seed: int | None = None

    @property
    def trained(self) -> bool:
        return not self.model.needs_weights or self.weights.startswith("trained")

    @property
    def available(self) -> bool:
        """False when a weights file was found but refused; the model must not be run then."""
        return not self.weights.startswith("unavailable")

    @property
    def weights_id(self) -> str:
        """The identity of the weights, recorded in every evaluation row: ``sha256:<16 hex digits>`` of the
        file, ``random-init seed N``, ``none needed`` or ``unavailable``."""
        if not self.available:
            return "unavailable"
        if not self.model.needs_weights:
            return "none needed"
        if self.weights.startswith("trained") and self.path:
            from lab.core.checkpoint import file_sha256

            return "sha256:" + file_sha256(self.path)[:16]
        return f"random-init seed {self.seed}" if self.seed is not None else "random init (unseeded)"

    def require(self) -> LoadedAnimator:
        """``self`` when the model can be run; raises :class:`ModelUnavailable` (one line, then details)."""
        if not self.available:
            raise ModelUnavailable(f"{self.model.name} {self.weights}; replace or remove {self.path}\n{self.note}")
        return self


def load_animator(name: str, checkpoint: str | None = "default", allow_unavailable: bool = False) -> LoadedAnimator:
    """Build ``name`` with its weights when they can be found, else randomly initialised (and say so).

    The networks are always built from :data:`lab.core.registry.RANDOM_INIT_SEED` (the caller's global RNG is left
    alone), so a model without weights is the same network in every run.

    Args:
        name: a registered animator.
        checkpoint: a path, ``"default"`` (the model's own file: shipped, ``$FACELAB_WEIGHTS`` or
            ``$TORCH_HOME/hub/checkpoints``), or None for random weights.
        allow_unavailable: a weights file that is found but refused (not a checkpoint, holds code, wrong keys)
            gives a :class:`LoadedAnimator` labelled ``unavailable: ...`` (listings: the app's Models table,
            ``facelab models``) instead of raising :class:`ModelUnavailable` (everything that runs the model).
    """
    model = create_animator(name, seed=RANDOM_INIT_SEED)
    if not model.needs_weights:
        return LoadedAnimator(model, "none needed", seed=RANDOM_INIT_SEED)
    if checkpoint is None:
        return LoadedAnimator(model, "random init", seed=RANDOM_INIT_SEED)
    try:
        path = resolve_checkpoint(model, checkpoint)
    except FileNotFoundError as e:
        return LoadedAnimator(model, "random init", note=str(e), seed=RANDOM_INIT_SEED)
    try:
        meta = load_weights(model, path)
    except Exception as e:  # noqa: BLE001 - whatever a hostile file triggers, this one model is unavailable
        reason = (e.reason if isinstance(e, CheckpointError)
                  else f"cannot be loaded ({type(e).__name__}: {first_line(e)})")
        la = LoadedAnimator(model, f"unavailable: {path.name}: {reason}", note=first_line(e), path=str(path),
                            seed=RANDOM_INIT_SEED)
        return la if allow_unavailable else la.require()
    return LoadedAnimator(model.eval(), f"trained: {meta['path']}", path=str(meta["path"]), seed=RANDOM_INIT_SEED)


@torch.no_grad()
def animate_frames(
    model: Animator,
    source: np.ndarray,
    driving: np.ndarray | Iterable[np.ndarray],
    relative: bool = False,
    adapt_movement_scale: bool = True,
    batch_size: int = 8,
    device: str | torch.device = "cpu",
    progress=None,
    what: str = "",
) -> np.ndarray:
    """Animate ``source`` ``(H, W, 3)`` uint8 with ``driving`` frames ``(N, H, W, 3)`` uint8 (or chunks).

    Frames must already be at ``model.input_size`` (crop/resize with :mod:`datasets`).

    Args:
        progress: a :data:`lab.core.progress.ProgressFn`, called after every batch with the frames done so far.
        what: the name the progress reports (default: the model's name).

    Returns:
        ``(N, H, W, 3)`` uint8 predictions.
    """
    from lab.core.progress import report

    model = model.to(device).eval()
    src = to_tensor(source)
    if src.shape[-2:] != tuple(model.input_size):
        raise ValueError(f"{model.name} expects {model.input_size[1]}x{model.input_size[0]} frames, "
                         f"got {src.shape[-1]}x{src.shape[-2]}: crop or resize first")
    if isinstance(driving, np.ndarray):
        total = len(driving)
        chunks = (to_tensor(driving[i : i + batch_size]) for i in range(0, len(driving), batch_size))
    else:
        total = len(driving) if hasattr(driving, "__len__") else None
        chunks = (to_tensor(c) for c in driving)
    what = what or model.name
    out, done = [], 0
    report(progress, what, 0, total)
    for p in model.animate(src, chunks, relative=relative, adapt_movement_scale=adapt_movement_scale):
        out.append(to_uint8(p))
        done += len(out[-1])
        report(progress, what, done, total)
    return np.concatenate(out) if out else np.zeros((0, *source.shape), np.uint8)


def side_by_side(columns: Sequence[tuple[str, np.ndarray]], bar: int = 22) -> np.ndarray:
    """Tile equal-length clips horizontally with a label bar above each: ``(N, H + bar, W * k, 3)`` uint8."""
    from PIL import Image, ImageDraw

    n = min(len(c[1]) for c in columns)
    h, w = columns[0][1].shape[1:3]
    out = np.zeros((n, h + bar, w * len(columns), 3), np.uint8)
    header = Image.new("RGB", (w * len(columns), bar), (24, 24, 24))
    draw = ImageDraw.Draw(header)
    for j, (label, frames) in enumerate(columns):
        if frames.shape[1:3] != (h, w):
            raise ValueError(f"column '{label}' is {frames.shape[2]}x{frames.shape[1]}, expected {w}x{h}")
        text = label[: w // 7]
        draw.text((j * w + (w - draw.textlength(text)) / 2, 5), text, fill=(235, 235, 235))
        out[:, bar:, j * w : (j + 1) * w] = frames[:n]
    out[:, :bar] = np.asarray(header)
    return out
