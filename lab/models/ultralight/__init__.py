"""The proposed ultra-lightweight animator (registered as ``ultralight``)."""

from lab.models.ultralight.decoder import UltralightGenerator
from lab.models.ultralight.encoder import UltralightKPDetector
from lab.models.ultralight.model import UltralightAnimator

__all__ = ["UltralightAnimator", "UltralightKPDetector", "UltralightGenerator"]
