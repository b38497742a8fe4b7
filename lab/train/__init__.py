"""The common trainer (``facelab train`` / ``torchrun -m lab.train``); see :mod:`lab.train.loop`."""

from lab.train.loop import export_inference_weights, latest_checkpoint, train

__all__ = ["train", "latest_checkpoint", "export_inference_weights"]
