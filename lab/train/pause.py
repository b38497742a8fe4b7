"""Pause a CPU training run between steps, outside its training-time budget.

``kill -STOP`` freezes a run mid-step, and that step's wall time (the pause included) is then counted in
the equal-time budget. Instead, ``SIGUSR1`` asks the run to pause at the next step boundary: it writes
``PAUSED`` in its run folder and sleeps until ``SIGUSR2``. The wait lies between two steps, so it is in no
step's time and costs the budget nothing. ``scripts/pause_training.sh stop|cont`` does this for every
training process and waits for each to confirm, so a benchmark then runs on idle cores.
"""

from __future__ import annotations

import signal
import time
from pathlib import Path

PAUSED_FILE = "PAUSED"


class PauseSwitch:
    """SIGUSR1 = pause at the next step boundary, SIGUSR2 = go on. Installed only where signals exist."""

    def __init__(self, run_dir: Path) -> None:
        self.run_dir = Path(run_dir)
        self.requested = False
        self.installed = False
        if hasattr(signal, "SIGUSR1"):
            try:
                signal.signal(signal.SIGUSR1, self._pause)
                signal.signal(signal.SIGUSR2, self._resume)
                self.installed = True
            except ValueError:  # not the main thread: no pausing
                pass
        (self.run_dir / PAUSED_FILE).unlink(missing_ok=True)

    def _pause(self, *_: object) -> None:
        self.requested = True

    def _resume(self, *_: object) -> None:
        self.requested = False

    def wait_if_paused(self) -> float:
        """Block while a pause is requested; return the seconds spent waiting (not training time)."""
        if not self.requested:
            return 0.0
        t0 = time.monotonic()
        marker = self.run_dir / PAUSED_FILE
        marker.write_text(f"paused since {time.strftime('%Y-%m-%dT%H:%M:%S')}\n")
        print("facelab train: paused (SIGUSR1); SIGUSR2 resumes", flush=True)
        try:
            while self.requested:
                time.sleep(0.2)
        finally:
            marker.unlink(missing_ok=True)
        waited = time.monotonic() - t0
        print(f"facelab train: resumed after {waited:.0f} s (not counted as training time)", flush=True)
        return waited

    def close(self) -> None:
        if self.installed:
            signal.signal(signal.SIGUSR1, signal.SIG_DFL)
            signal.signal(signal.SIGUSR2, signal.SIG_DFL)
        (self.run_dir / PAUSED_FILE).unlink(missing_ok=True)
