"""The ``ultralight`` animator: the proposed ultra-lightweight face animation model.

Lu Jianguo, Zheng Qingfang. *Ultra-Lightweight Face Animation Method for Ultra-Low Bitrate Video
Conferencing*. ZTE Communications 2023, 21(1): 64-71 (DOI 10.12142/ZTECOM.202301008). The paper publishes
the system, the budget (Table 1) and the quality (Table 2) but no architecture; this is our design to that
budget (see ``README.md`` beside this file for the measured table):

* sender: :class:`~lab.models.ultralight.encoder.UltralightKPDetector`, MobileNetV2-style, 10 keypoints +
  Jacobians (FOMM's 60 values per frame) from a 64×64 view of the frame;
* server: :class:`~lab.models.ultralight.decoder.UltralightGenerator`, dense motion + occlusion-aware
  generator whose source encoding is cached per reference frame.

It shares FOMM's motion representation, relative-motion transfer and training losses (equivariance,
perceptual pyramid): both are :class:`lab.nn.keypoint_animator.KeypointAnimator` s that build other networks.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path

from torch import Tensor, nn

from baselines.fomm.animator import FOMMAnimator
from baselines.fomm.animator import load_config as load_fomm_layout_config
from baselines.fomm.discriminator import MultiScaleDiscriminator
from lab.core.animator import AnimatorInfo, SourceState
from lab.core.checkpoint import load_animator_weights
from lab.core.registry import register_animator
from lab.models.ultralight.decoder import UltralightGenerator
from lab.models.ultralight.encoder import UltralightKPDetector
from lab.nn.keypoint_animator import KeypointAnimator

__all__ = ["UltralightAnimator", "DEFAULT_CONFIG", "WEIGHTS_FILE"]

DEFAULT_CONFIG = Path(__file__).resolve().parent / "config" / "ultralight-256.yaml"
#: shipped fp16 weights, relative to the repository root (see README "Weights")
WEIGHTS_FILE = "lab/models/ultralight/weights/ultralight-256.safetensors"


@register_animator
class UltralightAnimator(KeypointAnimator):
    """The proposed model: MobileNetV2-style motion encoder, light dense-motion decoder.

    Args:
        config: a FOMM-layout config (path, dict) — default ``config/ultralight-256.yaml``.
        **model_params_overrides: nested dicts merged into ``model_params`` sections, e.g.
            ``generator_params={"num_bottleneck_blocks": 2}``.
    """

    name = "ultralight"
    input_size = (256, 256)
    info = AnimatorInfo(
        name="ultralight",
        description="Proposed ultra-lightweight animator (Lu & Zheng 2023 budget): MobileNetV2-style keypoint "
        "encoder, light dense-motion + occlusion-aware decoder",
        paper="J. Lu, Q. Zheng. Ultra-Lightweight Face Animation Method for Ultra-Low Bitrate Video Conferencing. "
        "ZTE Communications 21(1), 2023.",
        official_code="none published (architecture designed in facelab to the paper's Table 1 budget)",
        licence="Apache-2.0 (facelab); weights trained on the shared data set, research use",
        checkpoint_file=WEIGHTS_FILE,
        motion_description="10 keypoints × 2 + 10 Jacobians × 4 = 60 values",
    )

    @classmethod
    def load_config(cls, config: str | os.PathLike | Mapping | None, **model_params_overrides: Mapping) -> dict:
        return load_fomm_layout_config(DEFAULT_CONFIG if config is None else config, **model_params_overrides)

    def build_networks(self, model_params: Mapping) -> tuple[nn.Module, nn.Module, nn.Module]:
        common = model_params["common_params"]
        kp = dict(model_params["kp_detector_params"])
        if "stages" in kp:
            kp["stages"] = tuple(tuple(int(v) for v in row) for row in kp["stages"])
        return (UltralightKPDetector(**common, **kp), UltralightGenerator(**common, **model_params["generator_params"]),
                MultiScaleDiscriminator(**common, **(model_params.get("discriminator_params") or {})))

    #: FOMM's animate mode: relative movement and relative Jacobians (the same motion representation)
    transfer_motion = FOMMAnimator.transfer_motion

    def training_objective(self, train_params: dict):
        """FOMM's losses + keypoints anchored to facial landmark groups (``loss_weights.keypoint_landmarks``)."""
        from lab.models.ultralight.objective import build_ultralight_objective

        return build_ultralight_objective(self, train_params)

    def wants_landmark_targets(self, train_params: dict) -> bool:
        """The trainer attaches landmark targets to the batches when this is true."""
        return bool((train_params.get("loss_weights") or {}).get("keypoint_landmarks"))

    def encode_source(self, source: Tensor) -> SourceState:
        """The source and its encoded features (computed once per reference frame; :meth:`render` passes them to
        the generator as ``source_features``)."""
        return {"source": source, "features": self.generator.encode_source(source)}

    def load_checkpoint(self, path: str) -> dict:
        """facelab weights only (``.safetensors`` or a training checkpoint); no official format exists."""
        return load_animator_weights(self, path)
