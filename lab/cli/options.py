"""The options every job command shares, as one argparse parent, and their turning into loaded animators.

``facelab evaluate``, ``batch``, ``rd`` and ``animate`` take ``--models --data --split --out --max-frames
--checkpoint`` with the same meaning; each passes its own defaults and help where they differ.
"""

from __future__ import annotations

import argparse

__all__ = ["job_options", "parse_checkpoints", "load_animators", "split_list"]

DATA_HELP = "the shared data folder or a VoxCeleb-layout root (default: $FACELAB_DATA)"
CHECKPOINT_HELP = "weights of a model (repeatable); default: the model's own file when found"


def job_options(models: str, *, out_help: str, max_frames_help: str, data_help: str = DATA_HELP,
                split_help: str | None = None, max_frames: int | None = None) -> argparse.ArgumentParser:
    """A parent parser (``parents=[...]``) with the shared options.

    Args:
        models: the default of ``--models`` (comma-separated animator names).
        out_help, max_frames_help, data_help, split_help: the command's help texts.
        max_frames: the default of ``--max-frames`` (None: all frames).
    """
    p = argparse.ArgumentParser(add_help=False)
    p.add_argument("--models", default=models, help="comma-separated animator names")
    p.add_argument("--data", help=data_help)
    p.add_argument("--split", default="test", help=split_help)
    p.add_argument("--out", required=True, help=out_help)
    p.add_argument("--max-frames", type=int, default=max_frames, help=max_frames_help)
    p.add_argument("--checkpoint", action="append", default=[], metavar="MODEL=PATH", help=CHECKPOINT_HELP)
    return p


def split_list(text: str) -> list[str]:
    """``"a, b,,c"`` → ``["a", "b", "c"]`` (the comma-separated options)."""
    return [t.strip() for t in text.split(",") if t.strip()]


def parse_checkpoints(items: list[str]) -> dict[str, str]:
    """``["MODEL=PATH", ...]`` (the repeatable ``--checkpoint`` option) → ``{model: path}``."""
    ckpts = {}
    for item in items:
        name, sep, path = item.partition("=")
        if not sep or not name or not path:
            raise ValueError(f"--checkpoint takes MODEL=PATH, got '{item}'")
        ckpts[name] = path
    return ckpts


def load_animators(models: str, checkpoints: list[str]) -> list:
    """The animators of ``--models`` (comma-separated names) with the weights of the repeatable ``--checkpoint
    MODEL=PATH`` (a model without one: its own file when found, else randomly initialised and labelled so),
    through the one factory (:func:`lab.core.animate.load_animator`)."""
    from lab.core.animate import load_animator

    ckpts = parse_checkpoints(checkpoints)
    return [load_animator(m, ckpts.get(m, "default")) for m in split_list(models)]
