"""Baseline tests: float64 for the official-code goldens, and the CPU settings the CI golden step varies.

The golden tests (``test_*official_golden``) compare our modules with outputs of the official code computed in
float64 (``goldens/make_*_golden.md``); they run under :func:`float64`. To check that they hold on any x86-64
CPU, ``.ci/run`` runs them again under other kernel choices, set through the environment:

* ``ATEN_CPU_CAPABILITY=default|avx2|avx512`` (read by torch itself at start-up: the vectorised kernels);
* ``FACELAB_TEST_THREADS=N``: ``torch.set_num_threads(N)`` for these tests (``tests/conftest.py`` caps the
  intra-op threads at 2, whatever ``OMP_NUM_THREADS`` says);
* ``FACELAB_TEST_MKLDNN=0``: ``torch.backends.mkldnn.enabled = False`` (oneDNN convolutions off).

The settings in effect are printed in pytest's header.
"""

from __future__ import annotations

import os

import pytest
import torch

if os.environ.get("FACELAB_TEST_THREADS"):
    torch.set_num_threads(int(os.environ["FACELAB_TEST_THREADS"]))
if os.environ.get("FACELAB_TEST_MKLDNN", "").lower() in ("0", "false", "off", "no"):
    torch.backends.mkldnn.enabled = False


def pytest_report_header(config) -> str:
    return (f"torch {torch.__version__}: cpu capability {torch.backends.cpu.get_cpu_capability()}, "
            f"{torch.get_num_threads()} threads, mkldnn {'on' if torch.backends.mkldnn.enabled else 'off'}")


@pytest.fixture
def float64():
    """``torch.set_default_dtype(torch.float64)`` for one test (restored after), as the goldens were made.

    The official code makes some constants and its random warps with the default dtype (FOMM's ``Transform``,
    Monkey-Net's ``clip_variance``, X2Face's identity grid); in the golden runs they were float64.
    """
    previous = torch.get_default_dtype()
    torch.set_default_dtype(torch.float64)
    try:
        yield torch.float64
    finally:
        torch.set_default_dtype(previous)
