"""First Order Motion Model (Siarohin et al., NeurIPS 2019), compatible with the official code and checkpoints.

Independent re-implementation checked against AliaksandrSiarohin/first-order-model@c0274845 (outputs equal within
1e-4 for the same weights; see ``tests/baselines/test_fomm.py``). Constructors take the official YAML keys::

    KPDetector(**common_params, **kp_detector_params)
    OcclusionAwareGenerator(**common_params, **generator_params)
    MultiScaleDiscriminator(**common_params, **discriminator_params)

and the registered animator ``fomm`` (:class:`FOMMAnimator`) loads the official ``vox-cpk.pth.tar``.
Shared pieces reused by other models: :mod:`baselines.fomm.blocks` and :func:`normalize_kp`.
"""

from baselines.fomm.animator import FOMMAnimator, list_configs, load_config
from baselines.fomm.blocks import (
    AntiAliasInterpolation2d,
    Decoder,
    DownBlock2d,
    Encoder,
    Hourglass,
    ResBlock2d,
    SameBlock2d,
    UpBlock2d,
    kp2gaussian,
    make_coordinate_grid,
)
from baselines.fomm.dense_motion import DenseMotionNetwork
from baselines.fomm.discriminator import Discriminator, MultiScaleDiscriminator
from baselines.fomm.generator import OcclusionAwareGenerator
from baselines.fomm.keypoint_detector import KPDetector
from baselines.fomm.motion import movement_scale, normalize_kp

__all__ = [
    "FOMMAnimator",
    "load_config",
    "list_configs",
    "KPDetector",
    "OcclusionAwareGenerator",
    "DenseMotionNetwork",
    "MultiScaleDiscriminator",
    "Discriminator",
    "normalize_kp",
    "movement_scale",
    "AntiAliasInterpolation2d",
    "Decoder",
    "DownBlock2d",
    "Encoder",
    "Hourglass",
    "ResBlock2d",
    "SameBlock2d",
    "UpBlock2d",
    "kp2gaussian",
    "make_coordinate_grid",
]
