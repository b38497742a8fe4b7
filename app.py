"""facelab's Gradio app: a thin layer over :mod:`lab` (layout and events only; logic in lab/ui, one module per tab).

Run with ``make app`` (or ``python app.py``); it opens on the embedded demo (no data or weights needed).
One builder per tab; every button calls one handler of that tab's module (:mod:`lab.ui.animate`,
:mod:`lab.ui.conference`, :mod:`lab.ui.live`, :mod:`lab.ui.rd`, :mod:`lab.ui.failures`, :mod:`lab.ui.batch`,
:mod:`lab.ui.models`; shared plumbing in :mod:`lab.ui.common`), which calls the same library functions as the CLI.
"""

from __future__ import annotations

import functools
import inspect

import gradio as gr

from lab.codec.composition import COMPOSITION_METHODS
from lab.conference.sender import GATE_MODES
from lab.core.registry import list_animators
from lab.ui import animate as animate_ui
from lab.ui import batch as batch_ui
from lab.ui import common
from lab.ui import conference as conference_ui
from lab.ui import failures as failures_ui
from lab.ui import live as live_ui
from lab.ui import models as models_ui
from lab.ui import rd as rd_ui

DEFAULT_MODELS = ["static", "ultralight"]
BATCH_METRICS = ["l1", "akd", "aed", "psnr", "ssim", "lpips"]


def _guard(fn):
    """Turn user errors into one Gradio error toast naming the user's files by their own names (never the
    path Gradio stored them under); the app and earlier results stay. A handler with a ``progress`` parameter
    gets the event's ``gr.Progress`` (Gradio finds it by the default value in the wrapper's signature)."""
    sig = inspect.signature(fn)
    takes_progress = "progress" in sig.parameters

    @functools.wraps(fn)
    def wrapped(*args):
        progress = None
        if takes_progress and args and isinstance(args[-1], gr.Progress):
            *args, progress = args
        try:
            return fn(*args, progress=progress) if takes_progress else fn(*args)
        except (common.UserInputError, FileNotFoundError, ValueError) as e:
            inputs = [a for a in args if isinstance(a, str)]
            raise gr.Error(common.user_message(e, inputs)) from e

    params = [p for p in sig.parameters.values() if p.name != "progress"]
    if takes_progress:
        params.append(inspect.Parameter("progress", inspect.Parameter.POSITIONAL_OR_KEYWORD, default=gr.Progress()))
    wrapped.__signature__ = sig.replace(parameters=params)
    return wrapped


# The browser's own "Video not playable" error toast for an upload it cannot preview (a broken file, or one
# Chromium cannot play such as HEVC or AVI) would be a second toast for the same file: the run's error names
# the file and says what is wrong. The preview shows a short note instead (capture phase: before Gradio's
# listener on the <video> element; media events do not bubble).
_VIDEO_ERROR_JS = """
if (!window.facelabVideoErrors) {
  window.facelabVideoErrors = true;
  const NOTE = 'facelab-no-preview';
  document.addEventListener('error', (e) => {
    const v = e.target;
    if (!(v instanceof HTMLVideoElement)) return;
    e.stopImmediatePropagation();
    const box = v.parentElement;
    if (box && !box.querySelector('.' + NOTE)) {
      const p = document.createElement('p');
      p.className = NOTE;
      p.textContent = 'The browser cannot preview this file; it is checked when you run.';
      p.style.cssText = 'margin:.4em;font-size:.85em;color:#a40;text-align:center';
      box.prepend(p);
    }
  }, true);
  document.addEventListener('loadeddata', (e) => {
    const box = e.target instanceof HTMLVideoElement ? e.target.parentElement : null;
    box?.querySelectorAll('.' + NOTE).forEach((n) => n.remove());
  }, true);
}
"""


def _shared_examples(source=None, driving=None) -> None:
    from datasets.demo import example_items

    examples = example_items()
    if not examples:
        return
    gr.Markdown("Examples from the shared data set (`FACELAB_DATA`; research use only):")
    if source is not None:
        gr.Examples([[str(e.path)] for e in examples if e.role == "source"], inputs=[source], label="Sources")
    gr.Examples([[str(e.path)] for e in examples if e.role == "driving"], inputs=[driving], label="Driving clips")


def _animate_tab(names: list[str]) -> None:
    demo_source, demo_driving = common.demo_files()
    with gr.Row():
        source = gr.Image(value=demo_source, type="filepath", label="Source image", height=280)
        driving = gr.Video(value=demo_driving, label="Driving clip", height=280)
    with gr.Row():
        models = gr.CheckboxGroup(names, value=[m for m in DEFAULT_MODELS if m in names], label="Models")
        mode = gr.Radio(list(animate_ui.MODES), value=animate_ui.MODES[0], label="Motion")
    with gr.Row():
        crop = gr.Checkbox(True, label="Face-crop the inputs (one box per clip)")
        max_frames = gr.Slider(1, 300, value=common.MAX_FRAMES_DEFAULT, step=1, label="Max driving frames")
        run = gr.Button("Animate", variant="primary")
    result = gr.Video(label="driving | models", elem_id="result-video")
    table = gr.Dataframe(headers=["model", "weights", "L1", "PSNR", "SSIM", "seconds"],
                         label="Metrics vs driving", elem_id="metrics-table")
    status = gr.Markdown(elem_id="status")
    run.click(_guard(animate_ui.animate), [source, driving, models, mode, crop, max_frames], [result, table, status],
              api_name="animate")
    _shared_examples(source, driving)


def _conference_tab(names: list[str]) -> None:
    gr.Markdown(conference_ui.conference_intro())
    with gr.Row():
        camera = gr.Video(value=conference_ui.demo_camera_file(), label="Camera clip (full frame, upper body)",
                          height=280)
        with gr.Column():
            model = gr.Dropdown(names, value=conference_ui.default_conference_model(names), label="Model")
            gate = gr.Radio(list(GATE_MODES), value="landmarks", label="Quality gate features")
            composition = gr.Radio(list(COMPOSITION_METHODS), value="feather", label="Composition")
    with gr.Row():
        codec = gr.Radio(["libx264", "libx265"], value="libx264", label="Downlink codec")
        crf = gr.Slider(10, 51, value=23, step=1, label="Downlink CRF")
        quant = gr.Slider(4, 1024, value=64, step=4, label="Motion quantisation factor")
        max_frames = gr.Slider(1, 300, value=common.MAX_FRAMES_DEFAULT, step=1, label="Max frames")
    run = gr.Button("Send through the codec", variant="primary")
    with gr.Row():
        video = gr.Video(label="camera | received", elem_id="conference-video")
        downlink = gr.File(label="downlink.mp4 (what the receiver gets)")
    summary = gr.Dataframe(headers=["quantity", "value"], label="Rates, quality, timing", elem_id="conference-summary")
    status = gr.Markdown(elem_id="conference-status")
    per_frame = gr.Dataframe(headers=["frame", "sent", "gate reasons", "motion bits", "rendered motion of", "PSNR",
                                      "head L1"], label="Per frame")
    run.click(_guard(conference_ui.conference), [camera, model, gate, composition, codec, crf, quant, max_frames],
              [video, downlink, summary, per_frame, status], api_name="conference")
    _shared_examples(driving=camera)


def _rd_tab(names: list[str]) -> None:
    gr.Markdown(rd_ui.rd_intro())
    _, demo_driving = common.demo_files()
    with gr.Row():
        clip = gr.Video(value=demo_driving, label="Clip", height=240)
        with gr.Column():
            models = gr.CheckboxGroup(names, value=[m for m in DEFAULT_MODELS if m in names], label="Models")
            codecs = gr.CheckboxGroup(["libx264", "libx265"], value=["libx264", "libx265"], label="Codecs")
            crop = gr.Checkbox(True, label="Face-crop the clip")
            max_frames = gr.Slider(2, 300, value=25, step=1, label="Max frames")
    run = gr.Button("Measure rate-distortion", variant="primary")
    status = gr.Markdown(elem_id="rd-status")
    plot = gr.Plot(label="RD curves")
    bd = gr.Dataframe(headers=["model", "reference codec", "anchor", "BD-rate %", "BD-PSNR dB", "status"],
                      label="BD-rate against each anchor (negative = fewer bits at equal PSNR)", elem_id="rd-bd")
    points = gr.Dataframe(label="RD points")
    run.click(_guard(rd_ui.rate_distortion), [clip, models, codecs, crop, max_frames], [plot, points, bd, status],
              api_name="rate_distortion")
    _shared_examples(driving=clip)


def _failures_tab(names: list[str]) -> None:
    gr.Markdown(failures_ui.failures_intro())
    demo_source, demo_driving = common.demo_files()
    with gr.Row():
        source = gr.Image(value=demo_source, type="filepath", label="Source image", height=240)
        driving = gr.Video(value=demo_driving, label="Driving clip", height=240)
        with gr.Column():
            model = gr.Dropdown([failures_ui.NO_MODEL, *names], value="static", label="Model whose output is shown")
            reconstruction = gr.Checkbox(True, label="Source = first driving frame (self-reenactment, with L1)")
            crop = gr.Checkbox(True, label="Face-crop the inputs")
    with gr.Row():
        max_frames = gr.Slider(1, 300, value=common.MAX_FRAMES_DEFAULT, step=1, label="Max driving frames")
        max_yaw = gr.Slider(10, 60, value=25, step=1, label="Large pose from |yaw| (deg)")
        max_pose_diff = gr.Slider(5, 60, value=20, step=1, label="Weak correlation from pose change (deg)")
        run = gr.Button("Flag failure cases", variant="primary")
    status = gr.Markdown(elem_id="failures-status")
    gallery = gr.Gallery(label="Failure-case gallery (source | driving | output)", columns=2, height="auto",
                         object_fit="contain",
                         elem_id="failures-gallery")
    rows = gr.Dataframe(headers=["frame", "failed", "reasons", "yaw", "pitch", "roll", "pose diff", "landmark disp",
                                 "appearance corr", "L1"], label="Per frame")
    csv = gr.File(label="failures.csv")
    run.click(_guard(failures_ui.failures),
              [source, driving, model, reconstruction, crop, max_frames, max_yaw, max_pose_diff],
              [gallery, rows, status, csv], api_name="failures")
    _shared_examples(source, driving)


def _batch_tab(names: list[str]) -> None:
    gr.Markdown(batch_ui.batch_intro())
    with gr.Row():
        data = gr.Textbox(batch_ui.default_batch_data(),
                          label="Data: shared data folder, VoxCeleb-layout root, or 'demo'")
        split = gr.Textbox("test", label="Split")
    with gr.Row():
        models = gr.CheckboxGroup(names, value=[m for m in DEFAULT_MODELS if m in names], label="Models")
        metrics = gr.CheckboxGroup(BATCH_METRICS, value=["l1", "akd", "aed"], label="Metrics")
    with gr.Row():
        max_videos = gr.Slider(1, 100, value=2, step=1, label="Max clips")
        max_frames = gr.Slider(1, 1000, value=10, step=1, label="Max frames per clip")
        run = gr.Button("Evaluate, flag, report", variant="primary")
    status = gr.Markdown(elem_id="batch-status")
    table2 = gr.Dataframe(label="Table 2 (pooled over frames)", elem_id="batch-table2")
    clips = gr.Dataframe(label="Per clip")
    plot = gr.Plot(label="Per clip")
    gallery = gr.Gallery(label="Failure cases (first model)", columns=3, height="auto", object_fit="contain")
    report = gr.File(label="report.html (tables, plots, gallery, provenance)")
    run.click(_guard(batch_ui.batch), [data, split, models, max_videos, max_frames, metrics],
              [table2, clips, plot, gallery, report, status], api_name="batch")
    with gr.Accordion("Cross-identity reenactment (the shared set's pairs.csv)", open=False):
        gr.Markdown("Person A driven by person B (relative motion): identity distance to the source (lower: "
                    "identity kept) and to the driver (higher: less leaked), head-pose and mouth error against the "
                    "driver. Same data folder, split and models as above.")
        with gr.Row():
            max_pairs = gr.Slider(1, 20, value=4, step=1, label="Max pairs")
            cross_frames = gr.Slider(1, 1000, value=10, step=1, label="Max driving frames per pair")
            cross_run = gr.Button("Evaluate cross-identity pairs")
        cross_status = gr.Markdown(elem_id="cross-status")
        cross_table = gr.Dataframe(label="Cross-identity metrics (pooled, then per pair)")
        cross_report = gr.File(label="report.html")
        cross_run.click(_guard(batch_ui.cross_identity), [data, split, models, max_pairs, cross_frames],
                        [cross_table, cross_report, cross_status], api_name="cross_identity")


def _models_tab(names: list[str]) -> None:
    gr.Dataframe(value=models_ui.models_table, headers=["name", "encoder params", "decoder params",
                                                        "motion per frame", "weights", "description"],
                 label="Registered animators")
    with gr.Row():
        models = gr.CheckboxGroup(names, value=["ultralight", "fomm"], label="Models")
        latency = gr.Checkbox(False, label="Also measure CPU latency (about 2 s per part)")
    run = gr.Button("Count params and MACs (Table 1)")
    eff = gr.Dataframe(headers=["model", "part", "params", "GMACs", "GFLOPs", "latency ms", "x faster than fomm"],
                       label="Efficiency (one 256x256 frame; MACs = FlopCounterMode FLOPs / 2)")
    run.click(_guard(models_ui.efficiency_rows), [models, latency], [eff], api_name="efficiency")


def build_demo() -> gr.Blocks:
    """The app's Blocks (tests build it too)."""
    names = list_animators()
    with gr.Blocks(title="facelab") as demo:
        gr.Markdown(common.intro())
        with gr.Tab("Animate"):
            _animate_tab(names)
        with gr.Tab("Conference"):
            _conference_tab(names)
        with gr.Tab("Live"):
            live_ui.live_tab(names)
        with gr.Tab("Rate–distortion"):
            _rd_tab(names)
        with gr.Tab("Failures"):
            _failures_tab(names)
        with gr.Tab("Batch report"):
            _batch_tab(names)
        with gr.Tab("Models"):
            _models_tab(names)
        gr.HTML("", js_on_load=_VIDEO_ERROR_JS, elem_id="facelab-video-errors", padding=False)
    return demo


demo = build_demo()

if __name__ == "__main__":
    demo.queue().launch()
