"""facelab's Gradio app: a thin layer over :mod:`lab` (layout and events only; logic in lab.ui.handlers).

Run with ``make app`` (or ``python app.py``); it opens on the embedded demo (no data or weights needed).
"""

from __future__ import annotations

import gradio as gr

from lab.composition import COMPOSITION_METHODS
from lab.conference import GATE_MODES
from lab.registry import list_animators
from lab.ui import handlers as h

DEFAULT_MODELS = ["static", "ultralight"]


def _guard(fn):
    """Turn user errors into a Gradio error toast; the app and earlier results stay."""

    def wrapped(*args):
        try:
            return fn(*args)
        except (h.UserInputError, FileNotFoundError, ValueError) as e:
            raise gr.Error(str(e).splitlines()[0] if str(e) else type(e).__name__) from e

    wrapped.__name__ = fn.__name__
    return wrapped


def build_demo() -> gr.Blocks:
    """The app's Blocks (tests build it too)."""
    demo_source, demo_driving = h.demo_files()
    names = list_animators()
    with gr.Blocks(title="facelab") as demo:
        gr.Markdown(h.intro())
        with gr.Tab("Animate"):
            with gr.Row():
                source = gr.Image(value=demo_source, type="filepath", label="Source image", height=280)
                driving = gr.Video(value=demo_driving, label="Driving clip", height=280)
            with gr.Row():
                models = gr.CheckboxGroup(names, value=[m for m in DEFAULT_MODELS if m in names], label="Models")
                mode = gr.Radio(list(h.MODES), value=h.MODES[0], label="Motion")
            with gr.Row():
                crop = gr.Checkbox(True, label="Face-crop the inputs (one box per clip)")
                max_frames = gr.Slider(1, 300, value=h.MAX_FRAMES_DEFAULT, step=1, label="Max driving frames")
                run = gr.Button("Animate", variant="primary")
            result = gr.Video(label="driving | models", elem_id="result-video")
            table = gr.Dataframe(headers=["model", "weights", "L1", "PSNR", "SSIM", "seconds"],
                                 label="Metrics vs driving", elem_id="metrics-table")
            status = gr.Markdown(elem_id="status")
            run.click(_guard(h.animate), [source, driving, models, mode, crop, max_frames], [result, table, status],
                      api_name="animate")
            from datasets.demo import example_items

            examples = example_items()
            if examples:
                srcs = [e for e in examples if e.role == "source"]
                drvs = [e for e in examples if e.role == "driving"]
                gr.Markdown("Examples from the shared data set (`FACELAB_DATA`; research use only):")
                gr.Examples([[str(s.path)] for s in srcs], inputs=[source], label="Sources")
                gr.Examples([[str(d.path)] for d in drvs], inputs=[driving], label="Driving clips")
        with gr.Tab("Conference"):
            gr.Markdown(h.conference_intro())
            with gr.Row():
                camera = gr.Video(value=h.demo_camera_file(), label="Camera clip (full frame, upper body)", height=280)
                with gr.Column():
                    conf_model = gr.Dropdown(names, value="ultralight" if "ultralight" in names else names[0],
                                             label="Model")
                    gate = gr.Radio(list(GATE_MODES), value="landmarks", label="Quality gate features")
                    composition = gr.Radio(list(COMPOSITION_METHODS), value="feather", label="Composition")
            with gr.Row():
                codec = gr.Radio(["libx264", "libx265"], value="libx264", label="Downlink codec")
                crf = gr.Slider(10, 51, value=23, step=1, label="Downlink CRF")
                quant = gr.Slider(4, 1024, value=64, step=4, label="Motion quantisation factor")
                conf_frames = gr.Slider(1, 300, value=h.MAX_FRAMES_DEFAULT, step=1, label="Max frames")
            conf_run = gr.Button("Send through the codec", variant="primary")
            with gr.Row():
                conf_video = gr.Video(label="camera | received", elem_id="conference-video")
                downlink = gr.File(label="downlink.mp4 (what the receiver gets)")
            conf_summary = gr.Dataframe(headers=["quantity", "value"], label="Rates, quality, timing",
                                        elem_id="conference-summary")
            conf_status = gr.Markdown(elem_id="conference-status")
            conf_frames_table = gr.Dataframe(headers=["frame", "sent", "gate reasons", "motion bits",
                                                      "rendered motion of", "PSNR", "head L1"], label="Per frame")
            conf_run.click(_guard(h.conference),
                           [camera, conf_model, gate, composition, codec, crf, quant, conf_frames],
                           [conf_video, downlink, conf_summary, conf_frames_table, conf_status], api_name="conference")
        with gr.Tab("Models"):
            gr.Dataframe(value=h.models_table, headers=["name", "encoder params", "decoder params", "motion per frame",
                                                       "weights", "description"], label="Registered animators")
            eff_models = gr.CheckboxGroup(names, value=["ultralight", "fomm"], label="Models")
            eff_run = gr.Button("Count params and MACs (Table 1)")
            eff = gr.Dataframe(headers=["model", "part", "params", "GMACs", "GFLOPs"], label="Efficiency")
            eff_run.click(_guard(h.efficiency_rows), [eff_models], [eff], api_name="efficiency")
    return demo


demo = build_demo()

if __name__ == "__main__":
    demo.queue().launch()
