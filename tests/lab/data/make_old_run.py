"""How ``old_run/`` and ``old_run_report/`` were made (kept for the record; it needs the old lab/reports.py).

Run folders as facelab wrote them at commit 890dd6b, and that commit's report of them, from the repository root::

    git show 890dd6b:lab/reports.py > /tmp/reports_old_mod.py
    FACELAB_SHIPPED_WEIGHTS=0 .venv/bin/python tests/lab/data/make_old_run.py
"""

from __future__ import annotations

import importlib.util
import json
import shutil
import sys
from pathlib import Path

import numpy as np
import pandas as pd
from PIL import Image

ROOT = Path("tests/lab/data/old_run")
OUT = Path("tests/lab/data/old_run_report")
CLIPS = ("demo-clip-1", "demo-clip-2")
CROSS = ("id_source", "id_driving", "pose_error", "mouth_error")


def _evaluation(d: Path) -> None:
    from datasets.demo import demo_driving
    from lab.evaluate import evaluate_reconstruction

    frames = demo_driving(5)
    evaluate_reconstruction(["static", "ultralight"], [(CLIPS[0], frames[:3]), (CLIPS[1], frames[3:])], out_dir=d,
                            metrics=("l1", "psnr", "ssim", "akd", "aed"), progress=False)


def _rd_and_failures(d: Path) -> None:
    rows = []
    for model, kind, codec, k in (("fomm", "animation", "libx264", 2.0), ("libx264", "anchor", "libx264", 8.0)):
        for lvl in range(4):
            for i, v in enumerate(CLIPS):
                rows.append({"model": model, "kind": kind, "weights": "random init" if kind == "animation" else "",
                             "codec": codec, "curve": f"{model}+{codec}" if kind == "animation" else codec,
                             "level": f"crf={40 - 5 * lvl}", "crf": 40.0 - 5 * lvl, "video": v,
                             "kbps": k * (lvl + 1) + i + 0.123, "ref_kbps": 1.0 + lvl, "motion_kbps": 0.5,
                             "psnr": 20.0 + lvl + i / 3, "ssim": 0.5 + 0.1 * lvl})
    pd.DataFrame(rows).to_csv(d / "rd.csv", index=False)
    head = {"model": "fomm", "codec": "libx264", "anchor": "libx264", "quality": "psnr"}
    pd.DataFrame([
        {**head, "video": CLIPS[0], "bd_rate": -80.0, "bd_quality": 4.0, "videos": 1, "status": "ok"},
        {**head, "video": CLIPS[1], "bd_rate": -94.5, "bd_quality": 5.0, "videos": 1, "status": "ok"},
        {**head, "video": "mean", "bd_rate": -87.25, "bd_quality": 4.5, "videos": 2, "status": "ok"},
    ]).to_csv(d / "bd_rate.csv", index=False)
    flags = ("large_pose", "weak_correlation", "no_face", "no_face_prediction", "gate_rejected")
    pd.DataFrame([
        {"video": v, "frame": f, "failed": any(on), **dict(zip(flags, on)), "reasons": r, "yaw": y, "pitch": 0.0,
         "roll": 0.0, "weak_score": 0.1, "l1": 0.05, "gate_reasons": ""}
        for v, f, on, r, y in (
            (CLIPS[0], 0, (False, False, False, False, False), "", 1.0),
            (CLIPS[0], 1, (True, False, False, False, True), "large pose (yaw 48°); gate rejected", 48.0),
            (CLIPS[1], 0, (True, True, False, False, False), "large pose (yaw 52°); weak correlation", 52.0),
        )
    ]).to_csv(d / "failures.csv", index=False)
    Image.fromarray(np.full((8, 8, 3), 200, np.uint8)).save(d / "000_large_pose_f000001.png")
    (d / "gallery.json").write_text(json.dumps([
        {"file": "000_large_pose_f000001.png", "caption": "yaw 48 deg", "reason": "large_pose", "video": CLIPS[0],
         "frame": 1, "score": 48.0},
        {"file": "001_missing.png", "caption": "a file that is gone", "reason": "weak_correlation",
         "video": CLIPS[1], "frame": 0, "score": 0.1},
    ]))
    (d / "summary.json").write_text(json.dumps({"backend": "dlib", "thresholds": {"max_yaw": 25.0}}))


def _cross(d: Path) -> None:
    rng = np.random.default_rng(0)
    rows = []
    for model in ("static", "ultralight"):
        for pair in ("demo <- other", "other <- demo"):
            for f in range(3):
                ok = not (model == "ultralight" and f == 2)
                vals = {k: float(rng.uniform(0.1, 2)) if ok else float("nan") for k in CROSS}
                rows.append({"model": model, "pair": pair, "frame": f, **vals,
                             "status": "ok" if ok else "no_face_output",
                             "weights_id": "none needed" if model == "static" else "random init"})
    pd.DataFrame(rows).to_csv(d / "per_frame_cross.csv", index=False)
    (d / "provenance_cross.json").write_text(json.dumps(
        {"protocol": "cross-identity", "backend": "dlib", "models": {"static": {"weights": "none needed"}}}, indent=2))


def main() -> None:
    shutil.rmtree(ROOT, ignore_errors=True)
    for name, make in (("eval", _evaluation), ("rd_fail", _rd_and_failures), ("cross", _cross)):
        (ROOT / name).mkdir(parents=True)
        make(ROOT / name)
    spec = importlib.util.spec_from_file_location("reports_old", "/tmp/reports_old_mod.py")
    old = importlib.util.module_from_spec(spec)
    sys.modules["reports_old"] = old
    spec.loader.exec_module(old)
    shutil.rmtree(OUT, ignore_errors=True)
    files = old.write_report([ROOT / "eval", ROOT / "rd_fail", ROOT / "cross"], OUT, title="old run", png=False,
                             data_root="/nonexistent-data")
    sys.path.insert(0, "tests/lab")
    from test_reports import html_digest

    (OUT / "report_html.json").write_text(json.dumps(html_digest(files.html), indent=1, ensure_ascii=False) + "\n")
    files.html.unlink()


if __name__ == "__main__":
    main()
