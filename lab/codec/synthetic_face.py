"""A synthetic face with a known pose: the 68 iBUG points of a generic 3-D face, seen by :mod:`lab.codec.pose`'s camera.

A test and drawing aid, not a measured shape: :func:`synthetic_landmarks` gives the landmarks of a face at a given
yaw, pitch and roll (and jaw drop), which :func:`lab.codec.pose.head_pose` recovers, so pose, the quality gate and
the failure flags can be checked without a face detector. Axes, sign convention, :data:`MEAN_FACE_3D`,
:data:`MODEL_TILT_DEG`, :func:`camera_matrix` and :func:`head_pose` are :mod:`lab.codec.pose`'s.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np

from lab.codec.pose import MEAN_FACE_3D, MODEL_TILT_DEG, _rot_x, camera_matrix, rotation_matrix

__all__ = ["generic_face_68", "synthetic_landmarks"]


def generic_face_68(mouth_open: float = 0.0) -> np.ndarray:
    """All 68 iBUG points of a generic face in 3-D, millimetres, axes of :data:`MEAN_FACE_3D` (untilted).

    The 14 points of :data:`MEAN_FACE_3D` as they are; the others laid out around them (jaw contour on a
    half-ellipse from ear to ear, brows arched 18-24 mm above the eye line, eyelids ±4 mm, lips), mirror
    symmetric. For synthetic tests and drawings: a face with a known pose, not a measured shape.

    Args:
        mouth_open: jaw drop in mm: the lower lip, chin and lower jaw contour move down by it (tapering
            towards the ears).
    """
    p = np.zeros((68, 3))
    chin = MEAN_FACE_3D[8]
    for i in range(17):  # jaw contour: ear (0) -> chin (8) -> ear (16)
        phi = math.radians((i - 8) / 8 * 90)
        p[i] = (70 * math.sin(phi), 5 + (chin[1] - 5) * math.cos(phi), chin[2] + (60 - chin[2]) * math.sin(phi) ** 2)
    for j, (x, y, z) in enumerate(((-55, -16, 8), (-45, -22, 0), (-33, -24, -4), (-21, -22, -6), (-10, -18, -8))):
        p[17 + j] = (x, y, z)  # brow, image left (outer -> inner)
        p[26 - j] = (-x, y, z)  # its mirror
    p[27], p[28], p[30] = MEAN_FACE_3D[27], MEAN_FACE_3D[28], MEAN_FACE_3D[30]  # nose bridge
    p[29] = (p[28] + p[30]) / 2
    p[31:36] = [MEAN_FACE_3D[31], (-6, 45, -22), MEAN_FACE_3D[33], (6, 45, -22), MEAN_FACE_3D[35]]
    outer, inner = np.array(MEAN_FACE_3D[36]), np.array(MEAN_FACE_3D[39])
    for side, (o, n) in enumerate(((outer, inner), (outer * [-1, 1, 1], inner * [-1, 1, 1]))):
        a, b = (o, n) if side == 0 else (n, o)  # 36..39 runs outer -> inner; 42..45 inner -> outer
        pts = [a, a + (b - a) / 3 + (0, -4, -1), a + 2 * (b - a) / 3 + (0, -4, -1), b,
               a + 2 * (b - a) / 3 + (0, 4, -1), a + (b - a) / 3 + (0, 4, -1)]
        p[36 + 6 * side : 42 + 6 * side] = pts
    p[48:60] = [(-25, 68, -2), (-17, 63, -14), (-8, 60, -20), (0, 61, -22), (8, 60, -20), (17, 63, -14),
                (25, 68, -2), (17, 75, -12), (8, 79, -18), (0, 80, -19), (-8, 79, -18), (-17, 75, -12)]
    p[48], p[51], p[54] = MEAN_FACE_3D[48], MEAN_FACE_3D[51], MEAN_FACE_3D[54]
    p[60:68] = [(-21, 68, -6), (-8, 67, -16), (0, 67, -18), (8, 67, -16), (21, 68, -6), (8, 69, -16),
                (0, 69, -18), (-8, 69, -16)]
    if mouth_open:
        p[[55, 56, 57, 58, 59, 65, 66, 67], 1] += mouth_open
        for i in range(3, 14):  # the lower jaw follows, tapering towards the ears
            p[i, 1] += mouth_open * max(0.0, math.cos(math.radians((i - 8) / 8 * 90))) ** 2
    return p


def synthetic_landmarks(
    yaw: float = 0.0,
    pitch: float = 0.0,
    roll: float = 0.0,
    image_size: Sequence[int] = (256, 256),
    face_width: float = 0.55,
    mouth_open: float = 0.0,
) -> np.ndarray:
    """68 landmarks of :func:`generic_face_68` seen at a given pose by :func:`camera_matrix`'s camera.

    The face is tilted by :data:`MODEL_TILT_DEG` like the fit's model, so :func:`head_pose` recovers
    ``(yaw, pitch, roll)`` from it (exactly without ``mouth_open``).

    Args:
        yaw: degrees (sign convention in :mod:`lab.codec.pose`). pitch: degrees. roll: degrees.
        image_size: ``(H, W)``.
        face_width: width of the face (ear to ear, 140 mm) as a fraction of the image width, frontal.
        mouth_open: jaw drop in mm (see :func:`generic_face_68`).

    Returns:
        ``(68, 2)`` float64 ``(x, y)`` pixels.
    """
    w = float(image_size[1])
    k = camera_matrix(image_size)
    pts = generic_face_68(mouth_open) @ _rot_x(-MODEL_TILT_DEG).T
    dist = k[0, 0] * 140.0 / (face_width * w)
    # origin (between the eyes) 45 mm above the optical axis: the face's middle is at the image centre
    cam = pts @ rotation_matrix(yaw, pitch, roll).T + np.array([0.0, -45.0, dist])
    uv = cam @ k.T
    return uv[:, :2] / uv[:, 2:3]
