"""Input validation for every metric, in one place (piq's ``_validate_input`` idea).

Frames reach the metrics in one of two layouts, and nowhere else is the layout checked:

* ``(N, H, W, 3)`` ``uint8`` numpy array, RGB (what video decoders give);
* ``(N, 3, H, W)`` floating torch tensor in ``[0, 1]``, RGB (what :class:`lab.core.animator.Animator` renders).

:func:`_validate_frames` raises a :class:`ValueError` naming the allowed values; the converters below turn a
validated batch into the representation each metric needs, so the maths never branches on the layout.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import torch

__all__ = [
    "Frames",
    "_validate_frames",
    "_validate_pair",
    "to_uint8_nhwc",
    "to_float_nhwc",
    "to_float_nchw",
]

Frames = np.ndarray | torch.Tensor
"""``(N, H, W, 3)`` uint8 numpy array or ``(N, 3, H, W)`` float torch tensor in [0, 1]."""

_ALLOWED = "a (N, H, W, 3) uint8 numpy array or a (N, 3, H, W) float torch tensor in [0, 1]"


def _describe(x: Any) -> str:
    if isinstance(x, np.ndarray):
        return f"numpy array of shape {tuple(x.shape)} and dtype {x.dtype}"
    if isinstance(x, torch.Tensor):
        return f"torch tensor of shape {tuple(x.shape)} and dtype {x.dtype}"
    return f"{type(x).__name__}"


def _validate_frames(x: Any, name: str = "preds", dim_range: tuple[int, int] = (4, 4),
                     data_range: tuple[float, float] = (0.0, 1.0)) -> None:
    """Check that ``x`` is a batch of RGB frames in one of the two accepted layouts.

    Args:
        x: the frames to check.
        name: the argument's name, used in the message.
        dim_range: allowed number of dimensions (only 4, a batch, is accepted by the metrics).
        data_range: allowed value range of float tensors.

    Raises:
        ValueError: with a message naming the allowed types, shapes, dtypes and value range.
    """
    if isinstance(x, np.ndarray):
        if not dim_range[0] <= x.ndim <= dim_range[1] or x.shape[-1] != 3:
            raise ValueError(f"`{name}` must be {_ALLOWED}, but got a {_describe(x)}")
        if x.dtype != np.uint8:
            raise ValueError(
                f"`{name}`: numpy frames must have dtype uint8 (values 0..255), but got dtype {x.dtype}; "
                "pass float frames as a (N, 3, H, W) torch tensor in [0, 1]"
            )
    elif isinstance(x, torch.Tensor):
        if not dim_range[0] <= x.ndim <= dim_range[1] or x.shape[-3] != 3:
            raise ValueError(f"`{name}` must be {_ALLOWED}, but got a {_describe(x)}")
        if not x.is_floating_point():
            raise ValueError(
                f"`{name}`: torch frames must be floating point (float16, bfloat16, float32 or float64) in "
                f"[0, 1], but got dtype {x.dtype}; pass uint8 frames as a (N, H, W, 3) numpy array"
            )
        if x.numel():
            lo, hi = float(x.min()), float(x.max())
            if lo < data_range[0] or hi > data_range[1]:
                raise ValueError(
                    f"`{name}`: float frames must have values in [{data_range[0]:g}, {data_range[1]:g}], "
                    f"but got values in [{lo:.4g}, {hi:.4g}]"
                )
    else:
        raise ValueError(f"`{name}` must be {_ALLOWED}, but got {_describe(x)}")
    if x.shape[0] == 0:
        raise ValueError(f"`{name}` must hold at least one frame, but got an empty batch {tuple(x.shape)}")
    h, w = (x.shape[1], x.shape[2]) if isinstance(x, np.ndarray) else (x.shape[-2], x.shape[-1])
    if h < 1 or w < 1:
        raise ValueError(f"`{name}` frames must have a positive height and width, but got {h}x{w}")


def _validate_pair(preds: Any, target: Any) -> None:
    """Validate both batches and check they have the same layout and shape.

    Raises:
        ValueError: if either batch is invalid, or their layouts or shapes differ.
    """
    _validate_frames(preds, "preds")
    _validate_frames(target, "target")
    if isinstance(preds, np.ndarray) != isinstance(target, np.ndarray):
        raise ValueError(
            f"`preds` and `target` must use the same layout, but got a {_describe(preds)} and a {_describe(target)}"
        )
    if tuple(preds.shape) != tuple(target.shape):
        raise ValueError(
            f"`preds` and `target` must have the same shape, but got {tuple(preds.shape)} and {tuple(target.shape)}"
        )


def to_uint8_nhwc(x: Frames) -> np.ndarray:
    """Frames as a ``(N, H, W, 3)`` uint8 RGB array (float frames are rounded: ``round(255 x)``)."""
    if isinstance(x, np.ndarray):
        return np.ascontiguousarray(x)
    a = x.detach().to("cpu", torch.float64).permute(0, 2, 3, 1).numpy()
    return np.clip(np.rint(a * 255.0), 0, 255).astype(np.uint8)


def to_float_nhwc(x: Frames) -> np.ndarray:
    """Frames as a ``(N, H, W, 3)`` float64 RGB array in [0, 1] (uint8 frames are divided by 255)."""
    if isinstance(x, np.ndarray):
        return x.astype(np.float64) / 255.0
    return x.detach().to("cpu", torch.float64).permute(0, 2, 3, 1).numpy()


def to_float_nchw(x: Frames, dtype: torch.dtype = torch.float32) -> torch.Tensor:
    """Frames as a ``(N, 3, H, W)`` float torch tensor in [0, 1] (on the input's device for tensors)."""
    if isinstance(x, np.ndarray):
        return torch.from_numpy(np.ascontiguousarray(x)).permute(0, 3, 1, 2).to(dtype) / 255.0
    return x.detach().to(dtype)
