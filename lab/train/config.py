"""Training configuration: the model's FOMM-layout YAML plus the trainer's own keys, with defaults.

A run's config is the animator's resolved ``config`` (``dataset_params``, ``model_params``,
``train_params``, ...), optionally overridden by a user YAML (deep-merged) and by command-line flags. The
trainer's keys live in ``train_params`` next to FOMM's:

================================  =======================================================================
key                               meaning
================================  =======================================================================
``num_epochs``, ``num_repeats``   FOMM's epoch = every video ``num_repeats`` times
``epoch_milestones``              epochs where the learning rate drops 10× (MultiStepLR, as FOMM)
``step_milestones``               the same in optimiser steps (overrides epoch_milestones; for small data)
``hour_milestones``               the same in training-hours (a time budget's schedule: the equal-budget runs
                                  drop at 60 % and 90 % of theirs, as FOMM at epochs 60 and 90 of 100); it
                                  multiplies the step/epoch schedule's factor
``lr_generator``                  Adam lr of everything but the encoder (betas 0.5, 0.999 as FOMM)
``lr_kp_detector``                Adam lr of the encoder (sender-side) modules
``lr_discriminator``              Adam lr of the discriminator (only when a GAN is trained)
``batch_size``                    per process (FOMM's is global over its GPUs; divide yourself)
``max_steps``                     stop after this many optimiser steps (overrides num_epochs)
``checkpoint_every``              steps between checkpoints (a final one is always written)
``log_every`` / ``image_every``   steps between scalar logs / image grids
``grad_clip``                     max global grad norm (0 = off)
``optimizer``                     ``{name: adam, betas: [0.5, 0.999]}`` (FOMM) or ``{name: sgd, momentum: 0.9}``
``amp``                           ``auto`` (bf16 autocast of the networks on CUDA and on CPUs with native
                                  bf16), ``bf16``, ``fp16`` (CUDA), ``fp32``/``off`` (:mod:`lab.train.precision`)
``max_train_hours``               stop when this much training time (wall, evaluation excluded) is spent
``eval_every_minutes``            score held-out clips every N minutes of training time (learning curve)
``eval``                          the curve's subset: ``{clips, frames: 40, stride: 4, size: 256, split: test}``
``num_workers``                   DataLoader workers per process
``seed``                          base seed of data order, augmentation and the per-step RNG
================================  =======================================================================

``dataset_params`` keys used: ``frame_shape`` ([H, W, 3]), ``augmentation_params`` (FOMM's ``flip_param``
and ``jitter_param``), and the trainer's ``max_frames_per_video`` / ``frame_stride``.
"""

from __future__ import annotations

from lab.core.config import deep_merge

__all__ = ["TRAIN_DEFAULTS", "DATASET_DEFAULTS", "resolve_run_config"]

TRAIN_DEFAULTS: dict = {
    "num_epochs": 100,
    "num_repeats": 75,
    "epoch_milestones": [60, 90],
    "lr_generator": 2.0e-4,
    "lr_discriminator": 2.0e-4,
    "lr_kp_detector": 2.0e-4,
    "batch_size": 8,
    "max_steps": None,
    "checkpoint_every": 500,
    "log_every": 10,
    "image_every": 250,
    "grad_clip": 0.0,
    "amp": "auto",
    "step_milestones": None,
    "hour_milestones": None,
    "max_train_hours": None,
    "eval_every_minutes": None,
    "num_workers": 2,
    "seed": 0,
}

DATASET_DEFAULTS: dict = {
    "frame_shape": [256, 256, 3],
    "max_frames_per_video": None,
    "frame_stride": 1,
    "augmentation_params": {
        "flip_param": {"horizontal_flip": True, "time_flip": True},
        "jitter_param": {"brightness": 0.1, "contrast": 0.1, "saturation": 0.1, "hue": 0.1},
    },
}


def resolve_run_config(model_config: dict, user_config: dict | None = None, **train_overrides) -> dict:
    """The run's full config: model YAML ← trainer defaults ← user YAML ← command-line overrides."""
    cfg = deep_merge({"train_params": TRAIN_DEFAULTS, "dataset_params": DATASET_DEFAULTS}, model_config)
    cfg = deep_merge(cfg, user_config)
    cfg["train_params"] = deep_merge(cfg["train_params"], {k: v for k, v in train_overrides.items() if v is not None})
    return cfg
