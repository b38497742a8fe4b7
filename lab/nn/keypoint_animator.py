"""The keypoint-animator base: FOMM's motion representation behind the :class:`lab.core.animator.Animator` interface.

FOMM and the proposed ``ultralight`` model send the same motion (keypoints + local affine Jacobians) and share
the same three networks' roles: a keypoint detector on the sender, a generator on the server, and a
discriminator that only trains. What differs is how each builds its networks from its config, so a subclass
sets :attr:`default_config` and :meth:`load_config` (how a config argument is resolved) and implements
:meth:`build_networks`; everything else (the interface, the parts' split, the config → input size rule, the
training-only discriminator) lives here once.
"""

from __future__ import annotations

import os
from collections.abc import Mapping

from torch import Tensor, nn

from lab.core.animator import Animator, Motion, SourceState, expand_batch

__all__ = ["KeypointAnimator"]


class KeypointAnimator(Animator):
    """An animator with ``kp_detector`` (sender), ``generator`` (server) and a training-only ``discriminator``.

    Args:
        config: a config path, packaged name or mapping, resolved by :meth:`load_config`; None for the model's
            default.
        **model_params_overrides: ``{section: dict}`` merged into ``model_params``.
    """

    #: state_dict prefixes that fp16 inference files leave out (the loader keeps the model's own values)
    training_only_prefixes = ("discriminator.",)

    def __init__(self, config: str | os.PathLike | Mapping | None = None, **model_params_overrides: Mapping) -> None:
        super().__init__()
        self.config = self.load_config(config, **model_params_overrides)
        self.kp_detector, self.generator, self.discriminator = self.build_networks(self.config["model_params"])
        frame_shape = (self.config.get("dataset_params") or {}).get("frame_shape")
        if frame_shape:
            self.input_size = (int(frame_shape[0]), int(frame_shape[1]))

    # ------------------------------------------------------------------ what a subclass provides
    @classmethod
    def load_config(cls, config: str | os.PathLike | Mapping | None, **model_params_overrides: Mapping) -> dict:
        """The resolved config dict of ``config`` (None: the model's default)."""
        raise NotImplementedError

    def build_networks(self, model_params: Mapping) -> tuple[nn.Module, nn.Module, nn.Module]:
        """``(kp_detector, generator, discriminator)`` built from the config's ``model_params``."""
        raise NotImplementedError

    # ------------------------------------------------------------------ interface
    def encode_source(self, source: Tensor) -> SourceState:
        """``{"source": (B, 3, H, W)}``: the generator encodes the source itself, per render call."""
        return {"source": source}

    def extract_motion(self, frames: Tensor) -> Motion:
        """``{"value": (N, K, 2), "jacobian": (N, K, 2, 2)}`` of ``(N, 3, H, W)`` frames in [0, 1]."""
        return self.kp_detector(frames)

    def render(self, state: SourceState, motion_source: Motion, motion_driving: Motion) -> Tensor:
        """``generator(source, kp_driving, kp_source, **cached)["prediction"]`` ``(N, 3, H, W)``; batch-1 inputs
        broadcast. State entries other than ``source`` (a cached source encoding) go to the generator by name."""
        n = motion_driving["value"].shape[0]
        st = expand_batch(state, n)
        cached = {f"source_{k}": v for k, v in st.items() if k != "source"}
        return self.generator(st["source"], kp_driving=motion_driving, kp_source=expand_batch(motion_source, n),
                              **cached)["prediction"]

    def encoder_modules(self) -> dict[str, nn.Module]:
        return {"kp_detector": self.kp_detector}

    def decoder_modules(self) -> dict[str, nn.Module]:
        return {"generator": self.generator}
