"""ultralight's training objective: FOMM's losses plus keypoints anchored to facial landmark groups.

:class:`UltralightGeneratorFullModel` is FOMM's generator side (perceptual pyramid, equivariance; the same code,
:mod:`baselines.fomm.objective`) with one more term when ``loss_weights.keypoint_landmarks`` is non-zero:
the L1 distance, in the keypoints' [-1, 1] coordinates, between the encoder's keypoint values of the source
and driving frames and their landmark-group targets (:mod:`lab.train.landmarks`; frames where no face was
found are left out). Why: see :mod:`lab.train.landmarks` (without it the decoder settled on ``static``).
"""

from __future__ import annotations

import os
from collections.abc import Mapping

import torch
from torch import Tensor

from baselines.fomm.objective import FOMMGeneratorFullModel, build_objective
from lab.nn.objective import Objective

__all__ = ["UltralightGeneratorFullModel", "build_ultralight_objective", "landmark_l1"]


def landmark_l1(kp_value: Tensor, target: Tensor) -> Tensor:
    """Mean |keypoint − target| over the frames whose target is finite (0 when none is)."""
    ok = torch.isfinite(target).all(dim=-1).all(dim=-1)  # (B,)
    if not bool(ok.any()):
        return kp_value.sum() * 0.0
    return (kp_value[ok] - target[ok].to(kp_value.dtype)).abs().mean()


class UltralightGeneratorFullModel(FOMMGeneratorFullModel):
    """FOMM's generator side + ``keypoint_landmarks`` (weighted, in the losses as ``keypoint_landmarks``)."""

    def forward(self, source: Tensor, driving: Tensor, kp_target_source: Tensor | None = None,
                kp_target_driving: Tensor | None = None) -> tuple[dict[str, Tensor], dict]:
        losses, generated = super().forward(source, driving)
        w = float(self.loss_weights.get("keypoint_landmarks", 0) or 0)
        if w and kp_target_source is not None and kp_target_driving is not None:
            losses["keypoint_landmarks"] = w * 0.5 * (
                landmark_l1(generated["kp_source"]["value"], kp_target_source)
                + landmark_l1(generated["kp_driving"]["value"], kp_target_driving))
        return losses, generated


def build_ultralight_objective(animator, train_params: Mapping,
                               vgg_weights: str | os.PathLike | None = "auto") -> Objective:
    """FOMM's objective with the generator side swapped for :class:`UltralightGeneratorFullModel`."""
    obj = build_objective(animator, train_params, vgg_weights=vgg_weights)
    gen = UltralightGeneratorFullModel(animator, train_params, vgg_weights=vgg_weights)
    gen.attach_discriminator(obj.generator.discriminator)
    w = float(gen.loss_weights.get("keypoint_landmarks", 0) or 0)
    description = {**obj.description, "model": "ultralight",
                   "keypoint_landmarks": f"L1 weight {w:g} to dlib landmark groups" if w else "off"}
    return Objective(generator=gen, discriminator=obj.discriminator, description=description)
