"""Fixtures for the metric tests: isolated weight folders, a mock landmark/identity backend, real frames."""

from __future__ import annotations

import numpy as np
import pytest

OBAMA = "clips/FuxiVirtualHuman+styletalk/Obama_clip1.mp4"


@pytest.fixture
def weights_home(tmp_path, monkeypatch):
    """Empty ``$TORCH_HOME`` and ``$FACELAB_WEIGHTS`` under tmp; yields the hub checkpoints folder."""
    from metrics.backends import clear_backend_cache

    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "torch"))
    monkeypatch.setenv("FACELAB_WEIGHTS", str(tmp_path / "facelab"))
    ckpt = tmp_path / "torch" / "hub" / "checkpoints"
    ckpt.mkdir(parents=True)
    clear_backend_cache()
    yield ckpt
    clear_backend_cache()


class MockBackend:
    """Returns landmarks/embeddings from a table keyed by the frame's first pixel value (None = no face)."""

    name = "mock"
    label = "mock backend (tests)"
    protocol = False

    def __init__(self, table: dict[int, np.ndarray | None]):
        self.table = table

    def landmarks(self, frames):
        return [self.table[int(f[0, 0, 0])] for f in frames]

    embeddings = landmarks

    def provenance(self):
        return {"backend": self.name, "label": self.label, "protocol": False, "weights": []}


@pytest.fixture
def mock_backend():
    return MockBackend


def frames_with_ids(ids, size=8):
    """``(N, size, size, 3)`` uint8 frames whose pixels all equal the given ids (MockBackend keys)."""
    return np.stack([np.full((size, size, 3), i, np.uint8) for i in ids])


@pytest.fixture
def make_frames():
    return frames_with_ids


@pytest.fixture(scope="session")
def obama_frames(data_root):
    """The first 6 frames of the styletalk Obama clip: ``(6, 256, 256, 3)`` uint8 RGB, decoded with PyAV."""
    av = pytest.importorskip("av")
    out = []
    with av.open(str(data_root / OBAMA)) as c:
        for f in c.decode(video=0):
            out.append(f.to_ndarray(format="rgb24"))
            if len(out) == 6:
                break
    return np.stack(out)
