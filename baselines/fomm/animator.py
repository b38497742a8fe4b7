"""The ``fomm`` animator: FOMM behind the lab's :class:`lab.core.animator.Animator` interface, official
checkpoints included.

Siarohin, Lathuilière, Tulyakov, Ricci, Sebe: *First Order Motion Model for Image Animation*, NeurIPS 2019.
Official code: AliaksandrSiarohin/first-order-model@c0274845cb2dd8f0f2fe6da580d97b60fef90c91; this package is an
independent re-implementation with the same configs, ``state_dict`` keys and outputs, so the official
``vox-cpk.pth.tar`` loads as is::

    from lab import create_animator
    model = create_animator("fomm", checkpoint="default")  # vox-cpk.pth.tar from $FACELAB_WEIGHTS or torch's cache
    frames = torch.cat(list(model.animate(source, driving, relative=True, adapt_movement_scale=True)))

Codec split: the sender runs the keypoint detector (10 keypoints + 10 Jacobians = 60 numbers per frame), the server
runs the generator with the source image it holds.

Configs are FOMM-format YAML files (``dataset_params``, ``model_params``, ``train_params``, ...; see
``config/vox-256.yaml``), read with ``yaml.safe_load``. Model overrides are nested dicts merged into
``model_params``, one keyword per section::

    FOMMAnimator(common_params={"num_kp": 5}, generator_params={"dense_motion_params": {"num_blocks": 3}})
"""

from __future__ import annotations

import os
import warnings
from collections.abc import Mapping
from pathlib import Path

from torch import nn

from baselines.fomm.discriminator import MultiScaleDiscriminator
from baselines.fomm.generator import OcclusionAwareGenerator
from baselines.fomm.keypoint_detector import KPDetector
from baselines.fomm.motion import normalize_kp
from lab.core.animator import AnimatorInfo, Motion
from lab.core.checkpoint import (
    CheckpointError,
    load_animator_weights,
    load_state_dict_strict,
    safe_load,
    wrong_keys_reason,
)
from lab.core.config import load_model_config
from lab.core.registry import register_animator
from lab.nn.keypoint_animator import KeypointAnimator
from lab.nn.objective import Objective

__all__ = [
    "CONFIG_DIR",
    "MODEL_SECTIONS",
    "OFFICIAL_CODE",
    "FOMMAnimator",
    "load_config",
    "list_configs",
]

CONFIG_DIR = Path(__file__).resolve().parent / "config"
OFFICIAL_CODE = "AliaksandrSiarohin/first-order-model@c0274845cb2dd8f0f2fe6da580d97b60fef90c91"
#: sections of ``model_params`` (the keyword arguments of :class:`FOMMAnimator` overrides)
MODEL_SECTIONS = ("common_params", "kp_detector_params", "generator_params", "discriminator_params")
_OFFICIAL_KEYS = ("generator", "kp_detector")


def list_configs() -> list[str]:
    """Names of the packaged configs (``vox-256``, ``vox-adv-256``)."""
    return sorted(p.stem for p in CONFIG_DIR.glob("*.yaml"))


def load_config(config: str | os.PathLike | Mapping | None = None, **model_params_overrides: Mapping) -> dict:
    """Resolve a FOMM-format config.

    Args:
        config: a YAML file path, a packaged config name (:func:`list_configs`, with or without ``.yaml``), a dict
            holding the whole config, or None for ``vox-256``.
        **model_params_overrides: per-section dicts deep-merged into ``model_params`` (keys: :data:`MODEL_SECTIONS`).

    Returns:
        A new dict (the input is not modified).

    Raises:
        FileNotFoundError: neither a file nor a packaged name.
        ValueError: no ``model_params`` with the three network sections.
        TypeError: an override keyword that is not a ``model_params`` section, or not a dict.
    """
    return load_model_config(config, default="vox-256", what="FOMM", packaged_dir=CONFIG_DIR,
                             required_sections=MODEL_SECTIONS[:3], override_sections=MODEL_SECTIONS,
                             overrides=model_params_overrides)


@register_animator
class FOMMAnimator(KeypointAnimator):
    """First Order Motion Model (keypoints + local affine Jacobians, occlusion-aware generator).

    Args:
        config: a FOMM-format config (see :func:`load_config`); default the packaged ``vox-256``.
        **model_params_overrides: nested dicts merged into ``model_params`` sections (see :func:`load_config`).

    Attributes:
        config: the resolved config (a dict with ``model_params`` etc.).
        kp_detector: :class:`baselines.fomm.KPDetector` (sender).
        generator: :class:`baselines.fomm.OcclusionAwareGenerator` incl. the dense motion network (server).
        discriminator: :class:`baselines.fomm.MultiScaleDiscriminator` (training only; in no interface side).
    """

    name = "fomm"
    input_size = (256, 256)
    info = AnimatorInfo(
        name="fomm",
        description="First Order Motion Model: sparse keypoints with local affine Jacobians, occlusion-aware "
        "generator (official vox-256 architecture)",
        paper="A. Siarohin, S. Lathuilière, S. Tulyakov, E. Ricci, N. Sebe. First Order Motion Model for Image "
        "Animation. NeurIPS 2019.",
        official_code=OFFICIAL_CODE,
        licence="CC BY-NC 4.0 (the released checkpoints; the code itself is MIT since f4ff6da, 2023-06-06)",
        checkpoint_file="vox-cpk.pth.tar",
        motion_description="10 keypoints × 2 + 10 Jacobians × 4 = 60 values",
        extra={"config": "config/vox-256.yaml", "grid_sample_align_corners": False},
    )

    @classmethod
    def load_config(cls, config: str | os.PathLike | Mapping | None, **model_params_overrides: Mapping) -> dict:
        return load_config(config, **model_params_overrides)

    def build_networks(self, model_params: Mapping) -> tuple[nn.Module, nn.Module, nn.Module]:
        common = model_params["common_params"]
        return (KPDetector(**common, **model_params["kp_detector_params"]),
                OcclusionAwareGenerator(**common, **model_params["generator_params"]),
                MultiScaleDiscriminator(**common, **(model_params.get("discriminator_params") or {})))

    # ------------------------------------------------------------------ interface (the rest: KeypointAnimator)
    def transfer_motion(
        self,
        motion_source: Motion,
        motion_driving: Motion,
        motion_driving_initial: Motion,
        adapt_movement_scale: bool = True,
    ) -> Motion:
        """FOMM's animate mode: relative movement and relative Jacobians (:func:`baselines.fomm.normalize_kp`)."""
        return normalize_kp(
            motion_source,
            motion_driving,
            motion_driving_initial,
            adapt_movement_scale=adapt_movement_scale,
            use_relative_movement=True,
            use_relative_jacobian=True,
        )

    def training_objective(self, train_params: dict) -> Objective:
        """FOMM's losses (:func:`baselines.fomm.objective.build_objective`) for ``train_params``."""
        from baselines.fomm.objective import build_objective

        return build_objective(self, train_params)

    # ------------------------------------------------------------------ checkpoints
    def load_checkpoint(self, path: str) -> dict:
        """Load an official FOMM checkpoint or this lab's format; returns the checkpoint's metadata.

        * official (``vox-cpk.pth.tar``): ``generator`` and ``kp_detector`` must match the config exactly (strict,
          the error lists missing/unexpected keys); ``discriminator`` is loaded too when it matches, otherwise
          skipped with a warning (it is training-only, and e.g. ``vox-adv-cpk`` needs ``vox-adv-256``'s);
        * facelab: a ``.safetensors`` file or a training checkpoint with ``"model"``
          (:func:`lab.core.checkpoint.load_animator_weights`).

        Everything is read with ``weights_only=True``: a checkpoint holding pickled code is refused.
        """
        p = Path(path)
        if p.suffix == ".safetensors":
            return load_animator_weights(self, p)
        ckpt = safe_load(p)
        if isinstance(ckpt, Mapping) and "model" in ckpt and not all(k in ckpt for k in _OFFICIAL_KEYS):
            return load_animator_weights(self, p)  # reads the file again; lab checkpoints are rare to load
        if not (isinstance(ckpt, Mapping) and all(isinstance(ckpt.get(k), Mapping) for k in _OFFICIAL_KEYS)):
            keys = ", ".join(map(str, ckpt)) if isinstance(ckpt, Mapping) else type(ckpt).__name__
            raise CheckpointError(
                f"{p}: neither an official FOMM checkpoint (generator, kp_detector, ...) nor a facelab one "
                f"(a 'model' state_dict or .safetensors); it holds: {keys}",
                reason=wrong_keys_reason(ckpt, "generator, kp_detector (official) or 'model' (facelab)"),
            )
        load_state_dict_strict(self.kp_detector, ckpt["kp_detector"], what=f"fomm kp_detector ({p.name})")
        load_state_dict_strict(self.generator, ckpt["generator"], what=f"fomm generator ({p.name})")
        meta: dict = {"format": "fomm-official", "epoch": ckpt.get("epoch"), "discriminator": "absent"}
        if isinstance(ckpt.get("discriminator"), Mapping):
            try:
                load_state_dict_strict(self.discriminator, ckpt["discriminator"], what=f"fomm discriminator ({p.name})")
                meta["discriminator"] = "loaded"
            except CheckpointError as e:
                warnings.warn(f"discriminator not loaded (training-only): {e}", stacklevel=2)
                meta["discriminator"] = f"not loaded: {e}"
        return meta
