"""facelab: the reference lab for talking-head face animation as an ultra-low-bitrate codec.

Public surface: the animator registry (:func:`create_animator`, :func:`list_animators`,
:func:`register_animator`, :func:`is_animator`) and the :class:`Animator` interface.
"""

from lab.core.animator import Animator, AnimatorInfo, Motion, SourceState
from lab.core.registry import create_animator, is_animator, list_animators, register_animator

__version__ = "0.1.0"

__all__ = [
    "Animator",
    "AnimatorInfo",
    "Motion",
    "SourceState",
    "create_animator",
    "is_animator",
    "list_animators",
    "register_animator",
    "__version__",
]
