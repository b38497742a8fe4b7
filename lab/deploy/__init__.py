"""Deployment: inference runtimes (ONNX Runtime, OpenVINO) and int8 quantisation of an animator's parts.

:mod:`lab.deploy.runtimes` is the public switch (``RUNTIMES``, ``available_runtimes``, ``wrap_animator``);
:mod:`lab.deploy.rewrites` the exact export-time rewrites; :mod:`lab.deploy.quantize` NNCF int8 calibrated on
training frames; :mod:`lab.deploy.quality` the measured quality cost of each lossy mode.
"""
