"""Shared fixtures: the shared data set (skips when absent, fails under CI=true) and a quiet torch."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
import torch

REPO = Path(__file__).resolve().parent.parent

# Tests run without the weights shipped in the repository (lab.registry.SHIPPED_ENV), in this process and in the
# app/CLI subprocesses they start: their numbers must not move when a trained file is replaced. The tests of the
# shipped file itself (tests/lab/test_shipped_weights.py) turn it back on.
os.environ["FACELAB_SHIPPED_WEIGHTS"] = "0"

# Two cores here: keep each test process from oversubscribing them.
torch.set_num_threads(max(1, min(2, (os.cpu_count() or 1))))


def shared_data_root() -> Path:
    return Path(os.environ.get("FACELAB_DATA") or (REPO.parent / "shared" / "data")).resolve()


@pytest.fixture(scope="session")
def data_root() -> Path:
    """The shared data set (``FACELAB_DATA``, default ``../shared/data``).

    Skips the test with the reason when the folder is absent; under ``CI=true`` a missing folder is a
    failure instead, so CI can never pass by skipping the tests on real data.
    """
    root = shared_data_root()
    if not (root / "MANIFEST.csv").is_file():
        msg = f"shared data set not found at {root} (set FACELAB_DATA to the folder holding MANIFEST.csv)"
        if os.environ.get("CI", "").lower() in ("1", "true", "yes"):
            pytest.fail(msg + " -- required under CI=true")
        pytest.skip(msg)
    return root
