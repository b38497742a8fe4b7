"""The common trainer (``facelab train`` / ``torchrun -m lab.train``); see :mod:`lab.train.loop`."""

from lab.train.checkpointing import latest_checkpoint
from lab.train.export import export_inference_weights
from lab.train.loop import train

__all__ = ["train", "latest_checkpoint", "export_inference_weights"]
