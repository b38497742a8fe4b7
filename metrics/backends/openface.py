"""Protocol identity backend for AED: OpenFace nn4.small2.v1 on the whole frame, as pose-evaluation.

pose-evaluation (``extract.py --type face_id``) does, per uint8 RGB 256x256 frame: ``frame[..., ::-1]``
(RGB→BGR), ``skimage.transform.resize(frame, (96, 96))`` (float in [0, 1]; no detection, alignment or crop),
CHW, ``net(x)[0]`` → the L2-normalised 128-D embedding. AED per frame is ``sum((e_gt - e_gen)**2)``.

pose-evaluation pins scikit-image 0.14.0, whose ``resize`` defaults were ``order=1`` (bilinear),
``mode='constant'`` and **no anti-aliasing**; scikit-image >= 0.15 anti-aliases by default, which changes the
embedding. :func:`openface_preprocess` therefore passes ``order=1, mode='constant', anti_aliasing=False``.

Weights: the port's ``openface.pth`` (a ``state_dict`` of CUDA tensors saved by torch 0.3/0.4; loaded here on
the CPU with ``weights_only=True``). It cannot be downloaded; put it in ``$FACELAB_WEIGHTS`` or
``$TORCH_HOME/hub/checkpoints`` (also found under the port's suggested name ``openface_nn4_small2_v1.pth``), or
pass its path. Its keys are checked strictly against :class:`OpenFaceNN4Small2` (a missing
``num_batches_tracked`` is tolerated, as torch does for old files).
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import numpy as np
import torch

from lab.core.weights import find_weight_file, weights_dirs
from metrics.backends.openface_net import OpenFaceNN4Small2

__all__ = ["OpenFaceBackend", "OPENFACE_FILE", "openface_preprocess", "load_openface"]

OPENFACE_FILE = "openface.pth"
_OTHER_NAMES = ("openface_nn4_small2_v1.pth",)


def _find_openface(weights: str | os.PathLike | None) -> Path:
    alt = "or use --aed-backend dlib"
    if weights is not None:
        return find_weight_file(OPENFACE_FILE, "OpenFace weights", explicit=weights, alternative=alt)
    dirs = weights_dirs()
    for d in dirs:
        for name in (OPENFACE_FILE, *_OTHER_NAMES):
            if (d / name).is_file():
                return d / name
    return find_weight_file(OPENFACE_FILE, "OpenFace weights (thnkim/OpenFacePytorch)", dirs, alternative=alt)


def load_openface(path: str | os.PathLike, device: str | torch.device = "cpu") -> OpenFaceNN4Small2:
    """Build :class:`OpenFaceNN4Small2` and load the port's ``state_dict`` from ``path`` (strict, safe).

    Raises:
        lab.core.checkpoint.CheckpointError: unreadable file, or keys/shapes that do not match.
    """
    from lab.core.checkpoint import CheckpointError, load_state_dict_strict, safe_load

    state = safe_load(path)
    if isinstance(state, dict) and isinstance(state.get("state_dict"), dict):
        state = state["state_dict"]
    if not isinstance(state, dict):
        raise CheckpointError(f"{path}: expected a state_dict of the OpenFace port, got {type(state).__name__}")
    net = OpenFaceNN4Small2()
    load_state_dict_strict(net, {k: v.float() for k, v in state.items()}, what=f"OpenFace nn4.small2.v1 ({path})")
    return net.to(device).eval()


def openface_preprocess(frames: np.ndarray) -> torch.Tensor:
    """pose-evaluation's preprocessing: RGB→BGR, resize the whole frame to 96x96, float [0, 1], CHW.

    Args:
        frames: ``(N, H, W, 3)`` uint8 RGB.

    Returns:
        ``(N, 3, 96, 96)`` float32 BGR in [0, 1].
    """
    from skimage.transform import resize

    out = np.empty((len(frames), 3, 96, 96), np.float32)
    for i, f in enumerate(frames):
        bgr = np.ascontiguousarray(f[..., ::-1])
        small = resize(bgr, (96, 96), order=1, mode="constant", anti_aliasing=False)  # float64 in [0, 1]
        out[i] = small.transpose(2, 0, 1)
    return torch.from_numpy(out)


class OpenFaceBackend:
    """OpenFace nn4.small2.v1 (thnkim/OpenFacePytorch weights), whole frame; the pose-evaluation AED convention.

    Args:
        weights: path of ``openface.pth``; default: looked up in ``$FACELAB_WEIGHTS`` then
            ``$TORCH_HOME/hub/checkpoints``.
        device: torch device for the network.
        batch_size: frames per forward pass.

    Raises:
        FileNotFoundError: the weight file is missing (the message names the file and the folders).
    """

    name = "openface"
    label = "OpenFace nn4.small2.v1 (thnkim/OpenFacePytorch weights, whole frame; pose-evaluation convention)"
    protocol = True

    def __init__(self, weights: str | os.PathLike | None = None, device: str = "cpu", batch_size: int = 32) -> None:
        self._path = _find_openface(weights)
        self.device = torch.device(device)
        self.batch_size = int(batch_size)
        self.net = load_openface(self._path, self.device)

    @torch.no_grad()
    def embeddings(self, frames: np.ndarray) -> list[np.ndarray | None]:
        """L2-normalised 128-D embedding of each whole frame (never ``None``: no detection is involved).

        Args:
            frames: ``(N, H, W, 3)`` uint8 RGB (256x256 in the protocol).

        Returns:
            per frame a ``(128,)`` float64 array.
        """
        out: list[np.ndarray | None] = []
        for s in range(0, len(frames), self.batch_size):
            x = openface_preprocess(frames[s : s + self.batch_size]).to(self.device)
            out.extend(e for e in self.net(x).double().cpu().numpy())
        return out

    def provenance(self) -> dict[str, Any]:
        """Backend name, label, weight file with sha256, preprocessing."""
        from metrics.provenance import backend_provenance

        return backend_provenance(
            self, [self._path],
            preprocess="RGB->BGR, skimage resize whole frame to 96x96 (order=1, mode=constant, "
            "anti_aliasing=False: scikit-image 0.14 defaults), float [0,1]",
            network="facelab OpenFaceNN4Small2 (port-compatible keys; legacy LRN window as the port)",
            reference="AliaksandrSiarohin/pose-evaluation@1bc4cae extract.py face_id + thnkim/OpenFacePytorch",
        )
