"""The animator interface every model in the lab implements.

A talking-head codec splits a face-animation model in two (FOMM's ``kp_detector``/``generator`` split,
LivePortrait's ``get_kp_info``/``warp_decode``):

* the **sender** runs :meth:`Animator.extract_motion` on each camera frame; its output (a dict of
  tensors: keypoints and Jacobians, or an embedding for X2Face) is *exactly* what crosses the network;
* the **server** runs :meth:`Animator.encode_source` once per reference frame and
  :meth:`Animator.render` per driving frame.

Frames cross the interface as float tensors ``(N, 3, H, W)`` in ``[0, 1]`` at :attr:`Animator.input_size`.
Model code is pure: no file I/O, no UI, no device choice (the caller moves the module).
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field

import torch
from torch import Tensor, nn

__all__ = ["Animator", "AnimatorInfo", "Motion", "SourceState", "expand_batch", "index_batch", "cat_batches"]

Motion = dict[str, Tensor]
"""Per-frame motion payload; every tensor has the frame batch as its first dimension."""

SourceState = dict[str, Tensor]
"""Whatever the server caches per source image (features, the image itself, ...)."""


@dataclass(frozen=True)
class AnimatorInfo:
    """Provenance and description of a registered animator (timm's ``default_cfgs`` idea)."""

    name: str
    description: str
    paper: str = ""  # citation of the method
    official_code: str = ""  # upstream repository@commit the implementation is checked against
    licence: str = ""  # licence of the upstream weights/code the user must respect
    checkpoint_file: str = ""  # file name of the official/trained checkpoint, if any
    motion_description: str = ""  # what crosses the network per frame
    extra: dict = field(default_factory=dict)


def expand_batch(d: dict[str, Tensor], n: int) -> dict[str, Tensor]:
    """Broadcast a batch-1 dict of tensors to batch ``n`` (a no-op when the batch already is ``n``)."""
    out = {}
    for k, v in d.items():
        if v.shape[0] == n:
            out[k] = v
        elif v.shape[0] == 1:
            out[k] = v.expand(n, *v.shape[1:])
        else:
            raise ValueError(f"cannot broadcast '{k}' with batch {v.shape[0]} to batch {n}")
    return out


def index_batch(d: dict[str, Tensor], idx: slice | int) -> dict[str, Tensor]:
    """Slice every tensor of a batched dict along the first dimension (an int keeps the dimension)."""
    if isinstance(idx, int):
        idx = slice(idx, idx + 1)
    return {k: v[idx] for k, v in d.items()}


def cat_batches(ds: Iterable[dict[str, Tensor]]) -> dict[str, Tensor]:
    """Concatenate a sequence of batched dicts along the first dimension."""
    ds = list(ds)
    if not ds:
        raise ValueError("cat_batches needs at least one dict")
    return {k: torch.cat([d[k] for d in ds], 0) for k in ds[0]}


class Animator(nn.Module):
    """Base class of every animator.

    Subclasses set :attr:`name`, :attr:`input_size`, :attr:`info`, implement the three interface
    methods and say which sub-modules run on the sender (:meth:`encoder_modules`) and on the server
    (:meth:`decoder_modules`); parameter counts and efficiency numbers are derived from those.
    """

    name: str = "animator"
    input_size: tuple[int, int] = (256, 256)
    info: AnimatorInfo = AnimatorInfo(name="animator", description="")
    #: whether the model has learnable weights that must come from a checkpoint to be meaningful
    needs_weights: bool = True
    #: the resolved config (FOMM's YAML layout: ``dataset_params``, ``model_params``, ``train_params``, ...);
    #: trainable models set it from their packaged YAML plus overrides
    config: dict = {}

    # ------------------------------------------------------------------ interface
    def encode_source(self, source: Tensor) -> SourceState:
        """Work done once per source image on the server.

        Args:
            source: ``(B, 3, H, W)`` float in [0, 1] at :attr:`input_size`.
        """
        raise NotImplementedError

    def extract_motion(self, frames: Tensor) -> Motion:
        """Sender side: the motion payload of each frame.

        Args:
            frames: ``(N, 3, H, W)`` float in [0, 1] at :attr:`input_size`.

        Returns:
            dict of tensors with first dimension ``N``; exactly what crosses the network.
        """
        raise NotImplementedError

    def render(self, state: SourceState, motion_source: Motion, motion_driving: Motion) -> Tensor:
        """Server side: animate the source with the driving motion.

        Args:
            state: from :meth:`encode_source` (batch 1 or ``N``).
            motion_source: motion of the source frame (batch 1 or ``N``).
            motion_driving: motion of ``N`` driving frames.

        Returns:
            ``(N, 3, H, W)`` float in [0, 1].
        """
        raise NotImplementedError

    # ------------------------------------------------------------------ optional hooks
    def transfer_motion(
        self,
        motion_source: Motion,
        motion_driving: Motion,
        motion_driving_initial: Motion,
        adapt_movement_scale: bool = True,
    ) -> Motion:
        """Relative motion transfer for cross-identity animation (FOMM's ``normalize_kp``).

        The default (for models without a keypoint representation) returns the driving motion unchanged.
        """
        return motion_driving

    def training_objective(self, train_params: dict):
        """The :class:`lab.nn.objective.Objective` (losses) the common trainer optimises.

        Args:
            train_params: the ``train_params`` section of the model's YAML (loss weights, scales, ...).
        """
        raise NotImplementedError(f"animator '{self.name}' is not trainable")

    def encoder_modules(self) -> dict[str, nn.Module]:
        """Sub-modules that run on the sender (counted as the encoder in Table 1)."""
        return {}

    def decoder_modules(self) -> dict[str, nn.Module]:
        """Sub-modules that run on the server (counted as the decoder in Table 1)."""
        return {}

    def load_checkpoint(self, path: str) -> dict:
        """Load weights from ``path`` (this lab's format); returns the checkpoint's metadata.

        Official formats are handled by overriding this in the baseline's animator.
        """
        from lab.core.checkpoint import load_animator_weights

        return load_animator_weights(self, path)

    # ------------------------------------------------------------------ metadata
    @property
    def encoder_params(self) -> int:
        return sum(p.numel() for m in self.encoder_modules().values() for p in m.parameters())

    @property
    def decoder_params(self) -> int:
        return sum(p.numel() for m in self.decoder_modules().values() for p in m.parameters())

    @property
    def device(self) -> torch.device:
        for t in self.parameters():
            return t.device
        for t in self.buffers():
            return t.device
        return torch.device("cpu")

    # ------------------------------------------------------------------ convenience
    @torch.no_grad()
    def animate(
        self,
        source: Tensor,
        driving: Tensor | Iterable[Tensor],
        relative: bool = False,
        adapt_movement_scale: bool = True,
        batch_size: int = 8,
    ) -> Iterator[Tensor]:
        """Animate ``source`` with ``driving`` frames, yielding predictions chunk by chunk.

        Args:
            source: ``(1, 3, H, W)`` float in [0, 1].
            driving: ``(N, 3, H, W)`` tensor or an iterable of ``(n, 3, H, W)`` chunks (lazy clips).
            relative: FOMM's animate mode (relative motion from the first driving frame) instead of the
                absolute motion used in reconstruction.
            adapt_movement_scale: scale relative motion by the ratio of source/driving face sizes.
            batch_size: frames rendered per call when ``driving`` is one tensor.

        Yields:
            ``(n, 3, H, W)`` float predictions in [0, 1], on the model's device.
        """
        dev = self.device
        source = source.to(dev)
        state = self.encode_source(source)
        motion_source = self.extract_motion(source)
        if isinstance(driving, Tensor):
            chunks: Iterable[Tensor] = driving.split(batch_size)
        else:
            chunks = driving
        initial = None
        for chunk in chunks:
            chunk = chunk.to(dev)
            motion = self.extract_motion(chunk)
            if relative:
                if initial is None:
                    initial = index_batch(motion, 0)
                motion = self.transfer_motion(motion_source, motion, initial, adapt_movement_scale)
            yield self.render(state, motion_source, motion).clamp(0, 1)
