"""A run's inference weights: an fp16 ``.safetensors`` file of its newest checkpoint, with what it took to train."""

from __future__ import annotations

import os
import time
from pathlib import Path

import torch

from lab.core.registry import create_animator
from lab.train.checkpointing import CKPT_DIR, latest_checkpoint
from lab.train.curves import config_at_resolution

__all__ = ["export_inference_weights"]


def export_inference_weights(run_dir_or_ckpt: str | os.PathLike, out: str | os.PathLike,
                             extra: dict | None = None) -> Path:
    """Write an fp16 ``.safetensors`` inference file from a run's newest checkpoint (or a checkpoint file).

    The metadata records the model, its config, the data it saw, steps, device-minutes, training and CPU hours,
    the losses used, the recipe (the run's ``train_params``), the weights it was warm-started from, and
    ``extra`` (e.g. the commit and a held-out score: what the shipped file's README cites).
    """
    from lab import __version__
    from lab.core.checkpoint import load_state_dict_strict, safe_load, save_inference_weights

    src = Path(run_dir_or_ckpt)
    ck_path = latest_checkpoint(src) if src.is_dir() else src
    if ck_path is None:
        raise FileNotFoundError(f"no checkpoint in {src}/{CKPT_DIR}")
    ck = safe_load(ck_path)
    animator = create_animator(ck["model_name"], config=ck["config"])
    load_state_dict_strict(animator, ck["model"], what=str(ck_path))
    # the file runs in the model's own config, at its own frame size (every loader builds that): a run trained
    # at another size (the 128² curriculum phase) is described at the native size, its training size kept apart
    trained_size = int((ck["config"].get("dataset_params", {}).get("frame_shape") or [0])[0])
    native_size = int(create_animator(ck["model_name"]).config.get("dataset_params", {}).get("frame_shape", [0])[0])
    run_cfg = ck["config"]
    if trained_size and native_size and trained_size != native_size:
        run_cfg = config_at_resolution(run_cfg, native_size)
    minutes = ck.get("device_seconds", 0.0) / 60.0
    data = dict(ck.get("data") or {})
    meta = {
        "model": ck["model_name"],
        "steps": ck["step"],
        "device_type": ck.get("device_type"),
        "world_size": ck.get("world_size"),
        "gpu_minutes": round(minutes, 2) if ck.get("device_type") == "cuda" else 0.0,
        "train_hours": round(float(ck.get("train_seconds", 0.0)) / 3600, 3),
        "cpu_hours": round(float(ck.get("cpu_seconds", 0.0)) / 3600, 3),
        "precision": ck.get("precision"),
        "threads": ck.get("threads"),
        "data": data,
        "losses": ck.get("objective"),
        "last_losses": ck.get("last_losses"),
        "model_params": run_cfg.get("model_params"),
        "trained_frame_size": trained_size or None,
        "facelab_version": __version__,
        "exported_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        "source_checkpoint": ck_path.name,
        "train_params": ck["config"].get("train_params"),
    }
    if ck.get("warm_from"):
        meta["warm_from"] = ck["warm_from"]
    meta.update(extra or {})
    return save_inference_weights(animator, out, meta=meta, dtype=torch.float16)
