"""What the app's tab handlers share: file paths in, one-line messages out, models loaded once per process.

Every handler (one module per app tab: :mod:`lab.ui.animate`, :mod:`lab.ui.conference`, :mod:`lab.ui.live`,
:mod:`lab.ui.rd`, :mod:`lab.ui.failures`, :mod:`lab.ui.batch`, :mod:`lab.ui.models`) calls :mod:`lab` only. It turns
a bad input into a one-line message (``gr.Error`` in the app) that names the user's file by its own name, never
by the path the app stored it under (:func:`user_message`), and keeps earlier results: outputs are written to
fresh files under the app's output folder (:func:`output_dir`). What was wrong with an input that could still be
used (a truncated file, frames cut by the frame limit) is said in the status markdown (:class:`Job`). The long
handlers take ``progress`` (the app passes its ``gr.Progress``): called as ``progress((done, total), desc=...,
unit=...)`` with the model or stage and the frame being processed. Model names are resolved here, once per
app process (:func:`loaded_model`, through :func:`lab.core.animate.load_animator`); the jobs take the loaded
animators.
"""

from __future__ import annotations

import functools
import os
import re
import tempfile
from pathlib import Path

from lab.core.animate import LoadedAnimator, load_animator

__all__ = ["MAX_FRAMES_DEFAULT", "LOADED", "loaded_model", "UserInputError", "user_message", "output_dir", "intro",
           "demo_files", "Job", "open_upload", "read_inputs", "read_driving", "round3"]

MAX_FRAMES_DEFAULT = 50
LOADED: dict[str, LoadedAnimator] = {}  # name -> the model with its default weights (tests swap it)


def loaded_model(name: str, usable: bool = True) -> LoadedAnimator:
    """The animator ``name`` with its default weights, loaded once per app process.

    A weights file that is found but refused (not a checkpoint, holds code, wrong keys) makes that model
    ``unavailable: <reason>``: listed as such (``usable=False``: the Models table), refused with that one line
    when it is to run (:class:`lab.core.animate.ModelUnavailable`, an error toast); the app and the other models stay.
    """
    la = LOADED.get(name) or load_animator(name, allow_unavailable=True)
    LOADED[name] = la
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


class Job:
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


def open_upload(job: Job, path: str, max_frames: int | None):
    """The upload opened (:func:`datasets.uploads.validate_upload`), errors naming the file."""
    from datasets.errors import DataError
    from datasets.uploads import validate_upload

    try:
        return validate_upload(path, max_frames=max_frames)
    except DataError as e:
        raise job.error(e) from e


def read_inputs(job: Job, source_path: str | None, driving_path: str | None, crop: bool, max_frames: int,
                 limit: str = "Max driving frames"):
    from datasets.errors import DataError
    from datasets.uploads import is_face_crop, upload_image

    if not source_path:
        raise UserInputError("choose a source image")
    driving, fps = read_driving(job, driving_path, crop, max_frames, limit)
    media = open_upload(job, source_path, 1)
    try:
        source = upload_image(source_path, crop=crop and not is_face_crop(media))
    except DataError as e:
        raise job.error(e) from e
    for n in media.notes:
        job.note(n)
    return source, driving, fps


def read_driving(job: Job, driving_path: str | None, crop: bool, max_frames: int, limit: str = "Max driving frames"):
    """Driving frames (face-cropped) and fps; notes: the file's DataWarnings, and ``used N of M frames`` when
    the frame limit (the slider called ``limit``) cut the clip."""
    from datasets.errors import DataError
    from datasets.uploads import is_face_crop, prepare_upload

    if not driving_path:
        raise UserInputError("choose a driving clip")
    media = open_upload(job, driving_path, int(max_frames))
    try:
        clip = prepare_upload(media, crop=crop and not is_face_crop(media), max_frames=int(max_frames))
        frames = clip.read()
    except DataError as e:
        raise job.error(e) from e
    note_media(job, media, len(frames), driving_path, limit, max_frames)
    return frames, clip.fps or 25.0


def note_media(job: Job, media, used_frames: int, path: str, limit: str, max_frames: int) -> None:
    """The job's notes of an opened upload: the file's DataWarnings, and ``used N of M frames`` when the frame
    limit (the slider called ``limit``) cut the clip."""
    from datasets.uploads import frames_used_note

    for n in media.notes:
        job.note(n)
    used = frames_used_note(media, used_frames, Path(path).name)
    job.note(used and f"{used} (the *{limit}* limit is {int(max_frames)})")


def round3(v):
    if isinstance(v, float):
        return round(v, 3)
    return v
