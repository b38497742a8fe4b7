"""The registered ``x2face`` animator: X2Face split into a sender encoder and a server decoder.

X2Face: Wiles, Koepke, Zisserman, "X2Face: A network for controlling face generation using images, audio,
and pose codes", ECCV 2018; official code oawiles/X2Face @ cecfbfaa4c820293cbbb1978c3ddb247f67f3af8 (MIT),
whose released ``x2face_model.pth`` loads here unchanged.
"""

from __future__ import annotations

import copy
import os
from collections.abc import Mapping
from pathlib import Path

from torch import Tensor, nn

from baselines.x2face.model import UnwrappedFaceWeightedAverage
from lab.core.animator import Animator, AnimatorInfo, Motion, SourceState, expand_batch
from lab.core.checkpoint import (
    CheckpointError,
    clean_state_dict,
    load_animator_weights,
    load_state_dict_strict,
    safe_load,
    wrong_keys_reason,
)
from lab.core.config import load_model_config
from lab.core.registry import register_animator

__all__ = ["X2FaceAnimator", "load_config", "load_official_state_dict", "CONFIG_PATH"]

CONFIG_PATH = Path(__file__).resolve().parent / "config" / "x2face-256.yaml"
OFFICIAL_CODE = "oawiles/X2Face@cecfbfaa4c820293cbbb1978c3ddb247f67f3af8"


def load_config(config: str | os.PathLike | Mapping | None = None, inner_nc: int | None = None) -> dict:
    """The packaged ``x2face-256.yaml`` deep-merged with ``config`` (a YAML path or a mapping) and ``inner_nc``."""
    cfg = load_model_config(config, default=CONFIG_PATH, what="X2Face", merge_with_default=True)
    if inner_nc is not None:
        cfg["model_params"]["inner_nc"] = int(inner_nc)
    return cfg


def load_official_state_dict(path: str | Path) -> tuple[dict[str, Tensor], dict] | None:
    """Read an official X2Face checkpoint (``{'state_dict': ..., 'optimizer'?: ...}``) safely.

    Returns:
        ``(state_dict, meta)`` when the file is in the official format, None when it is not (e.g. this
        lab's own format). Unsafe pickles raise :class:`lab.core.checkpoint.CheckpointError` (``weights_only``).
    """
    if Path(path).suffix == ".safetensors":
        return None
    ckpt = safe_load(path)
    if isinstance(ckpt, Mapping) and isinstance(ckpt.get("state_dict"), Mapping):
        meta = {"format": "x2face-official", "has_optimizer": "optimizer" in ckpt}
        return dict(ckpt["state_dict"]), meta
    if isinstance(ckpt, Mapping) and ckpt and all(
        isinstance(k, str) and k.startswith(("pix2pixUnwrapped.", "pix2pixSampler.", "module.pix2pix")) for k in ckpt
    ):  # a bare UnwrappedFaceWeightedAverage.state_dict()
        return dict(ckpt), {"format": "x2face-official (bare state_dict)"}
    return None


@register_animator
class X2FaceAnimator(Animator):
    """X2Face as a codec (Table 2 baseline).

    * **Sender** (:meth:`extract_motion`): the driving network's down path turns each 256x256 frame into its
      ``inner_nc``-channel bottleneck. The driving network has no skip connections, so this code is all its
      decoder needs: **128 float values per frame cross the network** (FOMM sends 60: 10 keypoints x
      (2 coordinates + 4 Jacobian entries)), i.e. about 2.1x FOMM's payload before quantisation.
    * **Server**: :meth:`encode_source` runs the embedding network once per source (the embedded, "frontalised"
      face); :meth:`render` runs the driving network's up path on the received code, and samples the embedded
      face with ``tanh(field) + identity``. ``render`` equals the official ``model(driving, source)`` exactly.

    X2Face has no relative-motion mode (no keypoints to normalise), so :meth:`transfer_motion` stays the
    identity: ``animate(relative=True)`` drives with the absolute driving code, as the official demo does.

    Args:
        inner_nc: driving-network bottleneck channels (128 in the released model) = values sent per frame;
            overrides ``config``.
        config: a run config (path or mapping) deep-merged over the packaged ``config/x2face-256.yaml``
            (the trainer passes its resolved config here).
    """

    name = "x2face"
    input_size = (256, 256)
    info = AnimatorInfo(
        name="x2face",
        description="X2Face (ECCV 2018): embedding network + driving network, warps an embedded face.",
        paper=(
            "O. Wiles, A. S. Koepke, A. Zisserman. X2Face: A network for controlling face generation using "
            "images, audio, and pose codes. ECCV 2018."
        ),
        official_code=OFFICIAL_CODE,
        licence="MIT (official code, LICENSE added at the pinned commit); weights from the VGG project page",
        checkpoint_file="x2face_model.pth",
        motion_description="128-value driving embedding",
        extra={"values_per_frame": 128, "fomm_values_per_frame": 60},
    )

    def __init__(self, inner_nc: int | None = None, config: str | os.PathLike | Mapping | None = None) -> None:
        super().__init__()
        self.config = load_config(config, inner_nc=inner_nc)
        params = self.config["model_params"]
        self.model = UnwrappedFaceWeightedAverage(
            output_num_channels=int(params["output_num_channels"]),
            input_num_channels=int(params["input_num_channels"]),
            inner_nc=int(params["inner_nc"]),
        )

    # ------------------------------------------------------------------ interface
    def _check(self, x: Tensor, what: str) -> None:
        if x.ndim != 4 or x.shape[1] != 3 or tuple(x.shape[2:]) != self.input_size:
            raise ValueError(
                f"x2face {what} must be (N, 3, 256, 256) (X2Face only runs at 256x256), got {tuple(x.shape)}"
            )

    def encode_source(self, source: Tensor) -> SourceState:
        """Server, once per source.

        Args:
            source: ``(B, 3, 256, 256)`` in [0, 1].

        Returns:
            ``{"embedded": (B, 3, 256, 256), "confidence": (B, 1, 256, 256)}`` (confidence ``exp + 0.1``).
        """
        self._check(source, "source")
        embedded, conf = self.model.embed(source)
        return {"embedded": embedded, "confidence": conf[..., 0]}

    def extract_motion(self, frames: Tensor) -> Motion:
        """Sender: ``{"embedding": (N, inner_nc)}``, the driving bottleneck (128 values per frame).

        Args:
            frames: ``(N, 3, 256, 256)`` in [0, 1].
        """
        self._check(frames, "frames")
        return {"embedding": self.model.encode_driving(frames).flatten(1)}

    def render(self, state: SourceState, motion_source: Motion, motion_driving: Motion) -> Tensor:
        """Server: decode the driving code and warp the embedded face (``motion_source`` is not used).

        Args:
            state: from :meth:`encode_source` (batch 1 or N).
            motion_source: unused (X2Face needs no source motion).
            motion_driving: ``{"embedding": (N, inner_nc) or (N, inner_nc, 1, 1)}``.

        Returns:
            ``(N, 3, 256, 256)``.
        """
        code = motion_driving["embedding"]
        n = code.shape[0]
        if code.ndim == 2:
            code = code[:, :, None, None]
        field = self.model.decode_driving(code)
        state = expand_batch(state, n)
        return self.model.sample(state["embedded"], field)

    def training_objective(self, train_params: dict):
        """X2Face's own photometric L1 objective (see :mod:`baselines.x2face.objective`)."""
        from baselines.x2face.objective import x2face_objective

        return x2face_objective(self, train_params)

    def encoder_modules(self) -> dict[str, nn.Module]:
        """The driving network's down path (sender)."""
        return {"driving_encoder": self.model.pix2pixSampler.down_path()}

    def decoder_modules(self) -> dict[str, nn.Module]:
        """The driving network's up path and the embedding network (server)."""
        return {
            "driving_decoder": self.model.pix2pixSampler.up_path(),
            "embedding_network": self.model.pix2pixUnwrapped,
        }

    # ------------------------------------------------------------------ weights
    def load_checkpoint(self, path: str) -> dict:
        """Load the official ``x2face_model.pth`` (``{'state_dict', 'optimizer'?}``, strict) or this lab's format.

        The official file was saved by pytorch 0.2: it has no ``num_batches_tracked`` entries, which the
        strict check tolerates; every other key and shape must match.
        """
        official = load_official_state_dict(path)
        if official is None:
            try:
                return load_animator_weights(self, path)
            except CheckpointError as e:
                if "not a facelab checkpoint" in str(e):
                    raise CheckpointError(
                        f"{path}: neither an official X2Face checkpoint (a dict with 'state_dict') nor a facelab "
                        "checkpoint (.safetensors or a dict with 'model')",
                        reason=wrong_keys_reason(safe_load(path) if Path(path).suffix != ".safetensors" else {},
                                                 "'state_dict' (official) or 'model' (facelab)"),
                    ) from e
                raise
        state, meta = official
        own = self.model.state_dict()
        state = {
            k: v.to(own[k].dtype) if k in own and isinstance(v, Tensor) and v.is_floating_point() else v
            for k, v in clean_state_dict(state).items()
        }
        load_state_dict_strict(self.model, state, what=f"x2face official checkpoint ({path})")
        return copy.deepcopy(meta)
