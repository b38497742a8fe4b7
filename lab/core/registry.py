"""Animator registry and factory (the shape of timm's ``register_model`` / ``create_model``).

>>> from lab import create_animator, list_animators
>>> "static" in list_animators()
True
>>> model = create_animator("static")
>>> model.name
'static'

Adding a model is a one-file change: decorate its entry point with :func:`register_animator` and list
its module in ``_BUILTIN_MODULES``; the app's dropdown, the CLI and the parametrised tests read
:func:`list_animators`.
"""

from __future__ import annotations

import fnmatch
import importlib
import os
import warnings
from collections.abc import Callable, Mapping
from pathlib import Path

from lab.core.animator import Animator

__all__ = [
    "register_animator",
    "create_animator",
    "list_animators",
    "is_animator",
    "animator_entrypoint",
    "resolve_checkpoint",
    "load_weights",
    "weights_dirs",
    "RANDOM_INIT_SEED",
]

#: the seed :func:`lab.core.animate.load_animator` builds every model from, so that a model without weights is the
#: same random network in every run (its rows are labelled ``random-init seed 0``)
RANDOM_INIT_SEED = 0

# Modules whose import registers the built-in animators (imported on first registry query).
_BUILTIN_MODULES = (
    "lab.models.static",
    "lab.models.ultralight",
    "baselines.fomm",
    "baselines.monkey_net",
    "baselines.x2face",
)

_entrypoints: dict[str, Callable[..., Animator]] = {}
_entrypoint_module: dict[str, str] = {}
_builtins_loaded = False


def register_animator(fn: Callable[..., Animator] | None = None, *, name: str | None = None):
    """Register an animator entry point (a class or a function returning an :class:`Animator`).

    Usable as ``@register_animator`` or ``@register_animator(name="fomm")``. Re-registering a name warns
    and replaces the previous entry (as timm does).
    """

    def _register(f: Callable[..., Animator]):
        if name:
            key = name
        elif isinstance(f, type):
            key = getattr(f, "name", f.__name__)
        else:
            key = f.__name__
        if key in _entrypoints:
            warnings.warn(f"Overwriting animator '{key}' in registry with {f.__module__}.{f.__name__}", stacklevel=2)
        _entrypoints[key] = f
        _entrypoint_module[key] = f.__module__
        return f

    if fn is not None:
        return _register(fn)
    return _register


def _load_builtins() -> None:
    global _builtins_loaded
    if _builtins_loaded:
        return
    _builtins_loaded = True
    for mod in _BUILTIN_MODULES:
        importlib.import_module(mod)


def list_animators(filter: str | list[str] = "", exclude_filters: str | list[str] = "") -> list[str]:
    """Sorted names of registered animators, optionally filtered with shell-style wildcards."""
    _load_builtins()
    names = sorted(_entrypoints)
    if filter:
        pats = [filter] if isinstance(filter, str) else filter
        names = [n for n in names if any(fnmatch.fnmatch(n, p) for p in pats)]
    if exclude_filters:
        pats = [exclude_filters] if isinstance(exclude_filters, str) else exclude_filters
        names = [n for n in names if not any(fnmatch.fnmatch(n, p) for p in pats)]
    return names


def is_animator(name: str) -> bool:
    _load_builtins()
    return name in _entrypoints


def animator_entrypoint(name: str) -> Callable[..., Animator]:
    _load_builtins()
    try:
        return _entrypoints[name]
    except KeyError:
        raise ValueError(f"unknown animator '{name}'; registered: {', '.join(sorted(_entrypoints))}") from None


def weights_dirs() -> list[Path]:
    """Folders searched for checkpoint files named by an animator, in order: ``$FACELAB_WEIGHTS`` (default
    ``~/.cache/facelab/weights``), then ``$TORCH_HOME/hub/checkpoints`` — the one search order of every weight
    file, :func:`lab.core.weights.weights_dirs`."""
    from lab.core.weights import weights_dirs as _dirs

    return _dirs()


#: set to 0/off to ignore the weights shipped in the repository (the test suite does: its numbers must not move
#: when a trained file is replaced; tests of the shipped file turn it back on)
SHIPPED_ENV = "FACELAB_SHIPPED_WEIGHTS"


def resolve_checkpoint(model: Animator, checkpoint: str | os.PathLike) -> Path:
    """Turn a checkpoint argument into an existing path.

    ``"default"`` means the animator's own file (``info.checkpoint_file``): a path relative to the
    package (shipped weights) or a bare file name looked up in :func:`weights_dirs`.
    """
    if str(checkpoint) != "default":
        p = Path(checkpoint).expanduser()
        if not p.is_file():
            raise FileNotFoundError(f"checkpoint not found: {p}")
        return p
    fname = model.info.checkpoint_file
    if not fname:
        raise FileNotFoundError(f"animator '{model.name}' has no default checkpoint")
    shipped = Path(__file__).resolve().parents[2] / fname  # repository root
    if shipped.is_file() and os.environ.get(SHIPPED_ENV, "").lower() not in ("0", "off", "no", "false"):
        return shipped
    for d in weights_dirs():
        if (d / Path(fname).name).is_file():
            return d / Path(fname).name
    where = " or ".join(str(d) for d in weights_dirs())
    raise FileNotFoundError(
        f"weights for '{model.name}' not found: put {Path(fname).name} in {where} (set FACELAB_WEIGHTS to choose)"
    )


def create_animator(name: str, checkpoint: str | os.PathLike | None = None, seed: int | None = None,
                    config: Mapping | str | os.PathLike | None = None, **overrides) -> Animator:
    """Build a registered animator, optionally loading weights, in eval mode on the CPU: the one factory (the app,
    the CLI, the jobs and the trainer all build models here).

    Args:
        name: a name from :func:`list_animators`.
        config: the model's whole config (a mapping or a YAML path; e.g. a training run's, which may hold only
            the sections it changes); None for the model's own default config. Every entry point takes it.
        checkpoint: path of a checkpoint (this lab's format or the model's official one), ``"default"``
            for the animator's own weights file, or None for fresh initialisation.
        seed: build the networks from this seed (the same initial weights on every call) in a forked CPU RNG,
            so the caller's global torch RNG state is left as it was; None draws from the global RNG (as
            ``nn.Module`` constructors do).
        **overrides: keyword arguments passed to the entry point (config overrides).

    Returns:
        The animator; ``model.checkpoint_meta`` holds the checkpoint's metadata (empty when none).

    >>> create_animator("static").decoder_params
    0
    """
    entry = animator_entrypoint(name)
    if config is not None:
        overrides = {"config": config, **overrides}
    if seed is None:
        model = entry(**overrides)
    else:
        import torch

        with torch.random.fork_rng(devices=[]):  # restores the CPU RNG on exit; built on the CPU, CUDA untouched
            torch.manual_seed(int(seed))
            model = entry(**overrides)
    model.checkpoint_meta = {}
    if checkpoint is not None:
        load_weights(model, checkpoint)
    return model.eval()


def load_weights(model: Animator, checkpoint: str | os.PathLike) -> dict:
    """Load ``checkpoint`` (a path or ``"default"``, see :func:`resolve_checkpoint`) into ``model``.

    Returns:
        The checkpoint's metadata, also stored as ``model.checkpoint_meta`` (with its ``path``).
    """
    path = resolve_checkpoint(model, checkpoint)
    model.checkpoint_meta = dict(model.load_checkpoint(str(path)) or {})
    model.checkpoint_meta.setdefault("path", str(path))
    return model.checkpoint_meta
