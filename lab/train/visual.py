"""Image grids for training logs: source | driving | prediction, with keypoints drawn when present."""

from __future__ import annotations

import torch
from torch import Tensor

__all__ = ["draw_keypoints", "training_grid"]

_COLORS = torch.tensor([
    [1.0, 0.1, 0.1], [0.1, 1.0, 0.1], [0.2, 0.4, 1.0], [1.0, 1.0, 0.1], [1.0, 0.1, 1.0],
    [0.1, 1.0, 1.0], [1.0, 0.6, 0.1], [0.6, 0.2, 1.0], [0.6, 1.0, 0.4], [1.0, 1.0, 1.0],
])


def draw_keypoints(img: Tensor, kp: Tensor, radius: int = 2) -> Tensor:
    """Draw keypoints as filled squares.

    Args:
        img: ``(3, H, W)`` float in [0, 1].
        kp: ``(K, 2)`` in [-1, 1], (x, y) order (FOMM's convention).
    """
    img = img.clone()
    h, w = img.shape[1:]
    for k, (x, y) in enumerate(kp.float().cpu().tolist()):
        cx, cy = round((x + 1) / 2 * (w - 1)), round((y + 1) / 2 * (h - 1))
        img[:, max(0, cy - radius) : cy + radius + 1, max(0, cx - radius) : cx + radius + 1] = (
            _COLORS[k % len(_COLORS)].view(3, 1, 1).to(img)
        )
    return img


def training_grid(source: Tensor, driving: Tensor, generated: dict, max_rows: int = 4) -> Tensor:
    """``(3, rows*H, 3*W)`` grid: one row per sample, columns source | driving | prediction."""
    rows = []
    kp_s = (generated.get("kp_source") or {}).get("value")
    kp_d = (generated.get("kp_driving") or {}).get("value")
    pred = generated["prediction"]
    for i in range(min(max_rows, source.shape[0])):
        s, d, p = source[i].detach().float().cpu(), driving[i].detach().float().cpu(), pred[i].detach().float().cpu()
        if kp_s is not None:
            s = draw_keypoints(s, kp_s[i])
        if kp_d is not None:
            d = draw_keypoints(d, kp_d[i])
            p = draw_keypoints(p.clamp(0, 1), kp_d[i])
        rows.append(torch.cat([s, d, p.clamp(0, 1)], dim=2))
    return torch.cat(rows, dim=1)
