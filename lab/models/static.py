"""The ``static`` animator: renders the source unchanged.

The "no motion" floor every trained model must beat in reports: a codec that sends nothing after the
reference frame. Its motion payload is an ``(N, 0)`` tensor, zero values per frame.
"""

from __future__ import annotations

from collections.abc import Mapping

from torch import Tensor

from lab.core.animator import Animator, AnimatorInfo, Motion, SourceState
from lab.core.registry import register_animator

__all__ = ["StaticAnimator"]


@register_animator
class StaticAnimator(Animator):
    """Returns the source frame for every driving frame."""

    name = "static"
    needs_weights = False
    info = AnimatorInfo(
        name="static",
        description="No-motion floor: every output frame is the source image.",
        motion_description="nothing (0 values per frame)",
    )

    def __init__(self, input_size: tuple[int, int] = (256, 256), config: Mapping | None = None) -> None:
        super().__init__()
        self.input_size = tuple(input_size)
        self.config = dict(config or {})  # every entry point takes a config; the static floor has nothing to set

    def encode_source(self, source: Tensor) -> SourceState:
        return {"source": source}

    def extract_motion(self, frames: Tensor) -> Motion:
        return {"empty": frames.new_zeros(frames.shape[0], 0)}

    def render(self, state: SourceState, motion_source: Motion, motion_driving: Motion) -> Tensor:
        n = next(iter(motion_driving.values())).shape[0]
        src = state["source"]
        return src.expand(n, *src.shape[1:]).clone() if src.shape[0] == 1 else src.clone()

    def load_checkpoint(self, path: str) -> dict:
        raise ValueError("the static animator has no weights")
