"""Video and image I/O: lazy decoding of clips, frame folders and images; H.264/H.265 encoding with stats.

Every frame that leaves this package is a ``(H, W, 3)`` ``uint8`` RGB ``np.ndarray``. Clips are decoded
lazily, one frame at a time, so a long clip never has to fit in memory.

Backends, imported lazily (never at module import, so ``lab.train`` can import this package on a bare
GPU machine):

* videos are decoded with PyAV (``av``, the ``video`` extra); when ``import av`` fails they are
  decoded with OpenCV (``cv2``, e.g. opencv-python-headless), converted BGR→RGB. OpenCV cannot see
  audio streams (``has_audio`` is then False) and its frame count is the container's estimate;
* images and frame folders are read with Pillow (always installed); EXIF orientation is applied;
* writing video needs PyAV.

Frame counts (:attr:`MediaInfo.num_frames`): with PyAV, the number of video packets, counted by
demuxing the file without decoding it (what ffprobe ``-count_packets`` and the shared set's MANIFEST
report; it equals the decoded count for well-formed files, whereas header counts are absent in webm/mkv
and can be wrong: an mp4 with an edit list in the shared set claims 157 frames and holds 110). With
OpenCV, ``CAP_PROP_FRAME_COUNT`` (the container's estimate). Frame folders: the number of png/jpg files;
images: 1.

Rotation: a display rotation stored in a video (phone clips filmed upright) is applied, so a 1280×720
stream tagged -90° yields 720×1280 frames and ``info`` reports 720×1280.

Decoding errors (choice): :func:`open_media` decodes the first frame, so a file that is not a video, is
truncated before its index (an mp4 cut before its ``moov`` atom, the usual case) or has no frame raises
:class:`~datasets.errors.DataError` at once. A file whose index is intact but whose data is cut (an mp4
written with ``+faststart``, then cut: its index points past the end of the file) or that holds clearly
fewer frames than its header's frame count or duration promise (a cut webm/mkv) opens with one
:class:`DataWarning` ("<file> is truncated: ...", saying how many frames are there and how many were
listed) and yields the frames it holds; ``num_frames`` counts those. A decoding error *after* at least one frame has
been yielded stops the iteration with a :class:`DataWarning` naming the file and how many frames were
decoded; the frames decoded so far are kept (a phone upload with a broken tail stays usable). The same
warning is given when a stream ends before its packet count. Code that must not accept a short clip
(evaluation) turns the warnings into errors with ``warnings.simplefilter("error", DataWarning)``.
Note: the shared set's ``clips/jixinya+EAMM/sad.mp4`` is such a cut file in its source repository (157
frames indexed, 110 present; its MANIFEST row says 110), so opening it warns.

Modules: :mod:`~datasets.video.probe` (what a file holds before decoding it, the size and length limits),
:mod:`~datasets.video.decode` (:class:`Media`, :func:`open_media`, reading frames), :mod:`~datasets.video.encode`
(:func:`write_video`, :func:`write_frames`), :mod:`~datasets.video.common` (what they share). The names below are
the public interface; a test that patches a limit patches the module that reads it (``MAX_FRAMES``: ``probe``).
"""

from datasets.video.common import (
    FRAME_EXTS,
    IMAGE_EXTS,
    VIDEO_EXTS,
    DataWarning,
    MediaInfo,
    media_kind,
    natural_key,
)
from datasets.video.common import Frame as Frame
from datasets.video.decode import DEFAULT_FOLDER_FPS, Media, iter_frames, open_media, read_frames
from datasets.video.decode import MAX_READ_BYTES as MAX_READ_BYTES
from datasets.video.encode import MIN_X265_WIDTH as MIN_X265_WIDTH
from datasets.video.encode import X265_MIN_REORDER_FRAMES as X265_MIN_REORDER_FRAMES
from datasets.video.encode import EncodeStats, write_frames, write_video
from datasets.video.probe import MAX_FRAMES, MAX_SIDE
from datasets.video.probe import TRUNCATED_SLACK as TRUNCATED_SLACK
from datasets.video.probe import TRUNCATED_SLACK_FRACTION as TRUNCATED_SLACK_FRACTION

__all__ = [
    "VIDEO_EXTS",
    "IMAGE_EXTS",
    "FRAME_EXTS",
    "MAX_SIDE",
    "MAX_FRAMES",
    "DEFAULT_FOLDER_FPS",
    "DataWarning",
    "MediaInfo",
    "Media",
    "EncodeStats",
    "open_media",
    "iter_frames",
    "read_frames",
    "write_video",
    "write_frames",
    "natural_key",
    "media_kind",
]
