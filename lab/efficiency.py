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

from lab.animator import Animator

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
