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
perceptual pyramid), so it subclasses :class:`baselines.fomm.FOMMAnimator` and only swaps the networks.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path

from torch import Tensor

from baselines.fomm.animator import FOMMAnimator, load_config
from baselines.fomm.discriminator import MultiScaleDiscriminator
from lab.animator import Animator, AnimatorInfo, Motion, SourceState, expand_batch
from lab.checkpoint import load_animator_weights
from lab.models.ultralight.decoder import UltralightGenerator
from lab.models.ultralight.encoder import UltralightKPDetector
from lab.registry import register_animator

__all__ = ["UltralightAnimator", "DEFAULT_CONFIG", "WEIGHTS_FILE"]

DEFAULT_CONFIG = Path(__file__).resolve().parent / "config" / "ultralight-256.yaml"
#: shipped fp16 weights, relative to the repository root (see README "Weights")
WEIGHTS_FILE = "lab/models/ultralight/weights/ultralight-256.safetensors"


@register_animator
class UltralightAnimator(FOMMAnimator):
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

    #: state_dict prefixes that inference files leave out (the discriminator trains only with a GAN loss)
    training_only_prefixes = ("discriminator.",)

    def __init__(self, config: str | os.PathLike | Mapping | None = None, **model_params_overrides: Mapping) -> None:
        Animator.__init__(self)  # not FOMM's: it would build FOMM's networks
        self.config = load_config(DEFAULT_CONFIG if config is None else config, **model_params_overrides)
        mp = self.config["model_params"]
        common = mp["common_params"]
        kp = dict(mp["kp_detector_params"])
        if "stages" in kp:
            kp["stages"] = tuple(tuple(int(v) for v in row) for row in kp["stages"])
        self.kp_detector = UltralightKPDetector(**common, **kp)
        self.generator = UltralightGenerator(**common, **mp["generator_params"])
        self.discriminator = MultiScaleDiscriminator(**common, **(mp.get("discriminator_params") or {}))
        frame_shape = (self.config.get("dataset_params") or {}).get("frame_shape")
        if frame_shape:
            self.input_size = (int(frame_shape[0]), int(frame_shape[1]))

    def training_objective(self, train_params: dict):
        """FOMM's losses + keypoints anchored to facial landmark groups (``loss_weights.keypoint_landmarks``)."""
        from lab.models.ultralight.objective import build_ultralight_objective

        return build_ultralight_objective(self, train_params)

    def wants_landmark_targets(self, train_params: dict) -> bool:
        """The trainer attaches landmark targets to the batches when this is true."""
        return bool((train_params.get("loss_weights") or {}).get("keypoint_landmarks"))

    def encode_source(self, source: Tensor) -> SourceState:
        """The source and its encoded features (computed once per reference frame)."""
        return {"source": source, "features": self.generator.encode_source(source)}

    def render(self, state: SourceState, motion_source: Motion, motion_driving: Motion) -> Tensor:
        n = motion_driving["value"].shape[0]
        st = expand_batch(state, n)
        return self.generator(st["source"], kp_driving=motion_driving, kp_source=expand_batch(motion_source, n),
                              source_features=st["features"])["prediction"]

    def load_checkpoint(self, path: str) -> dict:
        """facelab weights only (``.safetensors`` or a training checkpoint); no official format exists."""
        return load_animator_weights(self, path)
