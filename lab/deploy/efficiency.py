"""Efficiency of animators (the paper's Table 1): parameters, MACs and latency of encoder and decoder.

Measured through the animator interface, so every registered model is counted the same way:

* **encoder** = :meth:`Animator.extract_motion` on one frame (the sender's per-frame work);
* **decoder** = :meth:`Animator.encode_source` + :meth:`Animator.render` for one frame (the whole
  generator forward, as FOMM's Table 1 row counts it); **render** = :meth:`Animator.render` alone, the
  per-frame server cost once the source is encoded (a codec encodes its reference frame once).

MACs come from :class:`torch.utils.flop_counter.FlopCounterMode` (exact for convolutions and matrix
products; ``grid_sample``, softmax, normalisation and element-wise ops are not counted) divided by two —
the convention behind the paper's "FLOPs" column (its FOMM encoder row, 1.28 G, is thop's MAC count;
FlopCounterMode reads 1.31 G MACs because it also counts FOMM's functional anti-alias convolution).
Latency is the median of :class:`torch.utils.benchmark.Timer` ``blocked_autorange`` runs.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import asdict, dataclass

import torch
from torch.utils.flop_counter import FlopCounterMode

from lab.core.animator import Animator

__all__ = ["PartCost", "count_macs", "measure_latency", "animator_costs", "efficiency_table"]


@dataclass
class PartCost:
    """Cost of one part of one animator at one input size."""

    model: str
    part: str  # "encoder" | "decoder" | "render"
    params: int
    macs: float  # multiply-accumulates per frame
    latency_ms: float | None = None
    threads: int | None = None

    @property
    def flops(self) -> float:
        return 2 * self.macs

    def as_dict(self) -> dict:
        return {**asdict(self), "flops": self.flops}


def count_macs(fn: Callable[[], object]) -> float:
    """MACs of one call of ``fn`` (FlopCounterMode FLOPs / 2)."""
    with FlopCounterMode(display=False) as fc, torch.no_grad():
        fn()
    return fc.get_total_flops() / 2


def measure_latency(fn: Callable[[], object], min_run_time: float = 1.0, threads: int | None = None) -> float:
    """Median latency of ``fn`` in milliseconds (``torch.utils.benchmark.Timer.blocked_autorange``)."""
    from torch.utils.benchmark import Timer

    with torch.no_grad():
        fn()  # warm-up (allocations, one-time kernels)
        t = Timer(stmt="fn()", globals={"fn": fn}, num_threads=threads or torch.get_num_threads())
        return t.blocked_autorange(min_run_time=min_run_time).median * 1e3


def _params(modules: dict) -> int:
    return sum(p.numel() for m in modules.values() for p in m.parameters())


def animator_costs(animator: Animator, latency: bool = True, min_run_time: float = 1.0,
                   threads: int | None = None, seed: int = 0) -> list[PartCost]:
    """Encoder, decoder and render costs of ``animator`` for one frame at its input size (eval mode)."""
    animator = animator.eval()
    g = torch.Generator().manual_seed(seed)
    h, w = animator.input_size
    dev = animator.device
    src = torch.rand(1, 3, h, w, generator=g).to(dev)
    drv = torch.rand(1, 3, h, w, generator=g).to(dev)
    with torch.no_grad():
        state = animator.encode_source(src)
        ms = animator.extract_motion(src)
        md = animator.extract_motion(drv)

    def enc():
        return animator.extract_motion(drv)

    def dec():
        return animator.render(animator.encode_source(src), ms, md)

    def ren():
        return animator.render(state, ms, md)

    rows = []
    for part, fn, params in (
        ("encoder", enc, animator.encoder_params),
        ("decoder", dec, animator.decoder_params),
        ("render", ren, animator.decoder_params),
    ):
        lat = measure_latency(fn, min_run_time, threads) if latency else None
        rows.append(PartCost(animator.name, part, params, count_macs(fn), lat, threads or torch.get_num_threads()))
    return rows


def efficiency_table(costs: list[PartCost], reference: str = "fomm") -> list[dict]:
    """Rows of Table 1 with ratios to ``reference`` (``x_faster`` = reference latency / this latency)."""
    ref = {c.part: c for c in costs if c.model == reference}
    rows = []
    for c in costs:
        r = c.as_dict()
        base = ref.get(c.part)
        if base is not None:
            r["params_ratio"] = c.params / base.params if base.params else None
            r["macs_ratio"] = c.macs / base.macs if base.macs else None
            r["x_faster"] = base.latency_ms / c.latency_ms if base.latency_ms and c.latency_ms else None
        rows.append(r)
    return rows


# ---------------------------------------------------------------------------------------------------- runtimes
#: issue 14's acceptance figures (2-core CPU): encoder speed-ups, render time and speed-up
TARGETS = {"encoder_x_vs_fomm_eager": 92.0, "encoder_x_vs_fomm_same_runtime": 20.0, "render_ms": 82.0,
           "render_x_vs_fomm_same_runtime": 3.7}


def time_call(fn: Callable[[], object], min_run_time: float = 1.0, warmup: int = 3, min_runs: int = 5) -> float:
    """Median milliseconds of ``fn()`` over repeated calls (after ``warmup`` calls) for ``min_run_time`` seconds."""
    import statistics
    import time

    for _ in range(warmup):
        fn()
    times = []
    start = time.perf_counter()
    while time.perf_counter() - start < min_run_time or len(times) < min_runs:
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return 1000 * float(statistics.median(times))


def runtime_costs(animator: Animator, modes: list[tuple[str, str]], threads: int | None = None,
                  min_run_time: float = 1.0, seed: int = 0, parts: tuple[str, ...] = ("encoder", "render", "decoder"),
                  wrap_kwargs: dict | None = None, failures: list[str] | None = None) -> list[dict]:
    """Latency of ``animator`` per 256² frame in each ``(runtime, precision)`` mode (:mod:`lab.deploy.runtimes`).

    Parts: ``encoder`` (extract_motion of one frame), ``render`` (per frame, source state cached),
    ``decoder`` (encode_source + render). Denormal floats are flushed to zero in every runtime while timing
    (randomly initialised weights can produce them, and they cost an x86 core ~100× per operation).

    Args:
        failures: when given, a mode that fails to build or run is appended here as one line (``model runtime
            precision: error``) and the others are still timed; None lets the error propagate.

    Returns:
        rows ``{model, part, runtime, precision, ms, fps, threads, quality}`` (``quality``: ``kept`` / ``lossy``
        from the recorded quality cost of these weights, :func:`lab.deploy.quality.recorded_costs`, else None).
    """
    from lab.deploy.quality import recorded_costs
    from lab.deploy.runtimes import wrap_animator

    costs = recorded_costs(animator)

    g = torch.Generator().manual_seed(seed)
    h, w = animator.input_size
    src = torch.rand(1, 3, h, w, generator=g)
    drv = torch.rand(1, 3, h, w, generator=g)
    rows = []
    torch.set_flush_denormal(True)
    try:
        for runtime, precision in modes:
            try:
                m = wrap_animator(animator, runtime, precision, threads, **(wrap_kwargs or {}))
                with torch.no_grad():
                    state, ms = m.encode_source(src), m.extract_motion(src)
                    md = m.extract_motion(drv)
            except Exception as e:  # noqa: BLE001 - one broken mode must not take the other rows with it
                if failures is None:
                    raise
                failures.append(f"{animator.name} {runtime} {precision}: {type(e).__name__}: "
                                f"{str(e).strip().splitlines()[-1][:200] if str(e).strip() else ''}")
                continue
            cost = costs.get((runtime, precision))
            quality = None if cost is None else ("lossy" if cost.get("lossy") else "kept")
            fns = {"encoder": lambda m=m: m.extract_motion(drv),
                   "render": lambda m=m, s=state, a=ms, b=md: m.render(s, a, b),
                   "decoder": lambda m=m, a=ms, b=md: m.render(m.encode_source(src), a, b)}
            for part in parts:
                with torch.no_grad():
                    ms_ = time_call(fns[part], min_run_time)
                rows.append({"model": animator.name, "part": part, "runtime": runtime, "precision": precision,
                             "ms": ms_, "fps": 1000 / ms_, "threads": threads or torch.get_num_threads(),
                             "quality": quality})
    finally:
        torch.set_flush_denormal(False)  # PyTorch's default
    return rows


def runtime_table(rows: list[dict], reference: str = "fomm") -> tuple[list[dict], dict]:
    """Rows with ratios to ``reference`` and a summary against :data:`TARGETS`.

    ``x_vs_ref_same`` = reference ms / this ms on the same runtime and precision; ``x_vs_ref_eager`` =
    reference's eager fp32 PyTorch ms / this ms. The summary takes the fastest row of each other model's
    encoder and render, among the modes not labelled lossy by their recorded quality cost.
    """
    ref = {(r["part"], r["runtime"], r["precision"]): r["ms"] for r in rows if r["model"] == reference}
    out = []
    for r in rows:
        same = ref.get((r["part"], r["runtime"], r["precision"]))
        eager = ref.get((r["part"], "torch", "fp32"))
        out.append({**r, "x_vs_ref_same": same / r["ms"] if same else None,
                    "x_vs_ref_eager": eager / r["ms"] if eager else None})
    summary = {}
    for model in sorted({r["model"] for r in out if r["model"] != reference}):
        for part in ("encoder", "render"):
            cand = [r for r in out if r["model"] == model and r["part"] == part]
            cand = [r for r in cand if r.get("quality") != "lossy"] or cand  # a mode labelled lossy is not kept
            if cand:
                best = min(cand, key=lambda r: r["ms"])
                summary[(model, part)] = best
    return out, summary
