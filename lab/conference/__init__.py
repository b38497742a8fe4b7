"""A whole call: sender (crop, encoder, quality gate, motion bitstream) and server (decoder, composition),
offline over a clip (``call``) or live frame by frame (``live``)."""
