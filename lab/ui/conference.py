"""The app's Conference tab: the whole codec path on a camera clip (:func:`lab.conference.call.run_conference`)."""

from __future__ import annotations

import functools
import uuid
from pathlib import Path

from lab.ui.common import MAX_FRAMES_DEFAULT, Job, UserInputError, loaded_model, note_media, open_upload, output_dir

__all__ = ["conference_intro", "demo_camera_file", "CONFERENCE_SUMMARY", "conference", "default_conference_model"]


def conference_intro() -> str:
    return (Path(__file__).with_name("conference.md")).read_text()


@functools.cache
def demo_camera_file() -> str:
    """The embedded upper-body demo (512×512, the head moving, the body still) as an mp4 the UI can show."""
    from datasets.demo import demo_fps, demo_upper_body
    from datasets.video import write_video

    path = output_dir() / "demo" / "astronaut_camera.mp4"
    if not path.is_file():
        path.parent.mkdir(parents=True, exist_ok=True)
        write_video(path, demo_upper_body(50), fps=demo_fps(), crf=12)
    return str(path)


CONFERENCE_SUMMARY = (  # (label, summary key, format)
    ("frames sent / dropped by the gate", None, None),
    ("uplink: motion (kbps)", "uplink_motion_kbps", "{:.3f}"),
    ("uplink: reference frame, once (kbit)", "uplink_reference_kbit", "{:.1f}"),
    ("uplink incl. reference over this clip (kbps)", "uplink_kbps_incl_reference", "{:.2f}"),
    ("anchor: the camera video coded alike (kbps)", "anchor_kbps", "{:.1f}"),
    ("anchor PSNR (dB)", "anchor_psnr", "{:.2f}"),
    ("downlink (kbps)", "downlink_kbps", "{:.1f}"),
    ("received vs camera PSNR (dB)", "psnr", "{:.2f}"),
    ("received vs camera SSIM", "ssim", "{:.4f}"),
    ("animated head L1 vs camera crop", "l1_head", "{:.4f}"),
    ("seam at the crop box, composed (8-bit levels)", "seam", "{:.2f}"),
    ("... the camera frame's own step there", "seam_camera", "{:.2f}"),
    ("encoder ms/frame", "ms_per_frame_encoder", "{:.1f}"),
    ("decoder ms/frame", "ms_per_frame_decoder", "{:.1f}"),
    ("composition ms/frame", "ms_per_frame_composition", "{:.1f}"),
)


def conference(camera_path: str | None, model: str, gate: str, composition: str, codec: str, crf: float,
               quant_factor: float, max_frames: int = MAX_FRAMES_DEFAULT, progress=None):
    """The whole codec path on a camera clip (:func:`lab.conference.call.run_conference`).

    Returns:
        (side-by-side mp4 camera | received, downlink mp4, summary rows ``[quantity, value]``,
        per-frame rows, status markdown)
    """
    from datasets.errors import DataError
    from datasets.video import write_video
    from lab.conference.call import ConferenceConfig, load_camera_clip, preview_grid, run_conference

    job = Job(camera_path, progress=progress)
    if not camera_path:
        raise UserInputError("choose a camera clip")
    if not model:
        raise UserInputError("choose a model")
    media = open_upload(job, camera_path, int(max_frames))
    try:
        frames, fps = load_camera_clip(media, max_frames=int(max_frames))
    except DataError as e:
        raise job.error(e) from e
    note_media(job, media, len(frames), camera_path, "Max frames", max_frames)
    la = loaded_model(model)
    cfg = ConferenceConfig(model=model, gate=gate, composition=composition, downlink_codec=codec,
                           downlink_crf=float(crf), quant_factor=float(quant_factor))
    run_dir = output_dir() / f"conference-{uuid.uuid4().hex[:8]}"
    try:
        res = run_conference(frames, fps, cfg, loaded=la, work_dir=run_dir, progress=job.progress)
    except DataError as e:
        raise job.error(e) from e
    grid = run_dir / "side_by_side.mp4"
    write_video(grid, preview_grid(frames, res.received), fps=fps, crf=18)
    s = res.summary
    rows = []
    for label, key, fmt in CONFERENCE_SUMMARY:
        if key is None:
            rows.append([label, f"{s['frames_sent']} / {s['frames_dropped_by_gate']}"])
        elif s.get(key) is not None:
            rows.append([label, fmt.format(s[key])])
    per_frame = [[r["frame"], r["sent"], r["gate_reasons"], r["motion_bits"], str(r["rendered_motion_of"]),
                  round(r["psnr"], 2), round(r["l1_head"], 4)] for r in res.per_frame]
    status = (f"{s['frames']} frames {s['camera_size']} at {s['fps']:g} fps; crop box {s['crop_box']}; "
              f"{s['motion_values_per_frame']} motion values per frame.")
    if la.weights.startswith("random"):
        status += f"\n\n**{model} is randomly initialised** (its output is not meaningful): {la.note}"
    return str(grid), str(res.downlink_path), rows, per_frame, job.status(status)


def default_conference_model(names: list[str]) -> str:
    """``ultralight`` when its trained weights are found, else ``static`` (an untrained model renders noise)."""
    if "ultralight" in names and loaded_model("ultralight", usable=False).trained:
        return "ultralight"
    return "static" if "static" in names else names[0]
