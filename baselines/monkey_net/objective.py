"""Monkey-Net's training losses as a :class:`lab.nn.objective.Objective`.

Own re-implementation of the losses of Siarohin et al., "Animating Arbitrary Objects via Deep Motion
Transfer", CVPR 2019 (https://arxiv.org/abs/1812.08861), following the official code
AliaksandrSiarohin/monkey-net@0c8aa4ea458a79717d9016a36a3d86d10a166aea (``modules/losses.py`` and the
``GeneratorFullModel``/``DiscriminatorFullModel`` of ``train.py``):

* the keypoint detector runs on the source and driving frames together (a 2-frame video, as the official
  training samples two frames of a clip: frame 0 is the source, frame 1 the driving/target frame);
* **reconstruction** ("layer-i_rec"): L1 between the discriminator's maps of the real and the generated
  driving frame, map ``i`` weighted by ``loss_weights.reconstruction[i]`` (map 0 is the image itself, so
  weight 0 is a plain pixel L1; vox: ``[10, 10, 10, 10, 1]``);
* optional ``reconstruction_deformed`` ("rec_def"): L1 between the real frame and the source warped by the
  dense motion (vox: 0, off);
* **LSGAN** on the discriminator's last map: generator ``(1 - D(G))^2`` ("gen_gan"), discriminator
  ``(1 - D(x))^2 + D(G)^2`` ("disc_gan").

Each loss is the per-sample mean over all map elements, then the batch mean (the official ``mean_batch``
followed by ``.mean()``). The discriminator is conditioned on the keypoint heatmaps; on the generator side
the keypoints are not detached (``detach_kp_generator``), on the discriminator side they are when
``detach_kp_discriminator`` (vox: true). Monkey-Net uses no perceptual (VGG) loss and no image pyramid, so
nothing from ``lab.nn.losses`` is needed.

Not reproduced: with ``detach_kp_discriminator: false`` the official loop also steps the keypoint detector
with the discriminator loss's gradients; here the keypoint detector is updated by the common trainer's
generator-side optimiser only.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import Tensor, nn

from lab.nn.objective import DiscriminatorFullModel, GeneratorFullModel, Objective

__all__ = [
    "mean_batch",
    "reconstruction_loss",
    "generator_gan_loss",
    "discriminator_gan_loss",
    "MonkeyNetGeneratorFullModel",
    "MonkeyNetDiscriminatorFullModel",
    "monkey_net_objective",
]


def mean_batch(val: Tensor) -> Tensor:
    """Per-sample mean: ``(B, ...) -> (B,)``."""
    return val.reshape(val.shape[0], -1).mean(-1)


def reconstruction_loss(prediction: Tensor, target: Tensor, weight: float) -> Tensor:
    """``weight * mean|prediction - target|`` per sample, ``(B,)``."""
    return weight * mean_batch(torch.abs(prediction - target))


def generator_gan_loss(maps_generated: Sequence[Tensor], weight: float) -> Tensor:
    """LSGAN generator loss ``weight * mean (1 - D(G))^2`` on the last map, per sample ``(B,)``."""
    return weight * mean_batch((1 - maps_generated[-1]) ** 2)


def discriminator_gan_loss(maps_generated: Sequence[Tensor], maps_real: Sequence[Tensor], weight: float) -> Tensor:
    """LSGAN discriminator loss ``weight * mean [(1 - D(x))^2 + D(G)^2]`` on the last map, per sample ``(B,)``."""
    return weight * mean_batch((1 - maps_real[-1]) ** 2 + maps_generated[-1] ** 2)


def _reconstruction_weights(loss_weights: dict) -> list[float]:
    weights = loss_weights.get("reconstruction")
    if weights is None or (not isinstance(weights, Sequence) and weights == 0):
        return []
    if not isinstance(weights, Sequence):
        raise ValueError(f"loss_weights.reconstruction must be a list (one weight per map) or 0, got {weights!r}")
    return [float(w) for w in weights]


def _video(x: Tensor) -> Tensor:
    """``(B, C, H, W)`` frames -> one-frame videos ``(B, C, 1, H, W)``."""
    return x.unsqueeze(2)


def _to_lab_kp(kp: dict[str, Tensor]) -> dict[str, Tensor]:
    """``(B, 1, K, ...)`` keypoints -> ``(B, K, ...)``, with ``'value'`` aliasing ``'mean'`` for FOMM-style logs."""
    out = {k: v[:, 0] for k, v in kp.items()}
    out["value"] = out["mean"]
    return out


def _to_video_kp(kp: dict[str, Tensor], detach: bool) -> dict[str, Tensor]:
    out = {k: v.unsqueeze(1) for k, v in kp.items() if k != "value"}
    return {k: v.detach() for k, v in out.items()} if detach else out


class MonkeyNetGeneratorFullModel(GeneratorFullModel):
    """Generator side: keypoints, generation, and the reconstruction/feature-matching and LSGAN losses.

    Args:
        animator: a :class:`~baselines.monkey_net.animator.MonkeyNetAnimator` (its ``kp_detector`` and
            ``generator`` are trained here).
        train_params: the ``train_params`` section (``loss_weights``, ``detach_kp_generator``).
    """

    def __init__(self, animator: nn.Module, train_params: dict) -> None:
        super().__init__(animator)
        self.train_params = train_params
        self.loss_weights = dict(train_params["loss_weights"])
        self.reconstruction_weights = _reconstruction_weights(self.loss_weights)

    def forward(self, source: Tensor, driving: Tensor) -> tuple[dict[str, Tensor], dict]:
        """Losses for a batch of frame pairs.

        Args:
            source: ``(B, 3, H, W)`` float in [0, 1].
            driving: ``(B, 3, H, W)`` float in [0, 1], another frame of the same clip (the target).

        Returns:
            ``(losses, generated)``: weighted scalar losses (``'layer-i_rec'``, ``'gen_gan'``, ``'rec_def'``
            when weighted) and ``{'prediction', 'deformed'`` ``(B, 3, H, W)``, ``'kp_source', 'kp_driving'}``
            (keypoints ``{'mean': (B, K, 2), 'var': (B, K, 2, 2), 'value': = mean}``).
        """
        discriminator = self.discriminator
        if discriminator is None:
            raise RuntimeError(
                "Monkey-Net's losses are computed on the discriminator's feature maps: attach it with "
                "attach_discriminator() (training_objective() does)"
            )
        animator = self.animator
        source_video, driving_video = _video(source), _video(driving)
        kp_joined = animator.kp_detector(torch.cat([source_video, driving_video], dim=2))
        kp_source = {k: v[:, :1] for k, v in kp_joined.items()}
        kp_driving = {k: v[:, 1:] for k, v in kp_joined.items()}
        detach = bool(self.train_params.get("detach_kp_generator", False))
        generated = animator.generator(
            source_video,
            kp_driving={k: v.detach() for k, v in kp_driving.items()} if detach else kp_driving,
            kp_source={k: v.detach() for k, v in kp_source.items()} if detach else kp_source,
        )
        maps_generated = discriminator(generated["video_prediction"], kp_driving=kp_driving, kp_source=kp_source)
        maps_real = discriminator(driving_video, kp_driving=kp_driving, kp_source=kp_source)

        losses: dict[str, Tensor] = {}
        w_def = self.loss_weights.get("reconstruction_deformed", 0)
        if w_def:
            losses["rec_def"] = reconstruction_loss(maps_real[0], generated["video_deformed"], w_def).mean()
        for i, (real, fake) in enumerate(zip(maps_real[:-1], maps_generated[:-1])):
            if i < len(self.reconstruction_weights) and self.reconstruction_weights[i] != 0:
                losses[f"layer-{i}_rec"] = reconstruction_loss(fake, real, self.reconstruction_weights[i]).mean()
        losses["gen_gan"] = generator_gan_loss(maps_generated, self.loss_weights.get("generator_gan", 1)).mean()

        out = {
            "prediction": generated["video_prediction"][:, :, 0],
            "deformed": generated["video_deformed"][:, :, 0],
            "kp_source": _to_lab_kp(kp_source),
            "kp_driving": _to_lab_kp(kp_driving),
        }
        return losses, out


class MonkeyNetDiscriminatorFullModel(DiscriminatorFullModel):
    """Discriminator side: LSGAN on real driving frames vs. the (detached) predictions.

    Args:
        discriminator: the :class:`~baselines.monkey_net.discriminator.Discriminator`.
        train_params: the ``train_params`` section (``loss_weights.discriminator_gan``,
            ``detach_kp_discriminator``).
    """

    def __init__(self, discriminator: nn.Module, train_params: dict) -> None:
        super().__init__(discriminator)
        self.train_params = train_params
        self.loss_weights = dict(train_params["loss_weights"])

    def forward(self, source: Tensor, driving: Tensor, generated: dict) -> dict[str, Tensor]:
        """``{'disc_gan'}`` for the batch; ``generated`` comes from the generator side."""
        detach = bool(self.train_params.get("detach_kp_discriminator", True))
        kp = {
            "kp_driving": _to_video_kp(generated["kp_driving"], detach),
            "kp_source": _to_video_kp(generated["kp_source"], detach),
        }
        maps_generated = self.discriminator(_video(generated["prediction"].detach()), **kp)
        maps_real = self.discriminator(_video(driving), **kp)
        weight = self.loss_weights.get("discriminator_gan", 1)
        return {"disc_gan": discriminator_gan_loss(maps_generated, maps_real, weight).mean()}


def monkey_net_objective(animator: nn.Module, discriminator: nn.Module, train_params: dict) -> Objective:
    """Both sides, the discriminator attached to the generator side by reference (not registered).

    Raises:
        ValueError: ``loss_weights.reconstruction`` does not have one weight per discriminator map
            (``num_blocks + 1``), which the official ``run.py`` asserts too.
    """
    weights = _reconstruction_weights(train_params["loss_weights"])
    n_maps = len(discriminator.down_blocks) + 1
    if weights and len(weights) != n_maps:
        raise ValueError(
            f"loss_weights.reconstruction has {len(weights)} weights; the discriminator has {n_maps} maps "
            f"(input + {n_maps - 1} blocks), one weight each"
        )
    generator_side = MonkeyNetGeneratorFullModel(animator, train_params)
    discriminator_side = MonkeyNetDiscriminatorFullModel(discriminator, train_params)
    generator_side.attach_discriminator(discriminator)
    lw = train_params["loss_weights"]
    description = {
        "losses": "Monkey-Net (CVPR 2019): L1 on the discriminator's maps (feature matching) + LSGAN",
        "reconstruction": weights,
        "reconstruction_deformed": lw.get("reconstruction_deformed", 0),
        "generator_gan": lw.get("generator_gan", 1),
        "discriminator_gan": lw.get("discriminator_gan", 1),
        "perceptual": "none (Monkey-Net has no perceptual loss)",
        "optimizer": "official: Adam lr=train_params.lr, betas=(0.5, 0.999) for all three networks",
    }
    return Objective(generator=generator_side, discriminator=discriminator_side, description=description)
