"""Where the protocol networks' weight files live, and the error when one is missing.

No weights are ever downloaded: every loader here checks that its file exists *before* a library gets a
chance to fetch it, and a missing file raises :class:`FileNotFoundError` naming the file and the folder to
put it in (the CLI prints that one line).

One search order for every weight file facelab opens itself (animators' checkpoints through
:func:`lab.core.registry.resolve_checkpoint`, LPIPS' AlexNet, the OpenFace port), given by :func:`weights_dirs`:

1. ``$FACELAB_WEIGHTS`` (default ``~/.cache/facelab/weights``): facelab's own folder;
2. ``$TORCH_HOME/hub/checkpoints`` (as :func:`torch.hub.get_dir` resolves it: ``$TORCH_HOME``, else
   ``$XDG_CACHE_HOME/torch``, else ``~/.cache/torch``): where torchvision and face-alignment look.

The one exception: face-alignment's files (``2DFAN4-11f355bf06.pth.tar``, ``s3fd-619a316812.pth``) must be in
the hub folder, because face-alignment itself opens the FAN file from there.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path

__all__ = ["hub_checkpoints_dir", "facelab_weights_dir", "weights_dirs", "find_weight_file"]


def hub_checkpoints_dir() -> Path:
    """``$TORCH_HOME/hub/checkpoints``, as :func:`torch.hub.get_dir` resolves it now (reads the env each call)."""
    import torch.hub

    return Path(torch.hub.get_dir()) / "checkpoints"


def facelab_weights_dir() -> Path:
    """``$FACELAB_WEIGHTS`` (default ``~/.cache/facelab/weights``)."""
    return Path(os.environ.get("FACELAB_WEIGHTS") or (Path.home() / ".cache" / "facelab" / "weights"))


def weights_dirs() -> list[Path]:
    """The folders searched for weight files, in order: ``$FACELAB_WEIGHTS``, then ``$TORCH_HOME/hub/checkpoints``
    (read from the environment at each call)."""
    return [facelab_weights_dir(), hub_checkpoints_dir()]


def find_weight_file(
    file_name: str,
    what: str,
    dirs: Sequence[Path] | None = None,
    explicit: str | os.PathLike | None = None,
    alternative: str = "",
) -> Path:
    """Return the path of a weight file, or raise naming the file and the folder(s) to put it in.

    Args:
        file_name: the file's expected name (the name the upstream code downloads it under).
        what: what the file is, for the message (``"face-alignment weights"``).
        dirs: folders to search, in order (default: :func:`weights_dirs`).
        explicit: a path given by the caller; when set, it is the only place looked at.
        alternative: what the user can do instead, appended to the message (``"or use --backend dlib"``).

    Raises:
        FileNotFoundError: ``"<what> <file_name> not found in <folder>: put it there (TORCH_HOME chooses the
            folder) <alternative>"``.
    """
    tail = f" {alternative}" if alternative else ""
    if explicit is not None:
        p = Path(explicit).expanduser()
        if p.is_file():
            return p
        raise FileNotFoundError(f"{what} {p.name} not found at {p}: check the path{tail}")
    if dirs is None:
        dirs = weights_dirs()
    for d in dirs:
        p = Path(d) / file_name
        if p.is_file():
            return p
    where = " or ".join(str(d) for d in dirs)
    hint = "TORCH_HOME chooses the folder" if len(dirs) == 1 else "TORCH_HOME and FACELAB_WEIGHTS choose the folders"
    raise FileNotFoundError(f"{what} {file_name} not found in {where}: put it there ({hint}){tail}")
