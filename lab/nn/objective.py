"""The training contract between a model and the common trainer (FOMM's ``GeneratorFullModel`` /
``DiscriminatorFullModel`` split).

A trainable animator implements :meth:`Animator.training_objective` (see :func:`training_objective`)
returning an :class:`Objective`: a generator-side module that turns a batch of frame pairs into weighted
losses, and optionally a discriminator-side module. The trainer wraps each in DDP separately, so the
discriminator must *not* be a registered sub-module of the generator side: keep a reference with
:meth:`GeneratorFullModel.attach_discriminator` (the generator side calls it for GAN / feature-matching
losses; the trainer zeroes the discriminator's gradients before its own step, as FOMM does).

Batches are dicts ``{"source": (B,3,H,W), "driving": (B,3,H,W)}`` float in [0,1], two frames of the same
video (FOMM's training sampling).
"""

from __future__ import annotations

from dataclasses import dataclass, field

from torch import Tensor, nn

__all__ = ["GeneratorFullModel", "DiscriminatorFullModel", "Objective", "training_objective"]


class GeneratorFullModel(nn.Module):
    """Generator side of training: ``forward(source, driving) -> (losses, generated)``.

    ``losses`` maps names to *weighted* scalar tensors (the trainer sums them); ``generated`` holds at
    least ``"prediction"`` ``(B,3,H,W)`` and, for keypoint models, ``"kp_source"``/``"kp_driving"``
    dicts used in the image-grid logs.
    """

    def __init__(self, animator: nn.Module) -> None:
        super().__init__()
        self.animator = animator
        self._discriminator: list[nn.Module] = []  # a list hides it from module registration (DDP)

    def attach_discriminator(self, discriminator: nn.Module | None) -> None:
        self._discriminator = [discriminator] if discriminator is not None else []

    @property
    def discriminator(self) -> nn.Module | None:
        return self._discriminator[0] if self._discriminator else None

    def forward(self, source: Tensor, driving: Tensor) -> tuple[dict[str, Tensor], dict]:  # pragma: no cover
        raise NotImplementedError


class DiscriminatorFullModel(nn.Module):
    """Discriminator side: ``forward(source, driving, generated) -> losses`` (weighted scalars)."""

    def __init__(self, discriminator: nn.Module) -> None:
        super().__init__()
        self.discriminator = discriminator

    def forward(self, source: Tensor, driving: Tensor, generated: dict) -> dict[str, Tensor]:  # pragma: no cover
        raise NotImplementedError


@dataclass
class Objective:
    """What a model hands the trainer.

    Attributes:
        generator: the generator side (owns the animator's parameters).
        discriminator: the discriminator side, or None when the config trains no GAN.
        description: the losses in use, for the run's metadata (e.g. "perceptual: vgg19" or the fallback).
    """

    generator: GeneratorFullModel
    discriminator: DiscriminatorFullModel | None = None
    description: dict = field(default_factory=dict)


def training_objective(animator: nn.Module, train_params: dict) -> Objective:
    """The model's :class:`Objective` for ``train_params`` (the ``train_params`` section of its YAML).

    Raises:
        NotImplementedError: the animator is not trainable.
    """
    return animator.training_objective(train_params)
