"""Loading and saving checkpoints in one place, safely (timm's ``_helpers.py`` idea).

* Every ``torch.load`` here runs with ``weights_only=True`` and ``map_location="cpu"``; a checkpoint that
  needs arbitrary pickled objects (a callable, a class instance) is refused with a message saying why.
* Every refusal is a :class:`CheckpointError` whose ``reason`` says in one line of plain text what the file
  is: not a checkpoint (a text file, an empty file, not a zip or pickle), a checkpoint that holds code
  (the pickled globals weights_only refused, read without running them), or one with the wrong keys.
* Our own shipped weights are ``.safetensors`` (fp16) with JSON metadata.
* ``module.`` prefixes (DataParallel/DDP) are stripped once, in :func:`clean_state_dict`.
* Strict key checks list the missing/unexpected keys and shape mismatches.
"""

from __future__ import annotations

import hashlib
import json
import os
import pickle
import re
import zipfile
from collections.abc import Mapping
from pathlib import Path

import torch
from torch import Tensor, nn

__all__ = [
    "CheckpointError",
    "safe_load",
    "clean_state_dict",
    "load_state_dict_strict",
    "load_animator_weights",
    "save_inference_weights",
    "file_sha256",
    "describe_non_checkpoint",
    "wrong_keys_reason",
    "first_line",
]


class CheckpointError(RuntimeError):
    """A checkpoint file that cannot be used, with a message that says what to do.

    Attributes:
        reason: one line of plain text saying what is wrong with the file, without its path:
            ``not a checkpoint (a text file starting 'hello')``,
            ``holds code (pickled objects/classes: posix.system; refused by weights_only)``,
            ``wrong keys for fomm kp_detector (missing: a, b; unexpected: c)``, ... (the message's first line
            when the raiser gave none).
    """

    def __init__(self, message: str, reason: str | None = None) -> None:
        super().__init__(message)
        self.reason = reason or first_line(message)


# Plain-data globals that old checkpoints pickle (numpy arrays/scalars in optimizer states or metadata).
# They rebuild data, never run user code, so they are safe to allow.
def _numpy_safe_globals() -> list:
    import numpy as np

    out: list = [np.ndarray, np.dtype]
    try:  # numpy >= 2
        from numpy._core.multiarray import _reconstruct, scalar
    except ImportError:  # pragma: no cover - numpy 1.x
        from numpy.core.multiarray import _reconstruct, scalar  # type: ignore[no-redef]
    out += [_reconstruct, scalar]
    out += [type(np.dtype(t)) for t in ("float32", "float64", "int64", "int32", "bool", "uint8")]
    return out


_hash_cache: dict[tuple[str, int, int], str] = {}


def file_sha256(path: str | os.PathLike) -> str:
    """Hex sha256 of a file (provenance of weights), cached per (absolute path, size, mtime)."""
    p = Path(path).absolute()
    st = p.stat()
    key = (str(p), st.st_size, st.st_mtime_ns)
    if key not in _hash_cache:
        with open(p, "rb") as f:
            _hash_cache[key] = hashlib.file_digest(f, "sha256").hexdigest()
    return _hash_cache[key]


def safe_load(path: str | os.PathLike) -> dict:
    """Load a ``.pth``/``.pt``/``.pth.tar``/``.safetensors`` file without executing pickled code.

    Returns:
        For torch files, the unpickled object (normally a dict). For safetensors, a dict of tensors with
        the file's metadata under the key ``"__metadata__"`` (a dict of strings).

    Raises:
        CheckpointError: missing, unreadable, or needing non-allow-listed pickle globals.
    """
    p = Path(path)
    if not p.is_file():
        raise CheckpointError(f"checkpoint not found: {p}")
    if p.suffix == ".safetensors":
        from safetensors import safe_open

        try:
            with safe_open(str(p), framework="pt", device="cpu") as f:
                out: dict = {k: f.get_tensor(k) for k in f.keys()}
                out["__metadata__"] = dict(f.metadata() or {})
        except Exception as e:  # safetensors raises its own error types
            what = _describe_text(_head(p))
            if what is not None:
                raise CheckpointError(f"cannot read safetensors file {p}: not a checkpoint: {what}",
                                      reason=f"not a checkpoint ({what})") from e
            raise CheckpointError(f"cannot read safetensors file {p}: {first_line(e)}",
                                  reason=f"unreadable (damaged safetensors file: {first_line(e)})") from e
        return out
    try:
        with torch.serialization.safe_globals(_numpy_safe_globals()):
            return torch.load(str(p), map_location="cpu", weights_only=True)
    except Exception as e:  # noqa: BLE001 - torch's unpickler raises KeyError, ValueError, ... on non-torch bytes
        raise _load_error(p, e) from e


_ANSI = re.compile(r"\x1b\[[0-9;]*[A-Za-z]")
# Globals every torch checkpoint pickles (tensor rebuilding, storages, plain containers): not "code".
_DATA_GLOBAL = re.compile(
    r"^(torch\._utils\._rebuild_\w+|torch\.\w*Storage|torch\.storage\.\w+|torch\.(float|bfloat|half|double|"
    r"int|long|short|uint|bool|complex|cfloat|cdouble)\w*|torch\.(Size|device|dtype)|collections\.(OrderedDict|"
    r"defaultdict)|torch\._tensor\._rebuild_\w+|_codecs\.encode|builtins\.(set|frozenset|bytearray|slice|complex)|"
    r"numpy\..*(_reconstruct|scalar|ndarray|dtype|Float\w*DType|Int\w*DType|BoolDType|UInt\w*DType))$"
)


def _head(p: Path, n: int = 512) -> bytes:
    with open(p, "rb") as f:
        return f.read(n)


def _is_zip_or_pickle(head: bytes) -> bool:
    """torch's zip format (``PK``) or a binary pickle (protocol 2+: legacy torch files start that way)."""
    return head.startswith(b"PK\x03\x04") or (len(head) >= 2 and head[0] == 0x80 and 2 <= head[1] <= 5)


def describe_non_checkpoint(path: str | os.PathLike) -> str | None:
    """What a file is when it cannot be a torch checkpoint (neither a zip nor a binary pickle), else None:
    ``"a text file starting 'hello'"``, ``"an empty file"``, ``"a Git LFS pointer, ..."``, ``"not a zip or pickle
    file ..."``."""
    head = _head(Path(path))
    if _is_zip_or_pickle(head):
        return None
    return _describe_text(head) or "binary data that is neither a zip nor a pickle, starting " + head[:8].hex(" ")


def _describe_text(head: bytes) -> str | None:
    """``head`` described when it is empty or text (a note, an HTML error page, a Git LFS pointer), else None."""
    if not head:
        return "an empty file"
    if head.startswith(b"version https://git-lfs"):
        return "a Git LFS pointer, not the weights: fetch them with git lfs pull"
    try:
        text = head.decode("utf-8")
    except UnicodeDecodeError as e:  # a multi-byte character cut at the end of the head is still text
        text = head[: e.start].decode("utf-8") if e.start > len(head) - 4 else None
    if text is None or not all(c.isprintable() or c in "\n\r\t" for c in text):
        return None
    first = next((ln.strip() for ln in text.splitlines() if ln.strip()), "")
    first = first if len(first) <= 40 else first[:37] + "..."
    if text.lstrip().lower().startswith(("<!doctype html", "<html")):
        return f"an HTML page starting {first!r}"
    return f"a text file starting {first!r}" if first else "a text file of blank lines"


def _pickle_globals(path: Path, limit: int = 6) -> list[str]:
    """Globals (``module.name``) a checkpoint's pickles import, read with :mod:`pickletools` (nothing runs):
    ``data.pkl`` of torch's zip format, or the pickles at the start of a legacy/raw pickle file."""
    import io
    import pickletools

    blobs: list[bytes] = []
    try:
        if zipfile.is_zipfile(path):
            with zipfile.ZipFile(path) as z:
                blobs = [z.read(n) for n in z.namelist() if n.endswith(".pkl")][:4]
        else:
            blobs = [path.read_bytes()[: 64 << 20]]
    except (OSError, zipfile.BadZipFile, RuntimeError):
        return []
    found: list[str] = []
    for blob in blobs:
        f = io.BytesIO(blob)
        for _ in range(8):  # a legacy torch file is several pickles in a row, then raw storage bytes
            strings: list[str] = []
            memo: dict[int, str] = {}
            try:
                for op, arg, _pos in pickletools.genops(f):
                    name = op.name
                    if name == "GLOBAL" and isinstance(arg, str):
                        found.append(arg.replace(" ", "."))
                    elif name == "STACK_GLOBAL" and len(strings) >= 2:
                        found.append(f"{strings[-2]}.{strings[-1]}")
                    elif isinstance(arg, str) and ("UNICODE" in name or name.endswith("STRING")):
                        strings.append(str(arg))
                    elif name == "MEMOIZE" and strings:
                        memo[len(memo)] = strings[-1]
                    elif name in ("PUT", "BINPUT", "LONG_BINPUT") and strings:
                        memo[int(arg)] = strings[-1]
                    elif name in ("GET", "BINGET", "LONG_BINGET") and int(arg) in memo:
                        strings.append(memo[int(arg)])
            except Exception:  # noqa: BLE001 - the bytes after the pickles, or a damaged file
                break
            if f.tell() >= len(blob):
                break
    return [g for g in dict.fromkeys(found) if not _DATA_GLOBAL.match(g)][:limit]


def _load_error(p: Path, e: Exception) -> CheckpointError:
    """The :class:`CheckpointError` for a file ``torch.load(weights_only=True)`` could not read."""
    what = describe_non_checkpoint(p)
    if what is not None:
        return CheckpointError(f"cannot read checkpoint {p}: not a checkpoint: {what}",
                               reason=f"not a checkpoint ({what})")
    if isinstance(e, pickle.UnpicklingError):
        named = re.findall(r"GLOBAL ([\w.]+)", str(e))
        code = list(dict.fromkeys(named)) or _pickle_globals(p)
        if code:
            shown = ", ".join(code[:4]) + (", ..." if len(code) > 4 else "")
            return CheckpointError(
                f"refused to load {p}: it holds code: pickled objects beyond tensors and plain data ({shown}). "
                "facelab loads checkpoints with weights_only=True only, because a pickle can run arbitrary code. "
                "If you trust the file, re-save just its state_dicts from a trusted Python session.",
                reason=f"holds code (pickled objects/classes: {shown}; refused by weights_only)",
            )
        return CheckpointError(
            f"refused to load {p}: a pickle that weights_only=True cannot read ({first_line(e)}); it is not a "
            "torch.save file of tensors and plain data",
            reason=f"not a torch checkpoint (a pickle weights_only cannot read: {first_line(e)})",
        )
    if "magic number" in str(e) and not zipfile.is_zipfile(p):
        return CheckpointError(f"cannot read checkpoint {p}: a pickle that torch.save did not write ({first_line(e)})",
                               reason="not a checkpoint (a plain pickle, not a torch.save file)")
    return CheckpointError(f"cannot read checkpoint {p} (truncated or not a torch file?): {first_line(e)}",
                           reason=f"unreadable (truncated or damaged torch file: {first_line(e)})")


def first_line(e: BaseException | str) -> str:
    """The first line of an error message, without terminal colour codes (torch puts some in its own)."""
    s = _ANSI.sub("", str(e)).strip().splitlines()
    if s:
        return s[0].strip()
    return type(e).__name__ if isinstance(e, BaseException) else ""


def clean_state_dict(state_dict: Mapping[str, Tensor]) -> dict[str, Tensor]:
    """Strip ``module.`` prefixes left by DataParallel/DDP."""
    out = {}
    for k, v in state_dict.items():
        while k.startswith("module."):
            k = k[len("module.") :]
        out[k] = v
    return out


def _keep_derived_buffers(module: nn.Module, own: Mapping[str, Tensor], state_dict: Mapping[str, Tensor]) -> dict:
    """Replace checkpoint buffers that a module derives from its config (``derived_buffers``, e.g. an
    anti-aliasing kernel of a resolution-dependent scale) by the module's own when their shapes differ:
    weights trained at 128² load into the 256² config of the same network."""
    out = dict(state_dict)
    for prefix, m in module.named_modules():
        for name in getattr(m, "derived_buffers", ()):
            k = f"{prefix}.{name}" if prefix else name
            if k in out and k in own and tuple(out[k].shape) != tuple(own[k].shape):
                out[k] = own[k]
    return out


def load_state_dict_strict(module: nn.Module, state_dict: Mapping[str, Tensor], what: str = "model") -> None:
    """``module.load_state_dict(strict=True)`` with a readable error listing every mismatch.

    ``num_batches_tracked`` keys absent from old checkpoints (saved before torch 0.4.1) are tolerated:
    BatchNorm fills them in, as the official code's strict loading does.
    """
    state_dict = clean_state_dict(state_dict)
    own = module.state_dict()
    bad = [k for k, v in state_dict.items() if k in own and not isinstance(v, Tensor)]
    if bad:
        raise CheckpointError(
            f"{what}: checkpoint entries that are not tensors: "
            + ", ".join(f"{k} ({type(state_dict[k]).__name__})" for k in bad[:8]),
            reason=f"wrong keys for {what.split(' (')[0]} (not tensors: {', '.join(map(str, bad[:3]))}"
            + (f", ... ({len(bad)} in all)" if len(bad) > 3 else "") + ")",
        )
    state_dict = _keep_derived_buffers(module, own, state_dict)
    missing = [k for k in own if k not in state_dict and not k.endswith("num_batches_tracked")]
    unexpected = [k for k in state_dict if k not in own]
    mismatched = [
        f"{k}: checkpoint {tuple(state_dict[k].shape)} vs model {tuple(own[k].shape)}"
        for k in own
        if k in state_dict and tuple(state_dict[k].shape) != tuple(own[k].shape)
    ]
    if missing or unexpected or mismatched:
        parts, brief = [], []
        for label, keys in (("missing keys", missing), ("unexpected keys", unexpected), ("shape mismatch", mismatched)):
            if keys:
                shown = ", ".join(keys[:8]) + (f", ... ({len(keys)} in all)" if len(keys) > 8 else "")
                parts.append(f"{label}: {shown}")
                brief.append(f"{label.replace(' keys', '')}: " + ", ".join(k.split(":")[0] for k in keys[:3])
                             + (f", ... ({len(keys)} in all)" if len(keys) > 3 else ""))
        raise CheckpointError(
            f"{what}: checkpoint does not match the model ({'; '.join(parts)}). "
            "Check that the config matches the one the checkpoint was trained with.",
            reason=f"wrong keys for {what.split(' (')[0]} ({'; '.join(brief)})",
        )
    full = dict(state_dict)
    for k, v in own.items():  # fill tolerated num_batches_tracked
        full.setdefault(k, v)
    module.load_state_dict(full, strict=True)


def wrong_keys_reason(ckpt: object, expected: str) -> str:
    """``wrong keys (holds a, b, c, ...; expected <expected>)``: a :attr:`CheckpointError.reason` for a file
    that loads but has another layout."""
    if isinstance(ckpt, Mapping):
        keys = [str(k) for k in ckpt if k != "__metadata__"]
        held = ", ".join(keys[:4]) + (f", ... ({len(keys)} keys)" if len(keys) > 4 else "") if keys else "no keys"
    else:
        held = f"a {type(ckpt).__name__}, not a dict"
    return f"wrong keys (holds {held}; expected {expected})"


def load_animator_weights(model: nn.Module, path: str | os.PathLike) -> dict:
    """Load this lab's weights into ``model``; returns the checkpoint metadata.

    Accepts an inference file (``.safetensors``, written by :func:`save_inference_weights`) or a training
    checkpoint (a dict with ``"model"`` = state_dict, as written by the trainer).
    """
    ckpt = safe_load(path)
    meta: dict = {}
    if "__metadata__" in ckpt:
        raw = ckpt.pop("__metadata__")
        meta = json.loads(raw.get("facelab", "{}")) if raw else {}
        state = ckpt
    elif isinstance(ckpt, dict) and "model" in ckpt and isinstance(ckpt["model"], Mapping):
        state = ckpt["model"]
        meta = {k: v for k, v in ckpt.items() if k in ("step", "config", "meta", "train_seconds", "cpu_seconds")}
    else:
        raise CheckpointError(
            f"{path}: not a facelab checkpoint (expected a .safetensors file or a dict with a 'model' state_dict)",
            reason=wrong_keys_reason(ckpt, "a 'model' state_dict"),
        )
    own = model.state_dict()
    state = {k: v.to(own[k].dtype) if k in own and isinstance(v, Tensor) and v.is_floating_point() else v
             for k, v in state.items()}
    # training-only parts (a GAN discriminator) that an inference file leaves out keep the model's own values
    for prefix in getattr(model, "training_only_prefixes", ()):
        if not any(k.startswith(prefix) for k in state):
            state.update({k: v for k, v in own.items() if k.startswith(prefix)})
    load_state_dict_strict(model, state, what=f"{getattr(model, 'name', 'model')} ({path})")
    return meta


def save_inference_weights(
    model: nn.Module, path: str | os.PathLike, meta: dict | None = None, dtype: torch.dtype = torch.float16
) -> Path:
    """Write ``model``'s state_dict as safetensors (floating tensors cast to ``dtype``) with JSON metadata."""
    from safetensors.torch import save_file

    skip = tuple(getattr(model, "training_only_prefixes", ()))
    state = {
        k: (v.detach().to(dtype) if v.is_floating_point() else v.detach()).contiguous().cpu()
        for k, v in model.state_dict().items()
        if not (skip and k.startswith(skip))  # training-only parts (a discriminator) stay out of inference files
    }
    p = Path(path)
    p.parent.mkdir(parents=True, exist_ok=True)
    save_file(state, str(p), metadata={"facelab": json.dumps(meta or {}, default=str)})
    return p
