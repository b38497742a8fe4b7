"""The ``monkey_net`` animator: Monkey-Net behind the lab's sender/server interface, official checkpoints.

Siarohin, Lathuilière, Tulyakov, Ricci, Sebe, "Animating Arbitrary Objects via Deep Motion Transfer", CVPR 2019
(https://arxiv.org/abs/1812.08861). Own re-implementation checked against the official code
AliaksandrSiarohin/monkey-net@0c8aa4ea458a79717d9016a36a3d86d10a166aea (CC BY-NC 4.0; the official weights
carry the same non-commercial terms).

* Sender: :meth:`MonkeyNetAnimator.extract_motion` runs the keypoint detector on each frame: 10 means and 10
  2x2 covariances cross the network.
* Server: :meth:`MonkeyNetAnimator.encode_source` caches the appearance encoder's skips of the source;
  :meth:`MonkeyNetAnimator.render` runs the generator once per driving frame with one-frame keypoints (``D=1``),
  as the official ``reconstruction.py`` does (frames are batched; in eval mode that is the same computation).
* :meth:`MonkeyNetAnimator.transfer_motion` is the official relative transfer (``transfer.py``'s
  ``normalize_kp`` with the config's ``transfer_params.normalization_params``).
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path

import torch
from torch import Tensor

from baselines.monkey_net.blocks import matrix_inverse
from baselines.monkey_net.discriminator import Discriminator
from baselines.monkey_net.generator import MotionTransferGenerator
from baselines.monkey_net.keypoint_detector import KPDetector
from lab.core.animator import Animator, AnimatorInfo, Motion, SourceState, expand_batch
from lab.core.checkpoint import (
    CheckpointError,
    load_animator_weights,
    load_state_dict_strict,
    safe_load,
    wrong_keys_reason,
)
from lab.core.config import deep_merge, load_model_config
from lab.core.registry import register_animator

__all__ = [
    "MonkeyNetAnimator",
    "DEFAULT_CONFIG",
    "OFFICIAL_CHECKPOINT_KEYS",
    "load_config",
    "normalize_kp",
]

DEFAULT_CONFIG = Path(__file__).resolve().parent / "config" / "vox.yaml"
"""The packaged official VoxCeleb 256x256 config."""

MODEL_SECTIONS = ("common_params", "kp_detector_params", "generator_params", "discriminator_params")

OFFICIAL_CHECKPOINT_KEYS = (
    "generator",
    "discriminator",
    "kp_detector",
    "optimizer_generator",
    "optimizer_discriminator",
    "optimizer_kp_detector",
    "epoch",
    "it",
)
"""Keys of an official checkpoint (``Logger.save_cpk``: ``<epoch:08d>-checkpoint.pth.tar``)."""


def load_config(config: str | os.PathLike | Mapping | None = None, **model_params_overrides: Mapping) -> dict:
    """Resolve a Monkey-Net config (the official YAML layout) and apply ``model_params`` overrides.

    Args:
        config: a YAML path, an already-loaded dict, or None for the packaged ``config/vox.yaml``.
        **model_params_overrides: sections of ``model_params`` (``common_params``, ``kp_detector_params``,
            ``generator_params``, ``discriminator_params``) whose keys replace the config's (nested dicts are
            merged key by key).

    Returns:
        A new dict (the input is not modified).

    Raises:
        FileNotFoundError: no such file; ValueError: no ``model_params`` section; TypeError: an override that is
        not a ``model_params`` section, or not a dict (:func:`lab.core.config.load_model_config`).
    """
    return load_model_config(config, default=DEFAULT_CONFIG, what="Monkey-Net", override_sections=MODEL_SECTIONS,
                             overrides=model_params_overrides)


def _convex_hull_area(points: Tensor) -> float:
    from scipy.spatial import ConvexHull

    return float(ConvexHull(points.detach().double().cpu().numpy()).volume)  # 2-D "volume" is the area


def _symmetric_positive(matrix: Tensor) -> Tensor:
    """Nearest symmetric matrix with eigenvalues <= 0 set to 1e-6 (official ``make_symetric_matrix``)."""
    sym = (matrix + matrix.transpose(-1, -2)).double() / 2
    eigvals, eigvecs = torch.linalg.eigh(sym)
    eigvals = torch.where(eigvals <= 0, torch.full_like(eigvals, 1e-6), eigvals)
    res = eigvecs @ torch.diag_embed(eigvals) @ eigvecs.transpose(-1, -2)
    return res.to(matrix.dtype)


def normalize_kp(
    kp_driving: Motion,
    kp_source: Motion,
    kp_driving_initial: Motion,
    movement_mult: bool = False,
    move_location: bool = False,
    adapt_variance: bool = False,
    clip_mean: bool = False,
) -> Motion:
    """Monkey-Net's relative motion transfer (official ``transfer.py`` ``normalize_kp``), frame-batched.

    Args:
        kp_driving: ``{'mean': (N, K, 2), 'var': (N, K, 2, 2)}`` of ``N`` driving frames.
        kp_source: the source's keypoints (batch 1 or ``N``).
        kp_driving_initial: the first driving frame's keypoints (batch 1 or ``N``).
        movement_mult: scale the displacement by ``sqrt(area_source / area_initial)`` of the keypoints' convex
            hulls (batch element 0, as the official code).
        move_location: ``mean = (mean - mean_initial) * mult + mean_source`` (off: absolute means).
        adapt_variance: ``var = var @ var_initial^-1 @ var_source``, then made symmetric positive definite.
        clip_mean: clamp the means to ``[-1, 1]``.

    Returns:
        New keypoints (the inputs are not modified).
    """
    out = dict(kp_driving)
    mult = 1.0
    if movement_mult:
        area_source = _convex_hull_area(kp_source["mean"][0])
        area_driving = _convex_hull_area(kp_driving_initial["mean"][0])
        mult = area_source**0.5 / area_driving**0.5
    if move_location:
        out["mean"] = (kp_driving["mean"] - kp_driving_initial["mean"]) * mult + kp_source["mean"]
    if clip_mean:
        out["mean"] = out["mean"].clamp(-1, 1)
    if adapt_variance and "var" in out:
        var = torch.matmul(kp_driving["var"], matrix_inverse(kp_driving_initial["var"]))
        out["var"] = _symmetric_positive(torch.matmul(var, kp_source["var"]))
    return out


@register_animator
class MonkeyNetAnimator(Animator):
    """Monkey-Net (CVPR 2019) at the official VoxCeleb 256x256 config.

    Args:
        config: a full official-layout config (YAML path or dict); None: the packaged ``config/vox.yaml``.
        **model_params_overrides: ``model_params`` sections to override (see :func:`load_config`), e.g.
            ``kp_detector_params={"num_blocks": 3}``.

    Attributes:
        config: the resolved config.
        kp_detector: :class:`KPDetector` (sender).
        generator: :class:`MotionTransferGenerator` (server).
        discriminator: :class:`Discriminator` (training only). It is deliberately **not** a registered
            sub-module: the animator's ``state_dict``/``parameters()`` are the inference networks only, and the
            trainer's generator side must not own it (``lab.nn.objective``). Official checkpoints load into it.

    The default checkpoint file name, ``monkey-net-vox.pth.tar``, is facelab's choice: the official README
    links a Yandex-disk folder (https://yadi.sk/d/BX-hwuPEVm6iNw, documented for the moving-gif demo) without
    naming files, and the official ``Logger`` names checkpoints ``<epoch:08d>-checkpoint.pth.tar`` (a 20-epoch
    vox run ends with ``00000019-checkpoint.pth.tar``). Whether a vox checkpoint is released at all could not be
    verified; rename the file you have.
    """

    name = "monkey_net"
    input_size = (256, 256)
    info = AnimatorInfo(
        name="monkey_net",
        description="Monkey-Net: keypoints with covariances, dense motion from part masks, warped-feature decoder",
        paper="Siarohin, Lathuilière, Tulyakov, Ricci, Sebe. Animating Arbitrary Objects via Deep Motion "
        "Transfer. CVPR 2019. arXiv:1812.08861",
        official_code="AliaksandrSiarohin/monkey-net@0c8aa4ea458a79717d9016a36a3d86d10a166aea",
        licence="CC BY-NC 4.0 (official code and weights: non-commercial use only)",
        checkpoint_file="monkey-net-vox.pth.tar",
        motion_description="10 keypoint means × 2 + 10 covariances × 4 (3 unique) = 60 floats per frame "
        "(50 unique)",
        extra={
            "config": "baselines/monkey_net/config/vox.yaml",
            "checkpoint_format": "official Logger.save_cpk dict " + str(list(OFFICIAL_CHECKPOINT_KEYS))
            + " or facelab's own",
            "checkpoint_file_verified": False,
        },
    )

    def __init__(self, config: str | os.PathLike | Mapping | None = None, **model_params_overrides: Mapping) -> None:
        super().__init__()
        self.config = load_config(config, **model_params_overrides)
        mp = self.config["model_params"]
        common = mp["common_params"]
        self.kp_detector = KPDetector(**common, **mp["kp_detector_params"])
        self.generator = MotionTransferGenerator(**common, **mp["generator_params"])
        self._discriminator = [Discriminator(**common, **mp["discriminator_params"])]
        self.num_channels = int(common["num_channels"])

    @property
    def discriminator(self) -> Discriminator:
        return self._discriminator[0]

    # ------------------------------------------------------------------ interface
    def _check_frames(self, x: Tensor, what: str) -> None:
        if x.ndim != 4 or x.shape[1] != self.num_channels:
            raise ValueError(f"{what} must be (N, {self.num_channels}, H, W), got {tuple(x.shape)}")

    def encode_source(self, source: Tensor) -> SourceState:
        """``source`` ``(B, 3, H, W)`` -> ``{'source', 'appearance_skip_1'..}`` (the appearance encoder's skips)."""
        self._check_frames(source, "source")
        skips = self.generator.encode_appearance(source.unsqueeze(2))
        state = {"source": source}
        state.update({f"appearance_skip_{i}": s for i, s in enumerate(skips) if i > 0})
        return state

    def extract_motion(self, frames: Tensor) -> Motion:
        """``frames`` ``(N, 3, H, W)`` -> ``{'mean': (N, K, 2), 'var': (N, K, 2, 2)}``, each frame on its own."""
        self._check_frames(frames, "frames")
        kp = self.kp_detector(frames.unsqueeze(2))  # (N, 3, 1, H, W): frames as batch, D = 1
        return {k: v[:, 0] for k, v in kp.items()}

    def render(self, state: SourceState, motion_source: Motion, motion_driving: Motion) -> Tensor:
        """One generator call per driving frame (``D=1``), batched: ``(N, 3, H, W)`` in [0, 1]."""
        n = motion_driving["mean"].shape[0]
        state = expand_batch(state, n)
        motion_source = expand_batch(motion_source, n)
        source = state["source"].unsqueeze(2)
        num_skips = len(self.generator.appearance_encoder.down_blocks)
        skips = [source] + [state[f"appearance_skip_{i}"] for i in range(1, num_skips + 1)]
        out = self.generator(
            source,
            kp_driving={k: v.unsqueeze(1) for k, v in motion_driving.items()},
            kp_source={k: v.unsqueeze(1) for k, v in motion_source.items()},
            appearance_skips=skips,
        )
        return out["video_prediction"][:, :, 0]

    def transfer_motion(
        self,
        motion_source: Motion,
        motion_driving: Motion,
        motion_driving_initial: Motion,
        adapt_movement_scale: bool = True,
    ) -> Motion:
        """The official relative transfer, with the config's ``transfer_params.normalization_params``.

        vox: ``move_location`` only (means move by their displacement from the first driving frame; the
        covariances stay the driving ones). The config decides whether the displacement is scaled
        (``movement_mult``; false for vox): ``adapt_movement_scale=False`` turns that scaling off, True keeps
        the config's choice (pass a config to turn it on).
        """
        params = dict(self.config.get("transfer_params", {}).get("normalization_params", {}) or {})
        params["movement_mult"] = bool(params.get("movement_mult", False)) and adapt_movement_scale
        return normalize_kp(motion_driving, motion_source, motion_driving_initial, **params)

    def encoder_modules(self) -> dict[str, torch.nn.Module]:
        return {"kp_detector": self.kp_detector}

    def decoder_modules(self) -> dict[str, torch.nn.Module]:
        return {"generator": self.generator}

    def training_objective(self, train_params: dict | None = None):
        """Monkey-Net's losses (:mod:`baselines.monkey_net.objective`); missing keys come from the config."""
        from baselines.monkey_net.objective import monkey_net_objective

        tp = deep_merge(self.config.get("train_params", {}), train_params)
        return monkey_net_objective(self, self.discriminator, tp)

    # ------------------------------------------------------------------ checkpoints
    def load_checkpoint(self, path: str) -> dict:
        """Load an official checkpoint (all three networks, strict) or facelab's own format.

        Official: a dict with ``'generator'`` and ``'kp_detector'`` state_dicts (``'discriminator'`` loaded too
        when present), read with ``weights_only=True``; ``module.`` prefixes are stripped.

        Returns:
            metadata: ``{'format': 'official', 'epoch', 'it', 'discriminator_loaded'}`` or the facelab metadata.

        Raises:
            CheckpointError: unreadable or unsafe file, unknown layout, or state_dicts that do not match the
                config.
        """
        if Path(path).suffix == ".safetensors":
            return load_animator_weights(self, path)
        ckpt = safe_load(path)
        if not isinstance(ckpt, Mapping):
            raise CheckpointError(f"{path}: expected a dict, got {type(ckpt).__name__}",
                                  reason=wrong_keys_reason(ckpt, "a dict of state_dicts"))
        if "model" in ckpt and isinstance(ckpt["model"], Mapping):
            return load_animator_weights(self, path)
        missing = [k for k in ("generator", "kp_detector") if not isinstance(ckpt.get(k), Mapping)]
        if missing:
            raise CheckpointError(
                f"{path}: not a Monkey-Net checkpoint: no {' or '.join(repr(k) for k in missing)} state_dict "
                f"(found keys: {', '.join(map(str, list(ckpt)[:12]))}); expected the official layout "
                f"{list(OFFICIAL_CHECKPOINT_KEYS)} or facelab's ('model' state_dict / .safetensors)",
                reason=wrong_keys_reason(ckpt, "generator, kp_detector (official) or 'model' (facelab)"),
            )
        load_state_dict_strict(self.kp_detector, ckpt["kp_detector"], what=f"monkey_net kp_detector ({path})")
        load_state_dict_strict(self.generator, ckpt["generator"], what=f"monkey_net generator ({path})")
        has_disc = isinstance(ckpt.get("discriminator"), Mapping)
        if has_disc:
            load_state_dict_strict(self.discriminator, ckpt["discriminator"], what=f"monkey_net discriminator ({path})")
        return {
            "format": "official",
            "epoch": ckpt.get("epoch"),
            "it": ckpt.get("it"),
            "discriminator_loaded": has_disc,
        }
