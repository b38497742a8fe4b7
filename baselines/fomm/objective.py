"""FOMM's training losses as a :class:`lab.nn.objective.Objective` for the common trainer.

Siarohin et al., *First Order Motion Model for Image Animation*, NeurIPS 2019, Sec. 3.3; the loss composition
follows AliaksandrSiarohin/first-order-model@c0274845 ``modules/model.py`` (``GeneratorFullModel`` /
``DiscriminatorFullModel``), built from the generic pieces in :mod:`lab.nn.losses`:

* ``perceptual``: multi-scale VGG19 pyramid loss over ``train_params.scales`` with ``loss_weights.perceptual``
  (or the documented fallback when the VGG19 weights file is absent; see :class:`lab.nn.losses.PerceptualPyramidLoss`);
* ``gen_gan`` + ``feature_matching``: LSGAN generator term and discriminator feature matching, only when
  ``loss_weights.generator_gan != 0`` (vox-adv-256);
* ``equivariance_value`` / ``equivariance_jacobian``: keypoints and Jacobians must follow a random affine+TPS warp
  (``transform_params``) of the driving frame;
* discriminator side: ``disc_gan`` (LSGAN), trained only when the generator has a GAN term (as the official loop).

Loss values are the weighted scalars the official code logs (same names), so a run's curves read like FOMM's.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from typing import TYPE_CHECKING

from torch import Tensor

from lab.nn.losses import (
    ImagePyramid,
    PerceptualPyramidLoss,
    Transform,
    detach_kp,
    equivariance_jacobian_loss,
    equivariance_value_loss,
    feature_matching_loss,
    lsgan_discriminator_loss,
    lsgan_generator_loss,
)
from lab.nn.objective import DiscriminatorFullModel, GeneratorFullModel, Objective

if TYPE_CHECKING:
    from baselines.fomm.animator import FOMMAnimator
    from baselines.fomm.discriminator import MultiScaleDiscriminator

__all__ = ["FOMMGeneratorFullModel", "FOMMDiscriminatorFullModel", "build_objective"]


class FOMMGeneratorFullModel(GeneratorFullModel):
    """Generator side: keypoint detector + generator and their losses.

    Only ``kp_extractor`` (the animator's ``kp_detector``) and ``generator`` are registered: the animator also owns
    the discriminator, which the trainer optimises and wraps separately, so the animator is kept by reference
    (:attr:`animator`) and the discriminator is attached with :meth:`attach_discriminator`.

    Args:
        animator: the :class:`baselines.fomm.FOMMAnimator`.
        train_params: the YAML's ``train_params`` (``scales``, ``loss_weights``, ``transform_params``).
        vgg_weights: passed to :class:`lab.nn.losses.PerceptualPyramidLoss` (``"auto"``, a path, or None).
    """

    def __init__(
        self, animator: FOMMAnimator, train_params: Mapping, vgg_weights: str | os.PathLike | None = "auto"
    ) -> None:
        super().__init__(animator)
        self._modules.pop("animator")  # registered by the base class; see the class docstring
        self._animator_ref = [animator]
        self.kp_extractor = animator.kp_detector
        self.generator = animator.generator
        self.train_params = dict(train_params)
        self.loss_weights = dict(train_params["loss_weights"])
        self.scales = list(train_params["scales"])
        self.transform_params = dict(train_params.get("transform_params") or {})
        self.pyramid = ImagePyramid(self.scales, animator.generator.num_channels)
        w = self.loss_weights
        num_channels = animator.generator.num_channels
        self.perceptual: PerceptualPyramidLoss | None = (
            PerceptualPyramidLoss(self.scales, w["perceptual"], num_channels, vgg_weights=vgg_weights)
            if sum(w["perceptual"]) != 0
            else None
        )
        common = (animator.config.get("model_params") or {}).get("common_params") or {}
        estimate_jacobian = common.get("estimate_jacobian", False)
        if w.get("equivariance_jacobian", 0) != 0 and not estimate_jacobian:
            raise ValueError("loss_weights.equivariance_jacobian != 0 needs common_params.estimate_jacobian: true")

    @property
    def animator(self) -> FOMMAnimator:
        """The animator this side trains (by reference, not a registered sub-module)."""
        return self._animator_ref[0]

    def forward(self, source: Tensor, driving: Tensor) -> tuple[dict[str, Tensor], dict]:
        """Weighted losses of one batch of frame pairs.

        Args:
            source: ``(B, 3, H, W)`` float in [0, 1].
            driving: ``(B, 3, H, W)`` float in [0, 1], another frame of the same video (the target).

        Returns:
            ``(losses, generated)``: weighted scalars (``perceptual``, ``gen_gan``, ``feature_matching``,
            ``equivariance_value``, ``equivariance_jacobian`` as enabled) and the generator's outputs plus
            ``kp_source``, ``kp_driving`` (and ``transformed_frame``, ``transformed_kp`` with equivariance).
        """
        w = self.loss_weights
        kp_source = self.kp_extractor(source)
        kp_driving = self.kp_extractor(driving)
        generated = dict(self.generator(source, kp_source=kp_source, kp_driving=kp_driving))
        generated["kp_source"] = kp_source
        generated["kp_driving"] = kp_driving

        losses: dict[str, Tensor] = {}
        pyramid_real = self.pyramid(driving)
        pyramid_generated = self.pyramid(generated["prediction"])
        if self.perceptual is not None:
            losses["perceptual"] = self.perceptual(pyramid_generated, pyramid_real)

        if w["generator_gan"] != 0:
            discriminator = self.discriminator
            if discriminator is None:
                raise RuntimeError("generator_gan != 0: attach the discriminator first (attach_discriminator)")
            kp = detach_kp(kp_driving)
            maps_generated = discriminator(pyramid_generated, kp=kp)
            maps_real = discriminator(pyramid_real, kp=kp)
            losses["gen_gan"] = sum(
                w["generator_gan"] * lsgan_generator_loss(maps_generated[f"prediction_map_{s}"])
                for s in discriminator.scales
            )
            if sum(w["feature_matching"]) != 0:
                losses["feature_matching"] = sum(
                    feature_matching_loss(maps_real[f"feature_maps_{s}"], maps_generated[f"feature_maps_{s}"],
                                          w["feature_matching"])
                    for s in discriminator.scales
                )

        if w["equivariance_value"] + w["equivariance_jacobian"] != 0:
            transform = Transform(driving.shape[0], **self.transform_params)
            transformed_frame = transform.transform_frame(driving)
            transformed_kp = self.kp_extractor(transformed_frame)
            generated["transformed_frame"] = transformed_frame
            generated["transformed_kp"] = transformed_kp
            if w["equivariance_value"] != 0:
                losses["equivariance_value"] = w["equivariance_value"] * equivariance_value_loss(
                    kp_driving["value"], transformed_kp["value"], transform
                )
            if w["equivariance_jacobian"] != 0:
                losses["equivariance_jacobian"] = w["equivariance_jacobian"] * equivariance_jacobian_loss(
                    kp_driving["jacobian"], transformed_kp["value"], transformed_kp["jacobian"], transform
                )
        return losses, generated


class FOMMDiscriminatorFullModel(DiscriminatorFullModel):
    """Discriminator side: LSGAN loss on the driving frame vs the (detached) prediction.

    Args:
        discriminator: the :class:`baselines.fomm.MultiScaleDiscriminator`.
        train_params: the YAML's ``train_params`` (``loss_weights.discriminator_gan``).
        num_channels: image channels.
    """

    def __init__(self, discriminator: MultiScaleDiscriminator, train_params: Mapping, num_channels: int = 3) -> None:
        super().__init__(discriminator)
        self.loss_weights = dict(train_params["loss_weights"])
        self.pyramid = ImagePyramid(discriminator.scales, num_channels)

    def forward(self, source: Tensor, driving: Tensor, generated: dict) -> dict[str, Tensor]:
        """``{"disc_gan": weighted scalar}`` for one batch (``generated`` from the generator side)."""
        pyramid_real = self.pyramid(driving)
        pyramid_generated = self.pyramid(generated["prediction"].detach())
        kp = detach_kp(generated["kp_driving"])
        maps_generated = self.discriminator(pyramid_generated, kp=kp)
        maps_real = self.discriminator(pyramid_real, kp=kp)
        value = sum(
            self.loss_weights["discriminator_gan"]
            * lsgan_discriminator_loss(maps_real[f"prediction_map_{s}"], maps_generated[f"prediction_map_{s}"])
            for s in self.discriminator.scales
        )
        return {"disc_gan": value}


def build_objective(
    animator: FOMMAnimator, train_params: Mapping, vgg_weights: str | os.PathLike | None = "auto"
) -> Objective:
    """FOMM's :class:`lab.nn.objective.Objective` for ``train_params``.

    The discriminator side exists (and is attached to the generator side) only when
    ``loss_weights.generator_gan != 0``, as the official training loop trains the discriminator only then.

    Args:
        animator: the :class:`baselines.fomm.FOMMAnimator`.
        train_params: the YAML's ``train_params``.
        vgg_weights: ``"auto"`` (``$TORCH_HOME/hub/checkpoints/vgg19-dcbb9e9d.pth`` when present, else the
            fallback), a path, or None (force the fallback).
    """
    generator_side = FOMMGeneratorFullModel(animator, train_params, vgg_weights=vgg_weights)
    w = generator_side.loss_weights
    discriminator_side = None
    if w["generator_gan"] != 0:
        discriminator_side = FOMMDiscriminatorFullModel(
            animator.discriminator, train_params, animator.generator.num_channels
        )
        generator_side.attach_discriminator(animator.discriminator)
    tp = generator_side.transform_params
    description = {
        "model": "fomm",
        "perceptual": generator_side.perceptual.description if generator_side.perceptual is not None else "off",
        "perceptual_scales": list(generator_side.scales),
        "gan": (
            f"lsgan (generator_gan {w['generator_gan']}, discriminator_gan {w['discriminator_gan']}), "
            f"feature_matching {list(w['feature_matching'])}"
            if discriminator_side is not None
            else "off"
        ),
        "equivariance": (
            f"value {w['equivariance_value']}, jacobian {w['equivariance_jacobian']}; random TPS "
            f"sigma_affine {tp.get('sigma_affine')}, sigma_tps {tp.get('sigma_tps')}, points_tps {tp.get('points_tps')}"
        ),
    }
    return Objective(generator=generator_side, discriminator=discriminator_side, description=description)
