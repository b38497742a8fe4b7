"""X2Face's training objective for the common trainer: the official photometric L1 loss.

X2Face: Wiles, Koepke, Zisserman, ECCV 2018; official training script oawiles/X2Face @
cecfbfaa4c820293cbbb1978c3ddb247f67f3af8 ``UnwrapMosaic/train_model.py``:
``loss = nn.L1Loss()(model(imgs[1], imgs[0]), imgs[1])`` with source ``imgs[0]`` and driving = target
``imgs[1]`` (two frames of one video), SGD(lr 1e-3, momentum 0.9), batch 16, BatchNorm in train mode.

The released script trains with this photometric loss **only**, from the first iteration on (its README:
"an example training file using only the photometric loss"); it adds no identity or content loss. The
paper's later stage with identity losses computed by a pretrained VGG-Face network is not in the released
code, and that network cannot be loaded here, so it is not offered; a non-zero weight for any loss other
than ``reconstruction`` is refused rather than silently ignored.
"""

from __future__ import annotations

import torch.nn.functional as F
from torch import Tensor, nn

from lab.nn.objective import GeneratorFullModel, Objective

__all__ = ["X2FaceGeneratorFullModel", "x2face_objective", "SUPPORTED_LOSSES"]

SUPPORTED_LOSSES = ("reconstruction",)


class X2FaceGeneratorFullModel(GeneratorFullModel):
    """Generator side: ``forward(source, driving) -> ({"reconstruction": w * L1}, generated)``.

    Args:
        animator: an :class:`baselines.x2face.X2FaceAnimator` (its ``model`` is the official module).
        loss_weights: ``{"reconstruction": w}``.
    """

    def __init__(self, animator: nn.Module, loss_weights: dict[str, float]) -> None:
        super().__init__(animator)
        self.loss_weights = dict(loss_weights)

    def forward(self, source: Tensor, driving: Tensor) -> tuple[dict[str, Tensor], dict]:
        """Args:
            source: ``(B, 3, 256, 256)`` in [0, 1] (the official ``imgs[0]``).
            driving: ``(B, 3, 256, 256)`` in [0, 1], driving frame and target (``imgs[1]``).

        Returns:
            ``(losses, generated)``: losses ``{"reconstruction": scalar}``; generated
            ``{"prediction": (B,3,H,W), "embedded": (B,3,H,W) detached}``.
        """
        model = self.animator.model
        # the same operations as model(driving, source), keeping the embedded face for the logs
        embedded, _ = model.embed(source)
        prediction = model.sample(embedded, model.pix2pixSampler(driving)[0])
        losses = {"reconstruction": self.loss_weights["reconstruction"] * F.l1_loss(prediction, driving)}
        return losses, {"prediction": prediction, "embedded": embedded.detach()}


def x2face_objective(animator: nn.Module, train_params: dict) -> Objective:
    """The :class:`lab.nn.objective.Objective` for X2Face (no discriminator).

    Args:
        animator: the X2Face animator.
        train_params: ``train_params`` of ``x2face-256.yaml``; ``loss_weights`` may only weight
            ``reconstruction`` (default 1.0).

    Raises:
        ValueError: a non-zero weight for a loss the official code does not have.
    """
    weights = {"reconstruction": 1.0, **dict((train_params or {}).get("loss_weights") or {})}
    extra = sorted(k for k, v in weights.items() if k not in SUPPORTED_LOSSES and _nonzero(v))
    if extra:
        raise ValueError(
            f"x2face: unsupported loss weight(s) {extra}; the official X2Face training uses only "
            f"{list(SUPPORTED_LOSSES)} (photometric L1)"
        )
    generator = X2FaceGeneratorFullModel(animator, {"reconstruction": float(weights["reconstruction"])})
    description = {
        "reconstruction": f"L1(model(driving, source), driving) x {float(weights['reconstruction'])} "
        "(official train_model.py nn.L1Loss)",
        "identity": "not used: the official code trains with the photometric loss only (the paper's VGG-Face "
        "identity loss is not in the released code and its network is not available here)",
        "discriminator": "none",
        "optimizer": "SGD lr 1e-3 momentum 0.9, batch 16 (as the official script)",
    }
    return Objective(generator=generator, discriminator=None, description=description)


def _nonzero(v) -> bool:
    if isinstance(v, (list, tuple)):
        return any(_nonzero(x) for x in v)
    return bool(v)
