"""Handlers behind the Gradio app: file paths in, file paths and tables out; they call :mod:`lab` only.

Every handler turns a bad input into a one-line message (``gr.Error`` in the app) that names the user's file by
its own name, never by the path the app stored it under (:func:`user_message`), and keeps earlier results:
outputs are written to fresh files under the app's output folder. What was wrong with an input that could
still be used (a truncated file, frames cut by the frame limit) is said in the status markdown. The long
handlers take ``progress`` (the app passes its ``gr.Progress``): called as ``progress((done, total), desc=...,
unit=...)`` with the model or stage and the frame being processed.
"""

from __future__ import annotations

import functools
import os
import re
import tempfile
import uuid
from pathlib import Path

from lab.core.animate import LoadedAnimator, load_animator, side_by_side
from lab.evaluation.compare import run_models

__all__ = ["demo_files", "demo_camera_file", "animate", "conference", "rate_distortion", "failures", "batch",
           "cross_identity",
           "default_batch_data", "models_table", "efficiency_rows", "intro", "output_dir", "MODES", "NO_MODEL",
           "UserInputError", "user_message"]

MODES = ("reconstruction (absolute motion)", "animation (relative motion)")
MAX_FRAMES_DEFAULT = 50
NO_MODEL = "(none: flag the inputs only)"
_LOADED: dict[str, LoadedAnimator] = {}


def _model(name: str, usable: bool = True) -> LoadedAnimator:
    """The animator ``name`` with its default weights, loaded once per app process.

    A weights file that is found but refused (not a checkpoint, holds code, wrong keys) makes that model
    ``unavailable: <reason>``: listed as such (``usable=False``: the Models table), refused with that one line
    when it is to run (:class:`lab.core.animate.ModelUnavailable`, an error toast); the app and the other models stay.
    """
    la = _LOADED.get(name) or load_animator(name, allow_unavailable=True)
    _LOADED[name] = la
    return la.require() if usable else la


class UserInputError(ValueError):
    """A one-line message for the user (the app shows it as an error toast)."""


def output_dir() -> Path:
    """Where the app writes results (``$FACELAB_OUTPUTS`` or a temp folder); created on demand."""
    d = Path(os.environ.get("FACELAB_OUTPUTS") or Path(tempfile.gettempdir()) / "facelab-app")
    d.mkdir(parents=True, exist_ok=True)
    return d


def intro() -> str:
    return (Path(__file__).with_name("intro.md")).read_text()


def conference_intro() -> str:
    return (Path(__file__).with_name("conference.md")).read_text()


def rd_intro() -> str:
    return (Path(__file__).with_name("rd.md")).read_text()


def failures_intro() -> str:
    return (Path(__file__).with_name("failures.md")).read_text()


def batch_intro() -> str:
    return (Path(__file__).with_name("batch.md")).read_text()


@functools.cache
def demo_files() -> tuple[str, str]:
    """The embedded demo written once as files the UI components can show: (source png, driving mp4)."""
    from PIL import Image

    from datasets.demo import demo_driving, demo_fps, demo_source
    from datasets.video import write_video

    d = output_dir() / "demo"
    d.mkdir(parents=True, exist_ok=True)
    src, drv = d / "astronaut_source.png", d / "astronaut_driving.mp4"
    if not src.is_file():
        Image.fromarray(demo_source()).save(src)
    if not drv.is_file():
        write_video(drv, demo_driving(), fps=demo_fps(), crf=12)
    return str(src), str(drv)


def _upload_dirs() -> list[str]:
    """Where Gradio stores uploads (``$GRADIO_TEMP_DIR``, else ``<tmp>/gradio``)."""
    dirs = [os.environ.get("GRADIO_TEMP_DIR") or "", str(Path(tempfile.gettempdir()) / "gradio")]
    return [d.rstrip("/\\") for d in dirs if d]


def user_message(error: BaseException | str, paths=()) -> str:
    """The first line of an error or warning, for the user: every path in ``paths`` (the handler's inputs)
    written as the file's own name, and any other path under Gradio's upload folder likewise (an upload is
    stored as ``<upload folder>/<hash>/<the name it was uploaded with>``).

    Args:
        error: an exception or a message.
        paths: the input paths the message may contain.
    """
    text = str(error).strip()
    text = text.splitlines()[0] if text else type(error).__name__
    for p in sorted({str(p) for p in paths if p}, key=len, reverse=True):
        name = Path(p).name
        for variant in sorted({p, str(Path(p)), str(Path(p).expanduser()), os.path.realpath(p)}, key=len,
                              reverse=True):
            if variant and variant != name:
                text = text.replace(variant, name)
    for d in _upload_dirs():
        text = re.sub(re.escape(d) + r"[/\\](?:[^/\\\s'\"]+[/\\])*", "", text)
    return text


class _Job:
    """One handler call: its input files (named by their own names in messages), the notes for the status
    markdown and the progress callback (:data:`lab.core.progress.ProgressFn`, None without a progress bar)."""

    def __init__(self, *paths: str | None, progress=None) -> None:
        self.paths = [p for p in paths if p]
        self.notes: list[str] = []
        self.progress = None
        if progress is not None:
            def report(what: str, done: int, total: int | None, unit: str = "frame") -> None:
                progress((done, total), desc=what, unit=f"{unit}s")

            self.progress = report

    def text(self, message) -> str:
        return user_message(message, self.paths)

    def error(self, e: BaseException) -> UserInputError:
        return UserInputError(self.text(e))

    def note(self, message: str | None) -> None:
        if message:
            text = self.text(message)
            if text not in self.notes:
                self.notes.append(text)

    def status(self, text: str) -> str:
        """``text`` followed by the notes (truncated inputs first, then frames cut by a limit)."""
        notes = [f"**Warning:** {n}" if " truncated" in n or "decoding stopped" in n else f"**Note:** {n}"
                 for n in self.notes]
        return "\n\n".join([text, *notes])


def _open_upload(job: _Job, path: str, max_frames: int | None):
    """The upload opened (:func:`datasets.uploads.validate_upload`), errors naming the file."""
    from datasets.errors import DataError
    from datasets.uploads import validate_upload

    try:
        return validate_upload(path, max_frames=max_frames)
    except DataError as e:
        raise job.error(e) from e


def _read_inputs(job: _Job, source_path: str | None, driving_path: str | None, crop: bool, max_frames: int,
                 limit: str = "Max driving frames"):
    from datasets.errors import DataError
    from datasets.uploads import is_face_crop, upload_image

    if not source_path:
        raise UserInputError("choose a source image")
    driving, fps = _read_driving(job, driving_path, crop, max_frames, limit)
    media = _open_upload(job, source_path, 1)
    try:
        source = upload_image(source_path, crop=crop and not is_face_crop(media))
    except DataError as e:
        raise job.error(e) from e
    for n in media.notes:
        job.note(n)
    return source, driving, fps


def _read_driving(job: _Job, driving_path: str | None, crop: bool, max_frames: int, limit: str = "Max driving frames"):
    """Driving frames (face-cropped) and fps; notes: the file's DataWarnings, and ``used N of M frames`` when
    the frame limit (the slider called ``limit``) cut the clip."""
    from datasets.errors import DataError
    from datasets.uploads import frames_used_note, is_face_crop, prepare_upload

    if not driving_path:
        raise UserInputError("choose a driving clip")
    media = _open_upload(job, driving_path, int(max_frames))
    try:
        clip = prepare_upload(media, crop=crop and not is_face_crop(media), max_frames=int(max_frames))
        frames = clip.read()
    except DataError as e:
        raise job.error(e) from e
    for n in media.notes:
        job.note(n)
    used = frames_used_note(media, len(frames), Path(driving_path).name)
    job.note(used and f"{used} (the *{limit}* limit is {int(max_frames)})")
    return frames, clip.fps or 25.0


def animate(source_path: str | None, driving_path: str | None, models: list[str] | None, mode: str = MODES[0],
            crop: bool = True, max_frames: int = MAX_FRAMES_DEFAULT, progress=None):
    """Animate the source with the driving clip by each selected model.

    Returns:
        (path of the side-by-side mp4, metric rows ``[model, weights, L1, PSNR, SSIM, seconds]``, status markdown)
    """
    from datasets.video import write_video

    job = _Job(source_path, driving_path, progress=progress)
    if not models:
        raise UserInputError("tick at least one model")
    source, driving, fps = _read_inputs(job, source_path, driving_path, crop, max_frames)
    results = run_models(models, source, driving, relative=mode == MODES[1], loaded=_LOADED, progress=job.progress)
    grid = side_by_side([("driving", driving)] + [(r.model, r.frames) for r in results])
    out = output_dir() / f"animate-{uuid.uuid4().hex[:8]}.mp4"
    write_video(out, grid, fps=fps, crf=16)  # pads odd sizes to even itself
    rows = [[r.model, r.weights, round(r.metrics["l1"], 4), round(r.metrics["psnr"], 2), round(r.metrics["ssim"], 4),
             round(r.seconds, 2)] for r in results]
    status = f"{len(driving)} frames at {driving.shape[2]}x{driving.shape[1]}."
    for r in results:
        if r.weights.startswith("random"):
            note = _LOADED[r.model].note
            status += f"\n\n**{r.model} is randomly initialised** (its output is not meaningful): {note}"
    return str(out), rows, job.status(status)


def models_table() -> list[list]:
    """``[name, encoder params, decoder params, motion per frame, weights, description]`` per animator."""
    from lab.core.registry import list_animators

    rows = []
    for name in list_animators():
        la = _model(name, usable=False)
        m = la.model
        rows.append([name, m.encoder_params, m.decoder_params, m.info.motion_description, la.weights,
                     m.info.description])
    return rows


def efficiency_rows(models: list[str] | None, latency: bool = False) -> list[list]:
    """Table 1 rows for the chosen models: params, MACs, GFLOPs and, with ``latency``, CPU milliseconds per
    256×256 frame (about 2 s per part) and the speed-up against FOMM when it is among them.

    Returns:
        ``[model, part, params, GMACs, GFLOPs, latency ms, x faster than fomm]`` per part.
    """
    from lab.deploy.efficiency import animator_costs, efficiency_table

    if not models:
        raise UserInputError("tick at least one model")
    costs = []
    for name in models:
        costs += animator_costs(_model(name, usable=False).model, latency=bool(latency), min_run_time=0.5)
    rows = []
    for r in efficiency_table(costs):
        ms, fast = r.get("latency_ms"), r.get("x_faster")
        rows.append([r["model"], r["part"], r["params"], round(r["macs"] / 1e9, 4), round(r["flops"] / 1e9, 3),
                     None if ms is None else round(ms, 2), None if fast is None else round(fast, 2)])
    return rows


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
    from datasets.uploads import frames_used_note
    from datasets.video import write_video
    from lab.conference.call import ConferenceConfig, load_camera_clip, preview_grid, run_conference

    job = _Job(camera_path, progress=progress)
    if not camera_path:
        raise UserInputError("choose a camera clip")
    if not model:
        raise UserInputError("choose a model")
    media = _open_upload(job, camera_path, int(max_frames))
    try:
        frames, fps = load_camera_clip(media, max_frames=int(max_frames))
    except DataError as e:
        raise job.error(e) from e
    for n in media.notes:
        job.note(n)
    used = frames_used_note(media, len(frames), Path(camera_path).name)
    job.note(used and f"{used} (the *Max frames* limit is {int(max_frames)})")
    la = _model(model)
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
    if "ultralight" in names and _model("ultralight", usable=False).trained:
        return "ultralight"
    return "static" if "static" in names else names[0]



def failures(source_path: str | None, driving_path: str | None, model: str, reconstruction: bool, crop: bool,
             max_frames: int, max_yaw: float, max_pose_diff: float, progress=None):
    """Failure flags of a (source, driving) run and its gallery (:mod:`lab.evaluation.failures`).

    Args:
        reconstruction: take the source from the driving clip's first frame (self-reenactment, with per-frame
            L1 against the driving frames), instead of the source image.

    Returns:
        (gallery ``[(png path, caption)]``, per-frame rows, summary markdown, failures.csv path)
    """
    from lab.core.animate import animate_frames
    from lab.evaluation.failure_gallery import gallery_items, write_failures
    from lab.evaluation.failures import FailureThresholds, analyse_failures

    job = _Job(driving_path, *(() if reconstruction else (source_path,)), progress=progress)
    if reconstruction:
        driving, fps = _read_driving(job, driving_path, crop, max_frames)
        source = driving[0]
    elif not source_path:
        raise UserInputError("choose a source image (or tick 'source = first driving frame')")
    else:
        source, driving, fps = _read_inputs(job, source_path, driving_path, crop, max_frames)
    preds = None
    la = None
    if model and model != NO_MODEL:
        la = _model(model)
        preds = animate_frames(la.model, source, driving, progress=job.progress, what=model)
    # a separate source image (another moment, maybe another person) makes the appearance score low by
    # construction: only pose and landmark changes count then
    th = FailureThresholds(max_yaw=float(max_yaw), max_pose_diff=float(max_pose_diff),
                           min_appearance_corr=FailureThresholds.min_appearance_corr if reconstruction else None)
    rep = analyse_failures(source, driving, predictions=preds, fps=fps, thresholds=th,
                           ground_truth=driving if reconstruction and preds is not None else None,
                           source_index=0 if reconstruction else None, video=Path(driving_path).stem,
                           progress=job.progress)
    items = gallery_items(rep, source, driving, predictions=preds, max_items=24, per_reason=6)
    out = write_failures(rep, items, output_dir() / f"failures-{uuid.uuid4().hex[:8]}")
    from lab.reports import read_gallery

    gallery = [(str(g.path), g.caption) for g in read_gallery(out / "gallery.json")]
    cols = ("frame", "failed", "reasons", "yaw", "pitch", "roll", "pose_diff", "landmark_disp", "appearance_corr",
            "l1")
    rows = [[_round(r.get(c)) for c in cols] for r in rep.rows]
    s = rep.summary
    status = (f"{s['frames']} frames: **{s['failed']} flagged** — "
              + ", ".join(f"{k.replace('_', ' ')} {v}" for k, v in s.items() if k not in ("frames", "failed"))
              + f". Landmarks: {rep.backend}.")
    if la is not None and la.weights.startswith("random"):
        status += f"\n\n**{model} is randomly initialised** (its output is not meaningful): {la.note}"
    return gallery, rows, job.status(status), str(out / "failures.csv")


def _round(v):
    if isinstance(v, float):
        return round(v, 3)
    return v


def default_batch_data() -> str:
    """The shared data folder when present, else ``demo`` (the embedded clip)."""
    from datasets.shared import shared_data_root

    root = shared_data_root()
    return str(root) if (root / "MANIFEST.csv").is_file() else "demo"


def batch(data: str, split: str, models: list[str] | None, max_videos: int, max_frames: int,
          metrics: list[str] | None, progress=None):
    """Evaluate + failure flags + report on a folder of clips (:func:`lab.reports.batch.run_batch`).

    Returns:
        (Table 2 rows, per-clip rows, per-clip L1 figure, gallery, report.html path, status markdown); the
        tables' metric cells are text (:func:`lab.reports.metric_cell`): a number, or why there is none
        (``skipped: no face in 6 of 6 predictions``), or ``∞ (exact copy in ...)``, as in the HTML report.
    """
    from datasets.errors import DataError
    from lab.reports import display_table, fig_per_clip, load_runs, per_clip_table, read_gallery, table2_table
    from lab.reports.batch import batch_videos, run_batch

    if not models:
        raise UserInputError("tick at least one model")
    if not metrics:
        raise UserInputError("tick at least one metric")
    data = (data or "").strip() or default_batch_data()
    animators = [_model(m) for m in models]  # loaded once per app process
    job = _Job(progress=progress)
    run_dir = output_dir() / f"batch-{uuid.uuid4().hex[:8]}"
    try:
        res = run_batch(animators, batch_videos(data, split, int(max_videos), int(max_frames)), run_dir,
                        metrics=metrics, png=False, progress=job.progress or False,
                        total_videos=1 if data == "demo" else None,
                        data_description={"data": data, "split": split, "max_videos": int(max_videos),
                                          "max_frames": int(max_frames)})
    except (DataError, FileNotFoundError) as e:
        raise job.error(e) from e
    run = load_runs([run_dir])
    t2 = display_table(table2_table(run), metrics)
    t2 = t2[[c for c in ("model", "weights", "videos", "frames", *metrics) if c in t2]]
    clips = display_table(per_clip_table(run), metrics)
    clips = clips[[c for c in ("model", "video", "frames", *metrics) if c in clips]]
    fig = fig_per_clip(run, metrics[0])
    gallery = []
    for d in res.failure_dirs:
        gallery += [(str(g.path), g.caption) for g in read_gallery(d / "gallery.json")]
    n = int(t2["videos"].max()) if len(t2) else 0
    status = f"{n} clip(s) from `{data}` ({split}); run folder `{run_dir}`."
    return t2, clips, fig, gallery, str(res.report.html), status


def rate_distortion(clip_path: str | None, models: list[str] | None, codecs: list[str] | None, crop: bool,
                    max_frames: int, progress=None):
    """Rate–distortion of animators as codecs against x264/x265 on one clip
    (:func:`lab.evaluation.rate_distortion.rd_over_videos`).

    Returns:
        (RD figure, RD points rows, BD-rate rows, status markdown)
    """
    from lab.evaluation.rate_distortion import rd_over_videos
    from lab.reports import fig_rd, load_runs, rd_summary_table

    if not models:
        raise UserInputError("tick at least one model")
    if not codecs:
        raise UserInputError("tick at least one codec")
    job = _Job(clip_path, progress=progress)
    frames, fps = _read_driving(job, clip_path, crop, max_frames, limit="Max frames")
    if len(frames) < 2:
        raise UserInputError("rate-distortion needs a clip of at least 2 frames")
    loaded = {m: _model(m) for m in models}  # loaded once per app process, errors reported before the encodes
    run_dir = output_dir() / f"rd-{uuid.uuid4().hex[:8]}"
    res = rd_over_videos(loaded, [(Path(clip_path).stem, frames)], out_dir=run_dir, codecs=codecs, fps=fps,
                         progress=job.progress or False)
    run = load_runs([run_dir])
    points = rd_summary_table(run)
    cols = [c for c in ("curve", "level", "kbps", "ref_kbps", "motion_kbps", "psnr", "ssim") if c in points]
    points = points[cols].round(3)
    bd = [[r["model"], r["codec"], r["anchor"], _round(r.get("bd_rate")), _round(r.get("bd_quality")), r["status"]]
          for r in res.bd if r["video"] == "mean"]
    weights = {m: la.weights for m, la in loaded.items()}
    status = (f"{len(frames)} frames at {fps:g} fps; kbps = bits / 1000 / (frames / fps); models: "
              + ", ".join(f"{m} ({w})" for m, w in weights.items()) + f". Run folder `{run_dir}`.")
    return fig_rd(run), points, bd, job.status(status)


def cross_identity(data: str, split: str, models: list[str] | None, max_pairs: int, max_frames: int,
                   progress=None):
    """Cross-identity evaluation of the shared set's ``cross_identity`` pairs (:mod:`lab.evaluation.cross_identity`).

    Returns:
        (per-model and per-pair rows, report.html path, status markdown)
    """
    import itertools

    from lab.evaluation.cross_identity import evaluate_cross_identity, iter_cross_pairs
    from lab.reports import cross_identity_table, load_runs, write_report

    if not models:
        raise UserInputError("tick at least one model")
    data = (data or "").strip() or default_batch_data()
    if not (Path(data) / "pairs.csv").is_file():
        raise UserInputError(f"cross-identity needs the shared data set's pairs.csv; {data} has none")
    animators = [_model(m) for m in models]  # loaded once per app process
    run_dir = output_dir() / f"cross-{uuid.uuid4().hex[:8]}"
    pairs = itertools.islice(iter_cross_pairs(data, split, max_frames=int(max_frames)), int(max_pairs))
    job = _Job(progress=progress)
    if job.progress is not None:
        def counted(items):
            for k, (name, source, driving) in enumerate(items):
                job.progress(f"{name}: {', '.join(models)}", k, int(max_pairs), "pair")
                yield name, source, driving

        pairs = counted(pairs)
    try:
        evaluate_cross_identity(animators, pairs, out_dir=run_dir, progress=False)
    except ValueError as e:
        raise UserInputError(f"{e} (split '{split}' of {data})") from e
    rep = write_report([run_dir], run_dir / "report", title="facelab cross-identity report", png=False)
    table = cross_identity_table(load_runs([run_dir])).round(4)
    weights = ", ".join(f"{la.model.name} ({la.weights})" for la in animators)
    status = f"{table['pair'].nunique() - 1} pair(s) from `{data}` ({split}); models: {weights}."
    return table, str(rep.html), status
