"""The export cache of :mod:`lab.deploy.runtimes`: an animator's ONNX graphs, exported once per weights.

:func:`exported_graphs` exports the ``encoder``, ``source`` (absent when ``encode_source`` only passes the frame
through) and ``render`` graphs (batch 1, :func:`lab.deploy.export.export_onnx`) into a folder of
:func:`deploy_dir` keyed by the model, :func:`weights_hash`, the input size and :data:`EXPORT_VERSION`, under a
lock file (two processes exporting the same weights wait for each other), and records what each export measured
in ``export.json``. :mod:`lab.deploy.quantize` writes its int8 graphs next to them with the same lock and move helpers.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
from pathlib import Path

import torch

from lab.core.animator import Animator

__all__ = ["EXPORT_VERSION", "deploy_dir", "weights_hash", "exported_graphs"]

#: bump when the exported graphs change (rewrites, opset, graph layout): old cache folders are then ignored
EXPORT_VERSION = 2  # 2: the encoder's soft-argmax as MatMul (lab.deploy.rewrites)
_GRAPH_PARTS = ("encoder", "source", "render")


def deploy_dir() -> Path:
    """Where exports are cached: ``$FACELAB_DEPLOY_CACHE`` or ``~/.cache/facelab/deploy``."""
    env = os.environ.get("FACELAB_DEPLOY_CACHE")
    return Path(env).expanduser() if env else Path.home() / ".cache" / "facelab" / "deploy"


def weights_hash(animator: Animator) -> str:
    """SHA-256 (16 hex digits) of the animator's parameters and buffers (names, dtypes, shapes, values), without
    the training-only ones (``training_only_prefixes``: a discriminator is in no exported graph)."""
    skip = tuple(getattr(animator, "training_only_prefixes", ()))
    h = hashlib.sha256()
    for k, v in sorted(animator.state_dict().items()):
        if skip and k.startswith(skip):
            continue
        t = v.detach().cpu().contiguous().reshape(-1)
        h.update(f"{k}:{t.dtype}:{tuple(v.shape)};".encode())
        h.update(t.view(torch.uint8).numpy().tobytes() if t.numel() else b"")
    return h.hexdigest()[:16]


def _export_folder(animator: Animator, cache_dir: str | os.PathLike | None) -> Path:
    h, w = animator.input_size
    root = Path(cache_dir) if cache_dir is not None else deploy_dir()
    return root / f"{animator.name}-{weights_hash(animator)}-{h}x{w}-v{EXPORT_VERSION}"


@contextlib.contextmanager
def _file_lock(path: Path):
    """An exclusive lock file (two processes exporting the same weights wait for each other)."""
    import fcntl

    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "w") as f:
        fcntl.flock(f, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(f, fcntl.LOCK_UN)


def _trivial_source(animator: Animator) -> bool:
    """True when ``encode_source`` only passes the frame through (``{"source": frame}``: FOMM, X2Face...)."""
    h, w = animator.input_size
    x = torch.zeros(1, 3, h, w)
    with torch.no_grad():
        state = animator.encode_source(x)
    return set(state) == {"source"} and state["source"] is x


def exported_graphs(animator: Animator, cache_dir: str | os.PathLike | None = None) -> dict[str, Path]:
    """``{part: .onnx path}`` of the animator's ``encoder``, ``source`` (absent when trivial) and ``render``
    graphs, exported once (batch 1) into the cache folder and reused while the weights are the same."""
    from lab.deploy.export import export_onnx

    folder = _export_folder(animator, cache_dir)
    parts = [p for p in _GRAPH_PARTS if not (p == "source" and _trivial_source(animator))]
    paths = {p: folder / f"{p}.onnx" for p in parts}
    if all(p.is_file() for p in paths.values()):
        return paths
    with _file_lock(folder / ".lock"):
        record = {}
        for part, path in paths.items():
            if not path.is_file():
                tmp = folder / "tmp" / f"{part}.onnx"
                exp = export_onnx(animator, part, tmp, verify=True, static=True)
                record[part] = {"max_abs_diff": exp.max_abs_diff, "seconds": round(exp.seconds, 1),
                                "inputs": exp.input_names, "outputs": exp.output_names}
                _move_onnx(tmp, path)
        if record:
            meta = folder / "export.json"
            old = json.loads(meta.read_text()) if meta.is_file() else {}
            meta.write_text(json.dumps({**old, **record, "model": animator.name,
                                        "input_size": list(animator.input_size)}, indent=1))
    return paths


def _move_onnx(src: Path, dst: Path) -> None:
    """Move an exported model (with its external-data file, if any) so that it stays loadable at ``dst``."""
    import onnx

    model = onnx.load(str(src))
    dst.parent.mkdir(parents=True, exist_ok=True)
    onnx.save_model(model, str(dst), save_as_external_data=True, all_tensors_to_one_file=True,
                    location=dst.name + ".data", size_threshold=1024)
    for f in src.parent.glob(src.name + "*"):
        f.unlink()
