"""The data layer's error type: a human, one-line message for every input it cannot use."""

from __future__ import annotations

__all__ = ["DataError"]


class DataError(ValueError):
    """Input media that cannot be used (not a video/image, unreadable, empty, no face, absurd size).

    The message is a complete sentence for the user, naming the file; the CLI prints it on one line.
    """
