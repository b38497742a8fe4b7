"""Loading and saving checkpoints in one place, safely (timm's ``_helpers.py`` idea).

* Every ``torch.load`` here runs with ``weights_only=True`` and ``map_location="cpu"``; a checkpoint that
  needs arbitrary pickled objects (a callable, a class instance) is refused with a message saying why.
* Our own shipped weights are ``.safetensors`` (fp16) with JSON metadata.
* ``module.`` prefixes (DataParallel/DDP) are stripped once, in :func:`clean_state_dict`.
* Strict key checks list the missing/unexpected keys and shape mismatches.
"""

from __future__ import annotations

import hashlib
import json
import os
import pickle
from collections.abc import Mapping
from pathlib import Path

import torch
from torch import Tensor, nn

__all__ = [
    "CheckpointError",
    "safe_load",
    "clean_state_dict",
    "load_state_dict_strict",
    "load_animator_weights",
    "save_inference_weights",
    "file_sha256",
]


class CheckpointError(RuntimeError):
    """A checkpoint file that cannot be used, with a message that says what to do."""


# Plain-data globals that old checkpoints pickle (numpy arrays/scalars in optimizer states or metadata).
# They rebuild data, never run user code, so they are safe to allow.
def _numpy_safe_globals() -> list:
    import numpy as np

    out: list = [np.ndarray, np.dtype]
    try:  # numpy >= 2
        from numpy._core.multiarray import _reconstruct, scalar
    except ImportError:  # pragma: no cover - numpy 1.x
        from numpy.core.multiarray import _reconstruct, scalar  # type: ignore[no-redef]
    out += [_reconstruct, scalar]
    out += [type(np.dtype(t)) for t in ("float32", "float64", "int64", "int32", "bool", "uint8")]
    return out


def file_sha256(path: str | os.PathLike, chunk: int = 1 << 20) -> str:
    """Hex sha256 of a file (provenance of weights)."""
    h = hashlib.sha256()
    with open(path, "rb") as f:
        while True:
            b = f.read(chunk)
            if not b:
                break
            h.update(b)
    return h.hexdigest()


def safe_load(path: str | os.PathLike) -> dict:
    """Load a ``.pth``/``.pt``/``.pth.tar``/``.safetensors`` file without executing pickled code.

    Returns:
        For torch files, the unpickled object (normally a dict). For safetensors, a dict of tensors with
        the file's metadata under the key ``"__metadata__"`` (a dict of strings).

    Raises:
        CheckpointError: missing, unreadable, or needing non-allow-listed pickle globals.
    """
    p = Path(path)
    if not p.is_file():
        raise CheckpointError(f"checkpoint not found: {p}")
    if p.suffix == ".safetensors":
        from safetensors import safe_open

        try:
            with safe_open(str(p), framework="pt", device="cpu") as f:
                out: dict = {k: f.get_tensor(k) for k in f.keys()}
                out["__metadata__"] = dict(f.metadata() or {})
        except Exception as e:  # safetensors raises its own error types
            raise CheckpointError(f"cannot read safetensors file {p}: {e}") from e
        return out
    try:
        with torch.serialization.safe_globals(_numpy_safe_globals()):
            return torch.load(str(p), map_location="cpu", weights_only=True)
    except pickle.UnpicklingError as e:
        raise CheckpointError(
            f"refused to load {p}: it needs pickled objects beyond tensors and plain data ({_first_line(e)}). "
            "facelab loads checkpoints with weights_only=True only, because a pickle can run arbitrary code. "
            "If you trust the file, re-save just its state_dicts from a trusted Python session."
        ) from e
    except (RuntimeError, EOFError, OSError) as e:
        raise CheckpointError(f"cannot read checkpoint {p} (truncated or not a torch file?): {_first_line(e)}") from e


def _first_line(e: BaseException) -> str:
    s = str(e).strip().splitlines()
    return s[0] if s else type(e).__name__


def clean_state_dict(state_dict: Mapping[str, Tensor]) -> dict[str, Tensor]:
    """Strip ``module.`` prefixes left by DataParallel/DDP."""
    out = {}
    for k, v in state_dict.items():
        while k.startswith("module."):
            k = k[len("module.") :]
        out[k] = v
    return out


def _keep_derived_buffers(module: nn.Module, own: Mapping[str, Tensor], state_dict: Mapping[str, Tensor]) -> dict:
    """Replace checkpoint buffers that a module derives from its config (``derived_buffers``, e.g. an
    anti-aliasing kernel of a resolution-dependent scale) by the module's own when their shapes differ:
    weights trained at 128² load into the 256² config of the same network."""
    out = dict(state_dict)
    for prefix, m in module.named_modules():
        for name in getattr(m, "derived_buffers", ()):
            k = f"{prefix}.{name}" if prefix else name
            if k in out and k in own and tuple(out[k].shape) != tuple(own[k].shape):
                out[k] = own[k]
    return out


def load_state_dict_strict(module: nn.Module, state_dict: Mapping[str, Tensor], what: str = "model") -> None:
    """``module.load_state_dict(strict=True)`` with a readable error listing every mismatch.

    ``num_batches_tracked`` keys absent from old checkpoints (saved before torch 0.4.1) are tolerated:
    BatchNorm fills them in, as the official code's strict loading does.
    """
    state_dict = clean_state_dict(state_dict)
    own = module.state_dict()
    state_dict = _keep_derived_buffers(module, own, state_dict)
    missing = [k for k in own if k not in state_dict and not k.endswith("num_batches_tracked")]
    unexpected = [k for k in state_dict if k not in own]
    mismatched = [
        f"{k}: checkpoint {tuple(state_dict[k].shape)} vs model {tuple(own[k].shape)}"
        for k in own
        if k in state_dict and tuple(state_dict[k].shape) != tuple(own[k].shape)
    ]
    if missing or unexpected or mismatched:
        parts = []
        for label, keys in (("missing keys", missing), ("unexpected keys", unexpected), ("shape mismatch", mismatched)):
            if keys:
                shown = ", ".join(keys[:8]) + (f", ... ({len(keys)} in all)" if len(keys) > 8 else "")
                parts.append(f"{label}: {shown}")
        raise CheckpointError(
            f"{what}: checkpoint does not match the model ({'; '.join(parts)}). "
            "Check that the config matches the one the checkpoint was trained with."
        )
    full = dict(state_dict)
    for k, v in own.items():  # fill tolerated num_batches_tracked
        full.setdefault(k, v)
    module.load_state_dict(full, strict=True)


def load_animator_weights(model: nn.Module, path: str | os.PathLike) -> dict:
    """Load this lab's weights into ``model``; returns the checkpoint metadata.

    Accepts an inference file (``.safetensors``, written by :func:`save_inference_weights`) or a training
    checkpoint (a dict with ``"model"`` = state_dict, as written by the trainer).
    """
    ckpt = safe_load(path)
    meta: dict = {}
    if "__metadata__" in ckpt:
        raw = ckpt.pop("__metadata__")
        meta = json.loads(raw.get("facelab", "{}")) if raw else {}
        state = ckpt
    elif isinstance(ckpt, dict) and "model" in ckpt and isinstance(ckpt["model"], Mapping):
        state = ckpt["model"]
        meta = {k: v for k, v in ckpt.items() if k in ("step", "config", "meta")}
    else:
        raise CheckpointError(
            f"{path}: not a facelab checkpoint (expected a .safetensors file or a dict with a 'model' state_dict)"
        )
    own = model.state_dict()
    state = {k: v.to(own[k].dtype) if k in own and v.is_floating_point() else v for k, v in state.items()}
    load_state_dict_strict(model, state, what=f"{getattr(model, 'name', 'model')} ({path})")
    return meta


def save_inference_weights(
    model: nn.Module, path: str | os.PathLike, meta: dict | None = None, dtype: torch.dtype = torch.float16
) -> Path:
    """Write ``model``'s state_dict as safetensors (floating tensors cast to ``dtype``) with JSON metadata."""
    from safetensors.torch import save_file

    state = {
        k: (v.detach().to(dtype) if v.is_floating_point() else v.detach()).contiguous().cpu()
        for k, v in model.state_dict().items()
    }
    p = Path(path)
    p.parent.mkdir(parents=True, exist_ok=True)
    save_file(state, str(p), metadata={"facelab": json.dumps(meta or {}, default=str)})
    return p
