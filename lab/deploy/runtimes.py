"""Inference runtimes for an animator's encoder and decoder behind one switch.

An animator is exported once to ONNX (:func:`lab.deploy.export.export_onnx`, batch 1, with the exact rewrites of
:mod:`lab.deploy.rewrites`) as three graphs: ``encoder`` (frame → motion), ``source`` (source frame → the
state :meth:`Animator.encode_source` caches) and ``render`` (cached state + source/driving motion → frame),
then run by one of:

``torch``
    eager PyTorch, the animator itself (``bf16``: CPU autocast).
``onnxruntime``
    ONNX Runtime's CPU provider, every graph optimisation on (``ORT_ENABLE_ALL``), denormals as zero.
``openvino``
    OpenVINO's CPU plugin, latency hint, one stream, denormals as zero; ``bf16`` sets its inference-precision
    hint to bf16 (offered where the CPU has bf16: OpenVINO's ``OPTIMIZATION_CAPABILITIES``), ``fp32`` pins f32;
    ``int8`` runs its float ops (and the float encoder) at bf16 where the CPU has it, else f32.

Precisions: ``fp32``; ``bf16`` (torch, openvino; ONNX Runtime's CPU provider has no bf16 kernels); ``int8``
(onnxruntime, openvino): NNCF post-training quantisation of the per-frame render graph calibrated on real
training frames, with the ops an accuracy-controlled search found sensitive kept float
(:mod:`lab.deploy.quantize`, :mod:`lab.deploy.int8_scope`); the encoder (dispatch-bound: int8 gains it nothing
and costs quality) and the once-per-reference ``source`` graph stay float.
What each lossy mode costs in quality is measured by :func:`lab.deploy.quality.quality_cost`.

Public API (used by the app's Live tab and ``facelab efficiency --runtime``)::

    RUNTIMES                          # ("torch", "onnxruntime", "openvino")
    PRECISIONS                        # ("fp32", "bf16", "int8")
    available_runtimes()              # {"torch": None, "openvino": None | "reason it cannot run", ...}
    supported_precisions(runtime)     # {"fp32": None, "bf16": None | reason, "int8": None | reason}
    wrap_animator(animator, runtime, precision="fp32", threads=None) -> RuntimeAnimator

:class:`RuntimeAnimator` is an :class:`~lab.core.animator.Animator`: ``extract_motion``, ``encode_source``,
``render``, ``transfer_motion``, ``animate``, ``info``, ``name``, ``input_size`` behave as the wrapped model's
(tensors in and out, on the CPU), with the work done by the runtime; ``runtime``, ``precision`` and
``threads`` say how. Exports (and int8 models) are cached under ``$FACELAB_DEPLOY_CACHE`` (default
``~/.cache/facelab/deploy/``) in a folder keyed by the model, a hash of its weights, the input size and the
export version, so a second wrap of the same weights starts in seconds. Unknown runtime or precision →
``ValueError`` naming the choices; a runtime that is not installed → :class:`RuntimeUnavailable` (an
``ImportError``) naming the package to install.

The export cache (:func:`exported_graphs`, :func:`deploy_dir`, :func:`weights_hash`) is
:mod:`lab.deploy.export_cache`, re-exported here; this module holds the runtimes and :class:`RuntimeAnimator`.
"""

from __future__ import annotations

import contextlib
import os
import time
from functools import cache
from pathlib import Path

import numpy as np
import torch
from torch import Tensor

from lab.core.animator import Animator, Motion, SourceState, cat_batches, expand_batch, index_batch
from lab.deploy.export_cache import EXPORT_VERSION, deploy_dir, exported_graphs, weights_hash

__all__ = ["RUNTIMES", "PRECISIONS", "RuntimeUnavailable", "available_runtimes", "supported_precisions",
           "wrap_animator", "RuntimeAnimator", "deploy_dir", "weights_hash", "EXPORT_VERSION"]

RUNTIMES = ("torch", "onnxruntime", "openvino")
PRECISIONS = ("fp32", "bf16", "int8")
_PACKAGES = {"onnxruntime": "onnxruntime", "openvino": "openvino"}


class RuntimeUnavailable(ImportError):
    """The runtime's package is not installed (or does not load)."""


@cache
def available_runtimes() -> dict[str, str | None]:
    """``{runtime: None}`` for each usable runtime, else the reason it is not (which package to install)."""
    out: dict[str, str | None] = {"torch": None}
    for name, pkg in _PACKAGES.items():
        try:
            __import__(pkg)
            __import__("onnx")
            __import__("onnxscript")
            out[name] = None
        except ImportError as e:
            out[name] = f"{pkg} is not installed ({e.name}): pip install {pkg} onnx onnxscript"
    return out


def _cpu_has_bf16() -> bool:
    try:
        return bool(torch.ops.mkldnn._is_mkldnn_bf16_supported())
    except (AttributeError, RuntimeError):
        return False


@cache
def _openvino_bf16() -> bool:
    import openvino as ov

    return "BF16" in ov.Core().get_property("CPU", "OPTIMIZATION_CAPABILITIES")


def supported_precisions(runtime: str) -> dict[str, str | None]:
    """``{precision: None}`` where ``runtime`` runs it on this CPU, else the reason it does not."""
    _check_runtime(runtime)
    if runtime == "torch":
        return {"fp32": None,
                "bf16": None if _cpu_has_bf16() else "this CPU has no bf16 support (oneDNN)",
                "int8": "int8 runs through ONNX Runtime or OpenVINO (NNCF post-training quantisation)"}
    if runtime == "onnxruntime":
        return {"fp32": None, "bf16": "ONNX Runtime's CPU provider has no bf16 kernels", "int8": None}
    reason = available_runtimes()["openvino"]
    bf16 = reason or (None if _openvino_bf16() else "this CPU has no bf16 support (OpenVINO capabilities)")
    return {"fp32": reason, "bf16": bf16, "int8": reason}


def _check_runtime(runtime: str) -> None:
    if runtime not in RUNTIMES:
        raise ValueError(f"runtime must be one of {RUNTIMES}, got {runtime!r}")


def _check(runtime: str, precision: str) -> None:
    _check_runtime(runtime)
    if precision not in PRECISIONS:
        raise ValueError(f"precision must be one of {PRECISIONS}, got {precision!r}")
    reason = available_runtimes()[runtime]
    if reason:
        raise RuntimeUnavailable(f"runtime '{runtime}' is unavailable: {reason}")
    reason = supported_precisions(runtime)[precision]
    if reason:
        ok = [p for p, r in supported_precisions(runtime).items() if r is None]
        raise ValueError(f"runtime '{runtime}' does not run {precision}: {reason}; it runs {', '.join(ok)}")


# ---------------------------------------------------------------------------------------------------- engines
class _OrtGraph:
    def __init__(self, path: Path, threads: int | None) -> None:
        from lab.deploy.export import onnx_session

        self.session = onnx_session(path, threads, denormal_as_zero=True)
        self.inputs = [i.name for i in self.session.get_inputs()]
        self.outputs = [o.name for o in self.session.get_outputs()]

    def __call__(self, arrays: list[np.ndarray]) -> list[np.ndarray]:
        return self.session.run(self.outputs, dict(zip(self.inputs, arrays)))


class _OvGraph:
    def __init__(self, path: Path, threads: int | None, precision: str) -> None:
        import openvino as ov

        core = _ov_core()
        model = core.read_model(str(path))
        self.inputs = [p.get_any_name() for p in model.inputs]
        self.outputs = [p.get_any_name() for p in model.outputs]
        self.compiled = core.compile_model(model, "CPU", _ov_config(precision, threads))
        self.request = self.compiled.create_infer_request()
        self._ov = ov

    def __call__(self, arrays: list[np.ndarray]) -> list[np.ndarray]:
        res = self.request.infer(dict(zip(self.inputs, arrays)), share_inputs=True)
        return [np.array(res[self.compiled.output(n)]) for n in self.outputs]


def _ov_config(precision: str, threads: int | None) -> dict:
    """OpenVINO CPU settings of a graph run at ``precision``: latency hint, one stream, denormals as zero, and the
    float ops at bf16 for ``bf16`` (and for ``int8``'s float ops, where the CPU has bf16), else f32."""
    bf16 = precision == "bf16" or (precision == "int8" and _openvino_bf16())
    config = {"PERFORMANCE_HINT": "LATENCY", "NUM_STREAMS": 1, "CPU_DENORMALS_OPTIMIZATION": True,
              "INFERENCE_PRECISION_HINT": "bf16" if bf16 else "f32"}
    if threads:
        config["INFERENCE_NUM_THREADS"] = int(threads)
    return config


@cache
def _ov_core():
    import openvino as ov

    return ov.Core()


# ---------------------------------------------------------------------------------------------------- animator
class RuntimeAnimator(Animator):
    """An animator whose encoder, source encoding and render run in an inference runtime.

    Built by :func:`wrap_animator`. Same interface as the wrapped model (``base``); frames are processed one
    at a time (the graphs have batch 1, the real-time case), batches are split and concatenated.
    """

    def __init__(self, base: Animator, runtime: str, precision: str, threads: int | None,
                 graphs: dict | None = None, keys: list[str] | None = None, state_keys: list[str] | None = None,
                 folder: Path | None = None) -> None:
        super().__init__()
        self.base = base.eval()
        self.runtime, self.precision, self.threads = runtime, precision, threads
        self.name, self.input_size, self.info = base.name, base.input_size, base.info
        self.config, self.needs_weights = base.config, base.needs_weights
        self._graphs = graphs or {}
        self._keys, self._state_keys = keys or [], state_keys or []
        self.folder = folder

    def __repr__(self) -> str:
        return f"RuntimeAnimator({self.name}, runtime={self.runtime}, precision={self.precision}, " \
               f"threads={self.threads})"

    @property
    def quality(self) -> dict | None:
        """The measured quality cost of this mode for these weights (:func:`lab.deploy.quality.recorded_costs`:
        ``l1``, ``akd``, ``l1_change`` vs fp32 PyTorch, ``lossy``), or None when none is recorded."""
        from lab.deploy.quality import recorded_costs

        return recorded_costs(self.base).get((self.runtime, self.precision))

    @property
    def description(self) -> str:
        """``"<runtime> <precision>"``, e.g. ``"openvino int8"``."""
        return f"{self.runtime} {self.precision}"

    # ---- torch
    def _autocast(self):
        if self.precision == "bf16":
            return torch.autocast("cpu", dtype=torch.bfloat16)
        return contextlib.nullcontext()

    def _torch(self, fn, *args):
        with torch.no_grad(), self._autocast(), _threads(self.threads):
            out = fn(*args)
        if isinstance(out, dict):
            return {k: v.float() if v.is_floating_point() else v for k, v in out.items()}
        return out.float()

    # ---- interface
    def extract_motion(self, frames: Tensor) -> Motion:
        if self.runtime == "torch":
            return self._torch(self.base.extract_motion, frames)
        outs = []
        for i in range(frames.shape[0]):
            got = self._graphs["encoder"]([_np(frames[i:i + 1])])
            outs.append({k: torch.from_numpy(v) for k, v in zip(self._keys, got)})
        return cat_batches(outs)

    def encode_source(self, source: Tensor) -> SourceState:
        if self.runtime == "torch":
            return self._torch(self.base.encode_source, source)
        if "source" not in self._graphs:
            return {"source": source.float().cpu()}
        outs = []
        for i in range(source.shape[0]):
            got = self._graphs["source"]([_np(source[i:i + 1])])
            outs.append({k: torch.from_numpy(v) for k, v in zip(self._state_keys, got)})
        return cat_batches(outs)

    def render(self, state: SourceState, motion_source: Motion, motion_driving: Motion) -> Tensor:
        if self.runtime == "torch":
            return self._torch(self.base.render, state, motion_source, motion_driving)
        n = next(iter(motion_driving.values())).shape[0]
        st, ms = expand_batch(state, n), expand_batch(motion_source, n)
        outs = []
        for i in range(n):
            s, a, b = index_batch(st, i), index_batch(ms, i), index_batch(motion_driving, i)
            arrays = [_np(s[k]) for k in self._state_keys] + [_np(a[k]) for k in self._keys] + \
                     [_np(b[k]) for k in self._keys]
            outs.append(torch.from_numpy(self._graphs["render"](arrays)[0]))
        return torch.cat(outs, 0)

    def transfer_motion(self, motion_source: Motion, motion_driving: Motion, motion_driving_initial: Motion,
                        adapt_movement_scale: bool = True) -> Motion:
        return self.base.transfer_motion(motion_source, motion_driving, motion_driving_initial, adapt_movement_scale)

    def encoder_modules(self) -> dict:
        return self.base.encoder_modules()

    def decoder_modules(self) -> dict:
        return self.base.decoder_modules()

    def load_checkpoint(self, path: str) -> dict:
        raise NotImplementedError("load weights into the PyTorch animator, then wrap it again")


def _np(t: Tensor) -> np.ndarray:
    return np.ascontiguousarray(t.detach().float().cpu().numpy())


@contextlib.contextmanager
def _threads(n: int | None):
    if not n or n == torch.get_num_threads():
        yield
        return
    old = torch.get_num_threads()
    torch.set_num_threads(int(n))
    try:
        yield
    finally:
        torch.set_num_threads(old)


def wrap_animator(animator: Animator, runtime: str, precision: str = "fp32", threads: int | None = None, *,
                  cache_dir: str | os.PathLike | None = None, calibration=None) -> RuntimeAnimator:
    """Run ``animator``'s encoder and render (cached source) in ``runtime`` at ``precision``.

    Args:
        animator: a registered animator with its weights loaded (CPU); ``static`` has nothing to run.
        runtime: one of :data:`RUNTIMES`.
        precision: one of :data:`PRECISIONS` that the runtime supports here (:func:`supported_precisions`).
        threads: intra-op threads of the runtime (None: the runtime's default, all cores).
        cache_dir: export cache root (default :func:`deploy_dir`).
        calibration: int8 only: calibration pairs for :func:`lab.deploy.quantize.quantized_graphs` (default:
            real training frames, :func:`lab.deploy.quantize.calibration_pairs`).

    Returns:
        :class:`RuntimeAnimator`.

    Raises:
        ValueError: unknown runtime or precision, or a precision the runtime does not run here.
        RuntimeUnavailable: the runtime's package is not installed.
    """
    _check(runtime, precision)
    animator = animator.eval().cpu()
    if runtime == "torch":
        return RuntimeAnimator(animator, runtime, precision, threads)
    from lab.deploy.export import _keys, state_keys

    t0 = time.perf_counter()
    paths = exported_graphs(animator, cache_dir)
    if precision == "int8":
        from lab.deploy.quantize import quantized_graphs

        paths = {**paths, **quantized_graphs(animator, paths, runtime, calibration=calibration)}
    if runtime == "onnxruntime":
        graphs = {p: _OrtGraph(path, threads) for p, path in paths.items()}
    else:
        graphs = {p: _OvGraph(path, threads, precision) for p, path in paths.items()}
    wrapped = RuntimeAnimator(animator, runtime, precision, threads, graphs, _keys(animator), state_keys(animator),
                              paths["encoder"].parent)
    wrapped.setup_seconds = time.perf_counter() - t0
    wrapped.graph_files = paths  # which ONNX file each part runs (int8: the quantised render)
    return wrapped
