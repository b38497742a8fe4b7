"""facelab's data layer: video/image I/O, the VoxCeleb layout, the shared data set, uploads, face crop.

Not to be confused with HuggingFace ``datasets`` (never install it beside facelab).
"""

from datasets.errors import DataError

__all__ = ["DataError"]
