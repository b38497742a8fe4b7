"""Shared fixtures: the shared data set (skips when absent, fails under CI=true) and a quiet torch."""

from __future__ import annotations

import contextlib
import os
import socket
from pathlib import Path

import pytest
import torch

REPO = Path(__file__).resolve().parent.parent

# Tests run without the weights shipped in the repository (lab.core.registry.SHIPPED_ENV), in this process and in the
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


@contextlib.contextmanager
def _serve_app(env: dict[str, str] | None = None, fresh_models: bool = True):
    """Launch ``app.build_demo()`` on a free local port under ``env`` and yield its URL; on exit close it and put
    the environment (and, with ``fresh_models``, the app's loaded models) back as they were."""
    from lab.ui import common

    saved_env = {k: os.environ.get(k) for k in (env or {})}
    os.environ.update(env or {})
    saved_loaded = common.LOADED
    if fresh_models:
        common.LOADED = {}  # models load afresh under this environment (weights folders, shipped weights)
    import app

    demo = None
    try:
        demo = app.build_demo()
        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            port = s.getsockname()[1]
        demo.queue().launch(server_name="127.0.0.1", server_port=port, prevent_thread_lock=True, quiet=True)
        yield f"http://127.0.0.1:{port}/"
    finally:
        if demo is not None:
            demo.close()
        common.LOADED = saved_loaded
        for k, v in saved_env.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v


@pytest.fixture(scope="session")
def serve_app():
    """``with serve_app({"FACELAB_OUTPUTS": ...}) as url:`` — the Gradio app served for a test module."""
    return _serve_app


@pytest.fixture(scope="module")
def he_init_ultralight():
    """An untrained ultralight with He-normal convolutions (seed 0): the default init's tiny last layer makes every
    output ~0.5 whatever the input, which would let a wrong graph pass; this one's output varies."""
    from lab.core.registry import create_animator

    torch.manual_seed(0)
    model = create_animator("ultralight").eval()
    for m in model.modules():
        if isinstance(m, torch.nn.Conv2d):
            torch.nn.init.kaiming_normal_(m.weight)
    return model
