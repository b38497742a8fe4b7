"""Monkey-Net (Siarohin et al., "Animating Arbitrary Objects via Deep Motion Transfer", CVPR 2019).

Own re-implementation whose state_dicts and outputs match the official code
AliaksandrSiarohin/monkey-net@0c8aa4ea458a79717d9016a36a3d86d10a166aea (CC BY-NC 4.0), so its checkpoints load.
Constructors take the official YAML keys (``config/vox.yaml``)::

    KPDetector(**common_params, **kp_detector_params)(video)            # {'mean', 'var'}
    MotionTransferGenerator(**common_params, **generator_params)(
        source_image, kp_driving=..., kp_source=...)                     # {'video_prediction', 'video_deformed'}
    Discriminator(**common_params, **discriminator_params)(video, kp_driving, kp_source)  # list of maps

Videos are ``(B, C, D, H, W)`` float in [0, 1]. Importing this package registers the ``monkey_net`` animator.
"""

from baselines.monkey_net.animator import DEFAULT_CONFIG, MonkeyNetAnimator, load_config, normalize_kp
from baselines.monkey_net.dense_motion import DenseMotionModule, IdentityDeformation
from baselines.monkey_net.discriminator import Discriminator
from baselines.monkey_net.generator import MotionTransferGenerator
from baselines.monkey_net.keypoint_detector import KPDetector, gaussian2kp, kp2gaussian
from baselines.monkey_net.movement_embedding import MovementEmbeddingModule

__all__ = [
    "DEFAULT_CONFIG",
    "DenseMotionModule",
    "Discriminator",
    "IdentityDeformation",
    "KPDetector",
    "MonkeyNetAnimator",
    "MotionTransferGenerator",
    "MovementEmbeddingModule",
    "gaussian2kp",
    "kp2gaussian",
    "load_config",
    "normalize_kp",
]
