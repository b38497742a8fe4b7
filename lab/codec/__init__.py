"""The codec path's parts: bit I/O and exp-Golomb codes (``bits``), the motion-feature bitstream (``motion``),
H.264/H.265 encoding and access units (``h26x``), the quality gate and its head pose, and the full-resolution
composition. Builds on ``lab.core`` and ``datasets`` only."""
