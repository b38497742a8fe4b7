"""Cross-identity reenactment evaluation: does the output keep the source's identity and take the driver's motion?

There is no ground truth when person A is driven by person B, so L1/AKD/AED (reconstruction, Table 2) do not
apply. Papers after FOMM (MRAA, TPSMM, LIA) measure the two things a viewer checks instead; here with the
lab's offline backends (every number is labelled with them):

``id_source``
    identity distance of each output frame to the **source** image: squared L2 between 128-D L2-normalised
    embeddings (AED's distance, dlib's ResNet by default). Lower = identity preserved.
``id_driving``
    the same distance to the **driving** frame. Higher = less of the driver's identity leaked into the output.
``pose_error``
    mean absolute yaw/pitch/roll difference (degrees) between the output and the driving frame, head pose by
    solvePnP on 68 landmarks (:mod:`lab.codec.pose`). Lower = the head motion was transferred.
``mouth_error``
    absolute difference of the mouth aspect ratio (inner-lip opening / mouth width) between output and driving
    frame. Lower = the mouth motion was transferred.

Frames where the output has no detected face get NaN in every column and are counted (``no_face``), as the
AKD protocol skips them. Motion is FOMM's animation mode: relative to the first driving frame, scaled by the
ratio of face sizes (``adapt_movement_scale``). Pairs come from the shared data's ``pairs.csv``
(``cross_identity`` rows of a split): an image source is used as is, a clip source gives its frame 0; both are
face-cropped to the model's size (one box per clip).

The run folder holds ``per_frame_cross.csv`` (resumable per (model, pair); each row's ``weights_id`` names the
weights that made it, and a rerun with other weights is refused, as in :mod:`lab.evaluation.reconstruction`),
``summary_cross.csv``,
``table_cross.md`` and ``provenance_cross.json``.
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterable, Iterator, Sequence
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

if TYPE_CHECKING:
    from lab.core.animate import LoadedAnimator

__all__ = ["CROSS_METRICS", "iter_cross_pairs", "cross_identity_metrics", "evaluate_cross_identity",
           "cross_table_markdown"]

CROSS_METRICS = ("id_source", "id_driving", "pose_error", "mouth_error")
PER_FRAME = "per_frame_cross.csv"


def iter_cross_pairs(data: str | os.PathLike, split: str = "test", size: int = 256,
                     max_frames: int | None = None) -> Iterator[tuple[str, np.ndarray, np.ndarray]]:
    """``(name, source (size, size, 3), driving (N, size, size, 3))`` for each cross-identity pair of ``split``.

    Args:
        data: the shared data folder (with ``pairs.csv``).
        split: ``train`` or ``test``.
        size: frame side.
        max_frames: at most this many driving frames.
    """
    from datasets.crop import crop_media
    from datasets.shared import SharedData

    shared = SharedData(data)
    for pair in shared.pairs(relation="cross_identity", split=split):
        src = crop_media(pair.source.open(max_frames=1), size=size).read()[0]
        drv = crop_media(pair.driving.open(max_frames=max_frames), size=size).read()
        yield f"{pair.source.name} <- {pair.driving.name}", src, drv


def _mouth_ratio(lm: np.ndarray) -> float:
    from lab.codec.quality_gate import mouth_aspect_ratio

    return float(mouth_aspect_ratio(lm))


def cross_identity_metrics(outputs: np.ndarray, source: np.ndarray, driving: np.ndarray,
                           backend="dlib") -> list[dict]:
    """Per-frame :data:`CROSS_METRICS` of ``outputs`` ``(N, H, W, 3)`` against ``source`` and ``driving``.

    Args:
        outputs: the animated frames, uint8.
        source: ``(H, W, 3)`` uint8, the identity to keep.
        driving: ``(N, H, W, 3)`` uint8, the motion to take.
        backend: a backend with ``landmarks(frames)`` and ``embeddings(frames)`` (name or instance; dlib).

    Returns:
        one dict per frame: ``frame``, the four metrics (NaN without a face in the output), ``status``
        (``ok``, ``no_face_output``, ``no_face_driving``, ``no_face_source``).
    """
    from lab.codec.pose import head_pose, resolve_landmark_backend

    be = resolve_landmark_backend(backend)
    if not hasattr(be, "embeddings"):
        raise TypeError("the backend must also give identity embeddings (embeddings(frames))")
    n = len(outputs)
    if len(driving) != n:
        raise ValueError(f"{n} outputs for {len(driving)} driving frames")
    size = outputs.shape[1:3]
    lm_out, lm_drv = be.landmarks(outputs), be.landmarks(driving)
    emb_out, emb_drv = be.embeddings(outputs), be.embeddings(driving)
    emb_src = be.embeddings(source[None])[0]
    rows = []
    for i in range(n):
        row = {"frame": i, **dict.fromkeys(CROSS_METRICS, float("nan")), "status": "ok"}
        if lm_out[i] is None or emb_out[i] is None:
            row["status"] = "no_face_output"
            rows.append(row)
            continue
        if emb_src is not None:
            row["id_source"] = float(np.sum((emb_out[i] - emb_src) ** 2))
        else:
            row["status"] = "no_face_source"
        if emb_drv[i] is not None:
            row["id_driving"] = float(np.sum((emb_out[i] - emb_drv[i]) ** 2))
        if lm_drv[i] is None:
            row["status"] = "no_face_driving"
        else:
            po, pd_ = head_pose(lm_out[i], size), head_pose(lm_drv[i], size)
            row["pose_error"] = float(np.mean([abs(po.yaw - pd_.yaw), abs(po.pitch - pd_.pitch),
                                               abs(po.roll - pd_.roll)]))
            row["mouth_error"] = abs(_mouth_ratio(lm_out[i]) - _mouth_ratio(lm_drv[i]))
        rows.append(row)
    return rows


def evaluate_cross_identity(
    animators: Sequence[LoadedAnimator],
    pairs: Iterable[tuple[str, np.ndarray, np.ndarray]],
    out_dir: str | os.PathLike | None = None,
    backend: str = "dlib",
    batch_size: int = 8,
    progress: bool = True,
) -> list[dict]:
    """Animate every pair with every animator (relative motion) and score it (module docstring).

    Args:
        animators: the loaded animators (:func:`lab.core.animate.load_animator`), one per model.
        pairs: ``(name, source, driving)`` (:func:`iter_cross_pairs`).
        out_dir: run folder (resumable); None keeps everything in memory.
        backend: landmark + identity backend (``dlib``, offline).
        batch_size: frames per forward pass.
        progress: a tqdm bar over pairs.

    Returns:
        The summary: one dict per model with ``pairs``, ``frames``, the pooled mean of each metric over frames
        with a face, ``no_face`` (frames without a face in the output) and ``weights``.
    """
    import pandas as pd

    from lab.evaluation.reconstruction import (
        animator_names,
        append_rows,
        check_resume_weights,
        done_counts,
        run_folder,
        with_progress,
    )
    from metrics.backends.dlib_backend import DlibBackend

    loaded = animator_names(animators)
    out = run_folder(out_dir)
    csv = out / PER_FRAME if out is not None else None
    done = done_counts(csv, key="pair")
    check_resume_weights(csv, loaded)
    be = DlibBackend(cache_size=4096) if backend == "dlib" else backend
    rows: list[pd.DataFrame] = []
    for name, source, driving in with_progress(pairs, progress, "cross-identity", "pair"):
        for m, la in loaded.items():
            if done.get((m, name)) == len(driving):
                continue
            df = _score_pair(la, name, source, driving, be, batch_size)
            if csv is not None:
                append_rows(csv, df, m, name, key="pair", replace=bool(done.get((m, name))))
            else:
                rows.append(df)
    if csv is not None and csv.is_file():
        all_rows = pd.read_csv(csv)
    elif rows:
        all_rows = pd.concat(rows, ignore_index=True)
    else:
        raise ValueError("no cross-identity pairs to evaluate")
    summary = _summarise(all_rows, loaded)
    if out is not None:
        _write_run(summary, out, loaded, be)
    return summary


def _score_pair(la: LoadedAnimator, name: str, source: np.ndarray, driving: np.ndarray, backend,
                batch_size: int):
    """One (model, pair)'s per-frame rows: ``model``, ``pair``, :func:`cross_identity_metrics`, ``weights_id``."""
    import pandas as pd

    from lab.core.animate import animate_frames
    from lab.evaluation.reconstruction import WEIGHTS_ID

    preds = animate_frames(la.model, source, driving, relative=True, batch_size=batch_size)
    df = pd.DataFrame(cross_identity_metrics(preds, source, driving, backend=backend))
    df.insert(0, "model", la.model.name)
    df.insert(1, "pair", name)
    df[WEIGHTS_ID] = la.weights_id
    return df


def _summarise(all_rows, loaded: dict[str, LoadedAnimator]) -> list[dict]:
    summary = []
    for m, la in loaded.items():
        d = all_rows[all_rows.model == m]
        row = {"model": m, "weights": la.weights, "pairs": int(d.pair.nunique()), "frames": len(d)}
        for k in CROSS_METRICS:
            v = d[k].astype(float)
            row[k] = float(v.mean()) if v.notna().any() else None
        row["no_face"] = int((d.status == "no_face_output").sum())
        summary.append(row)
    return summary


def _write_run(summary: list[dict], out: Path, loaded: dict[str, LoadedAnimator], backend) -> None:
    """``summary_cross.csv``, ``table_cross.md`` and ``provenance_cross.json`` in ``out``."""
    import pandas as pd

    pd.DataFrame(summary).to_csv(out / "summary_cross.csv", index=False)
    (out / "table_cross.md").write_text(cross_table_markdown(summary))
    prov = {"protocol": "cross-identity reenactment: relative motion (FOMM animate mode), per-frame identity "
                        "distance to source/driving, pose and mouth error vs driving; pooled over frames",
            "backend": backend.provenance() if hasattr(backend, "provenance") else str(backend),
            "models": {m: {"weights": la.weights, "weights_id": la.weights_id, "note": la.note}
                       for m, la in loaded.items()}}
    (out / "provenance_cross.json").write_text(json.dumps(prov, indent=2, default=str))


def cross_table_markdown(summary: Sequence[dict]) -> str:
    """``| method | ID→source ↓ | ID→driving ↑ | pose err ↓ | mouth err ↓ | frames | no face | weights |``."""
    lines = ["| method | ID dist. to source ↓ | ID dist. to driving ↑ | pose error (deg) ↓ | mouth error ↓ | frames "
             "| no face | weights |", "|---|---|---|---|---|---|---|---|"]
    for r in summary:
        cells = ["–" if r.get(k) is None else f"{r[k]:.4f}" if k != "pose_error" else f"{r[k]:.2f}"
                 for k in CROSS_METRICS]
        lines.append(f"| {r['model']} | " + " | ".join(cells) + f" | {r['frames']} | {r['no_face']} | {r['weights']} |")
    return "\n".join(lines) + "\n"
