"""Training precision: bf16 autocast of the networks, fp32 master weights and fp32 losses, on CPU and CUDA.

``train_params.amp`` (``--precision``):

* ``auto`` — bf16 autocast on CUDA, and on a CPU that computes bf16 natively (``avx512_bf16`` or
  ``amx_bf16`` in its flags; oneDNN runs bf16 convolutions there about 1.7–2× faster than fp32, measured in
  ``benchmarks/bench_train.py``); fp32 elsewhere (an AVX-512 CPU without those flags *emulates* bf16);
* ``bf16`` / ``fp16`` — forced (fp16 on CUDA only, with a gradient scaler);
* ``fp32`` (or ``off``) — no autocast.

Only the **networks** run under autocast (:func:`autocast_networks`: the modules the animator names as its
encoder and decoder), their floating outputs cast back to fp32: autocasting the whole objective drives the
multi-scale SSIM/L1 perceptual fallback to −inf and NaN within a few steps (measured on this CPU class,
``../shared/notes/cpu-training.md``). The keypoint coordinate math inside the networks (soft-argmax,
sparse motions) is fp32 in the networks' own code.
"""

from __future__ import annotations

import functools
from collections.abc import Iterable
from pathlib import Path

import torch
from torch import nn

__all__ = ["cpu_bf16_native", "resolve_precision", "autocast_networks", "PRECISIONS"]

PRECISIONS = ("auto", "bf16", "fp16", "fp32", "off")


def cpu_bf16_native(cpuinfo: str | Path = "/proc/cpuinfo") -> bool:
    """True when this CPU has native bf16 arithmetic (``avx512_bf16`` or ``amx_bf16``) and oneDNN uses it."""
    try:
        flags = Path(cpuinfo).read_text()
    except OSError:  # not Linux: trust oneDNN's own check
        flags = ""
    native = "avx512_bf16" in flags or "amx_bf16" in flags
    try:
        return native and bool(torch.ops.mkldnn._is_mkldnn_bf16_supported())
    except (AttributeError, RuntimeError):
        return False


def resolve_precision(amp: str | bool | None, device: torch.device) -> tuple[torch.dtype | None, str]:
    """``(autocast dtype or None, a one-line description)`` for ``train_params.amp`` on ``device``."""
    amp = "fp32" if amp in (None, False, "off", "none") else str(amp)
    if amp not in PRECISIONS:
        raise ValueError(f"train_params.amp / --precision must be one of {', '.join(PRECISIONS)}, got '{amp}'")
    if amp == "fp32":
        return None, "fp32 (autocast off)"
    if device.type == "cuda":
        dtype = torch.float16 if amp == "fp16" else torch.bfloat16
        return dtype, f"{'fp16' if dtype == torch.float16 else 'bf16'} autocast on CUDA, fp32 weights and losses"
    if amp == "fp16":
        raise ValueError("fp16 autocast is for CUDA; on CPU use --precision bf16 or fp32")
    if amp == "auto" and not cpu_bf16_native():
        return None, "fp32 (this CPU has no native bf16: avx512_bf16/amx_bf16 absent)"
    how = "forced" if amp == "bf16" else "native avx512_bf16/amx_bf16"
    return torch.bfloat16, f"bf16 autocast on CPU ({how}) for the networks, fp32 weights and losses"


def _to_float(x):
    if isinstance(x, torch.Tensor):
        return x.float() if x.is_floating_point() and x.dtype != torch.float32 else x
    if isinstance(x, dict):
        return {k: _to_float(v) for k, v in x.items()}
    if isinstance(x, (list, tuple)):
        return type(x)(_to_float(v) for v in x)
    return x


def autocast_networks(modules: Iterable[nn.Module], device_type: str, dtype: torch.dtype | None) -> None:
    """Run each module's forward under ``torch.autocast(device_type, dtype)`` and return fp32 outputs.

    Patches the instances (not the classes); parameters, state_dict keys and checkpoints are unchanged.
    ``dtype=None`` leaves the modules as they are.
    """
    if dtype is None:
        return
    for m in modules:
        if getattr(m, "_facelab_autocast", None) is not None:
            continue
        forward = m.forward

        @functools.wraps(forward)
        def wrapped(*args, _forward=forward, **kwargs):
            with torch.autocast(device_type, dtype=dtype):
                out = _forward(*args, **kwargs)
            return _to_float(out)

        m.forward = wrapped
        m._facelab_autocast = dtype
