"""The codec path's parts: the motion-feature bitstream, the quality gate and its head pose, and the
full-resolution composition. Builds on ``lab.core`` only."""
