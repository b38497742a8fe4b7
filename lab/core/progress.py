"""Progress of long jobs, one callback shape for the app and the CLI.

Library loops that take long (animating frames, scoring clips, the codec path, rate–distortion points) accept a
``progress`` callable and call it as ``progress(what, done, total, unit)``: ``what`` names the model or stage
being processed (``"ultralight"``, ``"clip-1: fomm"``), ``done`` of ``total`` ``unit``\\ s are finished (``total``
None when unknown). The app turns the calls into its ``gr.Progress`` bar (:mod:`lab.ui.common`); the CLI into
tqdm bars on stderr (:class:`TqdmProgress`, no bars when stderr is not a terminal). ``None`` means no reporting.
"""

from __future__ import annotations

import sys
from collections.abc import Callable

__all__ = ["ProgressFn", "report", "TqdmProgress", "cli_progress"]

ProgressFn = Callable[..., None]
"""``progress(what: str, done: int, total: int | None, unit: str = "frame") -> None``."""


def report(progress: ProgressFn | None, what: str, done: int, total: int | None, unit: str = "frame") -> None:
    """Call ``progress`` when there is one (library code calls this, never the callback directly)."""
    if progress is not None:
        progress(what, done, total, unit)


class TqdmProgress:
    """A :data:`ProgressFn` drawing one tqdm bar per ``what`` on stderr (a new bar when ``what`` changes).

    Args:
        disable: tqdm's ``disable``; None (default): no bars when stderr is not a terminal.
        file: where the bars go (default ``sys.stderr``).
    """

    def __init__(self, disable: bool | None = None, file=None) -> None:
        self.disable = disable
        self.file = file
        self._bar = None
        self._what: str | None = None

    def __call__(self, what: str, done: int, total: int | None, unit: str = "frame") -> None:
        from tqdm import tqdm

        bar = self._bar
        if bar is None or what != self._what or (total is not None and bar.total != total):
            self.close()
            bar = self._bar = tqdm(total=total, desc=what, unit=unit, file=self.file or sys.stderr,
                                   disable=self.disable, dynamic_ncols=True)
            self._what = what
        bar.n = done
        bar.refresh()

    def close(self) -> None:
        """Finish the current bar (called between stages and at the end)."""
        if self._bar is not None:
            self._bar.close()
        self._bar, self._what = None, None

    def __enter__(self) -> TqdmProgress:
        return self

    def __exit__(self, *exc) -> None:
        self.close()


def cli_progress(enabled: bool = True) -> TqdmProgress:
    """The CLI's progress: tqdm bars on stderr when it is a terminal (``enabled=False``: never)."""
    return TqdmProgress(disable=None if enabled else True)
