"""Config helpers shared by every model and the trainer: YAML read with ``yaml.safe_load``, deep merge, and the
one model-config loader (:func:`load_model_config`) every animator's ``load_config`` is a call of."""

from __future__ import annotations

import copy
import os
from collections.abc import Mapping
from pathlib import Path

import yaml

__all__ = ["deep_merge", "load_yaml", "load_model_config"]


def deep_merge(base: Mapping, override: Mapping | None) -> dict:
    """Recursively merge ``override`` into a copy of ``base`` (mappings merge, everything else replaces)."""
    out = copy.deepcopy(dict(base))
    for k, v in (override or {}).items():
        if isinstance(v, Mapping) and isinstance(out.get(k), Mapping):
            out[k] = deep_merge(out[k], v)
        else:
            out[k] = copy.deepcopy(v)
    return out


def load_yaml(path: str | os.PathLike) -> dict:
    """``yaml.safe_load`` a config file, with a clear error for a missing or malformed file."""
    p = Path(path)
    if not p.is_file():
        raise FileNotFoundError(f"config file not found: {p}")
    try:
        data = yaml.safe_load(p.read_text())
    except yaml.YAMLError as e:
        raise ValueError(f"config file {p} is not valid YAML: {e}") from e
    if not isinstance(data, dict):
        raise ValueError(f"config file {p} must hold a mapping at the top level")
    return data


def load_model_config(
    config: str | os.PathLike | Mapping | None,
    *,
    default: str | os.PathLike,
    what: str,
    packaged_dir: str | os.PathLike | None = None,
    required_sections: tuple[str, ...] = (),
    override_sections: tuple[str, ...] = (),
    overrides: Mapping | None = None,
    merge_with_default: bool = False,
) -> dict:
    """Resolve a model config in the official YAML layout (``model_params`` with one section per network).

    Args:
        config: a YAML path, the name of a packaged config (a file of ``packaged_dir``, with or without
            ``.yaml``), a mapping holding the config, or None for ``default``.
        default: the config used for None (a path, or a packaged name).
        what: the model's name in messages (``"FOMM"``).
        packaged_dir: where packaged configs live (None: only paths and mappings).
        required_sections: ``model_params`` sections that must be mappings.
        override_sections: the ``model_params`` sections ``overrides`` may name.
        overrides: ``{section: dict}`` deep-merged into ``model_params``.
        merge_with_default: ``config`` holds only what it changes: it is deep-merged over ``default``.

    Returns:
        A new dict (neither the input nor the packaged file is modified).

    Raises:
        FileNotFoundError: neither a file nor a packaged name (the packaged names are listed).
        ValueError: not a mapping, or a required section missing.
        TypeError: an override that is not one of ``override_sections``, or not a dict.
    """
    def read(c: str | os.PathLike | Mapping) -> tuple[dict, str]:
        if isinstance(c, Mapping):
            return copy.deepcopy(dict(c)), "<dict>"
        p = Path(c).expanduser()
        if not p.is_file() and packaged_dir is not None and p.parent == Path("."):
            packaged = Path(packaged_dir) / (p.name if p.suffix == ".yaml" else p.name + ".yaml")
            p = packaged if packaged.is_file() else p
        if not p.is_file():
            names = sorted(q.stem for q in Path(packaged_dir).glob("*.yaml")) if packaged_dir is not None else []
            listed = f" (packaged: {', '.join(names)})" if names else ""
            raise FileNotFoundError(f"{what} config not found: {c}{listed}")
        return load_yaml(p), str(p)

    cfg, origin = read(default if config is None else config)
    if merge_with_default and config is not None:
        cfg = deep_merge(read(default)[0], cfg)
    mp = cfg.get("model_params")
    missing = [s for s in required_sections if not isinstance((mp or {}).get(s), Mapping)]
    if not isinstance(mp, Mapping) or missing:
        lacks = ", ".join(missing) if isinstance(mp, Mapping) else "model_params"
        raise ValueError(f"{what} config {origin}: model_params lacks {lacks} (official YAML layout expected)")
    for key, value in (overrides or {}).items():
        if key not in override_sections:
            raise TypeError(f"unknown {what} override '{key}': use one of {', '.join(override_sections)} (a dict each)")
        if not isinstance(value, Mapping):
            raise TypeError(f"{what} override '{key}' must be a dict merged into model_params.{key}")
        cfg["model_params"] = deep_merge(cfg["model_params"], {key: value})
    return cfg
