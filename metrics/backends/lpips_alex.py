"""LPIPS v0.1 with the AlexNet trunk (the ``lpips`` package, ``net='alex'``), loaded without any download.

LPIPS (Zhang et al., "The Unreasonable Effectiveness of Deep Features as a Perceptual Metric", CVPR 2018;
richzhang/PerceptualSimilarity, package ``lpips`` 0.1.4) needs two weight sets:

* the linear calibration layers, ``lpips/weights/v0.1/alex.pth``, shipped inside the ``lpips`` package;
* torchvision's ImageNet AlexNet, ``alexnet-owt-7be5be79.pth``, which ``lpips`` would download through
  torchvision. Here the trunk is built without weights (``pnet_rand=True``) and the file is loaded by facelab
  from ``$FACELAB_WEIGHTS`` or ``$TORCH_HOME/hub/checkpoints`` (:func:`lab.core.weights.weights_dirs`, in that
  order) with ``weights_only=True``; a missing file
  raises :class:`FileNotFoundError` naming it and the folder. The result is the same module ``lpips.LPIPS(
  net='alex', version='0.1')`` builds with pretrained weights.
"""

from __future__ import annotations

import os
import warnings
from pathlib import Path
from typing import Any

import torch
from torch import nn

from lab.core.weights import facelab_weights_dir, find_weight_file, hub_checkpoints_dir, weights_dirs

__all__ = ["ALEXNET_FILE", "load_lpips_alex", "get_lpips_alex", "lpips_provenance"]

ALEXNET_FILE = "alexnet-owt-7be5be79.pth"

_lpips_cache: dict[tuple, tuple[nn.Module, dict[str, Any]]] = {}


def _lin_weights_path() -> Path:
    import lpips

    return Path(lpips.__file__).resolve().parent / "weights" / "v0.1" / "alex.pth"


def load_lpips_alex(alexnet_weights: str | os.PathLike | None = None) -> tuple[nn.Module, dict[str, Any]]:
    """Build ``lpips.LPIPS(net='alex', version='0.1')`` with the AlexNet trunk loaded from a local file.

    Args:
        alexnet_weights: path of ``alexnet-owt-7be5be79.pth`` (torchvision's AlexNet ``state_dict``); default:
            looked up in :func:`lab.core.weights.weights_dirs` (``$FACELAB_WEIGHTS``, then
            ``$TORCH_HOME/hub/checkpoints``).

    Returns:
        ``(net, provenance)``: the module in eval mode (call it on ``(N, 3, H, W)`` tensors in [-1, 1]) and
        its provenance dict.

    Raises:
        FileNotFoundError: the AlexNet file is missing (the message names it and the folder).
        lab.core.checkpoint.CheckpointError: the file is not an AlexNet ``state_dict``.
    """
    from lab.core.checkpoint import CheckpointError, safe_load

    path = find_weight_file(
        ALEXNET_FILE,
        "LPIPS AlexNet weights",
        weights_dirs(),
        explicit=alexnet_weights,
        alternative="or leave lpips out of --metrics",
    )
    import lpips

    with warnings.catch_warnings():  # torchvision's deprecation of lpips' `pretrained=` argument
        warnings.simplefilter("ignore", UserWarning)
        net = lpips.LPIPS(pretrained=True, net="alex", version="0.1", pnet_rand=True, verbose=False)
    state = safe_load(path)
    trunk = net.net.state_dict()  # keys slice{k}.{i}.{weight,bias}, i = index in torchvision's alexnet.features
    mapped, missing = {}, []
    for key, own in trunk.items():
        src = "features." + key.split(".", 1)[1]
        if src not in state or tuple(state[src].shape) != tuple(own.shape):
            missing.append(src)
        else:
            mapped[key] = state[src].to(own.dtype)
    if missing:
        raise CheckpointError(
            f"{path}: not torchvision's AlexNet state_dict (missing or mis-shaped: {', '.join(missing[:6])})"
        )
    net.net.load_state_dict(mapped, strict=True)
    net.eval()
    for p in net.parameters():
        p.requires_grad_(False)
    from metrics.provenance import weight_entry

    prov = {
        "backend": "lpips",
        "label": "LPIPS v0.1, AlexNet trunk (lpips package), inputs scaled to [-1, 1]",
        "protocol": True,
        "weights": [weight_entry(path), weight_entry(_lin_weights_path())],
        "settings": "lpips.LPIPS(net='alex', version='0.1'), spatial average",
    }
    return net, prov


def get_lpips_alex() -> tuple[nn.Module, dict[str, Any]]:
    """:func:`load_lpips_alex` with the default lookup, loaded once per weight folder."""
    key = (str(hub_checkpoints_dir()), str(facelab_weights_dir()))
    if key not in _lpips_cache:
        _lpips_cache[key] = load_lpips_alex()
    return _lpips_cache[key]


def lpips_provenance(net: nn.Module) -> dict[str, Any]:
    """Provenance of a caller-supplied LPIPS module (weights unknown to facelab)."""
    return {
        "backend": "lpips",
        "label": f"caller-supplied {type(net).__name__}",
        "protocol": False,
        "weights": [],
        "settings": "inputs scaled to [-1, 1]",
        "torch": torch.__version__,
    }
