r"""LPIPS (Zhang et al., CVPR 2018) per frame: ``lpips`` v0.1, AlexNet trunk, inputs scaled to [-1, 1].

.. math::

    \mathrm{LPIPS}_t = \sum_l \frac{1}{H_l W_l} \sum_{y,x} \big\lVert w_l \odot (\hat\phi_l(\hat I_t) -
    \hat\phi_l(I_t))_{y,x} \big\rVert_2^2

with :math:`\hat\phi_l` the unit-normalised AlexNet activations of layer :math:`l`. Lower is better.
"""

from __future__ import annotations

import numpy as np
import torch
from torch import nn

from metrics.functional._common import Reduction, _check_reduction, _nanmean, _reduce
from metrics.validate import Frames, _validate_pair, to_float_nchw

__all__ = ["lpips", "_lpips_update", "_lpips_compute"]


@torch.no_grad()
def _lpips_update(preds: Frames, target: Frames, net: nn.Module, batch_size: int = 16) -> np.ndarray:
    """Per-frame LPIPS.

    Args:
        preds: ``(N, H, W, 3)`` uint8 or ``(N, 3, H, W)`` float in [0, 1].
        target: same layout and shape.
        net: an ``lpips.LPIPS`` module (takes ``(n, 3, H, W)`` in [-1, 1], returns ``(n, 1, 1, 1)``).
        batch_size: frames per forward pass.

    Returns:
        ``(N,)`` float64.
    """
    _validate_pair(preds, target)
    dev = next(net.parameters()).device
    p, t = to_float_nchw(preds), to_float_nchw(target)
    out = []
    for s in range(0, p.shape[0], batch_size):
        a = p[s : s + batch_size].to(dev, torch.float32) * 2 - 1
        b = t[s : s + batch_size].to(dev, torch.float32) * 2 - 1
        out.append(net(a, b).reshape(-1).double().cpu())
    return torch.cat(out).numpy()


def _lpips_compute(values: np.ndarray) -> float:
    """Mean of per-frame LPIPS."""
    return _nanmean(values)


def lpips(preds: Frames, target: Frames, net: nn.Module | None = None, reduction: Reduction = "mean",
          batch_size: int = 16) -> float | np.ndarray:
    """LPIPS v0.1 (AlexNet) per frame; lower is better.

    Args:
        preds: generated frames, ``(N, H, W, 3)`` uint8 or ``(N, 3, H, W)`` float in [0, 1].
        target: ground-truth frames, same layout and shape.
        net: an ``lpips.LPIPS`` module; default: AlexNet LPIPS from :func:`metrics.backends.lpips_alex.get_lpips_alex`
            (needs ``alexnet-owt-7be5be79.pth`` in ``$FACELAB_WEIGHTS`` or ``$TORCH_HOME/hub/checkpoints``).
        reduction: ``"mean"`` or ``"none"``.
        batch_size: frames per forward pass.

    Raises:
        FileNotFoundError: the AlexNet weights are missing (names the file and folder).
    """
    _check_reduction(reduction)
    if net is None:
        from metrics.backends.lpips_alex import get_lpips_alex

        net = get_lpips_alex()[0]
    return _reduce(_lpips_update(preds, target, net, batch_size), reduction)
