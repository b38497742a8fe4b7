"""facelab's data layer: video/image I/O, the VoxCeleb layout, the shared data set, uploads, face crop.

Not to be confused with HuggingFace ``datasets`` (never install it beside facelab).

Importing this package loads numpy and Pillow only; PyAV, OpenCV, dlib and scipy are imported when first
needed, so the training path imports it on a machine without them.

* :mod:`datasets.video`: :func:`open_media`, :func:`iter_frames`, :func:`read_frames`, :func:`write_video`,
  :func:`write_frames`;
* :mod:`datasets.voxceleb`: :class:`VoxCelebFolder`;
* :mod:`datasets.shared`: :class:`SharedData`, :func:`shared_data_root`;
* :mod:`datasets.face_detect` / :mod:`datasets.crop`: :func:`detect_faces`, :func:`crop_media`,
  :func:`crop_frames`, :func:`paste_back`;
* :mod:`datasets.uploads`: :func:`validate_upload`, :func:`prepare_upload`;
* :mod:`datasets.demo`: :func:`demo_source`, :func:`demo_driving`.
"""

from datasets.crop import CropResult, crop_array, crop_frame, crop_frames, crop_media, face_crop_box, paste_back
from datasets.errors import DataError
from datasets.face_detect import Box, detect_faces
from datasets.shared import SharedData, SharedItem, shared_data_root
from datasets.uploads import prepare_upload, validate_upload
from datasets.video import (
    DataWarning,
    EncodeStats,
    Media,
    MediaInfo,
    iter_frames,
    open_media,
    read_frames,
    write_frames,
    write_video,
)
from datasets.voxceleb import VideoItem, VoxCelebFolder

__all__ = [
    "DataError",
    "DataWarning",
    "Media",
    "MediaInfo",
    "EncodeStats",
    "open_media",
    "iter_frames",
    "read_frames",
    "write_video",
    "write_frames",
    "VideoItem",
    "VoxCelebFolder",
    "SharedData",
    "SharedItem",
    "shared_data_root",
    "Box",
    "detect_faces",
    "CropResult",
    "crop_media",
    "crop_array",
    "crop_frames",
    "crop_frame",
    "face_crop_box",
    "paste_back",
    "validate_upload",
    "prepare_upload",
]
