"""The live gate's landmark tracking against detecting every frame: accuracy, decisions and time, side by side.

A live call's landmark gate (:class:`lab.conference.sender.SenderGate` with ``redetect_every``) detects the face
only every N crops and follows it with dlib's shape predictor in between
(:class:`lab.codec.quality_gate.LandmarkTracker`). Per N this prints, over the shared set's test clips (the
camera's crop box fixed at the first frame, 256², as the live call crops): the mean and 95th-percentile
distance of the tracked landmarks to the per-frame detected ones (pixels of the 256² crop, frames where both
find a face), how often the two disagree on finding a face, how often the gate's decision differs, the share
of frames detected, and the gate's milliseconds per frame (landmarks + features + decision). N = 1 is the
per-frame gate itself (distance 0 by construction: the check of the comparison).

Pause the training runs while timing (``bash scripts/pause_training.sh stop`` / ``cont``).

Usage::

    .venv/bin/python benchmarks/bench_gate_tracking.py [--every 1,3,5,10] [--frames 100] [--clips 16] [--json]
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))


def clip_crops(item, frames: int, size: int = 256) -> np.ndarray:
    """The clip's first ``frames`` frames cropped with the box of its first frame (the live call's crop)."""
    from datasets.crop import crop_frame
    from lab.conference.sender import crop_box

    video = item.open(max_frames=frames).read()
    box = crop_box(video[0], size, True, "hog", f"first frame of {item.name}")
    return np.stack([crop_frame(f, box, size) for f in video])


def run_gate(crops: np.ndarray, every: int) -> tuple[list, list, float, int]:
    """``(landmarks per crop, decisions, seconds, detections)`` of a live gate over the crops in order
    (what :meth:`lab.conference.sender.SenderGate.decide` does per crop, keeping the landmarks)."""
    from lab.conference.sender import SenderGate

    gate = SenderGate("landmarks", None, crops[0], redetect_every=every)
    tracker = gate.tracker
    tracker.backend._cache.clear()  # noqa: SLF001 - detections are cached per frame content: time them all
    lms, decisions, seconds = [], [], 0.0
    for c in crops:
        t0 = time.perf_counter()
        lm, rot = tracker(c)
        decisions.append(gate.gate.decide(gate.gate.features(c, lm, rot, gate.ref_sharpness)))
        seconds += time.perf_counter() - t0
        lms.append(lm)
    return lms, decisions, seconds, tracker.detections


def main(argv: list[str] | None = None) -> int:
    from datasets.shared import SharedData

    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--every", default="1,3,5,10", help="redetect intervals to compare (1 = every frame)")
    p.add_argument("--frames", type=int, default=100, help="first frames of each clip")
    p.add_argument("--clips", type=int, default=16, help="test clips (in manifest order)")
    p.add_argument("--json", action="store_true", help="print the rows as JSON")
    a = p.parse_args(argv)
    intervals = sorted({int(v) for v in a.every.split(",")} | {1})
    items = SharedData().clips(split="test")[: a.clips]
    per: dict[int, dict] = {n: {"dist": [], "face_mismatch": 0, "decision_mismatch": 0, "frames": 0,
                                "detections": 0, "seconds": 0.0} for n in intervals}
    for item in items:
        crops = clip_crops(item, a.frames)
        base_lm, base_dec, *_ = run_gate(crops, 1)
        for n in intervals:
            lms, dec, sec, det = run_gate(crops, n)
            r = per[n]
            r["frames"] += len(crops)
            r["detections"] += det
            r["seconds"] += sec
            for lb, lt, db, dt in zip(base_lm, lms, base_dec, dec):
                if (lb is None) != (lt is None):
                    r["face_mismatch"] += 1
                elif lb is not None:
                    r["dist"].append(float(np.linalg.norm(lb - lt, axis=1).mean()))
                r["decision_mismatch"] += int(db.accept != dt.accept)
        print(f"  {item.name}: {len(crops)} frames", file=sys.stderr)
    rows = []
    for n in intervals:
        r = per[n]
        d = np.asarray(r["dist"]) if r["dist"] else np.zeros(1)
        rows.append({"redetect_every": n, "clips": len(items), "frames": r["frames"],
                     "landmark_px_mean": float(d.mean()), "landmark_px_p95": float(np.percentile(d, 95)),
                     "face_found_differs": r["face_mismatch"], "decision_differs": r["decision_mismatch"],
                     "detected_share": r["detections"] / r["frames"],
                     "ms_per_frame": 1000 * r["seconds"] / r["frames"]})
    if a.json:
        print(json.dumps(rows, indent=1))
        return 0
    print(f"live landmark gate, {len(items)} test clips x first {a.frames} frames, 256² crops (box of frame 0)")
    print("| redetect every | landmark px, mean | p95 | face found differs | decision differs | detected "
          "| gate ms/frame |")
    print("|---:|---:|---:|---:|---:|---:|---:|")
    for r in rows:
        f = r["frames"]
        print(f"| {r['redetect_every']} | {r['landmark_px_mean']:.2f} | {r['landmark_px_p95']:.2f} | "
              f"{r['face_found_differs']} of {f} | {r['decision_differs']} of {f} | "
              f"{100 * r['detected_share']:.0f} % | {r['ms_per_frame']:.1f} |")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
