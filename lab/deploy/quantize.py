"""int8 post-training quantisation (NNCF) of the render graph, calibrated on real training frames.

:func:`quantized_graphs` quantises the per-frame ``render`` ONNX graph of
:func:`lab.deploy.runtimes.exported_graphs` with ``nncf.quantize`` (ONNX backend: QuantizeLinear /
DequantizeLinear pairs around convolutions and matrix products, per-channel symmetric weights, activation
ranges from the calibration set, fast bias correction), then returns to float the ops recorded for the model
in :mod:`lab.deploy.int8_scope` with NNCF's own revert (found by NNCF's accuracy control, per runtime: for
ultralight v3, six dense-motion Mul/Add, the 2×2 Jacobian MatMul and one upsample). ONNX Runtime runs a QDQ
``.onnx`` file, OpenVINO an IR with FakeQuantize nodes quantised by NNCF's OpenVINO backend. The calibration set is
what the graph sees in use: ``(source, driving)`` frame pairs of the *training* split
(:func:`calibration_pairs`; never the test split the quality cost is measured on), run through the fp32
PyTorch model for the render graph's inputs (cached source state, source and driving motion).

The encoder is not quantised: measured on ultralight v3 (``lab/models/ultralight/README.md``), its int8 graph
cost +7.9 % held-out L1 alone and ran no faster than bf16 (0.82 vs 0.77 ms in OpenVINO: the 256² → 64²
encoder is bound by per-op dispatch, not arithmetic). In int8 mode it runs float (bf16 in OpenVINO where the
CPU has it), like the once-per-reference ``source`` graph.
"""

from __future__ import annotations

import hashlib
import os
import zipfile
from pathlib import Path

import numpy as np
import torch

from lab.core.animator import Animator

__all__ = ["calibration_pairs", "default_calibration_source", "quantized_graphs", "render_feeds", "recipe_id",
           "QUANTIZED_PARTS", "RECIPE"]

QUANTIZED_PARTS = ("render",)
#: frames of the default calibration: this many training clips, two (source, driving) pairs each
CALIBRATION_CLIPS = 32
PAIRS_PER_CLIP = 2
#: keep in the file names: a change of the recipe makes new files
RECIPE = "nncf-performance-fbc-v3"


def _shared_root() -> Path:
    repo = Path(__file__).resolve().parents[2]
    return Path(os.environ.get("FACELAB_DATA") or (repo.parent / "shared" / "data")).resolve()


def default_calibration_source() -> Path:
    """The training frames calibration reads by default: the frame archive ``~/.cache/facelab/data/train-256.npz``
    (``facelab export-frames``) when present, else the shared data set (``$FACELAB_DATA``, ``../shared/data``)."""
    archive = Path.home() / ".cache" / "facelab" / "data" / "train-256.npz"
    if archive.is_file():
        return archive
    root = _shared_root()
    if (root / "MANIFEST.csv").is_file():
        return root
    raise FileNotFoundError(f"no training frames to calibrate int8 on: neither {archive} nor the shared data set "
                            f"({root}, set FACELAB_DATA) exists; pass calibration=")


def _archive_frames(path: Path, picks: list[int]) -> np.ndarray:
    """Frames ``picks`` of an uncompressed ``.npz`` frame archive, read through a memory map (not the whole file)."""
    with zipfile.ZipFile(path) as z:
        info = z.getinfo("frames.npy")
    if info.compress_type != zipfile.ZIP_STORED:
        with np.load(path) as z:
            return z["frames"][picks]
    with open(path, "rb") as f:
        f.seek(info.header_offset)
        local = f.read(30)
        name_len, extra_len = int.from_bytes(local[26:28], "little"), int.from_bytes(local[28:30], "little")
        f.seek(info.header_offset + 30 + name_len + extra_len)
        version = np.lib.format.read_magic(f)
        read = np.lib.format.read_array_header_1_0 if version == (1, 0) else np.lib.format.read_array_header_2_0
        shape, fortran, dtype = read(f)
        start = f.tell()
    frames = np.memmap(path, dtype=dtype, mode="r", offset=start, shape=shape, order="F" if fortran else "C")
    return np.stack([frames[i] for i in picks])


def calibration_pairs(data: str | os.PathLike | np.ndarray | None = None, size: tuple[int, int] = (256, 256),
                      clips: int = CALIBRATION_CLIPS, pairs_per_clip: int = PAIRS_PER_CLIP,
                      seed: int = 0) -> list[tuple[np.ndarray, np.ndarray]]:
    """``(source, driving)`` uint8 ``(H, W, 3)`` pairs of the same clip, from training frames.

    Args:
        data: a ``.npz`` frame archive, the shared data folder (its ``train`` split), an ``(N, H, W, 3)`` uint8
            array (pairs ``(0, 1), (2, 3), ...``), or None (:func:`default_calibration_source`).
        size: frame size ``(H, W)``.
        clips: clips to draw from (spread evenly over the split's clips).
        pairs_per_clip: pairs per clip; the source is the clip's first frame, the driving frames are drawn
            (seeded) from the rest of the clip.
    """
    if isinstance(data, np.ndarray):
        if data.ndim != 4 or len(data) < 2:
            raise ValueError("calibration frames must be (N, H, W, 3) uint8 with N >= 2")
        return [(data[i], data[i + 1]) for i in range(0, len(data) - 1, 2)]
    src = Path(data) if data is not None else default_calibration_source()
    rng = np.random.default_rng(seed)
    pairs = []
    if src.suffix == ".npz":
        with np.load(src, allow_pickle=False) as z:
            offsets = z["offsets"]
        n_videos = len(offsets) - 1
        chosen = np.unique(np.linspace(0, n_videos - 1, min(clips, n_videos)).round().astype(int))
        picks = []
        for v in chosen:
            a, b = int(offsets[v]), int(offsets[v + 1])
            for d in rng.choice(np.arange(a + 1, b), size=min(pairs_per_clip, b - a - 1), replace=False):
                picks += [a, int(d)]
        frames = _archive_frames(src, picks)
        if frames.shape[1:3] != tuple(size):
            from datasets.frames import _downscale_stack

            frames = _downscale_stack(frames, tuple(size))
        return [(frames[i], frames[i + 1]) for i in range(0, len(frames), 2)]
    from datasets.frames import iter_videos

    videos = list(iter_videos(src, split="train", frame_shape=(size[0], size[1], 3), max_frames_per_video=50))
    if not videos:
        raise ValueError(f"no train videos in {src}")
    idx = np.unique(np.linspace(0, len(videos) - 1, min(clips, len(videos))).round().astype(int))
    for v in (videos[i] for i in idx):
        for d in rng.choice(np.arange(1, len(v.frames)), size=min(pairs_per_clip, len(v.frames) - 1), replace=False):
            pairs.append((v.frames[0], v.frames[int(d)]))
    return pairs


def _calibration_id(calibration) -> str:
    if calibration is None or isinstance(calibration, (str, os.PathLike)):
        p = Path(calibration) if calibration is not None else default_calibration_source()
        st = p.stat()
        key = f"{p.resolve()}:{st.st_size}:{int(st.st_mtime)}:{CALIBRATION_CLIPS}x{PAIRS_PER_CLIP}"
        return hashlib.sha256(key.encode()).hexdigest()[:10]
    h = hashlib.sha256()
    for s, d in calibration:
        h.update(np.ascontiguousarray(s).tobytes())
        h.update(np.ascontiguousarray(d).tobytes())
    return h.hexdigest()[:10]


def render_feeds(animator: Animator, pairs, render_inputs: list[str]) -> list[dict]:
    """The render graph's inputs (named ``render_inputs``) for each ``(source, driving)`` pair, computed with the
    fp32 PyTorch model: the cached source state, the source's and the driving frame's motion."""
    from lab.core.animate import to_tensor
    from lab.deploy.export import _keys, state_keys

    keys, skeys = _keys(animator), state_keys(animator)
    out = []
    with torch.no_grad():
        for s, d in pairs:
            src, drv = to_tensor(s), to_tensor(d)
            state, ms, md = animator.encode_source(src), animator.extract_motion(src), animator.extract_motion(drv)
            arrays = [state[k] for k in skeys] + [ms[k] for k in keys] + [md[k] for k in keys]
            out.append({n: a.float().contiguous().numpy() for n, a in zip(render_inputs, arrays)})
    return out


def recipe_id(model: str, runtime: str = "onnxruntime") -> str:
    """:data:`RECIPE` plus a hash of the quantizers ``model``'s int8 removes in ``runtime``: names the int8 files,
    and the quality rows measured with them (:func:`lab.deploy.quality.recorded_costs` ignores rows of another
    recipe)."""
    from lab.deploy.int8_scope import recorded_scope

    scope = recorded_scope(model, runtime)
    if not scope["quantizers"]:
        return RECIPE
    names = scope["ignored"] + scope["quantizers"]
    return f"{RECIPE}-float{len(scope['ignored'])}-{hashlib.sha256(','.join(names).encode()).hexdigest()[:6]}"


def load_float_graph(path: Path, runtime: str):
    """The fp32 graph at ``path`` as NNCF quantises it for ``runtime``: an ``onnx.ModelProto`` (ONNX Runtime)
    or an ``openvino.Model`` read from the same ONNX file (OpenVINO)."""
    if runtime == "openvino":
        from lab.deploy.runtimes import _ov_core

        return _ov_core().read_model(str(path))
    import onnx

    return onnx.load(str(path))


def quantized_graphs(animator: Animator, paths: dict[str, Path], runtime: str = "onnxruntime",
                     calibration=None) -> dict[str, Path]:
    """``{"render": path}``: the int8 version of the fp32 render graph of ``paths`` for ``runtime`` (cached beside
    it), with the ops :func:`lab.deploy.int8_scope.recorded_scope` names for the model and runtime reverted to
    float (:func:`lab.deploy.int8_scope.scoped_int8`).

    Args:
        animator: the fp32 PyTorch model the graphs were exported from (computes the render graph's
            calibration inputs).
        paths: :func:`lab.deploy.runtimes.exported_graphs` output.
        runtime: ``onnxruntime`` (NNCF's ONNX backend; a QDQ ``.onnx`` file) or ``openvino`` (its OpenVINO
            backend; an IR ``.xml``/``.bin`` pair with FakeQuantize nodes).
        calibration: what :func:`calibration_pairs` accepts as ``data``, or a list of ``(source, driving)``
            uint8 pairs; None: the default training frames.
    """
    try:
        import nncf  # noqa: F401
    except ImportError as e:
        from lab.deploy.runtimes import RuntimeUnavailable

        raise RuntimeUnavailable("int8 quantisation needs NNCF: pip install nncf") from e
    from lab.deploy.export_cache import _file_lock, _move_onnx
    from lab.deploy.int8_scope import _input_names, recorded_scope, scoped_int8

    cid = _calibration_id(calibration)
    tag, ext = ("", ".onnx") if runtime == "onnxruntime" else ("-ov", ".xml")
    out = {p: paths[p].parent / f"{p}-int8{tag}-{recipe_id(animator.name, runtime)}-{cid}{ext}"
           for p in QUANTIZED_PARTS}
    if all(p.is_file() for p in out.values()):
        return out
    folder = paths["encoder"].parent
    with _file_lock(folder / ".lock-int8"):
        todo = [p for p in QUANTIZED_PARTS if not out[p].is_file()]
        if not todo:
            return out
        pairs = calibration if isinstance(calibration, list) else calibration_pairs(calibration, animator.input_size)
        for p in todo:
            model = load_float_graph(paths[p], runtime)
            data = render_feeds(animator, pairs, _input_names(model))
            q = scoped_int8(model, data, recorded_scope(animator.name, runtime, p))
            tmp = folder / "tmp" / out[p].name
            tmp.parent.mkdir(parents=True, exist_ok=True)
            if runtime == "onnxruntime":
                import onnx

                onnx.save_model(q, str(tmp), save_as_external_data=True, location=tmp.name + ".data")
                _move_onnx(tmp, out[p])
            else:
                import openvino as ov

                ov.save_model(q, str(tmp), compress_to_fp16=False)
                os.replace(tmp.with_suffix(".bin"), out[p].with_suffix(".bin"))
                os.replace(tmp, out[p])  # the .xml last: its presence means the pair is complete
    return out
