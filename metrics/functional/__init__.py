"""Functional metrics: pure functions of a batch of generated and ground-truth frames.

Each metric ``x`` is made of ``_x_update`` (per-frame values) and ``_x_compute`` (the pooled mean); the
stateful classes in :mod:`metrics.aggregate` call the same pieces.
"""

from metrics.functional.aed import aed
from metrics.functional.akd import akd
from metrics.functional.l1 import l1
from metrics.functional.lpips import lpips
from metrics.functional.psnr_ssim import psnr, ssim

__all__ = ["l1", "psnr", "ssim", "lpips", "akd", "aed"]
