"""ONNX export of an animator's sender (encoder) and server (decoder) parts, checked against PyTorch.

The paper deploys its encoder on phones through engines such as MNN and TensorRT; both import ONNX. The
graphs exported here:

``encoder``
    input ``frame`` ``(B, 3, H, W)`` float in [0, 1] (``B`` is dynamic in both graphs); outputs the motion
    payload's tensors in sorted key order (FOMM/ultralight: ``jacobian`` ``(B, K, 2, 2)``, ``value``
    ``(B, K, 2)``) — exactly what crosses the network.
``decoder``
    inputs ``source`` ``(B, 3, H, W)`` then the source's and the driving frame's motion tensors
    (``source_<key>``, ``driving_<key>``, sorted keys); output ``prediction`` ``(B, 3, H, W)``. Source
    encoding is inside the graph (one call per frame, as Table 1 counts the decoder).
``source``
    input ``source`` ``(B, 3, H, W)``; outputs the tensors of :meth:`Animator.encode_source` in sorted key
    order (``state_<key>``): what a server computes once per reference frame (ultralight: the source and its
    encoded features; FOMM: the source itself).
``render``
    inputs the ``state_<key>`` tensors, then ``source_<key>`` and ``driving_<key>`` motion tensors; output
    ``prediction``: :meth:`Animator.render` with the source state cached, the per-frame server work.

Export uses ``torch.onnx.export(dynamo=True)`` (opset 18) on a copy of the animator with the exact rewrites
of :mod:`lab.deploy.rewrites` (the same function in cheaper operations; the model is untouched). The batch is
dynamic by default; ``static=True`` fixes it to 1 (what the inference runtimes of :mod:`lab.deploy` use).
FOMM-style dense motion inverts the 2×2 driving
Jacobians with ``torch.inverse``, which has no ONNX operator: a custom translation writes the closed-form
2×2 inverse (adjugate / determinant) in ONNX ops. :func:`export_onnx` runs the exported graph with ONNX
Runtime on the example inputs and records the largest difference from PyTorch.

Needs the ``export`` extra (``onnx``, ``onnxscript``, ``onnxruntime``), imported only here and lazily.
"""

from __future__ import annotations

import os
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch
from torch import Tensor, nn

from lab.core.animator import Animator

__all__ = ["PARTS", "OnnxExport", "export_onnx", "example_inputs", "state_keys", "onnx_session", "onnx_latency"]

PARTS = ("encoder", "decoder", "source", "render")
OPSET = 18


class _EncoderGraph(nn.Module):
    def __init__(self, animator: Animator, keys: list[str]) -> None:
        super().__init__()
        self.animator, self.keys = animator, keys

    def forward(self, frame: Tensor) -> tuple[Tensor, ...]:
        motion = self.animator.extract_motion(frame)
        return tuple(motion[k] for k in self.keys)


class _DecoderGraph(nn.Module):
    def __init__(self, animator: Animator, keys: list[str]) -> None:
        super().__init__()
        self.animator, self.keys = animator, keys

    def forward(self, source: Tensor, *motion: Tensor) -> Tensor:
        k = len(self.keys)
        ms = dict(zip(self.keys, motion[:k]))
        md = dict(zip(self.keys, motion[k:]))
        return self.animator.render(self.animator.encode_source(source), ms, md)


class _SourceGraph(nn.Module):
    def __init__(self, animator: Animator, state_keys: list[str]) -> None:
        super().__init__()
        self.animator, self.state_keys = animator, state_keys

    def forward(self, source: Tensor) -> tuple[Tensor, ...]:
        state = self.animator.encode_source(source)
        return tuple(state[k] for k in self.state_keys)


class _RenderGraph(nn.Module):
    def __init__(self, animator: Animator, state_keys: list[str], keys: list[str]) -> None:
        super().__init__()
        self.animator, self.state_keys, self.keys = animator, state_keys, keys

    def forward(self, *tensors: Tensor) -> Tensor:
        s, k = len(self.state_keys), len(self.keys)
        state = dict(zip(self.state_keys, tensors[:s]))
        ms = dict(zip(self.keys, tensors[s:s + k]))
        md = dict(zip(self.keys, tensors[s + k:]))
        return self.animator.render(state, ms, md)


def state_keys(animator: Animator) -> list[str]:
    """Sorted keys of the tensors :meth:`Animator.encode_source` returns."""
    h, w = animator.input_size
    with torch.no_grad():
        return sorted(animator.encode_source(torch.zeros(1, 3, h, w)))


@dataclass
class OnnxExport:
    """An exported part and how well ONNX Runtime reproduces PyTorch on the example inputs.

    Attributes:
        path: the ``.onnx`` file.
        model: the animator's name. part: ``encoder`` or ``decoder``.
        input_names, output_names: the graph's tensor names, in order.
        max_abs_diff: largest |ONNX Runtime − PyTorch| over all outputs on the example inputs.
        seconds: export time.
    """

    path: Path
    model: str
    part: str
    input_names: list[str]
    output_names: list[str]
    max_abs_diff: float
    seconds: float
    inputs: dict[str, np.ndarray] = field(default_factory=dict, repr=False)


def _keys(animator: Animator) -> list[str]:
    h, w = animator.input_size
    with torch.no_grad():
        motion = animator.extract_motion(torch.zeros(1, 3, h, w))
    keys = sorted(k for k, v in motion.items() if v[0].numel() > 0)
    if not keys:
        raise ValueError(f"'{animator.name}' sends no motion values: there is nothing to export")
    return keys


def example_inputs(animator: Animator, part: str, seed: int = 0) -> tuple[list[str], tuple[Tensor, ...]]:
    """``(input names, tensors)`` of one 256×256 (the model's size) example for ``part``: random frames, and
    for the decoder the motion the model itself extracts from two different random frames."""
    if part not in PARTS:
        raise ValueError(f"part must be one of {PARTS}, got '{part}'")
    g = torch.Generator().manual_seed(seed)
    h, w = animator.input_size
    frame = torch.rand(1, 3, h, w, generator=g)
    if part == "encoder":
        return ["frame"], (frame,)
    if part == "source":
        return ["source"], (frame,)
    keys = _keys(animator)
    with torch.no_grad():
        ms = animator.extract_motion(frame)
        md = animator.extract_motion(torch.rand(1, 3, h, w, generator=g))
    motion_names = [f"source_{k}" for k in keys] + [f"driving_{k}" for k in keys]
    motion = (*(ms[k] for k in keys), *(md[k] for k in keys))
    if part == "render":
        skeys = state_keys(animator)
        with torch.no_grad():
            state = animator.encode_source(frame)
        return [f"state_{k}" for k in skeys] + motion_names, (*(state[k] for k in skeys), *motion)
    return ["source"] + motion_names, (frame, *motion)


def _translations() -> dict:
    """Custom ONNX translations: the closed-form 2×2 inverse for ``torch.inverse``."""
    from onnxscript import opset18 as op

    def inverse_2x2(x):
        a = op.Slice(x, [0, 0], [1, 1], [-2, -1])
        b = op.Slice(x, [0, 1], [1, 2], [-2, -1])
        c = op.Slice(x, [1, 0], [2, 1], [-2, -1])
        d = op.Slice(x, [1, 1], [2, 2], [-2, -1])
        det = op.Sub(op.Mul(a, d), op.Mul(b, c))
        adj = op.Concat(op.Concat(d, op.Neg(b), axis=-1), op.Concat(op.Neg(c), a, axis=-1), axis=-2)
        return op.Div(adj, det)

    return {torch.ops.aten.linalg_inv.default: inverse_2x2}


def onnx_session(path: str | os.PathLike, threads: int | None = None, denormal_as_zero: bool = False):
    """An ONNX Runtime CPU session of ``path`` (``threads`` intra-op threads; None: its default), every graph
    optimisation on (constant folding, conv + BN/activation fusion, NCHWc layouts); ``denormal_as_zero``
    flushes subnormal floats (x86 handles them ~100× slower)."""
    try:
        import onnxruntime as ort
    except ImportError as e:
        raise ImportError("ONNX Runtime is not installed: pip install onnxruntime (or 'facelab[export]')") from e
    opts = ort.SessionOptions()
    opts.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    if denormal_as_zero:
        opts.add_session_config_entry("session.set_denormal_as_zero", "1")
    if threads:
        opts.intra_op_num_threads = int(threads)
        opts.inter_op_num_threads = 1
    return ort.InferenceSession(str(path), opts, providers=["CPUExecutionProvider"])


def export_onnx(animator: Animator, part: str, path: str | os.PathLike, verify: bool = True,
                static: bool = False) -> OnnxExport:
    """Export ``part`` of ``animator`` to ONNX and (by default) check it with ONNX Runtime.

    Args:
        animator: any registered animator with motion values (not ``static``), on the CPU.
        part: ``encoder`` (sender), ``decoder`` (server; source encoding included), ``source`` (the server's
            once-per-reference work) or ``render`` (the server's per-frame work from the cached source state).
        path: the ``.onnx`` file to write (parent folders are created).
        verify: run the graph on the example inputs and record ``max_abs_diff`` (against the animator itself,
            not the rewritten copy).
        static: batch fixed to 1 (default: a dynamic batch dimension).

    Returns:
        :class:`OnnxExport`.

    Raises:
        ValueError: unknown part, or a model that sends nothing. ImportError: the export extra is missing.
    """
    try:
        import onnxscript  # noqa: F401  (the dynamo exporter needs it)
    except ImportError as e:
        raise ImportError("ONNX export needs onnx and onnxscript: pip install 'facelab[export]'") from e
    from lab.deploy.rewrites import deploy_copy

    if part not in PARTS:
        raise ValueError(f"part must be one of {PARTS}, got '{part}'")
    animator = animator.eval().cpu()
    keys = _keys(animator)
    names, args = example_inputs(animator, part)
    graph, outputs = _graph(animator, part, keys)
    out = Path(path)
    out.parent.mkdir(parents=True, exist_ok=True)
    t0 = time.perf_counter()
    batch = torch.export.Dim("batch", min=1, max=1024)  # any number of frames per call
    if static:
        dims = None
    elif part in ("encoder", "source"):
        dims = {names[0]: {0: batch}}
    elif part == "decoder":
        dims = {"source": {0: batch}, "motion": tuple({0: batch} for _ in args[1:])}
    else:
        dims = {"tensors": tuple({0: batch} for _ in args)}
    exported, _ = _graph(deploy_copy(animator), part, keys)
    torch.onnx.export(exported, args, str(out), input_names=names, output_names=outputs, opset_version=OPSET,
                      dynamo=True, dynamic_shapes=dims, custom_translation_table=_translations(), verbose=False)
    seconds = time.perf_counter() - t0
    feed = {n: a.numpy() for n, a in zip(names, args)}
    diff = float("nan")
    if verify:
        got = onnx_session(out).run(None, feed)
        with torch.no_grad():
            want = graph(*args)
        want = want if isinstance(want, tuple) else (want,)
        diff = max(float(np.abs(g - w.numpy()).max()) for g, w in zip(got, want))
    return OnnxExport(out, animator.name, part, names, outputs, diff, seconds, feed)


def _graph(animator: Animator, part: str, keys: list[str]) -> tuple[nn.Module, list[str]]:
    """The module that ``part`` exports and its output names."""
    if part == "encoder":
        return _EncoderGraph(animator, keys).eval(), list(keys)
    if part == "decoder":
        return _DecoderGraph(animator, keys).eval(), ["prediction"]
    skeys = state_keys(animator)
    if part == "source":
        return _SourceGraph(animator, skeys).eval(), [f"state_{k}" for k in skeys]
    return _RenderGraph(animator, skeys, keys).eval(), ["prediction"]


def onnx_latency(export: OnnxExport, threads: int | None = None, min_run_time: float = 1.0) -> float:
    """Median milliseconds of one ONNX Runtime call on the export's example inputs (after 3 warm-up calls)."""
    from lab.deploy.efficiency import time_call

    sess = onnx_session(export.path, threads)
    return time_call(lambda: sess.run(None, export.inputs), min_run_time, warmup=3, min_runs=5)
